// Package mqttclient consumes sensor data from an external MQTT broker
// (Mosquitto, EMQX, a Zigbee2MQTT installation's broker) with paho.
//
// Delivery: QoS 1 subscriptions on a persistent session (stable client id,
// clean session off), so the broker keeps messages while the gateway is
// away; automatic acknowledgement is off and a message is acknowledged only
// after the pipeline has stored it durably, so nothing acknowledged is lost.
//
// Concurrency and backpressure: at most MaxInFlight messages are in the
// pipeline at once, so that the store can commit them together (with
// HandleAsync, as the gateway runs it, each is decoded on paho's router
// and acknowledged by the acker goroutine once stored; with Handle, each
// runs on a goroutine of its own); a message that finds every slot taken waits in
// paho's router goroutine (SetOrderMatters(true)), the one goroutine that
// hands paho's messages out. While it waits, paho reads nothing more from
// the connection, TCP's window fills, and the rest of a backlog stays in
// the broker. So the gateway holds at most MaxInFlight+1 messages from the
// broker however large the backlog or the broker's own in-flight window
// (Mosquitto's max_inflight_messages; MQTT 3.1.1, which paho v1.5 speaks,
// has no receive maximum a client could announce), plus the few packets
// paho's reader goroutines and the socket buffers hold. (With
// SetOrderMatters(false) paho would start a goroutine per message as fast
// as it reads them and nothing would stop it reading: a 200,000-message
// backlog took the gateway past 800 MB.) A wait holds up paho's reading of
// PINGRESP too, but only until a store commit frees a slot; a store stuck
// for longer than the keep-alive plus paho's ping timeout costs a
// reconnect, after which the broker resends what was not acknowledged.
//
// Reconnects are ours, not paho's: capped exponential backoff with full
// jitter, so a hundred gateways that lost the same broker do not reconnect
// in lockstep. Subscriptions are renewed on every connect.
package mqttclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/internal/backoff"
)

// Options configure the client.
type Options struct {
	URL       string // tcp://, ssl://, tls://, mqtt://, mqtts://, ws://, wss://
	ClientID  string
	Username  string
	Password  string
	TLSConfig *tls.Config
	// Subscriptions are topic filters, subscribed with QoS 1.
	Subscriptions []string
	// MaxInFlight is the most messages in the pipeline at once (see the
	// package doc). Default 1000.
	MaxInFlight  int
	ReconnectMin time.Duration // default 500ms
	ReconnectMax time.Duration // default 30s
	KeepAlive    time.Duration // default 30s
	Handle       func(ctx context.Context, msg pipeline.Message) error
	// HandleAsync, when set, is used instead of Handle: the message is
	// decoded on paho's router goroutine and done is called once it is
	// stored (pipeline.Pipeline.HandleAsync). It saves a goroutine per
	// message, whose stack grew anew for every decode.
	HandleAsync func(ctx context.Context, msg pipeline.Message, done func(error))
	Logger      *slog.Logger
}

// Client is an external-broker consumer. Run it once.
type Client struct {
	opts      Options
	log       *slog.Logger
	slots     chan struct{}
	reconnect chan struct{}
	isUp      atomic.Bool
	// pc is the paho client of the current Run (for Publish).
	pc atomic.Pointer[paho.Client]

	// held counts the messages paho has handed over and that are not yet
	// acknowledged or given up: the one waiting for a slot and those in
	// the pipeline. heldPeak is its highest value (for tests and the
	// bench: it must never pass MaxInFlight+1).
	held, heldPeak atomic.Int64
	// handlers are the goroutines of the messages in the pipeline; Run
	// waits for them. stopping (under mu) refuses new ones once it waits.
	mu       sync.Mutex
	stopping bool
	handlers sync.WaitGroup
	// acks are the stored messages waiting for the acker goroutine to
	// acknowledge them (HandleAsync's done runs on the store's writer,
	// and paho's Ack may block).
	acks acker

	connected    prometheus.Gauge
	reconnects   prometheus.Counter
	inFlight     prometheus.Gauge
	notAcked     prometheus.Counter
	subscribeErr prometheus.Counter
}

// New validates options and returns a client.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("mqttclient: no broker URL")
	}
	if opts.ClientID == "" {
		return nil, errors.New("mqttclient: a stable client id is required for a persistent session")
	}
	if opts.Handle == nil && opts.HandleAsync == nil {
		return nil, errors.New("mqttclient: no message handler")
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 1000
	}
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = 500 * time.Millisecond
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = 30 * time.Second
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		opts:      opts,
		log:       opts.Logger,
		slots:     make(chan struct{}, opts.MaxInFlight),
		reconnect: make(chan struct{}, 1),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shelterwatch_mqttclient_connected",
			Help: "1 while connected to the external broker."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_mqttclient_connects_total",
			Help: "Connection attempts to the external broker."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shelterwatch_mqttclient_in_flight",
			Help: "Messages taken from the broker and not yet acknowledged (at most max_in_flight+1)."}),
		notAcked: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_mqttclient_not_acked_total",
			Help: "Messages left unacknowledged because they could not be stored (the broker redelivers them)."}),
		subscribeErr: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_mqttclient_subscribe_errors_total",
			Help: "Failed subscription attempts."}),
	}, nil
}

