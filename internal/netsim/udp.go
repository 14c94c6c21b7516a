package netsim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// maxFlows bounds the clients one UDP relay serves, each costing a socket
// and three goroutines (one on a shared link) until Close: far more
// viewers than any test or
// benchmark opens, far fewer than the file descriptors a stray scanner
// would otherwise use up.
const maxFlows = 1024

// socketBuffer is asked for on every relay socket so a burst (a keyframe
// of a few hundred packets) waits in the kernel rather than being dropped
// there, uncounted; the kernel caps it at net.core.rmem_max/wmem_max.
const socketBuffer = 4 << 20

// UDPRelay forwards datagrams between clients and one upstream address
// through the impairment of a Profile.
type UDPRelay struct {
	upstream *net.UDPAddr
	prof     Profile
	opts     Options
	ln       *net.UDPConn
	stop     chan struct{}
	wg       sync.WaitGroup
	up, down counters
	// sharedUp and sharedDown feed the two pipelines of a shared link
	// (Options.SharedLink); nil without one.
	sharedUp, sharedDown chan packet

	mu      sync.Mutex
	flows   map[netip.AddrPort]*udpFlow
	closed  bool
	streams uint64 // pipelines numbered so far, for their random sources
	refused bool   // a client over maxFlows was logged already

	closeOnce sync.Once
	closeErr  error
}

// udpFlow is one client: its socket towards upstream and the input of the
// client→server pipeline that carries its datagrams (its own, or the
// shared link's).
type udpFlow struct {
	client netip.AddrPort
	conn   *net.UDPConn
	up     chan<- packet
}

// NewUDP starts a relay on 127.0.0.1 (a free port) to upstream with
// profile p.
func NewUDP(upstream *net.UDPAddr, p Profile, opts Options) (*UDPRelay, error) {
	if upstream == nil {
		return nil, errors.New("netsim: no upstream UDP address")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("netsim: listen udp: %w", err)
	}
	_ = ln.SetReadBuffer(socketBuffer)
	_ = ln.SetWriteBuffer(socketBuffer)
	r := &UDPRelay{upstream: upstream, prof: p, opts: opts, ln: ln, stop: make(chan struct{}),
		flows: map[netip.AddrPort]*udpFlow{}}
	if opts.SharedLink {
		// One link for every client: its pipelines are there before the
		// first client, numbered 0 and 1 for their random sources.
		r.sharedUp, r.sharedDown = make(chan packet, inputQueue), make(chan packet, inputQueue)
		upP := newPipeline(p.direction(true), false, opts.Seed, 0, r.sharedUp, r.stop, r.deliverUp, &r.up, opts.logf)
		downP := newPipeline(p.direction(false), false, opts.Seed, 1, r.sharedDown, r.stop, r.deliverDown, &r.down, opts.logf)
		r.streams = 2
		r.wg.Go(func() { upP.run() })
		r.wg.Go(func() { downP.run() })
	}
	r.wg.Go(r.readClients)
	return r, nil
}

// Addr is where clients send to (instead of upstream).
func (r *UDPRelay) Addr() *net.UDPAddr {
	ap := r.ln.LocalAddr().(*net.UDPAddr).AddrPort()
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// Stats returns the traffic counted so far.
func (r *UDPRelay) Stats() Stats {
	return Stats{Up: r.up.snapshot(), Down: r.down.snapshot()}
}

// Close stops the relay, discards what is in flight and waits for every
// goroutine to return.
func (r *UDPRelay) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		flows := make([]*udpFlow, 0, len(r.flows))
		for _, f := range r.flows {
			flows = append(flows, f)
		}
		r.mu.Unlock()
		close(r.stop)
		if err := r.ln.Close(); err != nil {
			r.closeErr = fmt.Errorf("netsim: close udp relay: %w", err)
		}
		for _, f := range flows {
			f.conn.Close()
		}
		r.wg.Wait()
	})
	return r.closeErr
}

