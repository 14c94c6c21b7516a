package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/atomicfile"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Notifier takes alarm events durably (the notification outbox). Enqueue
// returns once the event will be delivered even across a restart.
type Notifier interface {
	Enqueue(ctx context.Context, ev alarm.Event) error
}

// Log is the durable reading log the engine consumes (the store), from
// its own cursor.
type Log interface {
	// ReadLogInto appends to dst[:0] the readings after the given
	// sequence number, at most limit.
	ReadLogInto(dst []reading.Reading, after uint64, limit int) ([]reading.Reading, error)
	// Changed is closed when readings after the last read were appended.
	Changed() <-chan struct{}
	LastSeq() uint64
	SetCursor(name string, seq uint64) error
}

// Auditor is the audit log: Append returns once the entries are on disk.
type Auditor interface {
	Append(entries ...audit.Entry) error
}

// Options wire an Engine.
type Options struct {
	Config Config
	// Store is the reading log the engine consumes (cursor "rules").
	Store Log
	// Dir holds the engine's state (state.json).
	Dir string
	// Audit receives every alarm action; nil: not recorded (tests).
	Audit    Auditor
	Notifier Notifier
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// maxUnaudited bounds the audit entries kept while the audit log refuses
// writes; beyond it the oldest are dropped and counted.
const maxUnaudited = 10000

// CursorName is the engine's cursor in the store.
const CursorName = "rules"

// snapshotEvery bounds how much of the log a restart re-reads when no
// alarm state changed for a long time.
const snapshotEvery = 10 * time.Second

// minorSaveEvery coalesces saves of state changed by readings and timers:
// the snapshot carries the log position it matches, so after a crash the
// readings since are evaluated again and rebuild the same state (and the
// same alarm events, which the outbox takes only once: their ids repeat).
// Changes made by people are saved at once.
const minorSaveEvery = time.Second

// Engine runs a Core in one goroutine against the store's log.
type Engine struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	core *Core
	reqs chan request
	// unstored carries readings the store refused (a full disk), for
	// evaluation in memory.
	unstored chan []reading.Reading

	// Owned by Run.
	readBuf       []reading.Reading // consume's, reused
	seq, savedSeq uint64
	savedAt       time.Time
	unsaved       bool          // state changed without an alarm transition since the last save
	pending       []alarm.Event // events the notifier has not taken yet
	// inMemory holds the readings evaluated in memory because the store
	// refused them; when the same reading later comes out of the log (the
	// broker redelivered it, the disk had room again) it is not evaluated
	// a second time, so counts and "for" timers stay true.
	inMemory map[memKey]struct{}
	runDone  chan struct{}    // closed when Run returns: Unstored no longer waits
	logLimit *ratelog.Limiter // repeated failures (a full disk) log once in a while
	// unaudited are audit entries the audit log refused (a full disk):
	// kept, in order, and written before newer ones once it takes them
	// again. The audit log reports the failure as a gateway fault itself;
	// alarms keep flowing meanwhile.
	unaudited []audit.Entry

	evaluated, notifyFailures, ruleEvents, auditFailures, auditDropped, evaluatedInMemory, saveFailures prometheus.Counter
	lag                                                                                                 prometheus.Histogram
}

