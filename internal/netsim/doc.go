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
//     gateway sees one address per viewer, as behind a NAT.
//   - TCPRelay (NewTCP) does the same for ICE-TCP, one upstream connection
//     per accepted one. Loss is not emulated on TCP: a real TCP would
//     retransmit, and the stream the application sees would only be late,
//     which delay and the rate cap already model.
//   - RewriteCandidates points the gateway's ICE candidates in an SDP
//     answer at a relay, and NewWHEPProxy applies it to the answers of a
//     WHEP endpoint while delaying signalling by the round trip.
//
// A viewer then talks to the relay instead of the gateway without knowing:
// see the package example.
//
// # Impairment model
//
// Each direction of each client (or TCP connection) has its own pipeline.
// A packet arriving at time now is lost with probability Loss. With a rate
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
// headers are not counted).
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
// Random decisions come from a PCG source seeded with Options.Seed and the
// pipeline's number (in the order clients appear), so a run with the same
// traffic loses the same packets.
//
// # Caveats
//
// On loopback the gateway can also reach a player's own host candidates
// directly. ICE still selects the relay: the player only knows the relay's
// host candidate, and a direct path would be peer-reflexive, of lower
// priority; a test that depends on it can check the selected candidate
// pair. The TCP relay delays data, not connection set-up.
package netsim
