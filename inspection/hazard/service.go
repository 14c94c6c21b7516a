package hazard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/internal/atomicfile"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// StateFile is the hazard list's file in the gateway's alarms directory.
const StateFile = "hazards.json"

// MaxQueued bounds the alarm events waiting for the Service.
const MaxQueued = 10000

// stepGap is the least time between two steps prompted by alarm events.
// The list judges spans of days; a second's delay costs nothing there.
const stepGap = time.Second

// OverdueDevicePrefix starts the built-in gateway devices that report a
// zone's overdue items.
const OverdueDevicePrefix = "gateway.hazards"

// OverdueDevice is the built-in device that reports the overdue items of
// zone ("" for items of no zone).
func OverdueDevice(zone string) string {
	if zone == "" {
		return OverdueDevicePrefix
	}
	return OverdueDevicePrefix + "." + zone
}

// Alarms is the rules engine, as the Service reads it.
type Alarms interface {
	Active(ctx context.Context) ([]alarm.Alarm, error)
}

// Faults reports a built-in device's condition ("ok" or the fault), as
// ingest/health's Reporter does.
type Faults interface {
	Set(device, condition string)
}

// Auditor is the audit log.
type Auditor interface {
	Append(entries ...audit.Entry) error
}

// Options configure a Service.
type Options struct {
	Config Config
	// Dir holds the state file.
	Dir    string
	Audit  Auditor
	Alarms Alarms
	Faults Faults
	// TickEvery is how often conditions and deadlines are judged
	// (default 30s).
	TickEvery time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service owns the hazard list: one goroutine (Run) drives its Core.
type Service struct {
	opts Options
	log  *slog.Logger
	core *Core
	reqs chan func()

	mu      sync.Mutex
	events  []alarm.Event
	wake    chan struct{}
	dropped prometheus.Counter
	open    *prometheus.GaugeVec

	// reported is what each overdue device last said: the ids of its
	// zone's overdue items.
	reported map[string][]string
	// unaudited entries are retried before anything else is saved.
	unaudited []audit.Entry
	unsaved   bool
}

// New loads the hazard list from opts.Dir (an empty one when there is
// none yet).
func New(opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = 30 * time.Second
	}
	now := opts.Now()
	core, err := NewCore(opts.Config, now)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(opts.Dir, StateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("hazard: read state: %w", err)
	default:
		if err := core.Restore(b, now); err != nil {
			return nil, fmt.Errorf("hazard: %s: %w", filepath.Join(opts.Dir, StateFile), err)
		}
	}
	return &Service{
		opts: opts, log: opts.Logger, core: core, reqs: make(chan func()), wake: make(chan struct{}, 1),
		reported: map[string][]string{},
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_hazard_alarm_events_dropped_total",
			Help: "Alarm events the hazard list dropped because its queue was full."}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shelterwatch_hazard_items",
			Help: "Hazard list items by status (overdue: open past the deadline)."}, []string{"status"}),
	}, nil
}

// Register adds the Service's metrics to reg.
func (s *Service) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.dropped, s.open} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("hazard: register metrics: %w", err)
		}
	}
	return nil
}