// readClients reads datagrams from clients and feeds each to the
// client→server pipeline of its flow (or of the shared link), opening the
// flow on a client's first datagram.
func (r *UDPRelay) readClients() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.ln.ReadFromUDPAddrPort(buf)
		now := time.Now()
		if err != nil {
			if !r.readFailed("read from clients", err) {
				return
			}
			continue
		}
		f := r.flow(from)
		if f == nil {
			continue
		}
		select {
		case f.up <- packet{b: clone(buf[:n]), at: now, flow: f}:
		case <-r.stop:
			return
		}
	}
}

// readUpstream reads the upstream's datagrams to one client and feeds
// them to down, the client's server→client pipeline or the shared link's.
func (r *UDPRelay) readUpstream(f *udpFlow, down chan<- packet) {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.conn.Read(buf)
		now := time.Now()
		if err != nil {
			if !r.readFailed("read from upstream", err) {
				return
			}
			continue
		}
		select {
		case down <- packet{b: clone(buf[:n]), at: now, flow: f}:
		case <-r.stop:
			return
		}
	}
}

// readFailed decides whether a reader carries on after err.
func (r *UDPRelay) readFailed(what string, err error) bool {
	select {
	case <-r.stop:
		return false
	default:
	}
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	// A connected UDP socket reports an earlier datagram's ICMP "port
	// unreachable" on its next read: the upstream is not listening (yet,
	// or any more), which is no reason to stop relaying.
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	r.opts.logf("netsim: udp relay: %s: %v", what, err)
	// Whatever else it is, do not spin on it.
	select {
	case <-r.stop:
		return false
	case <-time.After(10 * time.Millisecond):
		return true
	}
}

// flow returns the flow of client, opening it on first use; nil if the
// relay is closing or cannot serve the client.
func (r *UDPRelay) flow(client netip.AddrPort) *udpFlow {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.flows[client]; ok {
		return f
	}
	if r.closed {
		return nil
	}
	if len(r.flows) >= maxFlows {
		if !r.refused {
			r.refused = true
			r.opts.logf("netsim: udp relay: more than %d clients, dropping datagrams from new ones (%v)", maxFlows, client)
		}
		return nil
	}
	// A connected socket per client: the upstream sees one address per
	// client, as behind a NAT, and only the upstream's answers come back.
	conn, err := net.DialUDP("udp", nil, r.upstream)
	if err != nil {
		r.opts.logf("netsim: udp relay: open socket for %v: %v", client, err)
		return nil
	}
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	f := &udpFlow{client: client, conn: conn}
	r.flows[client] = f
	// The relay's counter is above zero here (readClients is running), so
	// these Adds cannot race with Close's Wait.
	if r.opts.SharedLink {
		f.up = r.sharedUp
		r.wg.Go(func() { r.readUpstream(f, r.sharedDown) })
		return f
	}
	up, down := make(chan packet, inputQueue), make(chan packet, inputQueue)
	f.up = up
	upP := newPipeline(r.prof.direction(true), false, r.opts.Seed, r.streams, up, r.stop, r.deliverUp, &r.up, r.opts.logf)
	downP := newPipeline(r.prof.direction(false), false, r.opts.Seed, r.streams+1, down, r.stop, r.deliverDown, &r.down, r.opts.logf)
	r.streams += 2
	r.wg.Go(func() { upP.run() })
	r.wg.Go(func() { downP.run() })
	r.wg.Go(func() {
		defer close(down)
		r.readUpstream(f, down)
	})
	return f
}

// deliverUp sends a client's datagram to the upstream from the client's
// own socket.
func (r *UDPRelay) deliverUp(pk packet) error {
	_, err := pk.flow.conn.Write(pk.b)
	return err
}

// deliverDown sends the upstream's datagram to the client it was for.
func (r *UDPRelay) deliverDown(pk packet) error {
	_, err := r.ln.WriteToUDPAddrPort(pk.b, pk.flow.client)
	return err
}

// clone copies a datagram out of a reader's buffer.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
