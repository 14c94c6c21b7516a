package broker_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/ingest/broker"
)

// fixture is a broker with a Zigbee2MQTT bridge user, a device dev-a and
// anonymous clients for the device without a password, and the registry
// of its metrics.
type fixture struct {
	b   *broker.Broker
	rec *received
	reg *prometheus.Registry
	now *clock
}

// clock is the login throttle's clock; it moves only when a test says so.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var hashes sync.Map // password → bcrypt hash (MinCost), computed once

func hash(t testing.TB, pw string) string {
	t.Helper()
	if h, ok := hashes.Load(pw); ok {
		return h.(string)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hashes.Store(pw, string(h))
	return string(h)
}

func bridgeAccount(t testing.TB) broker.Account {
	return broker.Account{Username: "z2m", PasswordHash: hash(t, "pw-z2m"),
		Publish: []string{"zigbee2mqtt/#"}, Subscribe: []string{"zigbee2mqtt/#"},
		Retain: []string{"zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge/devices"}, MaxPacketBytes: 1 << 20}
}

func startFixture(t testing.TB, edit func(*broker.Options)) *fixture {
	t.Helper()
	f := &fixture{rec: &received{}, reg: prometheus.NewRegistry(), now: &clock{}}
	f.now.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	opts := broker.Options{
		Listen: "127.0.0.1:0", AllowAnonymous: true,
		AnonymousPublish: []string{"sw/open", "sw/open/#"}, AnonymousRetain: []string{"sw/open/status"},
		Accounts: []broker.Account{
			{Username: "dev-a", PasswordHash: hash(t, "pw-a"), Publish: []string{"sw/a", "sw/a/#"},
				Subscribe: []string{"sw/a/#"}, Retain: []string{"sw/a/status"}},
			bridgeAccount(t),
		},
		MaxPacketBytes: 256 << 10, MaxSessionExpiry: 24 * time.Hour, MaxSessionsPerUser: 16,
		Handle: f.rec.handle, Now: f.now.Now,
	}
	if edit != nil {
		edit(&opts)
	}
	b, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Register(f.reg); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	f.b = b
	return f
}

// metric is the value of a counter or gauge, with label=value if given.
func (f *fixture) metric(t testing.TB, name string, label ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(label); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == label[i] && lp.GetValue() == label[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s %v", name, label)
	return 0
}

// waitMetric waits (bounded) until the metric has the value want.
func (f *fixture) waitMetric(t testing.TB, want float64, name string, label ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.metric(t, name, label...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v is %v after 10 s, want %v", name, label, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// login is how a paho test client connects.
type login struct {
	id, user, pass string
	persistent     bool   // clean_session=false
	from           string // local IP address ("": any)
	onMessage      paho.MessageHandler
	// wait bounds the CONNECT's answer (default 5 s). A queue of
	// password checks one at a time under the race detector on a busy
	// machine needs more.
	wait time.Duration
}

func (f *fixture) connect(t testing.TB, l login) (paho.Client, bool, error) {
	t.Helper()
	wait := l.wait
	if wait == 0 {
		wait = 5 * time.Second
	}
	o := paho.NewClientOptions().AddBroker("tcp://" + f.b.Addr()).SetClientID(l.id).
		SetUsername(l.user).SetPassword(l.pass).SetCleanSession(!l.persistent).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait)
	if l.from != "" {
		o.SetDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(l.from)}, Timeout: 5 * time.Second})
	}
	if l.onMessage != nil {
		o.SetDefaultPublishHandler(l.onMessage)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, false, errors.New("connect timed out")
	}
	if tok.Error() != nil {
		return nil, false, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, tok.(*paho.ConnectToken).SessionPresent(), nil
}

func (f *fixture) mustConnect(t testing.TB, l login) paho.Client {
	t.Helper()
	c, _, err := f.connect(t, l)
	if err != nil {
		t.Fatalf("connect %s as %q: %v", l.id, l.user, err)
	}
	return c
}

func publish(t testing.TB, c paho.Client, topic string, retain bool, payload any) {
	t.Helper()
	tok := c.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// messages collects what a subscriber receives.
type messages struct {
	mu  sync.Mutex
	got map[string][]paho.Message
	ch  chan string
}

func newMessages() *messages {
	return &messages{got: map[string][]paho.Message{}, ch: make(chan string, 64)}
}

func (m *messages) handle(_ paho.Client, msg paho.Message) {
	m.mu.Lock()
	m.got[msg.Topic()] = append(m.got[msg.Topic()], msg)
	m.mu.Unlock()
	select {
	case m.ch <- msg.Topic():
	default:
	}
}

// await waits (bounded) for a message on topic.
func (m *messages) await(t testing.TB, topic string) paho.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		m.mu.Lock()
		if got := m.got[topic]; len(got) > 0 {
			m.mu.Unlock()
			return got[0]
		}
		m.mu.Unlock()
		select {
		case <-m.ch:
		case <-deadline:
			t.Fatalf("no message on %s within 10 s", topic)
		}
	}
}

