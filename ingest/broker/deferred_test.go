package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/broker"
	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
)

// parked is a HandleAsync that keeps every message's done until the test
// completes it, as the store does until its group commit.
type parked struct {
	msgs chan parkedMsg
}

type parkedMsg struct {
	msg  pipeline.Message
	done func(error)
}

func newParked() *parked { return &parked{msgs: make(chan parkedMsg, 1000)} }

func (p *parked) handle(_ context.Context, m pipeline.Message, done func(error)) {
	p.msgs <- parkedMsg{m, done}
}

// next waits for the next handed-over message.
func (p *parked) next(t *testing.T) parkedMsg {
	t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message handed to the pipeline")
		return parkedMsg{}
	}
}

// none checks that nothing more is handed over for a while.
func (p *parked) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-p.msgs:
		t.Fatalf("message %q handed over beyond the window", m.msg.Payload)
	case <-time.After(d):
	}
}

func dialLogin(t *testing.T, f *fixture) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", f.b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := login4(conn, "dev-a-1", "dev-a", "pw-a"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readAcks reads n PUBACKs (MQTT 3.1.1: 40 02 id id) and returns their
// packet ids.
func readAcks(t *testing.T, conn net.Conn, n int) []uint16 {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 4*n)
	if _, err := ioReadFull(conn, buf); err != nil {
		t.Fatalf("reading %d PUBACKs: %v", n, err)
	}
	ids := make([]uint16, n)
	for i := range n {
		p := buf[4*i : 4*i+4]
		if p[0] != 0x40 || p[1] != 2 {
			t.Fatalf("packet % x is not a PUBACK", p)
		}
		ids[i] = binary.BigEndian.Uint16(p[2:])
	}
	return ids
}

// nothingToRead checks that the broker sends nothing for a while.
func nothingToRead(t *testing.T, conn net.Conn, d time.Duration) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	b := make([]byte, 16)
	n, err := conn.Read(b)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read % x, %v: want nothing before the acknowledgement", b[:n], err)
	}
}

// The broker reads a client's publishes ahead while earlier ones wait for
// the disk, up to the window, and then stops reading (TCP pushes back on
// the client); each PUBACK is sent only when the pipeline says the message
// is safe, never before.
func TestDeferredAcksWaitForTheStoreAndBoundWhatIsRead(t *testing.T) {
	p := newParked()
	const window = 4
	f := startFixture(t, func(o *broker.Options) { o.HandleAsync, o.AckWindow = p.handle, window })
	conn := dialLogin(t, f)

	const total = 3*window + 1
	var burst bytes.Buffer
	for i := 1; i <= total; i++ {
		burst.Write(publishPacket("sw/a", strconv.Itoa(i), 1, uint16(i)))
	}
	if _, err := conn.Write(burst.Bytes()); err != nil {
		t.Fatal(err)
	}

	acked := map[uint16]bool{}
	next := 1
	for next <= total {
		var batch []parkedMsg
		for len(batch) < window && next+len(batch) <= total {
			m := p.next(t)
			if want := strconv.Itoa(next + len(batch)); string(m.msg.Payload) != want {
				t.Fatalf("handed payload %q, want %q (order kept)", m.msg.Payload, want)
			}
			batch = append(batch, m)
		}
		if next+len(batch) <= total {
			p.none(t, 300*time.Millisecond)
		}
		nothingToRead(t, conn, 100*time.Millisecond)
		for i := len(batch) - 1; i >= 0; i-- { // the disk may answer in any order
			batch[i].done(nil)
		}
		for _, id := range readAcks(t, conn, len(batch)) {
			if acked[id] || int(id) < next || int(id) >= next+len(batch) {
				t.Fatalf("PUBACK %d unexpected (acked so far %v, batch from %d)", id, acked, next)
			}
			acked[id] = true
		}
		next += len(batch)
	}
	if got := f.metric(t, "shelterwatch_broker_publish_not_acked_total"); got != 0 {
		t.Fatalf("not acknowledged = %v, want 0", got)
	}
}

