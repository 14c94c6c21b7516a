// Package netsim emulates remote networks in user space, so tests and
// benchmarks can reach the gateway's WebRTC ports as a viewer on an office
// line or a poor 4G link would, on a machine whose kernel has no netem.
//
// # Pieces
//
//   - A Profile describes one network: round-trip time, jitter, loss, a
//     rate cap with a bottleneck buffer. Lookup returns the built-in ones
//     ("lan", "office", "4g", "poor4g").
//   - UDPRelay (NewUDP) sits in front of the gateway's ICE UDP port. Every
//     client source address gets its own socket towards the gateway, so the
//     gateway sees one address per viewer, as behind a NAT. Each client has
//     a link of its own, or, with Options.SharedLink, all share one (several
//     sessions of one phone, a camera wall, on one 4G link).
//   - TCPRelay (NewTCP) does the same for ICE-TCP, one upstream connection
//     per accepted one. Loss is not emulated on TCP: a real TCP would
//     retransmit, and the stream the application sees would only be late,
//     which delay and the rate cap already model.
//   - RewriteCandidates points the gateway's ICE candidates in an SDP
//     answer at a relay, and NewWHEPProxy applies it to the answers of a
//     WHEP endpoint while delaying signalling by the round trip.
//     NewWHEPProxyWith rewrites the player's offers too, say with
//     StripCandidates, which removes a player's candidates so the gateway
//     can only reach it through the relay.
//
// A viewer then talks to the relay instead of the gateway without knowing:
// see the package example.
//
// # Impairment model
//
// Each direction of each client (or TCP connection) has its own pipeline;
// on a shared link (Options.SharedLink) each direction has one pipeline
// for all the relay's clients, so the sum of their traffic is serialised,
// buffered, lost and delayed as one stream, in arrival order, and only
// delivery tells the clients apart. A packet arriving at time now is lost with probability Loss. With a rate
// cap it is serialised like on a bottleneck link,
//
//	depart = max(now, lastDepart) + size·8/rate
//
// and tail-dropped (an overflow) if it would wait more than Queue for the
// link; TCP holds the sender back instead of dropping. It is delivered at
// depart + RTT/2 + jitter, jitter uniform in [-Jitter, +Jitter], never
// earlier than depart and never before the previous packet of the same
// direction: radio links deliver in order, so jitter bunches packets up
// rather than reordering them. Because jitter applies to each direction,
// round trips vary by up to ±2·Jitter. Sizes are payload bytes (UDP and IP
// headers are not counted). A pipeline holds at most 8 MiB in flight; a
// shared one holds that for all its clients.
//
// # Concurrency
//
// Reader goroutines read the sockets, stamp each packet's arrival time and
// hand it to its pipeline goroutine through a small bounded channel; a busy
// pipeline thus holds its reader back and the kernel's socket buffer (or
// TCP flow control) absorbs the rest. The UDP relay has one reader on its
// listening socket for all clients' client→server traffic and one per
// client on that client's upstream socket; the TCP relay one per direction
// of each connection. Each pipeline goroutine alone owns the direction's
// state (queue, departure times, random source): it admits packets and
// delivers the due ones when its single timer, always set to the queue
// head's delivery time, fires. Counters are atomics, read at any time by
// Stats. Close stops readers by closing sockets and pipelines by a channel,
// and waits for every goroutine; packets still queued are discarded.
//
// On a shared link the UDP relay starts its two pipeline goroutines with
// the relay, and a client costs only its upstream reader. The listening
// socket's reader feeds every client's datagrams into the one
// client→server input channel, each client's upstream reader its
// datagrams into the one server→client channel; each packet carries its
// client's flow (address and upstream socket, fixed once the flow is
// opened), which is all the pipeline needs to deliver it: to the flow's
// socket upstream, from the listening socket to the flow's address down.
// The pipeline goroutines still alone own the link's state, and a busy
// one holds back every reader that feeds it, as a full link holds back
// all its senders. Packets are admitted in the order they reach the
// channel, which is their arrival order but for readers descheduled
// between reading and sending. The shared input channels are never
// closed (they have several senders); the pipelines end on Close.
//
// Random decisions come from a PCG source seeded with Options.Seed and the
// pipeline's number (in the order clients appear; 0 and 1 on a shared
// link), so a run with the same traffic loses the same packets.
//
// # Caveats
//
// On loopback the gateway can also reach a player's own host candidates
// directly. ICE still selects the relay: the player only knows the relay's
// host candidate, and a direct path would be peer-reflexive, of lower
// priority; a test that depends on it can check the selected candidate
// pair, or strip the player's candidates from its offer
// (ProxyOptions.Offer with StripCandidates) so no direct path exists. The TCP relay delays data, not connection set-up.
package netsim
