package netsim

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpEcho starts an upstream that sends back what it reads and
// half-closes after the client does.
func tcpEcho(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []*net.TCPConn
	wg.Go(func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				io.Copy(c, c)
				c.CloseWrite()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr)
}

func tcpRelay(t *testing.T, upstream *net.TCPAddr, p Profile) *TCPRelay {
	t.Helper()
	r, err := NewTCP(upstream, p, Options{Seed: 5, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func tcpDial(t *testing.T, to *net.TCPAddr) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a hang fails, slowness does not
	return c
}

// echoThrough sends data through c, half-closes, and returns what comes
// back until the end of the stream and how long it took.
func echoThrough(t *testing.T, c *net.TCPConn, data []byte) ([]byte, time.Duration) {
	t.Helper()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		errc <- err
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return back, elapsed
}

// TestTCPEcho: small messages take at least RTT − 2·Jitter to come back;
// a larger stream comes back intact and in order, the end of stream
// included.
func TestTCPEcho(t *testing.T) {
	p := Profile{Name: "tcp", RTT: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.5}
	relay := tcpRelay(t, tcpEcho(t), p)
	c := tcpDial(t, relay.Addr())
	buf := make([]byte, 1)
	for i := range 5 {
		start := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < p.RTT-2*p.Jitter {
			t.Fatalf("round trip %v, shorter than %v", d, p.RTT-2*p.Jitter)
		}
		if buf[0] != byte(i) {
			t.Fatalf("got %d back, want %d", buf[0], i)
		}
	}
	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	back, _ := echoThrough(t, c, data)
	if !bytes.Equal(back, data) {
		t.Fatalf("%d bytes came back, not the %d sent", len(back), len(data))
	}
	st := relay.Stats()
	if st.Up.Lost+st.Down.Lost+st.Up.Overflow+st.Down.Overflow != 0 || st.Up.DeliveredBytes != 5+1<<20 {
		t.Fatalf("%+v: TCP must lose nothing", st)
	}
}

// TestTCPRate: 512 KiB through an 8 Mbit/s link with a 100 ms buffer
// cannot come back before it was serialised once (512 ms); the buffer
// holds the sender back instead of dropping.
func TestTCPRate(t *testing.T) {
	const rate = 8_000_000
	p := Profile{Name: "tcp-slow", RTT: 20 * time.Millisecond, Rate: rate, Queue: 100 * time.Millisecond}
	relay := tcpRelay(t, tcpEcho(t), p)
	c := tcpDial(t, relay.Addr())
	data := bytes.Repeat([]byte("0123456789abcdef"), 32<<10)
	back, elapsed := echoThrough(t, c, data)
	if !bytes.Equal(back, data) {
		t.Fatalf("%d bytes came back, not the %d sent", len(back), len(data))
	}
	if floor := serialisation(len(data), rate); elapsed < floor {
		t.Fatalf("%d bytes echoed in %v, faster than %d bit/s allows (%v)", len(data), elapsed, rate, floor)
	}
	t.Logf("%d bytes echoed in %v; %+v", len(data), elapsed, relay.Stats())
}

// TestTCPCloseBreaksConnections: Close with a connection open (and data
// queued) ends it and returns every goroutine.
func TestTCPCloseBreaksConnections(t *testing.T) {
	relay, err := NewTCP(tcpEcho(t), Profile{RTT: time.Second}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := tcpDial(t, relay.Addr())
	if _, err := c.Write([]byte("queued for half a second")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay to read", 10*time.Second, func() bool { return relay.Stats().Up.Packets > 0 })
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 10)); err == nil || errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want the connection ended by the relay", err)
	}
}

// TestTCPUpstreamDown: a client of a relay whose upstream refuses is
// disconnected.
func TestTCPUpstreamDown(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	relay := tcpRelay(t, addr, Profile{})
	c := tcpDial(t, relay.Addr())
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a relay with no upstream", n)
	}
}