// A message the store could not take is not acknowledged: an MQTT 3.1.1
// client is disconnected (it resends after reconnecting), an MQTT 5 client
// gets a failure reason code and stays connected.
func TestDeferredAckFailure(t *testing.T) {
	p := newParked()
	f := startFixture(t, func(o *broker.Options) { o.HandleAsync = p.handle })

	t.Run("mqtt3", func(t *testing.T) {
		conn := dialLogin(t, f)
		if _, err := conn.Write(publishPacket("sw/a", "1", 1, 7)); err != nil {
			t.Fatal(err)
		}
		p.next(t).done(errors.New("store: disk on fire"))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 8)
		n, err := conn.Read(b)
		if err == nil {
			t.Fatalf("read % x after a failed store: want the connection closed without a PUBACK", b[:n])
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open after a failed store")
		}
	})

	t.Run("mqtt5", func(t *testing.T) {
		conn, err := net.Dial("tcp", f.b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(connectPacket(5, "dev-a-5", "dev-a", "pw-a", true)); err != nil {
			t.Fatal(err)
		}
		if h := readPacket(t, conn); h[0] != 0x20 {
			t.Fatalf("want CONNACK, got % x", h)
		}
		for i, fail := range []bool{true, false} {
			id := uint16(20 + i)
			if _, err := conn.Write(publish5("sw/a", "x", id)); err != nil {
				t.Fatal(err)
			}
			m := p.next(t)
			if fail {
				m.done(errors.New("store: disk on fire"))
			} else {
				m.done(nil)
			}
			ack := readPacket(t, conn)
			if ack[0] != 0x40 || binary.BigEndian.Uint16(ack[2:4]) != id {
				t.Fatalf("want PUBACK %d, got % x", id, ack)
			}
			code := byte(0)
			if len(ack) > 4 {
				code = ack[4]
			}
			if want := map[bool]byte{true: 0x83, false: 0}[fail]; code != want {
				t.Fatalf("PUBACK %d reason 0x%02x, want 0x%02x", id, code, want)
			}
		}
	})
	if got := f.metric(t, "shelterwatch_broker_publish_not_acked_total"); got != 2 {
		t.Fatalf("not acknowledged = %v, want 2", got)
	}
}

// A pipeline may answer before HandleAsync returns (a rejected or
// heartbeat message), and QoS 0 publishes have nothing to acknowledge:
// neither may keep a window slot.
func TestDeferredAckAnsweredAtOnce(t *testing.T) {
	f := startFixture(t, func(o *broker.Options) {
		o.AckWindow = 2
		o.HandleAsync = func(_ context.Context, _ pipeline.Message, done func(error)) { done(nil) }
	})
	conn := dialLogin(t, f)
	var burst bytes.Buffer
	for i := range 10 {
		burst.Write(publishPacket("sw/a", "q0", 0, 0))
		burst.Write(publishPacket("sw/a", "q1", 1, uint16(i+1)))
	}
	if _, err := conn.Write(burst.Bytes()); err != nil {
		t.Fatal(err)
	}
	ids := readAcks(t, conn, 10)
	for i, id := range ids {
		if id != uint16(i+1) {
			t.Fatalf("PUBACKs %v, want 1..10 in order", ids)
		}
	}
}

// A client that goes away with acknowledgements pending does not hold up
// the pipeline's answer or the broker's shutdown.
func TestDeferredAckAfterDisconnect(t *testing.T) {
	p := newParked()
	f := startFixture(t, func(o *broker.Options) { o.HandleAsync, o.AckWindow = p.handle, 2 })
	conn := dialLogin(t, f)
	if _, err := conn.Write(cat(publishPacket("sw/a", "1", 1, 1), publishPacket("sw/a", "2", 1, 2), publishPacket("sw/a", "3", 1, 3))); err != nil {
		t.Fatal(err)
	}
	a, b := p.next(t), p.next(t)
	_ = conn.Close()
	time.Sleep(100 * time.Millisecond)
	a.done(nil)
	b.done(errors.New("late failure"))
	if err := f.b.Close(); err != nil {
		t.Fatal(err)
	}
}

// publish5 is an MQTT 5 QoS 1 PUBLISH without properties.
func publish5(topic, payload string, id uint16) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint16(len(topic)))
	b.WriteString(topic)
	_ = binary.Write(&b, binary.BigEndian, id)
	b.WriteByte(0) // no properties
	b.WriteString(payload)
	return packet(0x32, b.Bytes())
}

// readPacket reads one packet (fixed header and body).
func readPacket(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h := make([]byte, 2)
	if _, err := ioReadFull(conn, h); err != nil {
		t.Fatalf("reading a packet: %v", err)
	}
	if h[1] >= 0x80 {
		t.Fatalf("packet longer than this test reads: % x", h)
	}
	body := make([]byte, h[1])
	if _, err := ioReadFull(conn, body); err != nil {
		t.Fatalf("reading a packet body: %v", err)
	}
	return append(h, body...)
}

