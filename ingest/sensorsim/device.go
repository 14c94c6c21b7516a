package sensorsim

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Connection and publishing limits.
const (
	connectTimeout  = 5 * time.Second
	publishTimeout  = 5 * time.Second
	shutdownTimeout = time.Second // for the goodbye message and DISCONNECT
	backoffMin      = 500 * time.Millisecond
	backoffMax      = 30 * time.Second // mean; each wait is jittered ±50 %
	stableAfter     = time.Minute      // a connection that lasted this long resets the backoff
	keepAlive       = 30 * time.Second
)

// Event follow-up durations (real time).
const (
	doorOpenMin, doorOpenMax             = 20 * time.Second, 90 * time.Second
	smokeMin, smokeMax                   = 50 * time.Second, 70 * time.Second
	heatingFailureMin, heatingFailureMax = 30 * time.Minute, 45 * time.Minute
)

// deviceRunner owns one device: its State, MQTT client and timers. Only its
// run goroutine touches them; the scheduler talks to it through events.
type deviceRunner struct {
	dev    Device
	opts   *Options
	rng    *rand.Rand
	st     State
	events chan event // buffered 1; the scheduler never blocks on it

	client    mqtt.Client
	lost      chan error // from paho's connection-lost callback, buffered 1
	connected bool

	inEvent  event // the event being played out, 0 when none
	followUp *time.Timer
}

func newDeviceRunner(d Device, opts *Options, rng *rand.Rand) *deviceRunner {
	r := &deviceRunner{
		dev:    d,
		opts:   opts,
		rng:    rng,
		events: make(chan event, 1),
		lost:   make(chan error, 1),
	}
	r.st = NewState(d, opts.Clock(), rng)

	will := Will(d)
	co := mqtt.NewClientOptions().
		AddBroker(opts.Broker).
		SetClientID("sim-"+d.ID).
		SetCleanSession(true).
		SetAutoReconnect(false). // we reconnect ourselves, with jitter and ctx
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(publishTimeout).
		SetKeepAlive(keepAlive).
		SetBinaryWill(will.Topic, will.Payload, QoS, will.Retained).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case r.lost <- err:
			default:
			}
		})
	if d.Username != "" || d.Password != "" {
		user := d.Username
		if user == "" {
			user = d.ID
		}
		co.SetUsername(user).SetPassword(d.Password)
	}
	r.client = mqtt.NewClient(co)
	return r
}

// trySend hands ev to the device without blocking; it reports whether the
// device took it.
func (r *deviceRunner) trySend(ev event) bool {
	select {
	case r.events <- ev:
		return true
	default:
		return false
	}
}

// logAt logs msg with args and the device id.
func (r *deviceRunner) logAt(level slog.Level, msg string, args ...any) {
	r.opts.Logger.Log(context.Background(), level, msg, append(args, "device", r.dev.ID)...)
}

// run is the device's life: connect (and reconnect), publish its birth and
// reports, play out events, and say goodbye when ctx is done.
func (r *deviceRunner) run(ctx context.Context) {
	r.followUp = time.NewTimer(time.Hour)
	r.followUp.Stop()
	defer r.followUp.Stop()

	report := time.NewTimer(time.Hour)
	report.Stop()
	defer report.Stop()
	var reportEvery time.Duration

	reconnect := time.NewTimer(0) // connect at once
	defer reconnect.Stop()
	// backoff grows with every failed attempt and every connection that
	// did not last; a connection that held for stableAfter resets it.
	backoff := backoffMin
	retry := func() time.Duration {
		wait := jitter(r.rng, backoff)
		backoff = min(2*backoff, backoffMax)
		reconnect.Reset(wait)
		return wait
	}
	var connectedAt time.Time

	var connecting mqtt.Token
	var connectDone <-chan struct{}

	for {
		select {
		case <-ctx.Done():
			r.stop(connecting)
			return

		case <-reconnect.C:
			connecting = r.client.Connect()
			connectDone = connecting.Done()

		case <-connectDone:
			connectDone = nil
			err := connecting.Error()
			connecting = nil
			if err != nil {
				wait := retry()
				r.logAt(slog.LevelWarn, "sensorsim: connect failed", "broker", r.opts.Broker, "retry_in", wait, "error", err)
				continue
			}
			r.connected = true
			connectedAt = time.Now()
			r.logAt(slog.LevelDebug, "sensorsim: connected", "broker", r.opts.Broker)
			r.publish(ctx, Birth(r.dev))
			r.publish(ctx, Report(r.dev, r.st, r.opts.Clock(), r.opts.Location))
			reportEvery = jitter(r.rng, r.opts.Interval)
			report.Reset(reportEvery)

		case err := <-r.lost:
			r.connected = false
			if time.Since(connectedAt) >= stableAfter {
				backoff = backoffMin
			}
			wait := retry()
			r.logAt(slog.LevelWarn, "sensorsim: connection lost", "retry_in", wait, "error", err)

		case <-report.C:
			r.st.Step(r.rng, reportEvery)
			if r.connected {
				r.publish(ctx, Report(r.dev, r.st, r.opts.Clock(), r.opts.Location))
			}
			reportEvery = jitter(r.rng, r.opts.Interval)
			report.Reset(reportEvery)

		case ev := <-r.events:
			r.start(ctx, ev)

		case <-r.followUp.C:
			r.finish(ctx)
		}
	}
}

