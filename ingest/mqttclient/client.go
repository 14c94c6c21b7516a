// Package mqttclient consumes sensor data from an external MQTT broker
// (Mosquitto, EMQX, a Zigbee2MQTT installation's broker) with paho.
//
// Delivery: QoS 1 subscriptions on a persistent session (stable client id,
// clean session off), so the broker keeps messages while the gateway is
// away; automatic acknowledgement is off and a message is acknowledged only
// after the pipeline has stored it durably, so nothing acknowledged is lost.
//
// Concurrency and backpressure: paho runs each message's handler on its own
// goroutine (order does not matter: readings carry their own time), so the
// handler may wait without stalling paho's network loop and its keepalives.
// At most MaxInFlight messages are in the pipeline at once; further handlers
// wait for a slot, and the broker's own in-flight window (Mosquitto's
// max_inflight_messages) bounds how many wait.
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
	MaxInFlight   int           // default 1000
	ReconnectMin  time.Duration // default 500ms
	ReconnectMax  time.Duration // default 30s
	KeepAlive     time.Duration // default 30s
	Handle        func(ctx context.Context, msg pipeline.Message) error
	Logger        *slog.Logger
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
	if opts.Handle == nil {
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
			Help: "Messages taken from the broker and not yet acknowledged."}),
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
		SetOrderMatters(false).
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
	po.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.handle(ctx, m) })
	po.SetOnConnectHandler(func(cl paho.Client) { c.subscribe(ctx, cl) })
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		c.setConnected(false)
		c.log.Warn("mqttclient: connection lost", "broker", c.opts.URL, "err", err)
		c.kick()
	})
	cl := paho.NewClient(po)
	c.pc.Store(&cl)
	defer c.pc.Store(nil)

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

// handle runs on a goroutine of its own (SetOrderMatters(false)).
func (c *Client) handle(ctx context.Context, m paho.Message) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return // not acknowledged: redelivered on the next session
	}
	c.inFlight.Inc()
	defer func() { <-c.slots; c.inFlight.Dec() }()
	msg := pipeline.Message{Topic: m.Topic(), Payload: m.Payload(), Received: time.Now(), Client: c.opts.ClientID}
	if err := c.opts.Handle(ctx, msg); err != nil {
		c.notAcked.Inc()
		c.log.Error("mqttclient: message not acknowledged; reconnecting for redelivery", "topic", m.Topic(), "err", err)
		c.kick()
		return
	}
	m.Ack()
}

// String describes the client for logs without its password.
func (c *Client) String() string {
	return fmt.Sprintf("mqttclient(%s as %q)", c.opts.URL, c.opts.ClientID)
}