// A client stopped while its read loop waits for a window slot has gone
// away abnormally, as after a failed read: taken over by a new connection
// with its client id, its will is published [MQTT-3.1.4-3].
func TestWillSentWhenStoppedWaitingForTheWindow(t *testing.T) {
	p := newParked()
	f := startFixture(t, func(o *broker.Options) { o.HandleAsync, o.AckWindow = p.handle, 1 })
	watcher := f.mustConnect(t, login{id: "watcher", user: "dev-a", pass: "pw-a"})
	defer watcher.Disconnect(0)
	got := newMessages()
	if tok := watcher.Subscribe("sw/a/status", 1, got.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	conn, err := net.Dial("tcp", f.b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(connectWithWill("dev-a-w", "dev-a", "pw-a", "sw/a/status", "offline")); err != nil {
		t.Fatal(err)
	}
	if ack := readPacket(t, conn); ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK % x", ack)
	}
	_ = conn.SetDeadline(time.Time{})
	// The first publish takes the only slot; the loop then waits.
	if _, err := conn.Write(cat(publishPacket("sw/a", "1", 1, 1), publishPacket("sw/a", "2", 1, 2))); err != nil {
		t.Fatal(err)
	}
	first := p.next(t)
	p.none(t, 200*time.Millisecond)

	again, err := net.Dial("tcp", f.b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := login4(again, "dev-a-w", "dev-a", "pw-a"); err != nil {
		t.Fatal(err)
	}
	if m := got.await(t, "sw/a/status"); string(m.Payload()) != "offline" {
		t.Fatalf("will payload %q", m.Payload())
	}
	first.done(nil) // late: the old connection is gone
}

// connectWithWill is an MQTT 3.1.1 CONNECT (clean session) with a QoS 1
// will.
func connectWithWill(id, user, pass, willTopic, will string) []byte {
	str := func(b *bytes.Buffer, s string) {
		_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
		b.WriteString(s)
	}
	var body bytes.Buffer
	str(&body, "MQTT")
	body.WriteByte(4)
	body.WriteByte(0x80 | 0x40 | 0x08 | 0x04 | 0x02) // user, password, will QoS 1, will, clean
	body.Write([]byte{0, 30})
	str(&body, id)
	str(&body, willTopic)
	str(&body, will)
	str(&body, user)
	str(&body, pass)
	return packet(0x10, body.Bytes())
}

// A subscriber that stops reading does not hold the broker's writes for
// ever: once a write to it has waited for the write timeout, it is
// disconnected (long before its keep-alive of 30 s would end it: the
// fixture waits at most 10 s), and the publisher's messages go on being
// acknowledged meanwhile.
func TestClientThatStopsReadingIsDisconnected(t *testing.T) {
	f := startFixture(t, func(o *broker.Options) {
		o.HandleAsync = func(_ context.Context, _ pipeline.Message, done func(error)) { done(nil) }
	})
	stuck, err := net.Dial("tcp", f.b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if tc, ok := stuck.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10) // fill up sooner
	}
	if err := login4(stuck, "dev-a-stuck", "dev-a", "pw-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := stuck.Write(subscribePacket(1, "sw/a/big")); err != nil {
		t.Fatal(err)
	}
	if ack := readPacket(t, stuck); ack[0] != 0x90 {
		t.Fatalf("want SUBACK, got % x", ack)
	}

	pub := f.mustConnect(t, login{id: "dev-a-pub", user: "dev-a", pass: "pw-a"})
	defer pub.Disconnect(0)
	f.waitMetric(t, 2, "shelterwatch_broker_clients_connected")
	big := bytes.Repeat([]byte("x"), 200<<10)
	// 16 MB: more than both sockets' buffers hold, so writes to the stuck
	// subscriber stall. Every publish is still acknowledged.
	for range 80 {
		publish(t, pub, "sw/a/big", false, big)
	}
	// The broker's side is gone (the socket may still hold unsent bytes
	// the kernel gives up on later); the publisher is not affected.
	f.waitMetric(t, 1, "shelterwatch_broker_clients_connected")
	if !pub.IsConnectionOpen() {
		t.Fatal("the publisher was disconnected instead of the stuck subscriber")
	}
	publish(t, pub, "sw/a", false, `{"values":{"temperature":21}}`)
}