// Register registers the client's metrics with reg.
func (c *Client) Register(reg prometheus.Registerer) error {
	for _, m := range []prometheus.Collector{c.connected, c.reconnects, c.inFlight, c.notAcked, c.subscribeErr} {
		if err := reg.Register(m); err != nil {
			return err
		}
	}
	return nil
}

// Run connects and consumes until ctx is done. It returns nil on
// cancellation; it never gives up on an unreachable broker.
func (c *Client) Run(ctx context.Context) error {
	po := paho.NewClientOptions().
		AddBroker(c.opts.URL).
		SetClientID(c.opts.ClientID).
		SetCleanSession(false).
		// One router goroutine hands messages over and waits for a slot,
		// so that a backlog waits in the broker, not in goroutines here.
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(c.opts.KeepAlive).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second)
	if c.opts.Username != "" {
		po.SetUsername(c.opts.Username).SetPassword(c.opts.Password)
	}
	if c.opts.TLSConfig != nil {
		po.SetTLSConfig(c.opts.TLSConfig)
	}
	// The handler is installed before connecting: on a persistent session
	// the broker may deliver queued messages before Subscribe returns.
	po.SetDefaultPublishHandler(func(cl paho.Client, m paho.Message) { c.handle(ctx, cl, m) })
	po.SetOnConnectHandler(func(cl paho.Client) { c.subscribe(ctx, cl) })
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		c.setConnected(false)
		c.log.Warn("mqttclient: connection lost", "broker", c.opts.URL, "err", err)
		c.kick()
	})
	po.SetCustomOpenConnectionFn(dialer(10 * time.Second))
	cl := paho.NewClient(po)
	c.pc.Store(&cl)
	defer c.pc.Store(nil)
	ackerDone := make(chan struct{})
	go func() {
		defer close(ackerDone)
		c.runAcker()
	}()
	defer func() {
		c.waitHandlers()
		c.acks.close()
		<-ackerDone
	}()

	attempt := 0
	for {
		c.reconnects.Inc()
		tok := cl.Connect()
		tok.Wait()
		if err := tok.Error(); err != nil {
			attempt++
			wait := backoff.Delay(attempt, c.opts.ReconnectMin, c.opts.ReconnectMax)
			c.log.Warn("mqttclient: connect failed", "broker", c.opts.URL, "attempt", attempt, "retry_in", wait, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
		}
		attempt = 0
		c.setConnected(true)
		c.log.Info("mqttclient: connected", "broker", c.opts.URL, "client_id", c.opts.ClientID)
		select {
		case <-ctx.Done():
			c.setConnected(false)
			cl.Disconnect(250)
			return nil
		case <-c.reconnect:
			if cl.IsConnected() {
				cl.Disconnect(250)
			}
			c.setConnected(false)
			attempt++
			wait := backoff.Delay(attempt, c.opts.ReconnectMin, c.opts.ReconnectMax)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	}
}

// ErrNotConnected is returned by Publish while the broker is away; the
// caller (the notification outbox) retries.
var ErrNotConnected = errors.New("mqttclient: not connected to the broker")

// Publish sends a message through the gateway's own broker connection (alarm
// states for sirens and panels) and waits for the broker's acknowledgement
// at QoS 1, up to 10 s.
func (c *Client) Publish(topic string, payload []byte, retain bool, qos byte) error {
	p := c.pc.Load()
	if p == nil || !c.Connected() {
		return ErrNotConnected
	}
	tok := (*p).Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("mqttclient: publish to %s not acknowledged within 10s", topic)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqttclient: publish to %s: %w", topic, err)
	}
	return nil
}

func (c *Client) setConnected(up bool) {
	c.isUp.Store(up)
	if up {
		c.connected.Set(1)
	} else {
		c.connected.Set(0)
	}
}

// Connected reports whether the client is connected to the broker now.
func (c *Client) Connected() bool { return c.isUp.Load() }

func (c *Client) kick() {
	select {
	case c.reconnect <- struct{}{}:
	default:
	}
}

func (c *Client) subscribe(ctx context.Context, cl paho.Client) {
	filters := make(map[string]byte, len(c.opts.Subscriptions))
	for _, f := range c.opts.Subscriptions {
		filters[f] = 1
	}
	// OnConnect runs on paho's goroutine; subscribing must not block it.
	go func() {
		tok := cl.SubscribeMultiple(filters, nil)
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return
		}
		if err := tok.Error(); err != nil {
			c.subscribeErr.Inc()
			c.log.Error("mqttclient: subscribe failed; reconnecting", "err", err)
			c.kick()
			return
		}
		c.log.Info("mqttclient: subscribed", "filters", len(filters))
	}()
}

