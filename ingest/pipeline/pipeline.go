// Package pipeline is the one path every MQTT message takes, whichever
// front end delivered it (the embedded broker or the external client):
// route the topic to its device, check size and encoding, decode once,
// normalise into readings, append them durably, update device state.
//
// Handle returns nil when the message has been dealt with — its readings are
// on disk, or it was rejected and dead-lettered — and only then may the front
// end acknowledge it. It returns an error when the store could not write:
// the message must not be acknowledged, so the broker redelivers it.
//
// A full disk does not silence the safety rules: readings the store refuses
// are handed to Options.Unstored (the rules engine evaluates them in memory
// and notifies), and while the store says the disk is full
// (store.ErrDiskFull) Handle keeps the message unacknowledged and tries
// again until there is room or ctx ends. Holding it is the flow control:
// the broker sends a client no more than its in-flight window and keeps
// the rest.
//
// HandleAsync is the same path for a front end that acknowledges later
// (the embedded broker): it decodes at once and calls done when the
// readings are durable, so a connection goes on reading while its earlier
// messages wait for the group commit; a full disk's wait happens on one
// holder goroutine for all held messages.
//
// Bad input never blocks good input: rejection is decided before the store
// is touched, dead letters are written asynchronously, and the log line for
// each rejection reason is rate-limited. Handle and HandleAsync are
// safe for concurrent use; concurrency is bounded by the callers (the
// embedded broker's window of unacknowledged publishes per client, a
// capped number of messages in flight for the external client).
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
)

// Reasons the pipeline itself rejects a message for (decoders add theirs).
const (
	ReasonOversized     = "oversized"
	ReasonUnknownDevice = "unknown_device"
	ReasonBadTopic      = "bad_topic"
)

// Message is one MQTT publish as delivered by a front end.
type Message struct {
	Topic    string
	Payload  []byte
	Received time.Time
	// Client is the MQTT client id or username, for dead letters and logs.
	Client string
}

// Store is what the pipeline needs from the durable store.
type Store interface {
	Append(ctx context.Context, rs []reading.Reading) error
	AddDeadLetter(dl store.DeadLetter)
}

// PriorityStore is a Store that lets a safety device's messages use the
// reserve kept on a full disk (store.Store.AppendPriority).
type PriorityStore interface {
	AppendPriority(ctx context.Context, rs []reading.Reading) error
}

// AsyncStore is a Store that appends without waiting
// (store.Store.AppendAsync); HandleAsync needs it to return before the
// readings are durable.
type AsyncStore interface {
	AppendAsync(rs []reading.Reading, priority bool, then func(error))
}

// Options configure a Pipeline.
type Options struct {
	Facility string
	Location *time.Location
	Devices  []facility.Device
	Decoders map[string]decode.Decoder
	Store    Store
	State    *devstate.Tracker // optional
	// MaxPayload is the largest accepted payload in bytes.
	MaxPayload int
	// MaxClockSkew: a device timestamp later than receive+MaxClockSkew, or
	// earlier than receive-24h-MaxClockSkew, is replaced by the receive time.
	MaxClockSkew time.Duration
	// Ignore lists topic prefixes that are infrastructure chatter, not device
	// data (Zigbee2MQTT bridge logs, Home Assistant discovery); they are
	// counted and dropped without a dead letter.
	Ignore []string
	// Unrouted, when set, is offered every message no configured device
	// publishes under, before it is ignored or dead-lettered: device
	// announcements for onboarding (Zigbee2MQTT bridge/devices, Home
	// Assistant and Tasmota discovery, Homie $description). It returns
	// whether it took the message, which is then counted as ignored, not
	// dead-lettered. It runs on the front end's goroutine: it must be
	// quick.
	Unrouted func(topic string, payload []byte) bool
	// Unstored is given readings the store refused, once per message,
	// before Handle waits for room (full disk) or returns the error: the
	// rules engine evaluates them in memory. Optional.
	Unstored func(ctx context.Context, rs []reading.Reading)
	// RetryEvery is how often Handle tries a full disk again (default 1s).
	RetryEvery time.Duration
	// MaxPending bounds the messages HandleAsync has handed to the store
	// and not yet had answered (default 1024): beyond it HandleAsync waits
	// for a commit before queuing more. A commit takes what is queued, so
	// a thousand messages fill one; more would only hold memory. Messages
	// held for a full disk do not count.
	MaxPending int
	Logger     *slog.Logger
}

