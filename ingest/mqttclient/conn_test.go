package mqttclient

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// loopback returns a batchConn dialled to a listener on 127.0.0.1 and the
// listener's side of the connection.
func loopback(t *testing.T) (*batchConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { peer.Close() })
	return newBatchConn(c, time.Second), peer
}

// TestBatchConnKeepsOrderAndDeliversEverything: many small writes (as
// paho writes PUBACKs), from two goroutines, arrive whole and each
// writer's in order; a Close right after the last write still delivers
// it.
func TestBatchConnKeepsOrderAndDeliversEverything(t *testing.T) {
	b, peer := loopback(t)
	const n = 20000
	write := func(id byte) error {
		var p [5]byte
		p[0] = id
		for i := range uint32(n) {
			binary.BigEndian.PutUint32(p[1:], i)
			if _, err := b.Write(p[:]); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make(chan error, 2)
	go func() { errs <- write(1) }()
	go func() { errs <- write(2) }()
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(peer)
		got <- all
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	all := <-got
	if len(all) != 2*n*5 {
		t.Fatalf("peer read %d bytes, want %d", len(all), 2*n*5)
	}
	next := map[byte]uint32{1: 0, 2: 0}
	for p := all; len(p) > 0; p = p[5:] {
		id, seq := p[0], binary.BigEndian.Uint32(p[1:5])
		if seq != next[id] {
			t.Fatalf("writer %d: got %d, want %d (reordered or lost)", id, seq, next[id])
		}
		next[id]++
	}
}

// TestBatchConnReadsThroughItsBuffer: what the peer writes arrives
// whatever the reader's sizes (paho reads a byte at a time for lengths).
func TestBatchConnReadsThroughItsBuffer(t *testing.T) {
	b, peer := loopback(t)
	defer b.Close()
	want := bytes.Repeat([]byte("0123456789abcdef"), 8192)
	go func() { _, _ = peer.Write(want) }()
	got := make([]byte, 0, len(want))
	one := make([]byte, 1)
	for len(got) < len(want) {
		if len(got)%3 == 0 {
			if _, err := io.ReadFull(b, one); err != nil {
				t.Fatal(err)
			}
			got = append(got, one[0])
			continue
		}
		buf := make([]byte, 1000)
		k, err := b.Read(buf[:min(len(buf), len(want)-len(got))])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:k]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes read differ from bytes written")
	}
}

// TestBatchConnReportsAFailedWrite: once the peer is gone, a write fails
// on the flusher; later writes return that error and reads see the
// connection closed, so paho notices and the client reconnects.
func TestBatchConnReportsAFailedWrite(t *testing.T) {
	b, peer := loopback(t)
	defer b.Close()
	if tc, ok := peer.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST: the next write fails
	}
	peer.Close()
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = b.Write([]byte{0x40, 2, 0, 1})
		time.Sleep(5 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	// paho ignores a read error saying "use of closed network connection"
	// (it takes it for its own Disconnect): the read must say why.
	if _, rerr := b.Read(make([]byte, 1)); rerr == nil || strings.Contains(rerr.Error(), "use of closed network connection") {
		t.Fatalf("read on a failed connection returned %v, want the write's failure", rerr)
	}
	if _, err2 := b.Write([]byte{1}); err2 == nil || (!errors.Is(err2, err) && err2.Error() != err.Error()) {
		t.Fatalf("a later write returned %v, want the first failure %v", err2, err)
	}
}
