package broker_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/ingest/broker"
	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
)

// received collects what the broker handed to the pipeline.
type received struct {
	mu     sync.Mutex
	topics []string
}

func (r *received) handle(_ context.Context, m pipeline.Message) error {
	r.mu.Lock()
	r.topics = append(r.topics, m.Topic)
	r.mu.Unlock()
	return nil
}

func (r *received) has(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.topics {
		if t == topic {
			return true
		}
	}
	return false
}

// start runs a broker with two devices (dev-a with a password, dev-open
// without) and anonymous clients allowed for dev-open only, as the gateway
// wires them.
func start(t *testing.T) (*broker.Broker, *received) {
	t.Helper()
	return startWith(t, broker.ConnLimits{})
}

func startWith(t *testing.T, limits broker.ConnLimits) (*broker.Broker, *received) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("pw-a"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	rec := &received{}
	b, err := broker.New(broker.Options{
		Listen: "127.0.0.1:0", AllowAnonymous: true, AnonymousPublish: []string{"sw/open", "sw/open/#"},
		Accounts:       []broker.Account{{Username: "dev-a", PasswordHash: string(h), Publish: []string{"sw/a", "sw/a/#"}, Subscribe: []string{"sw/a/#"}}},
		MaxPacketBytes: 256 << 10,
		Limits:         limits,

		Handle: rec.handle,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, rec
}

func connect(addr, id, user, pass, willTopic string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	if willTopic != "" {
		o.SetWill(willTopic, `{"smoke":true}`, 1, true)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	return c, tok.Error()
}

// A client may leave a will only where it may publish itself: one
// device's login must not plant a retained "smoke" on another's topic.
func TestWillOnlyWhereTheClientMayPublish(t *testing.T) {
	b, _ := start(t)
	for _, tc := range []struct {
		name, user, pass, will string
		ok                     bool
	}{
		{"own topic", "dev-a", "pw-a", "sw/a/status", true},
		{"another device's topic", "dev-a", "pw-a", "sw/b", false},
		{"a siren's topic", "dev-a", "pw-a", "shelterwatch/north/kitchen/alarm", false},
		{"anonymous on a device without password", "", "", "sw/open/status", true},
		{"anonymous on a device with a password", "", "", "sw/a", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := connect(b.Addr(), "c-"+tc.user+"-"+tc.will, tc.user, tc.pass, tc.will)
			if tc.ok != (err == nil) {
				t.Fatalf("connect with will on %s: %v, want accepted %v", tc.will, err, tc.ok)
			}
			if c != nil && err == nil {
				c.Disconnect(0)
			}
		})
	}
}

// An anonymous client may publish only for devices that have no
// password of their own.
func TestAnonymousPublishOnlyForDevicesWithoutPassword(t *testing.T) {
	b, rec := start(t)
	c, err := connect(b.Addr(), "anon-1", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(0)
	// The refused publish comes second: the broker may drop the client
	// for it.
	for _, topic := range []string{"sw/open", "sw/a"} {
		c.Publish(topic, 1, false, `{"values":{"smoke":true}}`).WaitTimeout(5 * time.Second)
	}
	if !rec.has("sw/open") {
		t.Fatal("the anonymous publish for the device without a password did not arrive")
	}
	// A second client, and time for the refused one to have arrived if
	// it were let through.
	c2, err := connect(b.Addr(), "anon-2", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	c2.Publish("sw/open/x", 1, false, `{}`).WaitTimeout(5 * time.Second)
	c2.Disconnect(0)
	if rec.has("sw/a") {
		t.Fatal("an anonymous client published for a device that has a password")
	}
}

// A fixed header claiming a huge packet is refused before anything is
// allocated for it: four such headers once took the heap past 1 GB.
func TestHugeLengthClaimRefusedBeforeAllocation(t *testing.T) {
	b, _ := start(t)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 4 {
		conn, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		// CONNECT with a remaining length of 268,435,455 (the MQTT maximum).
		if _, err := conn.Write([]byte{0x10, 0xff, 0xff, 0xff, 0x7f}); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		for {
			if _, err := conn.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("the broker kept a connection that claimed a 256 MB packet")
				}
				break // closed by the broker
			}
		}
		conn.Close()
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 64<<20 {
		t.Fatalf("heap grew by %d MB for four refused headers", grown>>20)
	}
}

// closedBy reports whether the broker closed conn within d.
func closedBy(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	for {
		if _, err := conn.Read(buf); err != nil {
			ne, ok := err.(net.Error)
			return !ok || !ne.Timeout()
		}
	}
}

// Connections that never send CONNECT are closed at the deadline; one that
// connects keeps working past it.
func TestSilentConnectionsClosedAtTheConnectDeadline(t *testing.T) {
	b, _ := startWith(t, broker.ConnLimits{ConnectTimeout: 500 * time.Millisecond})
	var silent []net.Conn
	for range 20 {
		conn, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		silent = append(silent, conn)
	}
	c, err := connect(b.Addr(), "dev-a-1", "dev-a", "pw-a", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(0)
	for i, conn := range silent {
		if !closedBy(conn, 5*time.Second) {
			t.Fatalf("silent connection %d still open 5 s after a 500 ms CONNECT deadline", i)
		}
	}
	time.Sleep(time.Second)
	if tok := c.Publish("sw/a", 1, false, `{}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("a connected client lost its connection at the CONNECT deadline: %v", tok.Error())
	}
}

// One address cannot take every connection: past its cap its connections
// are closed at once, while the connections it holds keep working.
func TestConnectionsCappedPerAddressAndInTotal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits broker.ConnLimits
	}{
		{"per address", broker.ConnLimits{MaxPerAddress: 3}},
		{"in total", broker.ConnLimits{MaxClients: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := startWith(t, tc.limits)
			var held []net.Conn
			for range 3 {
				conn, err := net.Dial("tcp", b.Addr())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				held = append(held, conn)
			}
			extra, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer extra.Close()
			if !closedBy(extra, 5*time.Second) {
				t.Fatal("a fourth connection was kept past a cap of 3")
			}
			if closedBy(held[0], 300*time.Millisecond) {
				t.Fatal("a connection within the cap was closed")
			}
			// Freeing a slot lets the next one in (a real login).
			held[0].Close()
			var c paho.Client
			deadline := time.Now().Add(5 * time.Second)
			for {
				if c, err = connect(b.Addr(), "dev-a-2", "dev-a", "pw-a", ""); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no login after a slot was freed: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			c.Disconnect(0)
		})
	}
}
