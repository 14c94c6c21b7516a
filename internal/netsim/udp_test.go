package netsim

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// arrival is one datagram a recorder read: its sequence number (the
// payload's first 4 bytes), size, time and sender.
type arrival struct {
	seq  uint32
	size int
	at   time.Time
	from netip.AddrPort
}

// recorder reads a UDP socket, records what arrives and, if echo, sends
// it back where it came from: the upstream server, or a client.
type recorder struct {
	conn *net.UDPConn
	echo bool
	n    atomic.Int64
	mu   sync.Mutex
	got  []arrival
	done chan struct{}
}

func record(t *testing.T, conn *net.UDPConn, echo bool) *recorder {
	t.Helper()
	r := &recorder{conn: conn, echo: echo, done: make(chan struct{})}
	go r.loop()
	t.Cleanup(func() {
		conn.Close()
		<-r.done
	})
	return r
}

func (r *recorder) loop() {
	defer close(r.done)
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || n < 4 {
			continue // ECONNREFUSED from a relay already closed, say
		}
		r.mu.Lock()
		r.got = append(r.got, arrival{seq: binary.BigEndian.Uint32(buf), size: n, at: time.Now(), from: from})
		r.mu.Unlock()
		r.n.Add(1)
		if r.echo {
			r.conn.WriteToUDPAddrPort(buf[:n], from)
		}
	}
}

func (r *recorder) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// udpServer starts an upstream on loopback; echo sends every datagram
// back.
func udpServer(t *testing.T, echo bool) (*net.UDPAddr, *recorder) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return conn.LocalAddr().(*net.UDPAddr), record(t, conn, echo)
}