// route is what one topic prefix leads to: a device, or the devices that
// are channels of one multi-sensor board (config `channel`), which share
// the board's topic and are decoded once.
type route struct {
	// dev is the board's device without a channel, else its first
	// channel's: it names the route in logs and dead letters.
	dev  *facility.Device
	dec  decode.Decoder
	ddev decode.Device
	// members are every device on the prefix; byChannel those with a
	// channel, def the one without (nil when every member has one).
	members   []*facility.Device
	byChannel map[string]*facility.Device
	def       *facility.Device
	// safety: some member is a safety device, so the message may use
	// the store's reserve on a full disk.
	safety bool
	// bridge: the route of a bridge's state messages, which are not from
	// its devices: only a device with a reading of its own is touched.
	bridge bool
}

// add puts device d on the route.
func (r *route) add(d *facility.Device) {
	r.members = append(r.members, d)
	r.safety = r.safety || d.Kind.Safety()
	// A board's birth and will are set on any of its devices.
	r.ddev.Status.Topic = cmp.Or(d.StatusTopic, r.ddev.Status.Topic)
	r.ddev.Status.Online = cmp.Or(d.OnlinePayload, r.ddev.Status.Online)
	r.ddev.Status.Offline = cmp.Or(d.OfflinePayload, r.ddev.Status.Offline)
	if d.Channel == "" {
		r.def = d
		r.dev = d
		r.ddev.Kind, r.ddev.Invert = d.Kind, d.Invert
		return
	}
	if r.byChannel == nil {
		r.byChannel = map[string]*facility.Device{}
		r.ddev.Channels = map[string]decode.Channel{}
	}
	r.byChannel[d.Channel] = d
	r.ddev.Channels[d.Channel] = decode.Channel{Kind: d.Kind, Invert: d.Invert}
	if r.dev == nil {
		r.dev = d
		r.ddev.Kind, r.ddev.Invert = d.Kind, d.Invert
	}
}

// owner returns the member an observation of channel ch belongs to: the
// channel's device, else the board's device without a channel; nil when
// neither exists (a sensor of the board nobody configured).
func (r *route) owner(ch string) *facility.Device {
	if d := r.byChannel[ch]; d != nil {
		return d
	}
	return r.def
}

// Pipeline routes, decodes and stores messages.
type Pipeline struct {
	opts    Options
	routes  map[string]*route // topic prefix → device(s)
	depth   int               // most topic levels of any prefix
	byID    map[string]*facility.Device
	bridges map[string]*bridge // bridge base topic → the devices behind it
	log     *slog.Logger
	limiter *ratelog.Limiter
	m       *metrics

	pending chan struct{} // one token per HandleAsync message at the store

	holdMu  sync.Mutex
	held    []*heldMsg // refused by the store, for the holder goroutine
	holding bool       // a holder goroutine is running
}