// handle runs on paho's router goroutine (SetOrderMatters(true)): it
// waits for a slot, so that paho reads nothing more meanwhile, then hands
// the message to a goroutine of its own and returns.
func (c *Client) handle(ctx context.Context, cl paho.Client, m paho.Message) {
	c.hold(1)
	if !c.takeSlot(ctx, cl) {
		c.hold(-1)
		return // not acknowledged: redelivered on the next session
	}
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		c.hold(-1)
		<-c.slots
		return
	}
	c.handlers.Add(1)
	c.mu.Unlock()
	if c.opts.HandleAsync != nil {
		msg := pipeline.Message{Topic: m.Topic(), Payload: m.Payload(), Received: time.Now(), Client: c.opts.ClientID}
		c.opts.HandleAsync(ctx, msg, func(err error) { c.acks.push(m, err) })
		return
	}
	go func() {
		defer c.handlers.Done()
		// Out of our hands before the slot is free: the router may take
		// the next message the moment it is.
		defer func() { c.hold(-1); <-c.slots }()
		c.store(ctx, m)
	}()
}

// takeSlot waits for a free slot. It gives up when ctx ends or the
// connection is going: paho waits for the router before it reports a lost
// connection, and the slots may stay taken for long (a full disk holds
// messages until there is room).
func (c *Client) takeSlot(ctx context.Context, cl paho.Client) bool {
	select {
	case c.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case c.slots <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
			if !cl.IsConnectionOpen() {
				return false
			}
		}
	}
}

// store hands one message to the pipeline and acknowledges it once stored.
func (c *Client) store(ctx context.Context, m paho.Message) {
	msg := pipeline.Message{Topic: m.Topic(), Payload: m.Payload(), Received: time.Now(), Client: c.opts.ClientID}
	if err := c.opts.Handle(ctx, msg); err != nil {
		c.notAcked.Inc()
		c.log.Error("mqttclient: message not acknowledged; reconnecting for redelivery", "topic", m.Topic(), "err", err)
		c.kick()
		return
	}
	m.Ack()
}

// hold counts messages in (+1) and out (-1) of the gateway's hands.
func (c *Client) hold(d int64) {
	n := c.held.Add(d)
	c.inFlight.Add(float64(d))
	for {
		p := c.heldPeak.Load()
		if n <= p || c.heldPeak.CompareAndSwap(p, n) {
			return
		}
	}
}

// waitHandlers refuses new handlers and waits for those running. paho may
// still be stopping when Run returns (Disconnect gives up after its
// quiesce time), so a late delivery must not start one.
func (c *Client) waitHandlers() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.handlers.Wait()
}

// runAcker acknowledges stored messages in the order they were stored,
// on one goroutine, until the queue is closed and empty. Each message
// leaves the gateway's hands (its slot freed) after its Ack.
func (c *Client) runAcker() {
	var batch []ackItem
	for {
		batch = c.acks.take(batch[:0])
		if batch == nil {
			return
		}
		for i, a := range batch {
			if a.err != nil {
				c.notAcked.Inc()
				c.log.Error("mqttclient: message not acknowledged; reconnecting for redelivery", "topic", a.m.Topic(), "err", a.err)
				c.kick()
			} else {
				a.m.Ack()
			}
			batch[i] = ackItem{}
			c.hold(-1)
			<-c.slots
			c.handlers.Done()
		}
	}
}

type ackItem struct {
	m   paho.Message
	err error
}

// acker is the queue between the store's callbacks and runAcker. It
// never holds more than MaxInFlight messages (one per slot).
type acker struct {
	mu     sync.Mutex
	items  []ackItem
	closed bool
	wake   chan struct{}
	once   sync.Once
}

func (a *acker) init() { a.once.Do(func() { a.wake = make(chan struct{}, 1) }) }

func (a *acker) push(m paho.Message, err error) {
	a.init()
	a.mu.Lock()
	a.items = append(a.items, ackItem{m: m, err: err})
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// take swaps the queued items into buf, waiting for some; it returns nil
// once the queue is closed and empty.
func (a *acker) take(buf []ackItem) []ackItem {
	a.init()
	for {
		a.mu.Lock()
		if len(a.items) > 0 {
			items := a.items
			a.items = buf
			a.mu.Unlock()
			return items
		}
		if a.closed {
			a.closed = false // the next Run starts a new acker
			a.mu.Unlock()
			return nil
		}
		a.mu.Unlock()
		<-a.wake
	}
}

func (a *acker) close() {
	a.init()
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// String describes the client for logs without its password.
func (c *Client) String() string {
	return fmt.Sprintf("mqttclient(%s as %q)", c.opts.URL, c.opts.ClientID)
}