func udpRelay(t *testing.T, upstream *net.UDPAddr, p Profile, seed uint64) *UDPRelay {
	t.Helper()
	r, err := NewUDP(upstream, p, Options{Seed: seed, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func udpClient(t *testing.T, to *net.UDPAddr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func datagram(seq, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, uint32(seq))
	return b
}

// TestUDPRoundTrip4G pings an echo server through the 4g profile. Each
// direction takes RTT/2 ± Jitter, so no round trip is shorter than
// RTT − 2·Jitter (20 ms), and their median is the RTT (60 ms). Pings go
// one at a time, so jitter is never flattened by the in-order rule.
func TestUDPRoundTrip4G(t *testing.T) {
	p, err := Lookup("4g")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := udpServer(t, true)
	relay := udpRelay(t, srv, p, 1)
	c := udpClient(t, relay.Addr())
	var rtts []time.Duration
	buf := make([]byte, 2048)
	for i := range 64 {
		start := time.Now()
		if _, err := c.Write(datagram(i, 100)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(start.Add(500 * time.Millisecond)) // lost (1 % each way): move on
		for {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			if n >= 4 && binary.BigEndian.Uint32(buf) == uint32(i) {
				rtts = append(rtts, time.Since(start))
				break
			}
		}
	}
	if len(rtts) < 32 {
		t.Fatalf("only %d of 64 pings answered", len(rtts))
	}
	floor := p.RTT - 2*p.Jitter
	for _, d := range rtts {
		if d < floor {
			t.Fatalf("round trip %v, shorter than %v", d, floor)
		}
	}
	slices.Sort(rtts)
	median, longest := rtts[len(rtts)/2], rtts[len(rtts)-1]
	t.Logf("%d round trips: min %v, median %v, max %v; %+v", len(rtts), rtts[0], median, longest, relay.Stats())
	// The sample median of 64 is within ~3 ms of 60 ms (one standard
	// error); a loaded machine only adds to it.
	if median < 50*time.Millisecond || median > 200*time.Millisecond {
		t.Errorf("median round trip %v, want about %v", median, p.RTT)
	}
	// Jitter is applied: a round trip over 75 ms has probability 0.2
	// each, so none in 64 is as likely as 1 in 10⁶.
	if longest < 75*time.Millisecond {
		t.Errorf("longest round trip %v: no jitter?", longest)
	}
}

// TestUDPLoss sends 20,000 datagrams through 5 % loss, at most 64 in
// flight so no socket buffer overflows uncounted, and checks each
// direction lost its share and the counters account for every datagram.
func TestUDPLoss(t *testing.T) {
	const total, window = 20000, 64
	srv, server := udpServer(t, true)
	relay := udpRelay(t, srv, Profile{Name: "lossy", Loss: 0.05}, 2)
	c := udpClient(t, relay.Addr())
	client := record(t, c, false)
	settled := func(sent, slack int) func() bool {
		return func() bool {
			st := relay.Stats()
			return int64(sent)-(client.n.Load()+st.Up.Lost+st.Down.Lost) <= int64(slack)
		}
	}
	for i := range total {
		waitFor(t, "datagrams in flight to drain", 30*time.Second, settled(i, window))
		if _, err := c.Write(datagram(i, 32)); err != nil {
			t.Fatal(err)
		}
	}
	// The relay counts a datagram delivered just after its write, so a
	// peer may have counted it first: wait for the counters to agree too.
	waitFor(t, "every datagram accounted for", 30*time.Second, func() bool {
		st := relay.Stats()
		return settled(total, 0)() && st.Up.Delivered == server.n.Load() && st.Down.Delivered == client.n.Load()
	})
	st := relay.Stats()
	t.Logf("%+v", st)
	frac := func(n, of int64) float64 { return float64(n) / float64(of) }
	if st.Up.Packets != total || st.Up.Overflow != 0 || st.Down.Overflow != 0 {
		t.Fatalf("stats %+v, want %d datagrams up and no overflow", st, total)
	}
	if f := frac(st.Up.Lost, total); f < 0.04 || f > 0.06 {
		t.Errorf("up: lost %.4f, want 0.05", f)
	}
	if got := server.n.Load(); got != st.Up.Delivered || got != total-st.Up.Lost {
		t.Errorf("server got %d, relay delivered %d of %d less %d lost", got, st.Up.Delivered, total, st.Up.Lost)
	}
	if st.Down.Packets != server.n.Load() {
		t.Errorf("relay read %d echoes, server sent %d", st.Down.Packets, server.n.Load())
	}
	if f := frac(st.Down.Lost, st.Down.Packets); f < 0.04 || f > 0.06 {
		t.Errorf("down: lost %.4f, want 0.05", f)
	}
	if got := client.n.Load(); got != st.Down.Delivered || got != st.Down.Packets-st.Down.Lost {
		t.Errorf("client got %d, relay delivered %d of %d less %d lost", got, st.Down.Delivered, st.Down.Packets, st.Down.Lost)
	}
}

// TestUDPRate bursts 1 MB into a 1 Mbit/s link with a 250 ms buffer:
// most of it overflows, and what gets through is spaced at the link rate.
func TestUDPRate(t *testing.T) {
	const rate, size, count = 1_000_000, 1000, 1000
	p := Profile{Name: "slow", Rate: rate, Queue: 250 * time.Millisecond}
	srv, server := udpServer(t, false)
	relay := udpRelay(t, srv, p, 3)
	c := udpClient(t, relay.Addr())
	start := time.Now()
	for i := range count {
		if _, err := c.Write(datagram(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	// Done when everything the relay read is delivered or dropped and
	// nothing has changed for a while (the kernel may have dropped some
	// of the burst before the relay read it: those are never counted).
	var last DirStats
	var since time.Time
	waitFor(t, "the link to drain", 30*time.Second, func() bool {
		st := relay.Stats().Up
		if st != last {
			last, since = st, time.Now()
			return false
		}
		return st.Packets == st.Delivered+st.Overflow+st.Lost && server.n.Load() == st.Delivered &&
			time.Since(since) > 200*time.Millisecond
	})
	got := server.arrivals()
	t.Logf("%+v; %d delivered over %v", last, len(got), got[len(got)-1].at.Sub(got[0].at))
	if last.Overflow == 0 {
		t.Fatal("no overflow")
	}
	// The buffer alone holds 250 ms / 8 ms = 31 packets.
	if len(got) < 31 {
		t.Fatalf("%d packets delivered, fewer than the buffer holds", len(got))
	}
	var bytes int64
	for i, a := range got {
		bytes += int64(a.size)
		if i > 0 && a.seq <= got[i-1].seq {
			t.Fatalf("packet %d after %d", a.seq, got[i-1].seq)
		}
	}
	if bytes != last.DeliveredBytes {
		t.Fatalf("server got %d bytes, relay delivered %d", bytes, last.DeliveredBytes)
	}
	// Bytes (not time) bounded: no more than the link carries while the
	// test ran, plus the buffer, plus the packet on the wire.
	elapsed := got[len(got)-1].at.Sub(start)
	if limit := int64(elapsed.Seconds()*rate/8) + int64(p.Queue.Seconds()*rate/8) + size; bytes > limit {
		t.Errorf("%d bytes delivered in %v, the link carries at most %d", bytes, elapsed, limit)
	}
	// Spacing: the last packet departs at least the serialisation of all
	// later ones after packet i. A reader woken late for packet i makes
	// that span look shorter, so the best i of the first quarter is
	// judged, each against its own share, with a little slack.
	best := time.Duration(-1 << 62)
	var after int64 = bytes
	for i := range len(got) / 4 {
		after -= int64(got[i].size)
		span, want := got[len(got)-1].at.Sub(got[i].at), serialisation(int(after), rate)
		best = max(best, span-want)
	}
	if best < -20*time.Millisecond {
		t.Errorf("packets arrived %v faster than %d bit/s allows", -best, rate)
	}
}

// TestUDPInOrder: jitter wider than the delay itself, packets 1 ms
// apart, and yet both directions deliver in sequence.
func TestUDPInOrder(t *testing.T) {
	const total = 300
	srv, server := udpServer(t, true)
	relay := udpRelay(t, srv, Profile{Name: "jittery", RTT: 40 * time.Millisecond, Jitter: 30 * time.Millisecond}, 4)
	c := udpClient(t, relay.Addr())
	client := record(t, c, false)
	for i := range total {
		if _, err := c.Write(datagram(i, 200)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "echoes", 30*time.Second, func() bool {
		st := relay.Stats()
		return st.Up.Packets == total && st.Up.Delivered == total && server.n.Load() == total &&
			st.Down.Delivered == st.Down.Packets && client.n.Load() == st.Down.Delivered && st.Down.Packets == total
	})
	for name, r := range map[string]*recorder{"server": server, "client": client} {
		got := r.arrivals()
		for i := 1; i < len(got); i++ {
			if got[i].seq <= got[i-1].seq {
				t.Fatalf("%s: %d arrived after %d", name, got[i].seq, got[i-1].seq)
			}
		}
	}
}

// TestUDPClientsAndClose: each client gets its own address upstream, and
// Close with datagrams still queued returns every goroutine (goleak
// checks in TestMain).
func TestUDPClientsAndClose(t *testing.T) {
	srv, server := udpServer(t, false)
	relay, err := NewUDP(srv, Profile{Name: "far", RTT: time.Second}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var clients []*net.UDPConn
	for range 3 {
		clients = append(clients, udpClient(t, relay.Addr()))
	}
	send := func() {
		for i, c := range clients {
			for j := range 10 {
				if _, err := c.Write(datagram(i*100+j, 50)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	send()
	waitFor(t, "datagrams to reach the server", 10*time.Second, func() bool { return server.n.Load() == 30 })
	sources := map[netip.AddrPort]int{}
	for _, a := range server.arrivals() {
		sources[a.from]++
	}
	if len(sources) != 3 {
		t.Errorf("server saw senders %v, want one per client", sources)
	}
	for a := range sources {
		if a == relay.Addr().AddrPort() {
			t.Errorf("upstream saw the relay's client-facing address %v", a)
		}
	}
	// These stay queued for half a second: Close discards them.
	send()
	waitFor(t, "the relay to read", 10*time.Second, func() bool { return relay.Stats().Up.Packets == 60 })
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	if err := relay.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	t.Logf("%+v", relay.Stats())
}

// TestUDPSharedLink: two clients send bursts at twice a 1 Mbit/s link's
// rate each, echoed by the server. On a shared link (Options.SharedLink)
// the two together get no more than one link carries, each way, and
// every echo still reaches the client it belongs to; without it each
// client has a link of its own, and together they get more than one
// carries.
func TestUDPSharedLink(t *testing.T) {
	const rate, size, bursts, burst = 1_000_000, 1000, 10, 25 // 25 kB per 100 ms: 2 Mbit/s per client
	p := Profile{Name: "slow", Rate: rate, Queue: 250 * time.Millisecond}
	// oneLink is the most one link delivers in elapsed: what it carries,
	// plus the buffer, plus the packet on the wire.
	oneLink := func(elapsed time.Duration) int64 {
		return int64(elapsed.Seconds()*rate/8) + int64(p.Queue.Seconds()*rate/8) + size
	}
	for _, shared := range []bool{true, false} {
		t.Run(map[bool]string{true: "shared", false: "separate"}[shared], func(t *testing.T) {
			srv, server := udpServer(t, true)
			relay, err := NewUDP(srv, p, Options{Seed: 5, Logf: t.Logf, SharedLink: shared})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { relay.Close() })
			var clients []*recorder
			for range 2 {
				clients = append(clients, record(t, udpClient(t, relay.Addr()), false))
			}
			start := time.Now()
			for b := range bursts {
				for i, c := range clients {
					for j := range burst {
						if _, err := c.conn.Write(datagram(i<<16|b*burst+j, size)); err != nil {
							t.Fatal(err)
						}
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			// Drained: everything read is delivered or dropped, both ways,
			// and nothing has changed for a while.
			var last Stats
			var since time.Time
			waitFor(t, "the links to drain", 30*time.Second, func() bool {
				st := relay.Stats()
				if st != last {
					last, since = st, time.Now()
					return false
				}
				return st.Up.Packets == st.Up.Delivered+st.Up.Overflow+st.Up.Lost &&
					st.Down.Packets == st.Down.Delivered+st.Down.Overflow+st.Down.Lost &&
					server.n.Load() == st.Up.Delivered && clients[0].n.Load()+clients[1].n.Load() == st.Down.Delivered &&
					time.Since(since) > 200*time.Millisecond
			})
			t.Logf("%+v", last)

			up := server.arrivals()
			sources := map[netip.AddrPort]bool{}
			var upBytes int64
			for _, a := range up {
				upBytes += int64(a.size)
				sources[a.from] = true
			}
			if len(sources) != 2 {
				t.Errorf("server saw senders %v, want one per client", sources)
			}
			var down []arrival
			var downBytes int64
			for i, c := range clients {
				if c.n.Load() == 0 {
					t.Errorf("client %d got no echo", i)
				}
				for _, a := range c.arrivals() {
					if int(a.seq>>16) != i {
						t.Fatalf("client %d got client %d's datagram", i, a.seq>>16)
					}
					if a.from != relay.Addr().AddrPort() {
						t.Fatalf("client %d got a datagram from %v", i, a.from)
					}
					downBytes += int64(a.size)
					down = append(down, a)
				}
			}
			if upBytes != last.Up.DeliveredBytes || downBytes != last.Down.DeliveredBytes {
				t.Fatalf("server got %d bytes, clients %d; relay delivered %d up, %d down",
					upBytes, downBytes, last.Up.DeliveredBytes, last.Down.DeliveredBytes)
			}
			if len(up) == 0 || len(down) == 0 {
				t.Fatal("nothing delivered")
			}
			end := func(as []arrival) time.Duration {
				return slices.MaxFunc(as, func(a, b arrival) int { return a.at.Compare(b.at) }).at.Sub(start)
			}
			upElapsed, downElapsed := end(up), end(down)
			t.Logf("up: %d bytes in %v (one link: %d); down: %d bytes in %v (one link: %d)",
				upBytes, upElapsed, oneLink(upElapsed), downBytes, downElapsed, oneLink(downElapsed))
			if last.Up.Overflow == 0 {
				t.Error("no overflow upstream")
			}
			if shared {
				if upBytes > oneLink(upElapsed) {
					t.Errorf("up: %d bytes delivered in %v, one link carries at most %d", upBytes, upElapsed, oneLink(upElapsed))
				}
				if downBytes > oneLink(downElapsed) {
					t.Errorf("down: %d bytes delivered in %v, one link carries at most %d", downBytes, downElapsed, oneLink(downElapsed))
				}
			} else if upBytes <= oneLink(upElapsed) {
				t.Errorf("up: %d bytes delivered in %v, no more than one link's %d: the clients share it", upBytes, upElapsed, oneLink(upElapsed))
			}
		})
	}
}
