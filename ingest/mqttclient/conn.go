package mqttclient

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// paho reads every packet straight from the socket (one read(2) for the
// fixed header, one per byte of the remaining length, one for the body)
// and writes every packet with a write(2) of its own, so a backlog of
// QoS 1 messages cost four system calls each: a third of the gateway's
// CPU through an external broker. batchConn sits between paho and the
// socket: reads come from a buffer, and writes (PUBACKs above all) are
// queued and written together by one goroutine, as many as arrived while
// the previous write was in the kernel. Nothing about acknowledgement
// changes: a PUBACK is still only handed to paho after the message is on
// disk; it may now leave in the same write(2) as others.

const (
	readBuffer = 32 << 10
	// writeQueueMax bounds what Write accepts before it waits for the
	// socket: acknowledgements are tiny (4 bytes), the gateway's own
	// publishes are few.
	writeQueueMax = 64 << 10
	// closeFlush is how long Close waits for queued bytes (DISCONNECT)
	// to be written before it closes the socket anyway.
	closeFlush = 2 * time.Second
)

// dialer opens paho's connection for the URL's scheme (the schemes the
// config accepts, as paho would open them) and wraps it in a batchConn.
func dialer(writeTimeout time.Duration) paho.OpenConnectionFunc {
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		d := o.Dialer
		if d == nil {
			d = &net.Dialer{Timeout: o.ConnectTimeout}
		}
		var c net.Conn
		var err error
		switch uri.Scheme {
		case "mqtt", "tcp":
			c, err = d.Dial("tcp", uri.Host)
		case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
			c, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
		case "ws", "wss":
			u := *uri
			u.User = nil // gorilla/websocket refuses URLs with credentials
			var tc *tls.Config
			if uri.Scheme == "wss" {
				tc = o.TLSConfig
			}
			c, err = paho.NewWebsocket(u.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
		default:
			return nil, fmt.Errorf("mqttclient: unsupported scheme %q", uri.Scheme)
		}
		if err != nil {
			return nil, err
		}
		return newBatchConn(c, writeTimeout), nil
	}
}

// batchConn is a net.Conn with a read buffer and a write queue emptied by
// one goroutine (the flusher), the only one that writes to the socket.
type batchConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration

	mu      sync.Mutex
	room    *sync.Cond // signalled when the queue was taken or failed
	queue   []byte
	spare   []byte
	err     error // the first write error; every later Write returns it
	closing bool
	wake    chan struct{} // one token: the queue has bytes or Close was called
	done    chan struct{} // closed when the flusher has returned
}

func newBatchConn(c net.Conn, writeTimeout time.Duration) *batchConn {
	if writeTimeout <= 0 {
		writeTimeout = 10 * time.Second
	}
	b := &batchConn{
		Conn:         c,
		r:            bufio.NewReaderSize(c, readBuffer),
		writeTimeout: writeTimeout,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	b.room = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

// Read reads from the buffer (paho reads from one goroutine). Once a
// write has failed, a failed read returns the write's error: the flusher
// closed the socket, and paho takes the "use of closed network
// connection" a read then gets for its own Disconnect and reports
// nothing, so the client would stay "connected" to a dead connection
// until the next keep-alive ping.
func (b *batchConn) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil {
		b.mu.Lock()
		werr, closing := b.err, b.closing
		b.mu.Unlock()
		if werr != nil && !closing {
			return n, werr
		}
	}
	return n, err
}

// Write queues p for the flusher. It waits only while the queue is full.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && !b.closing && len(b.queue) > 0 && len(b.queue)+len(p) > writeQueueMax {
		b.room.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.closing {
		return 0, net.ErrClosed
	}
	b.queue = append(b.queue, p...)
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// flusher writes whatever is queued, one write(2) per wake-up, until
// Close, then writes what is left and returns.
func (b *batchConn) flusher() {
	defer close(b.done)
	for range b.wake {
		b.mu.Lock()
		buf := b.queue
		b.queue = b.spare[:0]
		closing := b.closing
		b.room.Broadcast()
		b.mu.Unlock()
		if len(buf) > 0 {
			err := b.Conn.SetWriteDeadline(time.Now().Add(b.writeTimeout))
			if err == nil {
				_, err = b.Conn.Write(buf)
			}
			if err != nil {
				b.fail(fmt.Errorf("mqttclient: write to broker: %w", err))
				return
			}
		}
		b.mu.Lock()
		b.spare = buf[:0]
		more := len(b.queue) > 0
		b.mu.Unlock()
		if closing && !more {
			return
		}
	}
}

// fail records the first write error and closes the socket, so paho's
// reader sees the connection end and reports it lost (see Read).
func (b *batchConn) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.room.Broadcast()
	b.mu.Unlock()
	_ = b.Conn.Close()
}

// Close writes what is queued (paho's DISCONNECT), waiting at most
// closeFlush, then closes the socket.
func (b *batchConn) Close() error {
	b.mu.Lock()
	already := b.closing
	b.closing = true
	b.room.Broadcast()
	b.mu.Unlock()
	if already {
		return net.ErrClosed
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(closeFlush)
	defer t.Stop()
	select {
	case <-b.done:
	case <-t.C:
	}
	err := b.Conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil // the flusher closed it after a failed write
	}
	return err
}

// SetDeadline applies to reads only: writes leave on the flusher, which
// gives each its own deadline (paho sets one around every Write).
func (b *batchConn) SetDeadline(t time.Time) error { return b.Conn.SetReadDeadline(t) }

// SetWriteDeadline is a no-op, see SetDeadline.
func (b *batchConn) SetWriteDeadline(time.Time) error { return nil }