// The attacker must not knock the Zigbee2MQTT bridge offline by reusing
// its client id: a client id held by one user, connected or with a kept
// session, is refused to every other user with "not authorized".
func TestClientIDOfAnotherUserRefused(t *testing.T) {
	f := startFixture(t, nil)
	const id = "zigbee2mqtt_bridge"
	inbox := newMessages()
	bridge := f.mustConnect(t, login{id: id, user: "z2m", pass: "pw-z2m", persistent: true, onMessage: inbox.handle})
	if tok := bridge.Subscribe("zigbee2mqtt/bridge/request/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("bridge subscribe: %v", tok.Error())
	}

	for _, tc := range []struct{ name, user, pass string }{
		{"device login", "dev-a", "pw-a"},
		{"anonymous", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.connect(t, login{id: id, user: tc.user, pass: tc.pass})
			if !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
				t.Fatalf("connect with the bridge's client id as %q: %v, want refused as not authorized", tc.user, err)
			}
		})
	}
	if got := f.metric(t, "shelterwatch_broker_auth_failures_total", "reason", "client_id_taken"); got != 2 {
		t.Fatalf("client_id_taken refusals: %v, want 2", got)
	}

	// The bridge is still connected both ways.
	if !bridge.IsConnectionOpen() {
		t.Fatal("the bridge lost its connection")
	}
	publish(t, bridge, "zigbee2mqtt/hall/smoke", false, `{"smoke":false}`)
	if !f.rec.has("zigbee2mqtt/hall/smoke") {
		t.Fatal("the bridge's publish did not reach the pipeline")
	}
	if err := f.b.Publish("zigbee2mqtt/bridge/request/permit_join", []byte(`{"value":false}`), false, 1); err != nil {
		t.Fatal(err)
	}
	inbox.await(t, "zigbee2mqtt/bridge/request/permit_join")

	// While the bridge is away its kept session still holds the id, and
	// the bridge gets it back.
	bridge.Disconnect(0)
	f.waitMetric(t, 0, "shelterwatch_broker_clients_connected")
	if _, _, err := f.connect(t, login{id: id, user: "dev-a", pass: "pw-a", persistent: true}); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Fatalf("connect with the id of the bridge's kept session: %v, want refused as not authorized", err)
	}
	_, present, err := f.connect(t, login{id: id, user: "z2m", pass: "pw-z2m", persistent: true})
	if err != nil || !present {
		t.Fatalf("the bridge reconnecting: err %v, session present %v; want its session back", err, present)
	}
}

// MQTT 5 clients get the reason code itself (0x87 not authorized, 0x86
// bad username or password); MQTT 3.1.1 clients the 3.1.1 code (0x05,
// 0x04).
func TestConnackReasonCodes(t *testing.T) {
	f := startFixture(t, nil)
	f.mustConnect(t, login{id: "held", user: "z2m", pass: "pw-z2m"})
	for _, tc := range []struct {
		name           string
		version        byte
		id, user, pass string
		want           byte
	}{
		{"v5 client id taken", 5, "held", "dev-a", "pw-a", 0x87},
		{"v5 wrong password", 5, "c1", "dev-a", "wrong", 0x86},
		{"v3 client id taken", 4, "held", "dev-a", "pw-a", 0x05},
		{"v3 wrong password", 4, "c1", "dev-a", "wrong", 0x04},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", f.b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(connectPacket(tc.version, tc.id, tc.user, tc.pass, true)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			ack := make([]byte, 4)
			if _, err := ioReadFull(conn, ack); err != nil {
				t.Fatalf("no CONNACK: %v", err)
			}
			if ack[0] != 0x20 || ack[3] != tc.want {
				t.Fatalf("CONNACK % x, want reason 0x%02x", ack, tc.want)
			}
		})
	}
}

func ioReadFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// connectPacket encodes a CONNECT (version 4 is MQTT 3.1.1, 5 is MQTT 5).
func connectPacket(version byte, id, user, pass string, clean bool) []byte {
	str := func(b *bytes.Buffer, s string) {
		_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
		b.WriteString(s)
	}
	var body bytes.Buffer
	str(&body, "MQTT")
	body.WriteByte(version)
	var flags byte
	if clean {
		flags |= 0x02
	}
	if user != "" {
		flags |= 0x80
	}
	if pass != "" {
		flags |= 0x40
	}
	body.WriteByte(flags)
	body.Write([]byte{0, 30}) // keep-alive 30 s
	if version == 5 {
		body.WriteByte(0) // no properties
	}
	str(&body, id)
	if user != "" {
		str(&body, user)
	}
	if pass != "" {
		str(&body, pass)
	}
	return packet(0x10, body.Bytes())
}

// packet adds a fixed header to body.
func packet(typeAndFlags byte, body []byte) []byte {
	out := []byte{typeAndFlags}
	n := len(body)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// A brute-force loop costs a bounded number of bcrypt checks: after a few
// failures an address, and a username, is refused without a check until
// its penalty is over. The device's own address, which logged in before,
// still gets in with the right password.
func TestBruteForceCostsBoundedPasswordChecks(t *testing.T) {
	f := startFixture(t, nil)
	const device, attacker, stranger = "127.0.0.2", "127.0.0.3", "127.0.0.4"
	f.mustConnect(t, login{id: "dev-a-1", user: "dev-a", pass: "pw-a", from: device}).Disconnect(0)
	checks := f.metric(t, "shelterwatch_broker_password_checks_total")

	for i := range 50 {
		if _, _, err := f.connect(t, login{id: fmt.Sprint("guess-", i), user: "dev-a", pass: fmt.Sprint("guess-", i), from: attacker}); err == nil {
			t.Fatal("a wrong password was accepted")
		}
	}
	if got := f.metric(t, "shelterwatch_broker_password_checks_total") - checks; got != broker.DefaultFreeFailures {
		t.Fatalf("50 wrong passwords cost %v bcrypt checks, want %d", got, broker.DefaultFreeFailures)
	}
	if got := f.metric(t, "shelterwatch_broker_auth_failures_total", "reason", "throttled"); got != 50-broker.DefaultFreeFailures {
		t.Fatalf("%v attempts refused without a check, want %d", got, 50-broker.DefaultFreeFailures)
	}

	// The username is throttled for addresses it never logged in from, and
	// the attacker's address for every login...
	if _, _, err := f.connect(t, login{id: "dev-a-2", user: "dev-a", pass: "pw-a", from: stranger}); err == nil {
		t.Fatal("a new address logged in as a username under penalty")
	}
	if _, _, err := f.connect(t, login{id: "dev-a-3", user: "dev-a", pass: "pw-a", from: attacker}); err == nil {
		t.Fatal("an address under penalty logged in")
	}
	// ...but the device still logs in from its own address (answered from
	// the cache: no bcrypt check either), and a success ends the username's
	// penalty.
	f.mustConnect(t, login{id: "dev-a-1", user: "dev-a", pass: "pw-a", from: device})
	f.mustConnect(t, login{id: "dev-a-2", user: "dev-a", pass: "pw-a", from: stranger})
	// The attacker's address stays under penalty until it is over.
	if _, _, err := f.connect(t, login{id: "dev-a-3", user: "dev-a", pass: "pw-a", from: attacker}); err == nil {
		t.Fatal("an address under penalty logged in")
	}
	f.now.Advance(broker.DefaultPenalty)
	f.mustConnect(t, login{id: "dev-a-3", user: "dev-a", pass: "pw-a", from: attacker})
	if got := f.metric(t, "shelterwatch_broker_password_checks_total") - checks; got != broker.DefaultFreeFailures {
		t.Fatalf("%v bcrypt checks in all, want still %d", got, broker.DefaultFreeFailures)
	}
}

// Logins beyond the concurrent check slots are refused at once with
// "server busy" instead of queueing for bcrypt.
func TestConcurrentPasswordChecksBounded(t *testing.T) {
	f := startFixture(t, func(o *broker.Options) {
		// A real cost, so that checks overlap.
		h, err := bcrypt.GenerateFromPassword([]byte("pw-slow"), 8)
		if err != nil {
			t.Fatal(err)
		}
		o.Accounts = append(o.Accounts, broker.Account{Username: "slow", PasswordHash: string(h)})
		o.Login.MaxConcurrentChecks = 1
		o.Login.MaxQueuedChecks = 1
	})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", f.b.Addr())
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = conn.Write(connectPacket(4, fmt.Sprint("slow-", i), "slow", "wrong", true))
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = ioReadFull(conn, make([]byte, 4))
		}()
	}
	wg.Wait()
	checks := f.metric(t, "shelterwatch_broker_password_checks_total")
	busy := f.metric(t, "shelterwatch_broker_auth_failures_total", "reason", "busy")
	throttled := f.metric(t, "shelterwatch_broker_auth_failures_total", "reason", "throttled")
	if checks+busy+throttled != 8 || checks > broker.DefaultFreeFailures || busy == 0 {
		t.Fatalf("8 concurrent logins: %v checks, %v busy, %v throttled; want every login counted once, at most %d checks, some busy",
			checks, busy, throttled, broker.DefaultFreeFailures)
	}
}

