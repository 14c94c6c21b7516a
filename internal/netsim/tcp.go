package netsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// chunkSize is the most one read takes from a TCP connection. Each chunk
// is one unit for the rate cap, so it is kept small enough to be
// serialised smoothly (16 KiB is 131 ms at 1 Mbit/s).
const chunkSize = 16 << 10

// dialTimeout bounds connecting to the upstream for one client.
const dialTimeout = 10 * time.Second

// TCPRelay forwards TCP connections to one upstream address, delaying and
// rate-limiting the byte stream of each direction. Nothing is lost: a real
// TCP would retransmit, which shows to the application as delay only.
type TCPRelay struct {
	upstream *net.TCPAddr
	prof     Profile
	opts     Options
	ln       *net.TCPListener
	ctx      context.Context // done when the relay closes
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	up, down counters
	streams  uint64 // pipelines numbered so far; owned by accept

	mu     sync.Mutex
	conns  map[*tcpPair]struct{}
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// tcpPair is one relayed connection.
type tcpPair struct {
	client, server *net.TCPConn
	ctx            context.Context // done when the pair is torn down
	cancel         context.CancelFunc
	open           atomic.Int32 // directions still running
	once           sync.Once
}

// NewTCP starts a relay on 127.0.0.1 (a free port) to upstream with
// profile p; p's Loss is ignored.
func NewTCP(upstream *net.TCPAddr, p Profile, opts Options) (*TCPRelay, error) {
	if upstream == nil {
		return nil, errors.New("netsim: no upstream TCP address")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("netsim: listen tcp: %w", err)
	}
	r := &TCPRelay{upstream: upstream, prof: p, opts: opts, ln: ln, conns: map[*tcpPair]struct{}{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Go(r.accept)
	return r, nil
}

// Addr is where clients connect to (instead of upstream).
func (r *TCPRelay) Addr() *net.TCPAddr {
	ap := r.ln.Addr().(*net.TCPAddr).AddrPort()
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// Stats returns the traffic counted so far; TCP counts chunks as packets.
func (r *TCPRelay) Stats() Stats {
	return Stats{Up: r.up.snapshot(), Down: r.down.snapshot()}
}

// Close stops accepting, breaks every relayed connection and waits for
// every goroutine to return.
func (r *TCPRelay) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		conns := make([]*tcpPair, 0, len(r.conns))
		for c := range r.conns {
			conns = append(conns, c)
		}
		r.mu.Unlock()
		r.cancel()
		if err := r.ln.Close(); err != nil {
			r.closeErr = fmt.Errorf("netsim: close tcp relay: %w", err)
		}
		for _, c := range conns {
			c.abort()
		}
		r.wg.Wait()
	})
	return r.closeErr
}

func (r *TCPRelay) accept() {
	for {
		c, err := r.ln.AcceptTCP()
		if err != nil {
			if r.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: try again shortly.
			r.opts.logf("netsim: tcp relay: accept: %v", err)
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		n := r.streams
		r.streams += 2
		r.wg.Go(func() { r.serve(c, n) })
	}
}

// serve connects client to the upstream and relays both directions.
func (r *TCPRelay) serve(client *net.TCPConn, streams uint64) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(r.ctx, "tcp", r.upstream.String())
	if err != nil {
		if r.ctx.Err() == nil {
			r.opts.logf("netsim: tcp relay: dial upstream for %v: %v", client.RemoteAddr(), err)
		}
		client.Close()
		return
	}
	p := &tcpPair{client: client, server: c.(*net.TCPConn)}
	p.ctx, p.cancel = context.WithCancel(r.ctx)
	p.open.Store(2)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		p.abort()
		return
	}
	r.conns[p] = struct{}{}
	r.mu.Unlock()

	upIn, downIn := make(chan packet, inputQueue), make(chan packet, inputQueue)
	upP := newPipeline(r.prof.direction(true), true, r.opts.Seed, streams, upIn, p.ctx.Done(),
		func(pk packet) error { _, err := p.server.Write(pk.b); return err }, &r.up, r.opts.logf)
	downP := newPipeline(r.prof.direction(false), true, r.opts.Seed, streams+1, downIn, p.ctx.Done(),
		func(pk packet) error { _, err := p.client.Write(pk.b); return err }, &r.down, r.opts.logf)
	r.wg.Go(func() { r.read(p, p.client, upIn) })
	r.wg.Go(func() { r.read(p, p.server, downIn) })
	r.wg.Go(func() { r.finish(p, upP.run(), p.server) })
	r.finish(p, downP.run(), p.client)
}

// read feeds what src sends to a pipeline, closing its input at the end of
// the stream.
func (r *TCPRelay) read(p *tcpPair, src *net.TCPConn, out chan<- packet) {
	defer close(out)
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		now := time.Now()
		if n > 0 {
			select {
			case out <- packet{b: clone(buf[:n]), at: now}:
			case <-p.ctx.Done():
				return
			}
		}
		if errors.Is(err, io.EOF) {
			return // the pipeline half-closes dst once it has delivered all
		}
		if err != nil {
			if p.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				r.opts.logf("netsim: tcp relay: read from %v: %v", src.RemoteAddr(), err)
			}
			p.abort()
			return
		}
	}
}

// finish ends one direction: a stream delivered to its end is passed on
// as a half-close of dst; a broken one breaks the pair. The last
// direction to end closes both connections.
func (r *TCPRelay) finish(p *tcpPair, drained bool, dst *net.TCPConn) {
	if drained {
		_ = dst.CloseWrite()
	} else {
		p.abort()
	}
	if p.open.Add(-1) == 0 {
		p.abort()
		r.mu.Lock()
		delete(r.conns, p)
		r.mu.Unlock()
	}
}

// abort tears the pair down: readers and writers fail, pipelines stop.
func (p *tcpPair) abort() {
	p.once.Do(func() {
		p.cancel()
		p.client.Close()
		p.server.Close()
	})
}