// start begins event ev on this device, unless the device cannot show it.
func (r *deviceRunner) start(ctx context.Context, ev event) {
	switch {
	case !r.connected:
		r.logAt(slog.LevelDebug, "sensorsim: event skipped, device offline", "event", ev.String())
		return
	case r.inEvent != 0:
		r.logAt(slog.LevelDebug, "sensorsim: event skipped, device busy", "event", ev.String(), "busy_with", r.inEvent.String())
		return
	}
	r.inEvent = ev
	r.logAt(slog.LevelInfo, "sensorsim: event", "event", ev.String())
	switch ev {
	case eventDoorOpenAtNight:
		r.st.Active = true
		r.followUp.Reset(between(r.rng, doorOpenMin, doorOpenMax))
		r.publish(ctx, Change(r.dev, r.st, r.opts.Clock(), r.opts.Location))
	case eventKitchenSmoke:
		r.st.Active = true
		r.followUp.Reset(between(r.rng, smokeMin, smokeMax))
		r.publish(ctx, Change(r.dev, r.st, r.opts.Clock(), r.opts.Location))
	case eventHeatingFailure:
		// Nothing to publish yet: the room cools over the next reports.
		r.st.heatingFailure = true
		r.followUp.Reset(between(r.rng, heatingFailureMin, heatingFailureMax))
	}
}

// finish ends the event in progress: the door closes, the smoke clears, the
// heating comes back.
func (r *deviceRunner) finish(ctx context.Context) {
	ev := r.inEvent
	r.inEvent = 0
	r.logAt(slog.LevelDebug, "sensorsim: event over", "event", ev.String())
	switch ev {
	case eventDoorOpenAtNight, eventKitchenSmoke:
		r.st.Active = false
		if r.connected {
			r.publish(ctx, Change(r.dev, r.st, r.opts.Clock(), r.opts.Location))
		}
	case eventHeatingFailure:
		r.st.heatingFailure = false
	}
}

// publish sends msgs in order at QoS 1, waiting (bounded) for each
// acknowledgement so that a slow broker slows only this device.
func (r *deviceRunner) publish(ctx context.Context, msgs []Message) {
	for _, m := range msgs {
		tok := r.client.Publish(m.Topic, QoS, m.Retained, m.Payload)
		if err := waitToken(ctx, tok, publishTimeout); err != nil {
			if ctx.Err() == nil {
				r.logAt(slog.LevelWarn, "sensorsim: publish failed", "topic", m.Topic, "error", err)
			}
			return
		}
	}
}

// stop says goodbye: the clean-shutdown availability, then DISCONNECT (so the
// broker does not publish the will). A connection attempt in flight is
// abandoned and awaited.
func (r *deviceRunner) stop(connecting mqtt.Token) {
	if r.connected && r.client.IsConnectionOpen() {
		m := Shutdown(r.dev)
		tok := r.client.Publish(m.Topic, QoS, m.Retained, m.Payload)
		if err := waitToken(context.Background(), tok, shutdownTimeout); err != nil {
			r.logAt(slog.LevelDebug, "sensorsim: goodbye not acknowledged", "error", err)
		}
	}
	r.client.Disconnect(uint(shutdownTimeout / time.Millisecond))
	if connecting != nil {
		connecting.WaitTimeout(connectTimeout)
	}
}

var errTimeout = errors.New("timed out waiting for the broker")

// waitToken waits for tok, at most d, or until ctx is done.
func waitToken(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errTimeout
	}
}

// jitter returns a duration drawn uniformly from [d/2, 3d/2).
func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	return d/2 + time.Duration(rng.Int64N(int64(d)+1))
}

// between returns a duration drawn uniformly from [lo, hi].
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}
