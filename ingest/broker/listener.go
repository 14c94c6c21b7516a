package broker

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"
)

// guardedTCP is the broker's TCP (or TLS) listener. Before anything of a
// connection is read it enforces what an unauthenticated client may cost
// on a hostile LAN: a cap on connections in total and per remote address
// (a refused connection is closed at once), and a deadline for the
// CONNECT packet (mochi replaces it with the keep-alive deadline once the
// client has connected), so silent connections cannot pile up.
type guardedTCP struct {
	id, address string
	tlsConfig   *tls.Config
	limits      ConnLimits
	refused     *prometheus.CounterVec

	ln    net.Listener
	log   *slog.Logger
	end   atomic.Bool
	mu    sync.Mutex
	open  int
	per   map[string]int // open connections per remote IP
	conns map[net.Conn]bool
	// wg counts the connection goroutines; Close waits for them, so that
	// none is still being established (mochi adds to its client wait
	// group there) when mochi waits for its clients.
	wg sync.WaitGroup
}

// ConnLimits bound the broker's connections.
type ConnLimits struct {
	// MaxClients caps open connections in total (0: no cap).
	MaxClients int
	// MaxPerAddress caps open connections from one IP address (0: no cap).
	MaxPerAddress int
	// ConnectTimeout is how long a new connection may take to send its
	// CONNECT (0: no deadline).
	ConnectTimeout time.Duration
}

func newGuardedTCP(id, address string, tlsConfig *tls.Config, limits ConnLimits, refused *prometheus.CounterVec) *guardedTCP {
	return &guardedTCP{id: id, address: address, tlsConfig: tlsConfig, limits: limits, refused: refused,
		per: map[string]int{}, conns: map[net.Conn]bool{}}
}

func (l *guardedTCP) ID() string       { return l.id }
func (l *guardedTCP) Protocol() string { return "tcp" }

func (l *guardedTCP) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

func (l *guardedTCP) Init(log *slog.Logger) error {
	l.log = log
	var err error
	if l.tlsConfig != nil {
		l.ln, err = tls.Listen("tcp", l.address, l.tlsConfig)
	} else {
		l.ln, err = net.Listen("tcp", l.address)
	}
	return err
}

// Serve accepts until Close; each admitted connection is established on
// its own goroutine, which returns when the connection ends.
func (l *guardedTCP) Serve(establish listeners.EstablishFn) {
	for !l.end.Load() {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		ip := remoteIP(conn)
		reason := l.admit(ip, conn)
		if reason != "" {
			if reason != "closed" {
				l.refused.WithLabelValues(reason).Inc()
			}
			_ = conn.Close()
			continue
		}
		if l.limits.ConnectTimeout > 0 {
			_ = conn.SetDeadline(time.Now().Add(l.limits.ConnectTimeout))
		}
		go func() {
			defer l.wg.Done()
			defer l.release(ip, conn)
			if err := establish(l.id, conn); err != nil {
				l.log.Debug("broker: connection ended", "remote", conn.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// admit counts a new connection from ip, or says why it is refused.
func (l *guardedTCP) admit(ip string, conn net.Conn) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.end.Load():
		return "closed"
	case l.limits.MaxClients > 0 && l.open >= l.limits.MaxClients:
		return "max_clients"
	case l.limits.MaxPerAddress > 0 && l.per[ip] >= l.limits.MaxPerAddress:
		return "max_per_address"
	}
	l.open++
	l.per[ip]++
	l.conns[conn] = true
	l.wg.Add(1)
	return ""
}

func (l *guardedTCP) release(ip string, conn net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, conn)
	l.open--
	if l.per[ip]--; l.per[ip] <= 0 {
		delete(l.per, ip)
	}
}

// Close stops accepting, closes every connection (those still before
// their CONNECT too) and waits for their goroutines.
func (l *guardedTCP) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	first := l.end.CompareAndSwap(false, true)
	l.mu.Unlock()
	if first {
		closeClients(l.id)
	}
	if l.ln != nil {
		_ = l.ln.Close()
	}
	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	return host
}