// New builds the routing table. It fails when a device names an unknown
// format, or two devices claim the same topic prefix without being
// distinct channels of one board of one format.
func New(opts Options) (*Pipeline, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 64 << 10
	}
	if opts.MaxClockSkew <= 0 {
		opts.MaxClockSkew = 10 * time.Minute
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = time.Second
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1024
	}
	p := &Pipeline{
		opts:    opts,
		routes:  make(map[string]*route),
		byID:    make(map[string]*facility.Device),
		log:     opts.Logger,
		limiter: ratelog.New(10 * time.Second),
		m:       newMetrics(),
		pending: make(chan struct{}, opts.MaxPending),
	}
	for i := range opts.Devices {
		d := &opts.Devices[i]
		dec, ok := opts.Decoders[d.Format]
		if !ok {
			return nil, fmt.Errorf("pipeline: device %q: unknown format %q", d.ID, d.Format)
		}
		p.byID[d.ID] = d
		prefixes := dec.Prefixes(d.Topic)
		r := p.routes[prefixes[0]]
		if r == nil {
			r = &route{dec: dec, ddev: decode.Device{ID: d.ID, Base: d.Topic, Location: opts.Location}}
		} else if other := r.members[0]; other.Format != d.Format || other.Topic != d.Topic ||
			(d.Channel == "" && r.def != nil) || r.byChannel[d.Channel] != nil {
			return nil, fmt.Errorf("pipeline: devices %q and %q both publish under %q", other.ID, d.ID, prefixes[0])
		}
		r.add(d)
		for _, prefix := range prefixes {
			if other, dup := p.routes[prefix]; dup && other != r {
				return nil, fmt.Errorf("pipeline: devices %q and %q both publish under %q", other.dev.ID, d.ID, prefix)
			}
			p.routes[prefix] = r
			p.depth = max(p.depth, strings.Count(prefix, "/")+1)
		}
		if d.Bridge != "" {
			p.addBridge(d)
		}
		p.m.formatIn.WithLabelValues(d.Format)
	}
	return p, nil
}

// Register registers the pipeline's metrics with reg.
func (p *Pipeline) Register(reg prometheus.Registerer) error { return p.m.register(reg) }

// Prefixes returns the topic prefixes the device publishes under (nil for
// an unknown device). The embedded broker's ACLs use them.
func (p *Pipeline) Prefixes(deviceID string) []string {
	d := p.byID[deviceID]
	if d == nil {
		return nil
	}
	return p.opts.Decoders[d.Format].Prefixes(d.Topic)
}

// Subscriptions returns the topic filters that cover every device, for the
// external broker client.
func (p *Pipeline) Subscriptions() []string {
	return p.SubscriptionsOf(func(*facility.Device) bool { return true })
}

// SubscriptionsOf returns the topic filters of the devices keep selects
// (a board's topic when keep selects any of its channels).
func (p *Pipeline) SubscriptionsOf(keep func(*facility.Device) bool) []string {
	return p.subscriptionsWhere(func(r *route) bool { return slices.ContainsFunc(r.members, keep) })
}

func (p *Pipeline) subscriptionsWhere(keep func(*route) bool) []string {
	var out []string
	for prefix, r := range p.routes {
		if keep(r) {
			out = append(out, prefix, prefix+"/#")
		}
	}
	for base := range p.bridges {
		// The bridge's state decides whether its devices can be heard.
		if slices.ContainsFunc(p.bridges[base].devs, func(d *facility.Device) bool { return keep(p.lookup(d.Topic)) }) {
			out = append(out, base+"/bridge/state")
		}
	}
	return out
}

// SafetySplit returns the filters of the safety devices (reading.Kind.Safety:
// smoke detectors, panic buttons, doors…) and of the others, for two
// connections to an external broker: on a full disk the others' messages
// wait unacknowledged and fill their connection's in-flight window, while
// the safety devices' are stored in the reserve and keep flowing. ok is
// false when the split cannot be clean (no safety device, or a topic of
// one kind nested under the other's, which both connections would
// receive).
func (p *Pipeline) SafetySplit() (safety, other []string, ok bool) {
	for prefix, r := range p.routes {
		for other, o := range p.routes {
			if r.safety != o.safety && strings.HasPrefix(other, prefix+"/") {
				return nil, nil, false
			}
		}
	}
	// A board with a safety channel is a safety route as a whole.
	safety = p.subscriptionsWhere(func(r *route) bool { return r.safety })
	other = p.subscriptionsWhere(func(r *route) bool { return !r.safety })
	if len(p.bridges) > 0 {
		// A bridge's state topic must come once, on one connection.
		other = slices.DeleteFunc(other, func(f string) bool { return strings.HasSuffix(f, "/bridge/state") && slices.Contains(safety, f) })
	}
	return safety, other, len(safety) > 0
}