// A disconnected client's session, MQTT 3.1.1 clean_session=false
// included, ends after MaxSessionExpiry, and its subscriptions go with it.
func TestSessionsExpire(t *testing.T) {
	f := startFixture(t, func(o *broker.Options) { o.MaxSessionExpiry = time.Second })
	c := f.mustConnect(t, login{id: "dev-a-1", user: "dev-a", pass: "pw-a", persistent: true})
	if tok := c.Subscribe("sw/a/cmd/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if got := f.metric(t, "shelterwatch_broker_subscriptions"); got != 1 {
		t.Fatalf("subscriptions: %v, want 1", got)
	}
	c.Disconnect(0)
	f.waitMetric(t, 0, "shelterwatch_broker_sessions")
	f.waitMetric(t, 0, "shelterwatch_broker_subscriptions")
	if _, present, err := f.connect(t, login{id: "dev-a-1", user: "dev-a", pass: "pw-a", persistent: true}); err != nil || present {
		t.Fatalf("reconnect after expiry: err %v, session present %v; want a new session", err, present)
	}
}

// One login cannot pile up sessions: at the cap its oldest disconnected
// session makes room, and with every session connected a new one is
// refused.
func TestSessionsCappedPerUser(t *testing.T) {
	f := startFixture(t, func(o *broker.Options) { o.MaxSessionsPerUser = 3 })
	var cs []paho.Client
	for i := range 3 {
		cs = append(cs, f.mustConnect(t, login{id: fmt.Sprint("s", i), user: "dev-a", pass: "pw-a", persistent: true}))
	}
	if _, _, err := f.connect(t, login{id: "s3", user: "dev-a", pass: "pw-a", persistent: true}); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Fatalf("a fourth session with three connected: %v, want refused as not authorized", err)
	}
	// Another user is not affected.
	f.mustConnect(t, login{id: "bridge", user: "z2m", pass: "pw-z2m", persistent: true})

	cs[0].Disconnect(0) // s0 is kept, disconnected
	f.waitMetric(t, 2+1, "shelterwatch_broker_clients_connected")
	f.mustConnect(t, login{id: "s3", user: "dev-a", pass: "pw-a", persistent: true})
	if got := f.metric(t, "shelterwatch_broker_sessions_evicted_total"); got != 1 {
		t.Fatalf("sessions evicted: %v, want 1", got)
	}
	if got := f.metric(t, "shelterwatch_broker_sessions"); got != 4 {
		t.Fatalf("sessions: %v, want 3 of dev-a and the bridge's", got)
	}
	// s0 was the one that ended: it is a new session now, and there is no
	// room for it.
	if _, _, err := f.connect(t, login{id: "s0", user: "dev-a", pass: "pw-a", persistent: true}); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Fatalf("s0 after its eviction with three connected: %v, want refused", err)
	}
}

