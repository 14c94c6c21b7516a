package sensorsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// waitLimit bounds every wait on the broker; generous for -race on a busy CI
// machine, and never reached when things work.
const waitLimit = 15 * time.Second

// authHook lets in the users it lists, or everyone when the list is nil,
// and allows every topic. (mochi's hooks/auth package would do, but it pulls
// in gopkg.in/yaml.v3, which the module does not otherwise need.)
type authHook struct {
	mochi.HookBase
	users map[string]string // user name → password
}

func (h *authHook) ID() string { return "test-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.users == nil {
		return true
	}
	pw, ok := h.users[string(pk.Connect.Username)]
	return ok && pw == string(pk.Connect.Password)
}

func (h *authHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }

// startBroker starts an in-process MQTT broker on a free loopback port and
// returns it and its URL. users lists who may connect (nil: everyone).
func startBroker(t *testing.T, users map[string]string) (*mochi.Server, string) {
	t.Helper()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(&authHook{users: users}, nil); err != nil {
		t.Fatalf("broker hook: %v", err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil { // binds the port
		t.Fatalf("broker listener: %v", err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatalf("broker serve: %v", err)
	}
	t.Cleanup(func() {
		// mochi v2.7.9's Server.Close can deadlock while a client is being
		// removed (Clients.GetByListener read-locks twice; a waiting
		// Clients.Delete in between blocks both). Every client has asked to
		// disconnect by now (test cleanups run last-in first-out); wait,
		// bounded, until the broker has let them all go. mochi has no hook
		// for "client removed", so this polls.
		deadline := time.Now().Add(waitLimit)
		for srv.Clients.Len() > 0 && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if n := srv.Clients.Len(); n > 0 {
			t.Errorf("broker still has %d clients %v after %v; closing anyway", n, clientIDs(srv), waitLimit)
		}
		_ = srv.Close()
	})
	return srv, "tcp://" + l.Address()
}

func clientIDs(srv *mochi.Server) []string {
	var ids []string
	for id := range srv.Clients.GetAll() {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// proxy forwards TCP connections to a broker so that a test can cut them
// the way a Wi-Fi drop would: the broker sees the socket die without a
// DISCONNECT and publishes the client's will.
type proxy struct {
	l      net.Listener
	target string // host:port
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

// startProxy starts a proxy to broker and returns it and its broker URL.
func startProxy(t *testing.T, broker string) (*proxy, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: strings.TrimPrefix(broker, "tcp://")}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = l.Close()
		p.cut()
		p.wg.Wait()
	})
	return p, "tcp://" + l.Addr().String()
}

func (p *proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		p.wg.Go(func() { pipe(up, c) })
		p.wg.Go(func() { pipe(c, up) })
	}
}

// cut closes every connection through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// recorder collects what a subscriber receives and wakes waiters.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
	wake chan struct{} // buffered 1
}

// subscribe connects a paho client that records everything matching filter.
func subscribe(t *testing.T, broker, id, user, password, filter string) *recorder {
	t.Helper()
	rec := &recorder{wake: make(chan struct{}, 1)}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).
		SetUsername(user).SetPassword(password).
		SetAutoReconnect(false).SetConnectTimeout(waitLimit)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		rec.mu.Lock()
		rec.msgs = append(rec.msgs, Message{Topic: m.Topic(), Payload: slices.Clone(m.Payload()), Retained: m.Retained()})
		rec.mu.Unlock()
		select {
		case rec.wake <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("subscribe %q: %v", filter, tok.Error())
	}
	return rec
}

// waitFor waits until cond holds for the messages received so far. On
// timeout it fails with what and what did arrive.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]Message) bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		done := cond(r.msgs)
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.wake:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out after %v waiting for %s; received %d messages:\n%s", waitLimit, what, len(r.msgs), dump(r.msgs))
		}
	}
}

