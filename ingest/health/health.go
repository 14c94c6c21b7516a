// Package health turns the condition of the gateway's own parts into
// readings of built-in gateway devices, so that the rules engine raises,
// escalates, silences and audits a gateway fault exactly as it does a
// smoke alarm: one alarm path, one lifecycle, one API.
//
// Each part that owns some state reports on it (the camera set on its
// cameras' video, each InfluxDB forwarder on its delivery, the store on
// data it had to delete, the audit log on its writes): Set with the
// device's current condition, OK or a short English text saying what is
// wrong. A Reporter writes a fault reading (kind "fault", a state value)
// to the store only when a device's condition changes, so a steady
// condition costs nothing. Event reports something that happened once (data
// deleted): a fault immediately followed by OK, which a latched rule keeps
// open until a manager resets it.
//
// # Concurrency and backpressure
//
// Set and Event never block: the part reporting a fault may be the one in
// trouble (the store, during its own maintenance). They queue the reading;
// Run, the Reporter's one goroutine, appends the queue to the store. A
// failed append is retried with backoff. The queue holds at most
// MaxQueued readings; beyond that the oldest are dropped, counted and
// logged (faults change rarely: a full queue means the store has been
// failing for a long time, itself alarmed through the pipeline).
package health

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/backoff"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
)

// OK is the condition of a part that works.
const OK = "ok"

// DevicePrefix starts every built-in gateway device id. Configured device
// ids cannot contain '.', so they never collide with these.
const DevicePrefix = "gateway."

// Built-in gateway devices.
const (
	// StoreDevice reports readings the store deleted before every
	// InfluxDB target had them (an Event).
	StoreDevice = DevicePrefix + "store"
	// StoreBudgetDevice reports unforwarded readings filling the store's
	// disk budget (before any is lost).
	StoreBudgetDevice = DevicePrefix + "store-budget"
	// DiskDevice reports a disk so full that readings are refused.
	DiskDevice = DevicePrefix + "disk"
	// AuditDevice reports failed writes to the audit log.
	AuditDevice = DevicePrefix + "audit"
	// ClockDevice reports a system clock that is not set or jumped.
	ClockDevice = DevicePrefix + "clock"
	// BackupDevice reports a nightly backup that failed (until one
	// succeeds).
	BackupDevice = DevicePrefix + "backup"
)

// CameraDevice is the device that reports whether camera id shows video.
func CameraDevice(id string) string { return DevicePrefix + "camera." + id }

// ForwardDevice is the device that reports whether InfluxDB target
// delivers.
func ForwardDevice(target string) string { return DevicePrefix + "influx." + target }

// ForwardAuthDevice is the device that reports whether InfluxDB target
// accepts the gateway's credentials.
func ForwardAuthDevice(target string) string { return DevicePrefix + "influx-auth." + target }

// CertDevice is the device that reports whether TLS certificate name
// (http, broker…) is valid and not about to expire.
func CertDevice(name string) string { return DevicePrefix + "tls." + name }

// MaxQueued bounds the readings waiting for the store.
const MaxQueued = 1024

// Appender is the durable store.
type Appender interface {
	Append(ctx context.Context, rs []reading.Reading) error
}

// Options configure a Reporter.
type Options struct {
	Facility string
	// Zones maps a device to its zone ("" for gateway-wide devices).
	Zones map[string]string
	Store Appender
	// Unstored is given fault readings the store refused, so the rules
	// see them in memory (the disk-full alarm must fire on a full disk).
	// Optional; it may be given the same readings again on each retry.
	Unstored func(ctx context.Context, rs []reading.Reading)
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Reporter queues the gateway's fault readings and appends them to the
// store. Set and Event are safe for concurrent use.
type Reporter struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	current map[string]string // last condition queued per device
	queue   []reading.Reading
	wake    chan struct{}

	written, dropped prometheus.Counter
	logLimit         *ratelog.Limiter
}

// New returns a Reporter; Run must run for readings to reach the store.
func New(opts Options) *Reporter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reporter{
		opts:     opts,
		log:      opts.Logger,
		current:  map[string]string{},
		logLimit: ratelog.New(30 * time.Second),
		wake:     make(chan struct{}, 1),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_health_readings_total",
			Help: "Fault readings of the gateway's own devices written to the store."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_health_readings_dropped_total",
			Help: "Fault readings dropped because the store refused them for too long."}),
	}
}

// Register adds the reporter's metrics to reg.
func (r *Reporter) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{r.written, r.dropped} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("health: register metrics: %w", err)
		}
	}
	return nil
}

// Set reports device's current condition (OK or the fault). Only a change
// is written; the first report of a device is written whatever it says,
// so a fault that cleared while the gateway was down clears its alarm.
func (r *Reporter) Set(device, condition string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, seen := r.current[device]
	if seen && prev == condition {
		return
	}
	r.current[device] = condition
	switch {
	case condition != OK:
		r.log.Warn("gateway fault", "device", device, "fault", condition)
	case seen:
		r.log.Info("gateway fault cleared", "device", device)
	}
	r.enqueueLocked(device, condition)
}

// Event reports a fault that happened once: a fault reading, then OK.
func (r *Reporter) Event(device, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log.Error("gateway fault", "device", device, "fault", what)
	r.enqueueLocked(device, what)
	r.enqueueLocked(device, OK)
	r.current[device] = OK
}

func (r *Reporter) enqueueLocked(device, condition string) {
	now := r.opts.Now()
	if len(r.queue) >= MaxQueued {
		r.queue = r.queue[1:]
		r.dropped.Inc()
		r.log.Error("health: fault queue full (the store refuses writes); dropped the oldest fault reading")
	}
	r.queue = append(r.queue, reading.Reading{Facility: r.opts.Facility, Device: device, Zone: r.opts.Zones[device],
		Kind: reading.KindFault, Value: reading.State(condition), Time: now, Received: now})
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run appends queued readings to the store until ctx ends; what is queued
// then is appended once more (the store closes after the Reporter).
func (r *Reporter) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			r.flush(context.WithoutCancel(ctx))
			return nil
		case <-r.wake:
		}
		for attempt := 0; !r.flush(ctx); attempt++ {
			t := time.NewTimer(backoff.Delay(attempt, 100*time.Millisecond, 10*time.Second))
			select {
			case <-ctx.Done():
				t.Stop()
				r.flush(context.WithoutCancel(ctx))
				return nil
			case <-t.C:
			}
		}
	}
}

// flush appends the queue; false when the store refused it (the queue is
// kept).
func (r *Reporter) flush(ctx context.Context) bool {
	r.mu.Lock()
	batch := r.queue
	r.queue = nil
	r.mu.Unlock()
	if len(batch) == 0 {
		return true
	}
	// Not cancelled by shutdown: an append the store has taken may commit
	// even when the wait for it is cut short, and retrying it would write
	// the readings twice. The store closes after the reporter.
	if err := r.opts.Store.Append(context.WithoutCancel(ctx), batch); err != nil {
		if n, ok := r.logLimit.AllowCount("refused"); ok {
			r.log.Error("health: store refused fault readings; retrying", "readings", len(batch), "err", err, "suppressed_since_last", n)
		}
		if r.opts.Unstored != nil {
			r.opts.Unstored(ctx, batch)
		}
		r.mu.Lock()
		r.queue = append(batch, r.queue...)
		if over := len(r.queue) - MaxQueued; over > 0 {
			r.queue = r.queue[over:]
			r.dropped.Add(float64(over))
		}
		r.mu.Unlock()
		return false
	}
	r.written.Add(float64(len(batch)))
	return true
}