// New builds an Engine and restores its saved state.
func New(opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// Alarm state and the audit log are private to the gateway (0700),
	// whatever the umask or an older install left.
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("engine: state directory: %w", err)
	}
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("engine: state directory: %w", err)
	}
	now := opts.Now()
	core, err := NewCore(opts.Config, now)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, log: opts.Logger, now: opts.Now, core: core, reqs: make(chan request),
		unstored: make(chan []reading.Reading, 256), runDone: make(chan struct{}), inMemory: make(map[memKey]struct{}), logLimit: ratelog.New(10 * time.Second)}
	b, err := os.ReadFile(e.statePath())
	switch {
	case err == nil:
		var head struct {
			Processed uint64 `json:"processed"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("engine: read %s: %w", e.statePath(), err)
		}
		if err := core.Restore(b, now); err != nil {
			return nil, err
		}
		e.seq, e.savedSeq = head.Processed, head.Processed
	case errors.Is(err, os.ErrNotExist):
		// First start: alarms begin with the readings that arrive from
		// now on, not with the whole history in the store.
		if opts.Store != nil {
			e.seq = opts.Store.LastSeq()
		}
	default:
		return nil, fmt.Errorf("engine: read state: %w", err)
	}
	if e.savedAt.IsZero() && e.savedSeq == 0 {
		// Make the starting position durable at once: a crash before the
		// first save must not make the next start skip what came between.
		if err := e.save(); err != nil {
			return nil, err
		}
	}
	e.evaluated = prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_rules_readings_evaluated_total", Help: "Readings the rules engine evaluated."})
	e.ruleEvents = prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_rules_alarm_events_total", Help: "Alarm events handed to the notifier."})
	e.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_rules_audit_failures_total", Help: "Failed writes of alarm actions to the audit log (retried)."})
	e.auditDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_rules_audit_dropped_total", Help: "Alarm actions never written to the audit log because it refused writes for too long."})
	e.notifyFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_rules_notify_failures_total", Help: "Failed hand-overs to the notification outbox (retried)."})
	e.evaluatedInMemory = prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_rules_readings_evaluated_in_memory_total",
		Help: "Readings the store refused (a full disk) that the rules evaluated in memory."})
	e.saveFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_rules_state_save_failures_total",
		Help: "Failed saves of the alarm state (a full disk); retried every second."})
	e.lag = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shelterwatch_rules_receive_to_evaluated_seconds",
		Help: "From a reading's arrival to its evaluation by the rules.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	return e, nil
}

// Register adds the engine's metrics to reg.
func (e *Engine) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{e.evaluated, e.evaluatedInMemory, e.saveFailures, e.ruleEvents, e.notifyFailures, e.auditFailures, e.auditDropped, e.lag} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) statePath() string { return filepath.Join(e.opts.Dir, StateFile) }

// Run evaluates until ctx ends. It returns an error only when the reading
// log cannot be read; failed writes (state, audit, outbox: a full disk)
// are logged, counted and retried while alarms keep flowing.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.runDone)
	st := e.opts.Store
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	saveTick := time.NewTicker(minorSaveEvery)
	defer saveTick.Stop()
	// next is when Tick must run again: the earliest timer (a `for`, an
	// absence, an escalation). Readings move it earlier through the
	// Core's hint; Tick is not run per reading (it scans every subject).
	next := e.now()
	for {
		var changed <-chan struct{}
		if st != nil {
			changed = st.Changed()
			if err := e.consume(ctx); err != nil {
				return err
			}
		}
		if h := e.core.TakeHint(); !h.IsZero() && h.Before(next) {
			next = h
		}
		if now := e.now(); !now.Before(next) {
			next = e.core.Tick(now)
			if next.IsZero() {
				next = now.Add(time.Minute)
			}
			_ = e.flush(ctx, false) // a failed save is logged and retried
		}
		wait := max(next.Sub(e.now()), 0)
		if len(e.pending) > 0 || len(e.unaudited) > 0 {
			wait = min(wait, time.Second) // retry the notifier and the audit log
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			_ = e.flush(context.WithoutCancel(ctx), true)
			return nil
		case <-changed:
		case rs := <-e.unstored:
			e.observeInMemory(rs)
			_ = e.flush(ctx, false)
		case <-timer.C:
		case <-saveTick.C:
			due := e.unsaved || (e.seq != e.savedSeq && e.now().Sub(e.savedAt) >= snapshotEvery)
			_ = e.flush(ctx, due)
		case req := <-e.reqs:
			req.fn()
			// Actions may change what is due (a silence ending, a reload).
			next = e.now()
			// What people do (acknowledge, reset, silence, reload) is not in
			// the reading log to be replayed: saved at once, and the caller
			// hears back only once it is (audit entry and state on disk).
			req.done <- e.flush(ctx, req.mutates)
		}
	}
}

// consume evaluates every reading stored since the last one seen.
func (e *Engine) consume(ctx context.Context) error {
	for {
		rs, err := e.opts.Store.ReadLogInto(e.readBuf, e.seq, 1024)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		e.readBuf = rs
		if len(rs) == 0 {
			return nil
		}
		now := e.now()
		for i := range rs {
			if len(e.inMemory) > 0 {
				k := keyOf(&rs[i])
				if _, seen := e.inMemory[k]; seen {
					delete(e.inMemory, k)
					continue
				}
			}
			// The reading's arrival is the engine's "now" for it, so a
			// backlog re-read after a restart keeps its own timeline.
			at := rs[i].Received
			if at.IsZero() || at.After(now) {
				at = now
			}
			e.core.Observe(rs[i], at)
			e.lag.Observe(now.Sub(at).Seconds())
			e.evaluated.Inc()
		}
		e.seq = rs[len(rs)-1].Seq
		_ = e.flush(ctx, false)
	}
}

// maxInMemory bounds the readings remembered as evaluated in memory;
// past it they are still evaluated, but may be evaluated again when they
// are finally stored.
const maxInMemory = 100000

// memKey identifies a reading across a refused append and its retry: the
// pipeline retries the very same readings.
type memKey struct {
	device         string
	kind           reading.Kind
	time, received int64
}

func keyOf(r *reading.Reading) memKey {
	return memKey{device: r.Device, kind: r.Kind, time: r.Time.UnixNano(), received: r.Received.UnixNano()}
}

// Unstored evaluates readings the store refused (a full disk) in memory:
// a smoke reading raises its alarm even when it cannot be written. It
// waits for the engine to take them, or for ctx.
func (e *Engine) Unstored(ctx context.Context, rs []reading.Reading) {
	if len(rs) == 0 {
		return
	}
	select {
	case e.unstored <- slices.Clone(rs):
	case <-ctx.Done():
	case <-e.runDone:
	}
}

// observeInMemory evaluates readings that are not in the log (yet).
func (e *Engine) observeInMemory(rs []reading.Reading) {
	now := e.now()
	for i := range rs {
		k := keyOf(&rs[i])
		if _, seen := e.inMemory[k]; seen {
			continue // handed over again by a retry
		}
		if len(e.inMemory) < maxInMemory {
			e.inMemory[k] = struct{}{}
		}
		at := rs[i].Received
		if at.IsZero() || at.After(now) {
			at = now
		}
		e.core.Observe(rs[i], at)
		e.evaluatedInMemory.Inc()
	}
}

// flush hands events to the notifier (fire first), writes audit entries
// and saves the state when it changed. The notifier goes first because it
// is what a resident's safety waits for; the audit entry and the state
// follow. A crash in between repeats a notification (and its audit entry)
// after restart rather than losing one.
func (e *Engine) flush(ctx context.Context, forceSave bool) error {
	events, entries, dirty := e.core.Drain()
	e.pending = append(e.pending, events...)
	sort.SliceStable(e.pending, func(i, j int) bool {
		return e.pending[i].Alarm.Severity.Rank() > e.pending[j].Alarm.Severity.Rank()
	})
	for len(e.pending) > 0 && e.opts.Notifier != nil {
		if err := e.opts.Notifier.Enqueue(ctx, e.pending[0]); err != nil {
			e.notifyFailures.Inc()
			if n, ok := e.logLimit.AllowCount("notify"); ok {
				e.log.Error("rules: notification outbox refused an alarm event; retrying", "alarm", e.pending[0].Alarm.ID, "err", err, "suppressed_since_last", n)
			}
			break
		}
		e.ruleEvents.Inc()
		e.pending = e.pending[1:]
	}
	if e.opts.Notifier == nil {
		e.pending = e.pending[:0]
	}
	e.unaudited = append(e.unaudited, entries...)
	if len(e.unaudited) > 0 {
		if err := e.appendAudit(e.unaudited); err != nil {
			// Not fatal: stopping the engine would silence every alarm
			// because the audit disk is full. The entries wait here
			// (bounded) and the audit log raises its own fault.
			e.auditFailures.Inc()
			if n, ok := e.logLimit.AllowCount("audit"); ok {
				e.log.Error("rules: audit log refused entries; keeping them to retry", "entries", len(e.unaudited), "err", err, "suppressed_since_last", n)
			}
			if over := len(e.unaudited) - maxUnaudited; over > 0 {
				e.unaudited = e.unaudited[over:]
				e.auditDropped.Add(float64(over))
			}
		} else {
			e.unaudited = e.unaudited[:0]
		}
	}
	switch {
	case forceSave:
		if err := e.save(); err != nil {
			// Not fatal either: the state stays in memory, alarms keep
			// flowing, and the next save tick tries again.
			e.unsaved = true
			e.saveFailures.Inc()
			if n, ok := e.logLimit.AllowCount("save"); ok {
				e.log.Error("rules: saving the alarm state failed; retrying", "err", err, "suppressed_since_last", n)
			}
			return err
		}
	case dirty:
		e.unsaved = true
	}
	return nil
}

func (e *Engine) save() error {
	b, err := e.core.Snapshot()
	if err != nil {
		return fmt.Errorf("engine: encode state: %w", err)
	}
	// Insert the processed position at the front of the JSON object.
	b = append([]byte(fmt.Sprintf(`{"processed":%d,`, e.seq)), b[1:]...)
	if err := atomicfile.Write(e.statePath(), b); err != nil {
		return fmt.Errorf("engine: save state: %w", err)
	}
	e.savedSeq, e.savedAt, e.unsaved = e.seq, e.now(), false
	if e.opts.Store != nil {
		if err := e.opts.Store.SetCursor(CursorName, e.seq); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	return nil
}

func (e *Engine) appendAudit(entries []audit.Entry) error {
	if e.opts.Audit == nil {
		return nil
	}
	if err := e.opts.Audit.Append(entries...); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// request is an action run on the engine's goroutine; done receives the
// outcome of writing its consequences.
type request struct {
	fn      func()
	mutates bool // saved at once (an action); false for a read
	done    chan error
}

// do runs fn on the engine's goroutine and waits until its effects (audit
// entry, state, notifications) are durable.
func (e *Engine) do(ctx context.Context, fn func()) error {
	return e.send(ctx, request{fn: fn, mutates: true, done: make(chan error, 1)})
}

func (e *Engine) send(ctx context.Context, req request) error {
	select {
	case e.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Save writes the alarm state to disk now, with every event before it
// handed to the notifier and audited, and returns once it is there: a
// copy of the state file taken after Save holds everything that happened
// before it (a backup).
func (e *Engine) Save(ctx context.Context) error {
	return e.do(ctx, func() {})
}

// StateFile is the alarm state's file in the engine's directory.
const StateFile = "state.json"

// Active returns the open alarms.
func (e *Engine) Active(ctx context.Context) ([]alarm.Alarm, error) {
	var out []alarm.Alarm
	// On an error the request may still run later: out is not read.
	if err := e.send(ctx, request{fn: func() { out = e.core.Active() }, done: make(chan error, 1)}); err != nil {
		return nil, err
	}
	return out, nil
}

// Acknowledge acknowledges an open alarm on behalf of by.
func (e *Engine) Acknowledge(ctx context.Context, id, by, comment string) error {
	var err error
	if derr := e.do(ctx, func() { err = e.core.Acknowledge(id, by, comment, e.now()) }); derr != nil {
		return derr
	}
	return err
}

// Reset resolves a latched alarm whose condition has cleared.
func (e *Engine) Reset(ctx context.Context, id, by, comment string) error {
	var err error
	if derr := e.do(ctx, func() { err = e.core.Reset(id, by, comment, e.now()) }); derr != nil {
		return derr
	}
	return err
}

// AddSilence mutes matching alarms until s.To.
func (e *Engine) AddSilence(ctx context.Context, s Silence) error {
	var err error
	if derr := e.do(ctx, func() { err = e.core.AddSilence(s, e.now()) }); derr != nil {
		return derr
	}
	return err
}

// StartWalkTest starts a walk test (see walktest.go).
func (e *Engine) StartWalkTest(ctx context.Context, w WalkTest) (WalkTest, error) {
	var out WalkTest
	var err error
	if derr := e.do(ctx, func() { out, err = e.core.StartWalkTest(w, e.now()) }); derr != nil {
		return WalkTest{}, derr
	}
	return out, err
}

// EndWalkTest ends the running walk test and returns its record.
func (e *Engine) EndWalkTest(ctx context.Context, by string) (WalkTest, error) {
	var out WalkTest
	var err error
	if derr := e.do(ctx, func() { out, err = e.core.EndWalkTest(by, e.now()) }); derr != nil {
		return WalkTest{}, derr
	}
	return out, err
}

// WalkTests returns the running walk test (nil when none) and the
// finished ones, newest first.
func (e *Engine) WalkTests(ctx context.Context) (*WalkTest, []WalkTest, error) {
	var cur *WalkTest
	var done []WalkTest
	if err := e.send(ctx, request{fn: func() { cur, done = e.core.WalkTests() }, done: make(chan error, 1)}); err != nil {
		return nil, nil, err
	}
	return cur, done, nil
}

// Reload swaps in a new configuration (rules, devices, escalation). It is
// checked in full first; on error nothing changes. Open alarms and pending
// timers of rules that still exist are kept.
func (e *Engine) Reload(ctx context.Context, cfg Config) error {
	if errs := CheckRules(cfg.Rules); len(errs) > 0 {
		return cfgerr.Err("rules", errs)
	}
	var err error
	if derr := e.do(ctx, func() {
		if err = e.core.configure(cfg); err == nil {
			e.core.auditf(audit.Entry{Time: e.now(), Action: "rules_reloaded", Detail: fmt.Sprintf("%d rules", len(cfg.Rules))})
			e.core.dirty = true
		}
	}); derr != nil {
		return derr
	}
	return err
}