// A retained publish keeps its retain flag only on topics the account
// may retain (availability, LWT); elsewhere it is delivered as a plain
// publish and nothing is kept for later subscribers.
func TestRetainOnlyWhereAllowed(t *testing.T) {
	f := startFixture(t, nil)
	retained := f.metric(t, "shelterwatch_broker_retained_messages") // mochi's $SYS topics
	dev := f.mustConnect(t, login{id: "dev-a-1", user: "dev-a", pass: "pw-a"})
	publish(t, dev, "sw/a/status", true, "online")
	publish(t, dev, "sw/a/smoke", true, `{"smoke":true}`)
	anon := f.mustConnect(t, login{id: "anon-1"})
	publish(t, anon, "sw/open/status", true, "online")
	publish(t, anon, "sw/open", true, `{"smoke":false}`)
	if !f.rec.has("sw/a/smoke") || !f.rec.has("sw/open") {
		t.Fatal("a publish whose retain flag was cleared did not reach the pipeline")
	}
	if got := f.metric(t, "shelterwatch_broker_retained_messages") - retained; got != 2 {
		t.Fatalf("retained messages: %v, want the two status topics", got)
	}
	if got := f.metric(t, "shelterwatch_broker_retain_cleared_total"); got != 2 {
		t.Fatalf("retain flags cleared: %v, want 2", got)
	}
	inbox := newMessages()
	sub := f.mustConnect(t, login{id: "dev-a-sub", user: "dev-a", pass: "pw-a", onMessage: inbox.handle})
	if tok := sub.Subscribe("sw/a/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if m := inbox.await(t, "sw/a/status"); !m.Retained() || string(m.Payload()) != "online" {
		t.Fatalf("retained status: %q retained %v", m.Payload(), m.Retained())
	}
}

// An account's own packet size replaces the server's once it has logged
// in: the bridge may send a bridge/devices larger than any sensor may.
func TestPacketSizePerAccount(t *testing.T) {
	f := startFixture(t, nil)
	big := strings.Repeat("x", 512<<10)
	bridge := f.mustConnect(t, login{id: "bridge", user: "z2m", pass: "pw-z2m"})
	publish(t, bridge, "zigbee2mqtt/bridge/devices", true, big)
	if !f.rec.has("zigbee2mqtt/bridge/devices") {
		t.Fatal("the bridge's 512 KiB publish within its 1 MiB cap did not arrive")
	}
	dev := f.mustConnect(t, login{id: "dev-a-1", user: "dev-a", pass: "pw-a"})
	dev.Publish("sw/a/big", 1, false, big).WaitTimeout(5 * time.Second)
	if f.rec.has("sw/a/big") {
		t.Fatal("a device published 512 KiB past the server's 256 KiB cap")
	}
	f.waitMetric(t, 1, "shelterwatch_broker_clients_connected")
}

