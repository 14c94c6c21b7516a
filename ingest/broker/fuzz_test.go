package broker_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/broker"
)

// Fuzz modes: the first byte of an input says when its bytes are written.
const (
	beforeLogin = 0 // on a fresh connection, as its first bytes
	afterLogin  = 1 // after a valid CONNECT with credentials and its CONNACK
)

// FuzzBrokerConn writes fuzzed bytes to the embedded broker over TCP,
// before and after logging in, with the packet size cap, the CONNECT
// deadline and the connection caps in force. After every input the
// broker must still serve a fresh client (login, QoS 1 publish, PUBACK)
// and its heap must stay bounded.
func FuzzBrokerConn(f *testing.F) {
	fx := startFixture(f, func(o *broker.Options) {
		o.AllowAnonymous = false
		o.MaxPacketBytes = 64 << 10
		o.Limits = broker.ConnLimits{MaxClients: 256, MaxPerAddress: 64, ConnectTimeout: 2 * time.Second}
	})
	const probeFrom, authFrom = "127.0.0.2", "127.0.0.3"

	connect := connectPacket(4, "fuzz-1", "dev-a", "pw-a", true)
	for _, seed := range [][]byte{
		connect,
		connectPacket(5, "fuzz-1", "dev-a", "pw-a", true),
		connectPacket(4, "", "dev-a", "wrong", false),
		cat(connect, publishPacket("sw/a", `{"smoke":true}`, 1, 1)),
		cat(connect, subscribePacket(1, "sw/a/#")),
		{0x10, 0xff, 0xff, 0xff, 0x7f},       // CONNECT claiming 256 MB
		{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, // a malformed length
		{0xc0, 0x00},                         // PINGREQ before CONNECT
	} {
		f.Add(cat([]byte{beforeLogin}, seed))
	}
	for _, seed := range [][]byte{
		publishPacket("sw/a", `{"smoke":true}`, 1, 1),
		publishPacket("sw/a/status", "online", 1, 2),
		publishPacket("sw/b", `{"smoke":true}`, 1, 3), // not its topic
		publishPacket("sw/a", "", 0, 0),
		subscribePacket(1, "sw/a/#"),
		subscribePacket(2, "#"),
		{0x32, 0xff, 0xff, 0xff, 0x7f}, // PUBLISH claiming 256 MB
		connect,                        // a second CONNECT
		{0xc0, 0x00},                   // PINGREQ
		{0xe0, 0x00},                   // DISCONNECT
	} {
		f.Add(cat([]byte{afterLogin}, seed))
	}

	// The probe's address logs in once, so that failed logins from the
	// fuzzed connections (from 127.0.0.1) never throttle it.
	probe(f, fx, probeFrom, 0)
	n := 0
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		n++
		mode, data := in[0]%2, in[1:]
		var conn net.Conn
		var err error
		if mode == afterLogin {
			conn, err = dialFrom(fx.b.Addr(), authFrom)
			if err == nil {
				err = login4(conn, fmt.Sprint("fuzz-auth-", n), "z2m", "pw-z2m")
			}
		} else {
			conn, err = net.Dial("tcp", fx.b.Addr())
		}
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		_, _ = conn.Write(data)
		// Read what the broker answers until it closes the connection or
		// goes quiet; this bounds the input's run, it asserts nothing.
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		conn.Close()

		probe(t, fx, probeFrom, n)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > 256<<20 {
			t.Fatalf("heap at %d MB after an input of %d bytes", ms.HeapAlloc>>20, len(in))
		}
	})
}

// probe checks that a fresh client logs in and gets a QoS 1 publish
// acknowledged. A clean session of the previous probe may still be
// ending, so a refusal is retried for a bounded time.
func probe(t testing.TB, fx *fixture, from string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := probeOnce(fx.b.Addr(), from, fmt.Sprint("probe-", n))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker no longer serves a fresh client: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func probeOnce(addr, from, id string) error {
	conn, err := dialFrom(addr, from)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := login4(conn, id, "dev-a", "pw-a"); err != nil {
		return err
	}
	if _, err := conn.Write(publishPacket("sw/a", `{"values":{"smoke":false}}`, 1, 7)); err != nil {
		return err
	}
	ack := make([]byte, 4)
	if _, err := ioReadFull(conn, ack); err != nil {
		return fmt.Errorf("no PUBACK: %w", err)
	}
	if ack[0] != 0x40 || ack[3] != 7 {
		return fmt.Errorf("PUBACK % x, want packet id 7", ack)
	}
	_, _ = conn.Write([]byte{0xe0, 0x00})
	return nil
}

func dialFrom(addr, from string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// login4 sends an MQTT 3.1.1 CONNECT and waits for a CONNACK that
// accepts it.
func login4(conn net.Conn, id, user, pass string) error {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(connectPacket(4, id, user, pass, true)); err != nil {
		return err
	}
	ack := make([]byte, 4)
	if _, err := ioReadFull(conn, ack); err != nil {
		return fmt.Errorf("no CONNACK: %w", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		return fmt.Errorf("CONNACK % x: refused", ack)
	}
	_ = conn.SetDeadline(time.Time{})
	return nil
}

func publishPacket(topic, payload string, qos byte, id uint16) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint16(len(topic)))
	b.WriteString(topic)
	if qos > 0 {
		_ = binary.Write(&b, binary.BigEndian, id)
	}
	b.WriteString(payload)
	return packet(0x30|qos<<1, b.Bytes())
}

func subscribePacket(id uint16, filter string) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, id)
	_ = binary.Write(&b, binary.BigEndian, uint16(len(filter)))
	b.WriteString(filter)
	b.WriteByte(1) // QoS 1
	return packet(0x82, b.Bytes())
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