// lookup finds the device owning topic: the longest configured prefix that
// equals the topic or is followed by '/'. Topics are short, so trying each
// level is a handful of map lookups.
func (p *Pipeline) lookup(topic string) *route {
	var best *route
	level := 0
	for i := 0; i <= len(topic) && level < p.depth; i++ {
		if i == len(topic) || topic[i] == '/' {
			level++
			if r, ok := p.routes[topic[:i]]; ok {
				best = r
			}
		}
	}
	return best
}

// Handle processes one message. See the package doc for what nil means.
func (p *Pipeline) Handle(ctx context.Context, msg Message) error {
	r, rs := p.prepare(&msg)
	if r == nil {
		return nil
	}
	if len(rs) > 0 {
		if err := p.store(ctx, r, rs); err != nil {
			p.m.storeFailed.Inc()
			return fmt.Errorf("pipeline: store readings of %s: %w", r.dev.ID, err)
		}
	}
	p.stored(r, &msg, rs)
	return nil
}

// HandleAsync is Handle for a front end that acknowledges later (the
// embedded broker): done is called exactly once with what Handle would
// have returned, possibly before HandleAsync returns, possibly on the
// store's writer goroutine, so it must be quick. Decoding happens before
// HandleAsync returns; only the wait for the disk is left to done. The
// caller bounds how many messages it has waiting.
func (p *Pipeline) HandleAsync(ctx context.Context, msg Message, done func(error)) {
	as, ok := p.opts.Store.(AsyncStore)
	if !ok {
		done(p.Handle(ctx, msg))
		return
	}
	r, rs := p.prepare(&msg)
	if r == nil {
		done(nil)
		return
	}
	if len(rs) == 0 {
		p.stored(r, &msg, nil)
		done(nil)
		return
	}
	select {
	case p.pending <- struct{}{}:
	case <-ctx.Done():
		p.m.storeFailed.Inc()
		done(fmt.Errorf("pipeline: store readings of %s: %w", r.dev.ID, ctx.Err()))
		return
	}
	as.AppendAsync(rs, r.safety, func(err error) {
		<-p.pending
		if err == nil {
			p.stored(r, &msg, rs)
			done(nil)
			return
		}
		if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			p.m.storeFailed.Inc()
			done(fmt.Errorf("pipeline: store readings of %s: %w", r.dev.ID, err))
			return
		}
		// Not on the writer goroutine: the safety rules' in-memory
		// evaluation and the wait for room happen on the holder's.
		p.hold(&heldMsg{ctx: ctx, r: r, msg: msg, rs: rs, err: err, done: done})
	})
}