// startSim runs the simulator until the test ends, and returns a function
// that stops it and waits for Run to return.
func startSim(t *testing.T, opts Options) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitLimit):
				err = errors.New("Run did not return after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

// expectedTopics returns the topics d publishes on connect and per report.
func expectedTopics(d Device) []string {
	st := NewState(d, testNow, rand.New(rand.NewPCG(1, 1)))
	var topics []string
	for _, m := range append(Birth(d), Report(d, st, testNow, testLoc)...) {
		topics = append(topics, m.Topic)
	}
	return topics
}

func TestRunPublishesEveryDeviceOnItsTopics(t *testing.T) {
	_, broker := startBroker(t, nil)
	rec := subscribe(t, broker, "test-sub", "", "", "#")
	devices := SampleDevices()
	startSim(t, Options{
		Broker:   broker,
		Devices:  devices,
		Interval: 200 * time.Millisecond,
		Location: testLoc,
		Seed:     1,
	})

	want := map[string]string{} // topic → device
	for _, d := range devices {
		for _, topic := range expectedTopics(d) {
			want[topic] = d.ID
		}
	}
	var missing []string
	rec.waitFor(t, "a message on every device's topics", func(msgs []Message) bool {
		seen := map[string]bool{}
		for _, m := range msgs {
			seen[m.Topic] = true
		}
		missing = missing[:0]
		for topic, id := range want {
			if !seen[topic] {
				missing = append(missing, id+": "+topic)
			}
		}
		sort.Strings(missing)
		return len(missing) == 0
	})

	// Periodic reports keep coming: wait for a second report of a device.
	rec.waitFor(t, "a second report from kitchen-smoke", func(msgs []Message) bool {
		n := 0
		for _, m := range msgs {
			if m.Topic == "zigbee2mqtt/kitchen/smoke" {
				n++
			}
		}
		return n >= 2
	})
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []map[string]string
	wake    chan struct{} // buffered 1
}

func newLogRecorder() *logRecorder { return &logRecorder{wake: make(chan struct{}, 1)} }

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := map[string]string{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool {
		rec[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return nil
}

// waitFor waits until a record with all the key/value pairs kv is logged.
func (h *logRecorder) waitFor(t *testing.T, kv ...string) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for !h.find(kv...) {
		select {
		case <-h.wake:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for a log record with %q", waitLimit, kv)
		}
	}
}

func (h *logRecorder) find(kv ...string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
next:
	for _, r := range h.records {
		for i := 0; i+1 < len(kv); i += 2 {
			if r[kv[i]] != kv[i+1] {
				continue next
			}
		}
		return true
	}
	return false
}

func TestRunDoorOpensAtNightInSecureWard(t *testing.T) {
	_, broker := startBroker(t, nil)
	rec := subscribe(t, broker, "test-sub", "", "", "zigbee2mqtt/#")
	night := time.Date(2026, 11, 30, 3, 0, 0, 0, testLoc)
	logs := newLogRecorder()
	startSim(t, Options{
		Broker: broker,
		Devices: []Device{
			{ID: "ward-door", Format: "zigbee2mqtt", Base: "zigbee2mqtt/secure-ward/door", Kind: reading.KindDoor, Zone: "secure-ward", ZoneTags: []string{TagSecureWard}},
			{ID: "dorm-door", Format: "zigbee2mqtt", Base: "zigbee2mqtt/dorm-1/door", Kind: reading.KindDoor, Zone: "dorm-1", ZoneTags: []string{TagDormitory}},
		},
		Interval:   time.Hour, // only the first report and events
		Events:     true,
		EventEvery: 20 * time.Millisecond,
		Location:   testLoc,
		Clock:      func() time.Time { return night },
		Logger:     slog.New(logs),
		Seed:       1,
	})

	rec.waitFor(t, "the secure-ward door to open (contact false)", func(msgs []Message) bool {
		for _, m := range msgs {
			if m.Topic != "zigbee2mqtt/secure-ward/door" {
				continue
			}
			var p struct {
				Contact  *bool  `json:"contact"`
				LastSeen string `json:"last_seen"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				t.Fatalf("door payload %s: %v", m.Payload, err)
			}
			if p.Contact != nil && !*p.Contact {
				if p.LastSeen != "2026-11-29T19:00:00.000Z" {
					t.Errorf("last_seen = %q, want the simulated clock 2026-11-29T19:00:00.000Z", p.LastSeen)
				}
				return true
			}
		}
		return false
	})
	if !logs.find("msg", "sensorsim: event", "level", "INFO", "event", "door-open-at-night", "device", "ward-door") {
		t.Error(`no Info log "sensorsim: event" event=door-open-at-night device=ward-door`)
	}

	// The dormitory door is not in a secure ward: it only ever reports closed.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, m := range rec.msgs {
		if m.Topic == "zigbee2mqtt/dorm-1/door" && !strings.Contains(string(m.Payload), `"contact":true`) {
			t.Errorf("dormitory door opened at night: %s", m.Payload)
		}
	}
}

func TestRunShutdownLeavesDevicesOffline(t *testing.T) {
	_, broker := startBroker(t, nil)
	devices := []Device{
		{ID: "dorm-3-climate", Format: "esphome", Base: "shelter/dorm-3-climate", Kind: reading.KindTemperature},
		{ID: "kitchen-climate", Format: "homie", Base: "homie/5/kitchen-climate", Kind: reading.KindTemperature},
	}
	rec := subscribe(t, broker, "test-sub", "", "", "#")
	stop := startSim(t, Options{Broker: broker, Devices: devices, Interval: time.Hour})
	rec.waitFor(t, "both devices online", func(msgs []Message) bool {
		return has(msgs, "shelter/dorm-3-climate/status", "online") && has(msgs, "homie/5/kitchen-climate/$state", "ready")
	})

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// A client connecting later sees the retained goodbye.
	late := subscribe(t, broker, "test-late", "", "", "#")
	late.waitFor(t, "retained offline / disconnected", func(msgs []Message) bool {
		return has(msgs, "shelter/dorm-3-climate/status", "offline") && has(msgs, "homie/5/kitchen-climate/$state", "disconnected")
	})
}

func TestRunWillAndReconnect(t *testing.T) {
	_, broker := startBroker(t, nil)
	link, viaLink := startProxy(t, broker)
	d := Device{ID: "ward-exit-door", Format: "tasmota", Base: "tasmota_D4E5F6", Kind: reading.KindDoor}
	rec := subscribe(t, broker, "test-sub", "", "", "tele/#")
	startSim(t, Options{Broker: viaLink, Devices: []Device{d}, Interval: time.Hour})
	rec.waitFor(t, "the first report", func(msgs []Message) bool {
		return has(msgs, "tele/tasmota_D4E5F6/LWT", "Online") && hasTopic(msgs, "tele/tasmota_D4E5F6/STATE")
	})

	// Cut the device's connection as a Wi-Fi drop would.
	link.cut()

	rec.waitFor(t, "the will (Offline) and then Online again", func(msgs []Message) bool {
		var seq []string
		for _, m := range msgs {
			if m.Topic == "tele/tasmota_D4E5F6/LWT" {
				seq = append(seq, string(m.Payload))
			}
		}
		return len(seq) >= 3 && seq[len(seq)-2] == "Offline" && seq[len(seq)-1] == "Online"
	})
}

func TestRunAuthenticates(t *testing.T) {
	_, broker := startBroker(t, map[string]string{
		"ward-panic": "test-only-not-a-secret",
		"test-sub":   "test-only-sub",
	})
	rec := subscribe(t, broker, "test-sub", "test-sub", "test-only-sub", "#")
	logs := newLogRecorder()
	startSim(t, Options{Broker: broker, Interval: time.Hour, Logger: slog.New(logs), Devices: []Device{
		// No Username: the device id is the user name.
		{ID: "ward-panic", Format: "native", Base: "shelter/ward-panic", Kind: reading.KindPanic, Password: "test-only-not-a-secret"},
		{ID: "intruder", Format: "native", Base: "shelter/intruder", Kind: reading.KindPanic, Password: "wrong"},
	}})
	rec.waitFor(t, "the authenticated device's report", func(msgs []Message) bool {
		for _, m := range msgs {
			if m.Topic == "shelter/ward-panic" {
				return true
			}
		}
		return false
	})
	logs.waitFor(t, "msg", "sensorsim: connect failed", "level", "WARN", "device", "intruder")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, m := range rec.msgs {
		if strings.HasPrefix(m.Topic, "shelter/intruder") {
			t.Errorf("a device with a wrong password published %s %s", m.Topic, m.Payload)
		}
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	good := Device{ID: "d", Format: "native", Base: "x", Kind: reading.KindDoor}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no broker", Options{Devices: []Device{good}}, "want a URL"},
		{"no devices", Options{Broker: "tcp://127.0.0.1:1"}, "no devices"},
		{"duplicate id", Options{Broker: "tcp://127.0.0.1:1", Devices: []Device{good, {ID: "d", Format: "native", Base: "y", Kind: reading.KindDoor}}}, "duplicate id"},
		{"shared base", Options{Broker: "tcp://127.0.0.1:1", Devices: []Device{good, {ID: "e", Format: "native", Base: "x", Kind: reading.KindDoor}}}, "already used"},
		{"bad device", Options{Broker: "tcp://127.0.0.1:1", Devices: []Device{{ID: "d", Format: "x10", Base: "x", Kind: reading.KindDoor}}}, "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRunReturnsWhenBrokerIsDown(t *testing.T) {
	// Nothing listens on a port we bound and released: the device keeps
	// retrying until cancelled, and Run still returns nil promptly.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broker := "tcp://" + l.Addr().String()
	_ = l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Broker: broker, Devices: SampleDevices()[:1]})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil on cancel", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after its context ended while the broker was down")
	}
}

func hasTopic(msgs []Message, topic string) bool {
	for _, m := range msgs {
		if m.Topic == topic {
			return true
		}
	}
	return false
}

func has(msgs []Message, topic, payload string) bool {
	for _, m := range msgs {
		if m.Topic == topic && string(m.Payload) == payload {
			return true
		}
	}
	return false
}