// A will is kept as a retained message only where the account may retain:
// a device dying with a retained {"smoke":false} will on its own smoke
// topic must not plant an "all clear" for later subscribers; its status
// will stays retained, as availability needs.
func TestWillRetainedOnlyWhereAllowed(t *testing.T) {
	f := startFixture(t, nil)
	inbox := newMessages()
	sub := f.mustConnect(t, login{id: "dev-a-sub", user: "dev-a", pass: "pw-a", onMessage: inbox.handle})
	if tok := sub.Subscribe("sw/a/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	retained := f.metric(t, "shelterwatch_broker_retained_messages")
	for _, will := range []struct{ id, topic, payload string }{
		{"dev-a-smoke", "sw/a/smoke", `{"smoke":false}`},
		{"dev-a-status", "sw/a/status", "offline"},
	} {
		// The test holds the client's TCP connection so it can drop it
		// without a DISCONNECT: the broker then publishes the will.
		conns := make(chan net.Conn, 1)
		o := paho.NewClientOptions().AddBroker("tcp://"+f.b.Addr()).SetClientID(will.id).
			SetUsername("dev-a").SetPassword("pw-a").SetProtocolVersion(4).SetAutoReconnect(false).
			SetWill(will.topic, will.payload, 1, true).
			SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				c, err := net.Dial("tcp", u.Host)
				if err == nil {
					conns <- c
				}
				return c, err
			})
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", will.id, tok.Error())
		}
		(<-conns).Close()
		if m := inbox.await(t, will.topic); string(m.Payload()) != will.payload {
			t.Fatalf("will on %s: %q", will.topic, m.Payload())
		}
		c.Disconnect(0)
	}
	f.waitMetric(t, 1, "shelterwatch_broker_retain_cleared_total")
	if got := f.metric(t, "shelterwatch_broker_retained_messages") - retained; got != 1 {
		t.Fatalf("retained messages from wills: %v, want only the status one", got)
	}
	late := newMessages()
	lateSub := f.mustConnect(t, login{id: "dev-a-late", user: "dev-a", pass: "pw-a", onMessage: late.handle})
	if tok := lateSub.Subscribe("sw/a/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if m := late.await(t, "sw/a/status"); !m.Retained() || string(m.Payload()) != "offline" {
		t.Fatalf("retained status will: %q retained %v", m.Payload(), m.Retained())
	}
	late.mu.Lock()
	defer late.mu.Unlock()
	if len(late.got["sw/a/smoke"]) != 0 {
		t.Fatal("a late subscriber received the smoke topic's will as a retained message")
	}
}

// A client id reserved for an account is refused to everyone else even
// while that account has neither a connection nor a session (a bridge
// with a clean session, restarting): nobody can take it in between.
func TestReservedClientIDRefusedToOthers(t *testing.T) {
	f := startFixture(t, func(o *broker.Options) {
		for i := range o.Accounts {
			if o.Accounts[i].Username == "z2m" {
				o.Accounts[i].ClientIDs = []string{"z2m-bridge"}
			}
		}
	})
	for _, tc := range []struct{ name, user, pass string }{
		{"device login", "dev-a", "pw-a"},
		{"anonymous", "", ""},
	} {
		if _, _, err := f.connect(t, login{id: "z2m-bridge", user: tc.user, pass: tc.pass}); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			t.Fatalf("%s with the bridge's reserved id: %v, want refused as not authorized", tc.name, err)
		}
	}
	if got := f.metric(t, "shelterwatch_broker_auth_failures_total", "reason", "client_id_reserved"); got != 2 {
		t.Fatalf("client_id_reserved refusals: %v, want 2", got)
	}
	f.mustConnect(t, login{id: "z2m-bridge", user: "z2m", pass: "pw-z2m"})
}

// After a restart every device reconnects at once: with one check slot,
// the logins wait their turn in the queue instead of being refused "server
// busy" (which would leave each device silent for its firmware's retry
// period), and every one gets in.
func TestReconnectStormWaitsForCheckSlots(t *testing.T) {
	const devices = 12
	h, err := bcrypt.GenerateFromPassword([]byte("pw-storm"), 8)
	if err != nil {
		t.Fatal(err)
	}
	f := startFixture(t, func(o *broker.Options) {
		for i := range devices {
			o.Accounts = append(o.Accounts, broker.Account{Username: fmt.Sprint("storm-", i), PasswordHash: string(h)})
		}
		o.Login.MaxConcurrentChecks = 1
		// Generous for a slow race-enabled run: the queue, not the wait,
		// is what this checks.
		o.Login.CheckWait = time.Minute
	})
	var wg sync.WaitGroup
	errs := make(chan error, devices)
	for i := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := f.connect(t, login{id: fmt.Sprint("storm-", i), user: fmt.Sprint("storm-", i), pass: "pw-storm", wait: time.Minute}); err != nil {
				errs <- fmt.Errorf("storm-%d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if busy := f.metric(t, "shelterwatch_broker_auth_failures_total", "reason", "busy"); busy != 0 {
		t.Fatalf("%v logins refused busy in a reconnect storm", busy)
	}
	if checks := f.metric(t, "shelterwatch_broker_password_checks_total"); checks != devices {
		t.Fatalf("%v password checks, want one per device", checks)
	}
}