// prepare routes, checks, decodes and normalises a message. It returns a
// nil route when the message has been dealt with (ignored or rejected).
func (p *Pipeline) prepare(msg *Message) (*route, []reading.Reading) {
	if msg.Received.IsZero() {
		msg.Received = time.Now()
	}
	r := p.lookup(msg.Topic)
	if !utf8.ValidString(msg.Topic) {
		// MQTT requires UTF-8 topics. Check before decoding: formats that
		// read meaning from topic levels (ESPHome object ids, Homie
		// properties) would otherwise store a reading from one.
		var dev *facility.Device
		if r != nil {
			dev = r.dev
		}
		p.reject(*msg, dev, ReasonBadTopic, fmt.Errorf("topic %q is not valid UTF-8", msg.Topic))
		return nil, nil
	}
	if r == nil {
		if b := p.bridgeOf(msg.Topic); b != nil {
			return p.bridgeState(b, msg)
		}
		if p.opts.Unrouted != nil && p.opts.Unrouted(msg.Topic, msg.Payload) {
			p.m.ignored.Inc()
			return nil, nil
		}
		for _, ig := range p.opts.Ignore {
			if msg.Topic == ig || strings.HasPrefix(msg.Topic, ig+"/") {
				p.m.ignored.Inc()
				return nil, nil
			}
		}
		for base := range p.bridges {
			if strings.HasPrefix(msg.Topic, base+"/bridge/") {
				p.m.ignored.Inc() // the bridge's logs, device list, events
				return nil, nil
			}
		}
		p.reject(*msg, nil, ReasonUnknownDevice, fmt.Errorf("no configured device publishes under topic %q", msg.Topic))
		return nil, nil
	}
	p.m.formatIn.WithLabelValues(r.dev.Format).Inc()
	if len(msg.Payload) > p.opts.MaxPayload {
		p.reject(*msg, r.dev, ReasonOversized, fmt.Errorf("payload of %d bytes exceeds the limit of %d", len(msg.Payload), p.opts.MaxPayload))
		return nil, nil
	}
	res, err := r.dec.Decode(r.ddev, msg.Topic, msg.Payload)
	if err != nil {
		p.reject(*msg, r.dev, decode.ReasonOf(err), fmt.Errorf("decode %s payload on %q: %w", r.dev.Format, msg.Topic, err))
		return nil, nil
	}
	if res.Ignored {
		p.m.ignored.Inc()
		return nil, nil
	}
	for _, rerr := range res.Rejected {
		// Part of the message was implausible: keep the evidence, store the rest.
		p.reject(*msg, r.dev, decode.ReasonOf(rerr), fmt.Errorf("decode %s payload on %q: dropped one value, kept the others: %w", r.dev.Format, msg.Topic, rerr))
	}
	return r, p.normalise(r, *msg, res)
}

// stored accounts for a message whose readings (if any) are durable: each
// device of the route has its own readings. A device that is one channel
// of a board lives by its own readings and the board's device-wide ones
// (its LWT) only: Tasmota simply leaves out a DS18B20 that stopped
// answering, so the board's other messages must not keep the dead probe
// looking alive. The board's device without a channel takes every message
// as a sign of life.
func (p *Pipeline) stored(r *route, msg *Message, rs []reading.Reading) {
	if len(rs) > 0 {
		p.m.readings.Add(float64(len(rs)))
		p.m.latency.Observe(time.Since(msg.Received).Seconds())
	} else {
		p.m.heartbeats.Inc()
	}
	if p.opts.State == nil {
		return
	}
	if len(r.members) == 1 && r.def != nil {
		p.opts.State.Observe(r.members[0].ID, msg.Received, rs)
		return
	}
	for _, d := range r.members {
		// rs is grouped by device (normalise, bridgeState), so each
		// device's is a run.
		i := slices.IndexFunc(rs, func(x reading.Reading) bool { return x.Device == d.ID })
		var own []reading.Reading
		if i >= 0 {
			j := i
			for j < len(rs) && rs[j].Device == d.ID {
				j++
			}
			own = rs[i:j]
		} else if r.bridge || d.Channel != "" {
			continue
		}
		p.opts.State.Observe(d.ID, msg.Received, own)
	}
}

// store appends readings; see Handle for what happens when the store
// refuses them.
func (p *Pipeline) store(ctx context.Context, r *route, rs []reading.Reading) error {
	dev := r.dev
	appendFn := p.appendFn(r)
	err := appendFn(ctx, rs)
	if err == nil || ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
		return err
	}
	p.refused(ctx, rs)
	if !errors.Is(err, store.ErrDiskFull) {
		return err
	}
	p.m.waiting.Inc()
	defer p.m.waiting.Dec()
	p.logDiskFull(dev, err)
	t := time.NewTicker(p.opts.RetryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for room on a full disk: %w", ctx.Err())
		case <-t.C:
		}
		if err = appendFn(ctx, rs); err == nil || !errors.Is(err, store.ErrDiskFull) {
			return err
		}
	}
}

func (p *Pipeline) appendFn(r *route) func(context.Context, []reading.Reading) error {
	if pa, ok := p.opts.Store.(PriorityStore); ok && r.safety {
		return pa.AppendPriority
	}
	return p.opts.Store.Append
}