// AlarmEvent takes an alarm event from the rules engine. It never blocks.
func (s *Service) AlarmEvent(ev alarm.Event) {
	if ev.Kind != alarm.EventFiring {
		return // only firings are counted; the rest is read from the open alarms
	}
	s.mu.Lock()
	if len(s.events) >= MaxQueued {
		s.events = s.events[1:]
		s.dropped.Inc()
	}
	s.events = append(s.events, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run judges the list every TickEvery and on alarm events (at most once
// per stepGap), and serves the API's requests, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	var (
		due      time.Time // the next regular step
		stepped  time.Time // the last step
		deferred bool      // alarm events wait for the next step
	)
	for {
		select {
		case <-ctx.Done():
			s.takeEvents() // deferred ones too
			s.flush()
			return nil
		case <-t.C:
			s.step(ctx)
			stepped, deferred = s.opts.Now(), false
			due = stepped.Add(s.opts.TickEvery)
		case <-s.wake:
			// A step saves the whole list (and syncs it). An alarm storm
			// (a door contact bouncing in the secure ward at night, a
			// backlog replayed after an outage) would otherwise save it
			// once per alarm: the first event is judged at once, the
			// rest of a storm together at most every stepGap.
			if now := s.opts.Now(); now.Sub(stepped) >= stepGap {
				s.step(ctx)
				stepped = now
			} else {
				deferred = true
			}
		case fn := <-s.reqs:
			fn()
		}
		// Next judgement: at the tick, or sooner when a deadline falls
		// before it (a deadline is kept to the second, not the tick), or
		// when deferred alarm events are due.
		next := due
		if dl := s.core.NextDeadline(); !dl.IsZero() && dl.Before(next) {
			next = dl.Add(time.Millisecond)
		}
		if deferred && stepped.Add(stepGap).Before(next) {
			next = stepped.Add(stepGap)
		}
		wait := max(next.Sub(s.opts.Now()), 0)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// step feeds queued events and the engine's open alarms to the Core and
// ticks it.
func (s *Service) step(ctx context.Context) {
	s.takeEvents()
	now := s.opts.Now()
	if s.opts.Alarms != nil {
		open, err := s.opts.Alarms.Active(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("hazard: read the open alarms", "err", err)
			}
		} else {
			s.core.SyncAlarms(open, now)
		}
	}
	s.core.Tick(now)
	s.flush()
}

// takeEvents feeds the queued alarm events to the Core.
func (s *Service) takeEvents() {
	s.mu.Lock()
	evs := s.events
	s.events = nil
	s.mu.Unlock()
	for _, ev := range evs {
		s.core.AlarmFired(ev.Alarm, ev.At)
	}
}

// flush writes what the Core changed: audit entries first (an action is
// done once it is in the audit log), then the state, then the overdue
// devices and gauges.
func (s *Service) flush() {
	entries, dirty := s.core.Drain()
	s.unaudited = append(s.unaudited, entries...)
	s.unsaved = s.unsaved || dirty
	if len(s.unaudited) > 0 && s.opts.Audit != nil {
		if err := s.opts.Audit.Append(s.unaudited...); err != nil {
			s.log.Error("hazard: write to the audit log (retrying)", "entries", len(s.unaudited), "err", err)
			return
		}
	}
	s.unaudited = nil
	if s.unsaved {
		if err := s.save(); err != nil {
			s.log.Error("hazard: save the hazard list (retrying)", "err", err)
			return
		}
		s.unsaved = false
	}
	s.report()
}

func (s *Service) save() error {
	b, err := s.core.Snapshot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("hazard: %w", err)
	}
	return atomicfile.Write(filepath.Join(s.opts.Dir, StateFile), b)
}

// report tells each zone's overdue device which items are overdue. A new
// overdue item in a zone whose alarm is already open clears the device
// first, so the alarm fires again and the new item is notified.
func (s *Service) report() {
	counts := map[string]float64{"open": 0, "rectified": 0, "verified": 0, "overdue": 0}
	for _, it := range s.core.items {
		counts[string(it.Status)]++
		if it.Overdue {
			counts["overdue"]++
		}
	}
	for st, n := range counts {
		s.open.WithLabelValues(st).Set(n)
	}
	if s.opts.Faults == nil {
		return
	}
	overdue := s.core.Overdue()
	devices := map[string]bool{OverdueDevice(""): true}
	for _, z := range s.core.cfg.Zones {
		devices[OverdueDevice(z.ID)] = true
	}
	byDev := map[string][]Item{}
	for zone, items := range overdue {
		byDev[OverdueDevice(zone)] = items
	}
	for dev := range devices {
		items := byDev[dev]
		ids := make([]string, len(items))
		for i := range items {
			ids[i] = items[i].ID
		}
		prev, seen := s.reported[dev]
		if seen && slices.Equal(prev, ids) {
			continue
		}
		if len(ids) == 0 {
			s.opts.Faults.Set(dev, "ok")
		} else {
			if seen && len(prev) > 0 && slices.ContainsFunc(ids, func(id string) bool { return !slices.Contains(prev, id) }) {
				s.opts.Faults.Set(dev, "ok")
			}
			s.opts.Faults.Set(dev, overdueText(items, s.core.cfg.Location))
		}
		s.reported[dev] = ids
	}
}

// overdueText is the fault a zone's overdue device reports: the alarm's
// value, so the first items are named in the notification.
func overdueText(items []Item, loc *time.Location) string {
	const named = 3
	parts := make([]string, 0, named+1)
	for i := range items {
		if i == named {
			parts = append(parts, fmt.Sprintf("and %d more", len(items)-named))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s (deadline %s)", items[i].ID, items[i].Title.EN, items[i].Deadline.In(loc).Format("2006-01-02 15:04")))
	}
	noun := "items"
	if len(items) == 1 {
		noun = "item"
	}
	return fmt.Sprintf("%d hazard %s overdue: %s", len(items), noun, strings.Join(parts, "; "))
}

// do runs fn on the Service's goroutine, then writes what it changed.
// The caller hears back once the change is in the audit log and on disk.
func (s *Service) do(ctx context.Context, fn func() error) error {
	return s.run(ctx, fn, true)
}

// read runs fn on the Service's goroutine.
func (s *Service) read(ctx context.Context, fn func() error) error {
	return s.run(ctx, fn, false)
}

func (s *Service) run(ctx context.Context, fn func() error, mutates bool) error {
	done := make(chan error, 1)
	req := func() {
		err := fn()
		if err == nil && mutates {
			s.flush()
			if s.unsaved || len(s.unaudited) > 0 {
				err = errors.New("hazard: the change could not be written to disk; it will be retried")
			}
		}
		done <- err
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Save writes the hazard list and its audit entries to disk now and
// returns once they are there (a backup copies the file after it).
func (s *Service) Save(ctx context.Context) error {
	return s.do(ctx, func() error {
		s.unsaved = true
		return nil
	})
}

// Items returns the list, newest first.
func (s *Service) Items(ctx context.Context) ([]Item, error) {
	var out []Item
	// On an error fn may still run later: out is not read.
	if err := s.read(ctx, func() error { out = s.core.Items(); return nil }); err != nil {
		return nil, err
	}
	return out, nil
}

// Item returns one item.
func (s *Service) Item(ctx context.Context, id string) (Item, error) {
	return s.item(ctx, false, func(now time.Time) (Item, error) { return s.core.Item(id) })
}

// Create adds an inspector's item.
func (s *Service) Create(ctx context.Context, m Manual, by string) (Item, error) {
	return s.item(ctx, true, func(now time.Time) (Item, error) { return s.core.Create(m, by, now) })
}

// Rectify records a manager's rectification.
func (s *Service) Rectify(ctx context.Context, id, by, note string) (Item, error) {
	return s.item(ctx, true, func(now time.Time) (Item, error) { return s.core.Rectify(id, by, note, now) })
}

// Verify records an inspector's verification.
func (s *Service) Verify(ctx context.Context, id, by, note string) (Item, error) {
	return s.item(ctx, true, func(now time.Time) (Item, error) { return s.core.Verify(id, by, note, now) })
}

// Reopen records an inspector's rejection of a rectification.
func (s *Service) Reopen(ctx context.Context, id, by, note string) (Item, error) {
	return s.item(ctx, true, func(now time.Time) (Item, error) { return s.core.Reopen(id, by, note, now) })
}

// Change sets an item's responsible person or deadline.
func (s *Service) Change(ctx context.Context, id, by string, u Update) (Item, error) {
	return s.item(ctx, true, func(now time.Time) (Item, error) { return s.core.Change(id, by, u, now) })
}

// item runs fn on the Service's goroutine and returns its item.
func (s *Service) item(ctx context.Context, mutates bool, fn func(now time.Time) (Item, error)) (Item, error) {
	var out Item
	err := s.run(ctx, func() (err error) {
		out, err = fn(s.opts.Now())
		return err
	}, mutates)
	if err != nil {
		return Item{}, err // fn may still run later: out is not read
	}
	return out, nil
}

// Reload applies a new configuration.
func (s *Service) Reload(ctx context.Context, cfg Config) error {
	return s.do(ctx, func() error { return s.core.Configure(cfg, s.opts.Now()) })
}
