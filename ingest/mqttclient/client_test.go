package mqttclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// recorder is the message handler under the client; the pipeline is not the
// subject here. It can be told to fail a topic a number of times.
type recorder struct {
	mu     sync.Mutex
	got    map[string]int
	failN  map[string]int
	signal chan struct{}
}

func (r *recorder) handle(_ context.Context, m pipeline.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failN[m.Topic] > 0 {
		r.failN[m.Topic]--
		return errors.New("store unavailable (test)")
	}
	r.got[m.Topic+" "+string(m.Payload)]++
	select {
	case r.signal <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[key]
}

func (r *recorder) await(t *testing.T, key string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for r.count(key) == 0 {
		select {
		case <-r.signal:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("message %q not handled within %v", key, within)
		}
	}
}

func publishQoS1(t *testing.T, url, topic, payload string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("pub-" + topic).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(50)
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func TestClientAcksOnlyStoredAndResubscribesAfterBrokerRestart(t *testing.T) {
	paths(t, testAcksOnlyStored)
}

func testAcksOnlyStored(t *testing.T, handler func(Options) Options) {
	m := testpeer.StartMosquitto(t, "")
	rec := &recorder{got: map[string]int{}, failN: map[string]int{"sensors/b": 1}, signal: make(chan struct{}, 1)}
	c, err := New(handler(Options{
		URL: m.URL(), ClientID: "gw-under-test", Subscriptions: []string{"sensors/#"},
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Handle: rec.handle, Logger: slog.New(slog.DiscardHandler),
	}))
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c)

	// Subscribed and consuming (retry the first publish until the
	// subscription is in place: Run subscribes asynchronously).
	deadline := time.Now().Add(10 * time.Second)
	for rec.count("sensors/a 1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("client never consumed a message")
		}
		publishQoS1(t, m.URL(), "sensors/a", "1")
		time.Sleep(100 * time.Millisecond)
	}

	// A message the handler could not store is not acknowledged: the client
	// reconnects and the broker redelivers it from the persistent session.
	publishQoS1(t, m.URL(), "sensors/b", "2")
	rec.await(t, "sensors/b 2", 10*time.Second)

	// The broker crashes and comes back empty (no persistence): the client
	// reconnects with backoff and subscribes again by itself.
	m.Restart(t)
	deadline = time.Now().Add(15 * time.Second)
	for rec.count("sensors/c 3") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no message consumed after the broker restart: not reconnected or not resubscribed")
		}
		publishQoS1(t, m.URL(), "sensors/c", "3")
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPublishThroughTheGatewayConnection: alarm states for sirens and
// panels go out through the gateway's own connection to the external
// broker, retained, and a late subscriber (a panel that just booted) gets
// them from Mosquitto.
func TestPublishThroughTheGatewayConnection(t *testing.T) {
	m := testpeer.StartMosquitto(t, "")
	c, err := New(Options{
		URL: m.URL(), ClientID: "gw-publisher", Subscriptions: []string{"sensors/#"},
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Handle: (&recorder{got: map[string]int{}, failN: map[string]int{}, signal: make(chan struct{}, 1)}).handle,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish("shelterwatch/f/kitchen/alarm", []byte(`{}`), true, 1); err != ErrNotConnected {
		t.Fatalf("publish before Run: %v, want ErrNotConnected", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("not connected within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	state := `{"zone":"kitchen","severity":"fire"}`
	if err := c.Publish("shelterwatch/f/kitchen/alarm", []byte(state), true, 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID("panel").SetAutoReconnect(false))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("panel connect: %v", tok.Error())
	}
	defer sub.Disconnect(50)
	sub.Subscribe("shelterwatch/f/+/alarm", 1, func(_ paho.Client, msg paho.Message) {
		if msg.Retained() {
			got <- string(msg.Payload())
		}
	})
	select {
	case p := <-got:
		if p != state {
			t.Fatalf("retained state %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the panel got no retained alarm state")
	}
}

// gated is a message handler that holds every message until the test
// releases it, so that the test decides when the pipeline is full.
type gated struct {
	release chan struct{}
	mu      sync.Mutex
	got     map[string]int
}

func (g *gated) handle(ctx context.Context, m pipeline.Message) error {
	if m.Topic == "sensors/probe" {
		return nil // a late probe of the session's set-up
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.got[string(m.Payload)]++
	return nil
}

func (g *gated) distinct() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.got)
}

// runClient runs c until the returned stop is called (or the test ends).
// paths runs a test over both ways the client hands messages on: Handle
// (a goroutine per message) and HandleAsync (decoded on paho's router,
// acknowledged by the acker once the store answers, as the gateway runs
// it); the async adapter answers from a goroutine of its own, as the
// store's writer does.
func paths(t *testing.T, test func(t *testing.T, handler func(Options) Options)) {
	t.Run("sync", func(t *testing.T) { test(t, func(o Options) Options { return o }) })
	t.Run("async", func(t *testing.T) {
		test(t, func(o Options) Options {
			h := o.Handle
			o.Handle = nil
			o.HandleAsync = func(ctx context.Context, msg pipeline.Message, done func(error)) {
				go func() { done(h(ctx, msg)) }()
			}
			return o
		})
	})
}

func runClient(t *testing.T, c *Client) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestBacklogAtReconnectIsHeldToTheBound: a broker that sends without
// limit (Mosquitto with max_inflight_messages 0) delivers a persistent
// session's backlog far larger than max_in_flight at reconnect. The
// gateway never holds more than max_in_flight+1 of them (the pipeline's
// slots and the one paho's router waits with); the rest wait in the
// broker; and every message arrives.
func TestBacklogAtReconnectIsHeldToTheBound(t *testing.T) {
	paths(t, testBacklogHeldToTheBound)
}

func testBacklogHeldToTheBound(t *testing.T, handler func(Options) Options) {
	const (
		bound   = 16
		backlog = 3000
	)
	m := testpeer.StartMosquitto(t, "max_inflight_messages 0")
	opts := Options{
		URL: m.URL(), ClientID: "gw-backlog", Subscriptions: []string{"sensors/#"},
		MaxInFlight: bound, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}

	// The first connection creates the persistent session and its
	// subscription; then the gateway goes away.
	rec := &recorder{got: map[string]int{}, failN: map[string]int{}, signal: make(chan struct{}, 1)}
	opts.Handle = rec.handle
	first, err := New(handler(opts))
	if err != nil {
		t.Fatal(err)
	}
	stopFirst := runClient(t, first)
	testpeer.WaitFor(t, "the session's subscription to deliver a probe", 10*time.Second, func() bool {
		if rec.count("sensors/probe p") > 0 {
			return true
		}
		publishQoS1(t, m.URL(), "sensors/probe", "p")
		return rec.count("sensors/probe p") > 0
	})
	stopFirst()

	// The broker queues the backlog for the absent gateway.
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID("pub-backlog").SetAutoReconnect(false))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	toks := make([]paho.Token, backlog)
	for i := range toks {
		toks[i] = pub.Publish(fmt.Sprintf("sensors/dev-%d", i%100), 1, false, strconv.Itoa(i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d not acknowledged by the broker: %v", i, tok.Error())
		}
	}
	pub.Disconnect(50)

	// The gateway reconnects. Its pipeline takes messages only when the
	// test releases them, a pipeline's worth at a time once every slot is
	// full, so that the broker always has more to send than the gateway
	// takes.
	g := &gated{release: make(chan struct{}, backlog), got: map[string]int{}}
	opts.Handle = g.handle
	c, err := New(handler(opts))
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	for released := 0; released < backlog; {
		full := min(int64(bound+1), int64(backlog-released))
		testpeer.WaitFor(t, fmt.Sprintf("%d messages in the gateway's hands (%d of %d released)", full, released, backlog), 10*time.Second,
			func() bool { return c.held.Load() >= full })
		for range min(bound, backlog-released) {
			g.release <- struct{}{}
			released++
		}
	}
	testpeer.WaitFor(t, "every message of the backlog to be handled and acknowledged", 10*time.Second,
		func() bool { return g.distinct() == backlog && c.held.Load() == 0 })

	if peak := c.heldPeak.Load(); peak != bound+1 {
		t.Errorf("the gateway held up to %d messages at once, want exactly max_in_flight+1 = %d", peak, bound+1)
	}
	if got := first.heldPeak.Load(); got > bound+1 {
		t.Errorf("first connection held up to %d messages, bound %d", got, bound+1)
	}
}

// TestConnectionLossIsSeenWhileEverySlotWaits: with every slot held by a
// message the store cannot take yet (a full disk holds them until there
// is room) and one more waiting, the broker goes away. The client still
// notices, reconnects and subscribes again, instead of staying attached
// to a dead connection until the store lets go.
func TestConnectionLossIsSeenWhileEverySlotWaits(t *testing.T) {
	paths(t, testConnectionLossWhileSlotsWait)
}

func testConnectionLossWhileSlotsWait(t *testing.T, handler func(Options) Options) {
	const bound = 4
	m := testpeer.StartMosquitto(t, "")
	g := &gated{release: make(chan struct{}, 100), got: map[string]int{}}
	c, err := New(handler(Options{
		URL: m.URL(), ClientID: "gw-full", Subscriptions: []string{"sensors/#"},
		MaxInFlight: bound, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Handle: g.handle, Logger: slog.New(slog.DiscardHandler),
	}))
	if err != nil {
		t.Fatal(err)
	}
	stop := runClient(t, c)
	testpeer.WaitFor(t, "every slot taken and one message waiting", 15*time.Second, func() bool {
		if c.held.Load() == bound+1 {
			return true
		}
		publishQoS1(t, m.URL(), "sensors/a", strconv.Itoa(int(c.held.Load())))
		return c.held.Load() == bound+1
	})
	if !c.Connected() {
		t.Fatal("not connected before the broker went away")
	}

	m.Restart(t)
	testpeer.WaitFor(t, "the client to see the connection gone", 15*time.Second, func() bool { return !c.Connected() })
	testpeer.WaitFor(t, "the client to reconnect", 15*time.Second, c.Connected)

	// The store comes back: the held messages finish (their acknowledgements
	// go nowhere; the broker restarted without the session) and new
	// messages flow on the new connection.
	for range 100 {
		g.release <- struct{}{}
	}
	testpeer.WaitFor(t, "a message on the new connection", 15*time.Second, func() bool {
		g.mu.Lock()
		n := g.got["after"]
		g.mu.Unlock()
		if n > 0 {
			return true
		}
		publishQoS1(t, m.URL(), "sensors/b", "after")
		return false
	})
	stop()
}