// refused hands readings the store refused to the safety rules.
func (p *Pipeline) refused(ctx context.Context, rs []reading.Reading) {
	p.m.unstored.Add(float64(len(rs)))
	if p.opts.Unstored != nil {
		p.opts.Unstored(ctx, rs)
	}
}

func (p *Pipeline) logDiskFull(dev *facility.Device, err error) {
	if n, ok := p.limiter.AllowCount("disk_full"); ok {
		p.log.Warn("pipeline: disk full; holding messages unacknowledged until there is room (the safety rules still see them)",
			"device", dev.ID, "err", err, "suppressed_since_last", n)
	}
}

// normalise turns a decode result into readings of the facility, each
// for the device of the route its channel belongs to, grouped by device
// in the order of the route's members. An observation without a channel
// (availability, a battery level, a format without sub-sensors) is about
// the whole board and goes to every member; one of a channel no member
// claims (and no member without a channel takes) is counted and dropped.
func (p *Pipeline) normalise(r *route, msg Message, res decode.Result) []reading.Reading {
	d := r.dev
	at := msg.Received
	if !res.Time.IsZero() {
		if res.Time.After(msg.Received.Add(p.opts.MaxClockSkew)) || res.Time.Before(msg.Received.Add(-24*time.Hour-p.opts.MaxClockSkew)) {
			p.m.clockSkew.Inc()
			if p.limiter.Allow("clock_skew:" + d.ID) {
				p.log.Warn("pipeline: device clock off, using receive time", "device", d.ID,
					"device_time", res.Time, "received", msg.Received)
			}
		} else {
			at = res.Time
		}
	}
	mk := func(dev *facility.Device, o *decode.Observation) reading.Reading {
		return reading.Reading{
			Facility: p.opts.Facility, Device: dev.ID, Zone: dev.Zone, Kind: o.Kind, Format: dev.Format,
			Time: at, Received: msg.Received, Value: o.Value, Channel: o.Channel,
			Battery: res.Battery, LinkQuality: res.LinkQuality,
		}
	}
	if res.Removed {
		rs := make([]reading.Reading, 0, len(r.members))
		for _, m := range r.members {
			o := decode.Observation{Kind: reading.KindReach, Value: reading.State(reading.ReachRemoved)}
			rs = append(rs, mk(m, &o))
		}
		return rs
	}
	rs := make([]reading.Reading, 0, len(res.Observations))
	if len(r.members) == 1 && r.byChannel == nil {
		for i := range res.Observations {
			rs = append(rs, mk(d, &res.Observations[i]))
		}
		return rs
	}
	for _, m := range r.members {
		for i := range res.Observations {
			o := &res.Observations[i]
			if o.Channel == "" || r.owner(o.Channel) == m {
				rs = append(rs, mk(m, o))
			}
		}
	}
	for i := range res.Observations {
		if o := &res.Observations[i]; o.Channel != "" && r.owner(o.Channel) == nil {
			p.m.unmapped.Inc()
			if n, ok := p.limiter.AllowCount("unmapped:" + d.Topic); ok {
				p.log.Info("pipeline: reading of a sensor no device is configured for; add a device with this channel to keep it",
					"topic", msg.Topic, "channel", o.Channel, "kind", o.Kind, "suppressed_since_last", n)
			}
		}
	}
	return rs
}

// reject counts, logs (rate-limited) and dead-letters a message.
func (p *Pipeline) reject(msg Message, d *facility.Device, reason string, err error) {
	p.m.deadLettered.WithLabelValues(reason).Inc()
	dev := ""
	if d != nil {
		dev = d.ID
	}
	if n, ok := p.limiter.AllowCount(reason); ok {
		p.log.Warn("pipeline: message rejected", "reason", reason, "topic", msg.Topic,
			"device", dev, "client", msg.Client, "err", err, "suppressed_since_last", n)
	}
	p.opts.Store.AddDeadLetter(store.DeadLetter{
		Time: msg.Received, Topic: msg.Topic, Device: dev, Reason: reason, Error: err.Error(), Payload: msg.Payload,
	})
}
