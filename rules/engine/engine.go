// Package engine evaluates the safety rules against every reading and
// keeps the alarms: raising, escalating, acknowledging, resolving, with
// their state and timers on disk so that a restart forgets nothing.
//
// # Design
//
// The core (Core) is a deterministic state machine: Observe(reading, now),
// Tick(now), Acknowledge, Reset. Time is always passed in, so rules are
// tested as timelines ("at t0+3m the alarm is pending, at t0+5m firing"),
// including a restart in the middle of a `for` and a reload while an alarm
// fires. Engine wraps a Core in one goroutine that owns it, feeds it
// readings and timer ticks, persists its state after every change and
// hands events to the notifier.
//
// A smoke reading is evaluated as soon as the reading is stored and its
// alarm event is handed to the durable outbox in the same step: no
// polling interval, no grouping delay.
package engine

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Escalation says who is told when: level 0 at once, level i once an
// alarm is unacknowledged for Levels[i-1]; then the last level again every
// Repeat (0: never).
type Escalation struct {
	Levels []time.Duration
	Repeat time.Duration
}

// Silence mutes alarms of a device, a zone or a rule for a while (a
// maintenance window, a detector under test): they are recorded but page
// nobody.
type Silence struct {
	ID      string    `json:"id"`
	Device  string    `json:"device,omitempty"`
	Zone    string    `json:"zone,omitempty"`
	Rule    string    `json:"rule,omitempty"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	By      string    `json:"by"`
	Comment string    `json:"comment"`
}

func (s *Silence) matches(a *alarm.Alarm, now time.Time) bool {
	if now.Before(s.From) || !now.Before(s.To) {
		return false
	}
	return (s.Device == "" || s.Device == a.Device) && (s.Zone == "" || s.Zone == a.Zone) && (s.Rule == "" || s.Rule == a.Rule)
}

// Config is everything a Core evaluates against.
type Config struct {
	Facility   string
	Location   *time.Location
	Devices    []facility.Device
	Zones      []facility.Zone
	Rules      []RuleConfig
	Escalation Escalation
}

// devRule is a rule that applies to a device, with the key of the subject
// the device's readings feed.
type devRule struct {
	r   *rule
	key string
}

// subject state of one rule for one device, zone or the gateway, keyed
// "<rule>@dev:<device>", "<rule>@zone:<zone>" or "<rule>@gateway" (which
// is also the alarm's ID: safe in URL paths).
type subjState struct {
	// PendingSince: the condition holds since then, waiting for `for`.
	PendingSince time.Time `json:"pending_since,omitzero"`
	// ClearSince: the clear condition holds since then (keep_firing_for).
	ClearSince time.Time `json:"clear_since,omitzero"`
	// Value is the last triggering value, for messages.
	Value string `json:"value,omitempty"`
	// Truth per device, for coincidence: when the condition last held.
	Hits map[string]time.Time `json:"hits,omitempty"`
	// samples for rate of rise from samples[head] on (not persisted: a
	// restart starts a new window).
	samples []sample
	head    int
}

type sample struct {
	t time.Time
	v float64
}

// openAlarm is an alarm plus the engine's bookkeeping.
type openAlarm struct {
	alarm.Alarm
	// LastNotified is when the current level was last told.
	LastNotified time.Time `json:"last_notified"`
	// CondCleared: a latched alarm whose condition is gone, waiting for a
	// reset.
	CondCleared bool `json:"cond_cleared"`
}

// Core is the rules state machine. It is not safe for concurrent use:
// Engine owns it from one goroutine.
type Core struct {
	ev      readingEnv // the environment of the reading being observed (Observe)
	cfg     Config
	rules   []*rule
	byID    map[string]*rule
	devices map[string]*facility.Device
	zones   map[string]*facility.Zone
	// applies caches rule.match per device: rule index → the devices it
	// applies to, in config order (a map per rule of every device took 9
	// MB at 10,000 devices and the built-in rules; this takes 1).
	applies [][]*facility.Device
	// devRules lists, per device, the rules that apply to it with their
	// subject keys, in evaluation order: one map lookup per reading.
	devRules map[string][]devRule

	subj     map[string]*subjState      // keyed like the alarm ID: rule@subject
	open     map[string]*openAlarm      // by alarm ID
	avail    map[string]facility.Status // per device: last heard, reported offline
	lastAny  time.Time
	started  time.Time
	silences []Silence
	seq      uint64
	// walk is the running walk test (nil: none), walkIdx its devices'
	// positions, walks the finished ones, oldest first (walktest.go).
	walk    *WalkTest
	walkIdx map[string]int
	walks   []WalkTest

	events []alarm.Event
	audit  []audit.Entry
	dirty  bool
	now    time.Time // of the call in progress, for audit entries
	// hint is the earliest deadline Observe or an action created since the
	// last Tick (zero: none), so the engine need not Tick after every
	// reading to find out.
	hint time.Time
	vm   vm.VM // reused for every evaluation (the Core has one owner)
}

// NewCore compiles cfg. The error lists every problem in the rules.
func NewCore(cfg Config, start time.Time) (*Core, error) {
	c := &Core{subj: map[string]*subjState{}, open: map[string]*openAlarm{}, avail: map[string]facility.Status{},
		started: start}
	if err := c.configure(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckRules compiles rules and returns every problem (nil when none).
// Keys are relative to the rule list ("[3].when").
func CheckRules(rules []RuleConfig) []cfgerr.Problem {
	_, errs := compileRules(rules)
	return errs
}

// configure swaps in a new configuration; on error nothing changes. Open
// alarms and pending timers of rules that still exist are kept.
func (c *Core) configure(cfg Config) error {
	rules, errs := compileRules(cfg.Rules)
	if len(errs) > 0 {
		return cfgerr.Err("rules", errs)
	}
	// Zone-wide confirmations first: when the second detector's reading
	// confirms a fire, the fire alarm is open before that detector's own
	// rule runs, so its inhibition applies and people get one page (fire),
	// not two.
	sort.SliceStable(rules, func(i, j int) bool {
		return rules[i].typ == TypeCoincidence && rules[j].typ != TypeCoincidence
	})
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	devices := map[string]*facility.Device{}
	for i := range cfg.Devices {
		devices[cfg.Devices[i].ID] = &cfg.Devices[i]
	}
	zones := map[string]*facility.Zone{}
	for i := range cfg.Zones {
		zones[cfg.Zones[i].ID] = &cfg.Zones[i]
	}
	applies := make([][]*facility.Device, len(rules))
	for i, r := range rules {
		for j := range cfg.Devices {
			d := &cfg.Devices[j]
			if d.Builtin && !r.kinds[reading.KindFault] {
				// The gateway's own devices are seen only by rules written
				// for their faults: sensor rules, absence and "no readings"
				// never count them.
				continue
			}
			ok, err := r.matches(d, zones[d.Zone])
			if err != nil {
				return cfgerr.Err("rules", []cfgerr.Problem{cfgerr.At(i, "match", fmt.Sprintf("device %s: %v", d.ID, err))})
			}
			if ok {
				applies[i] = append(applies[i], d)
			}
		}
	}
	byID := map[string]*rule{}
	for _, r := range rules {
		byID[r.cfg.ID] = r
	}
	// Every device's list is cut from one array sized by a first count:
	// grown by append, the lists held twice their size in slack and
	// allocations (7 MB at 10,000 devices, 3.6 MB so).
	count := make(map[string]int, len(cfg.Devices))
	total := 0
	for i := range rules {
		for _, d := range applies[i] {
			count[d.ID]++
			total++
		}
	}
	flat := make([]devRule, total)
	devRules := make(map[string][]devRule, len(count))
	for _, d := range cfg.Devices {
		if _, done := devRules[d.ID]; done {
			continue
		}
		if n := count[d.ID]; n > 0 {
			devRules[d.ID], flat = flat[:0:n], flat[n:]
		}
	}
	// A zone rule's key is the same for every device of the zone: one
	// string for them all (10,000 copies took 3 MB).
	keys := map[string]string{}
	for i, r := range rules {
		for _, d := range applies[i] {
			k := subjectKey(r, d)
			if s, ok := keys[k]; ok {
				k = s
			} else {
				keys[k] = k
			}
			devRules[d.ID] = append(devRules[d.ID], devRule{r: r, key: k})
		}
	}
	c.cfg, c.rules, c.byID, c.devices, c.zones, c.applies, c.devRules = cfg, rules, byID, devices, zones, applies, devRules
	// Forget state of rules that are gone; their open alarms resolve.
	for k := range c.subj {
		if _, ok := byID[strings.SplitN(k, "@", 2)[0]]; !ok {
			delete(c.subj, k)
		}
	}
	return nil
}

func (r *rule) matches(d *facility.Device, z *facility.Zone) (bool, error) {
	if r.match == nil {
		return true, nil
	}
	me := matchEnv{Device: d.ID, DeviceKind: string(d.Kind), Zone: d.Zone}
	if z != nil {
		me.Tags = z.Tags
	}
	out, err := expr.Run(r.match, me)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

func subjectKey(r *rule, dev *facility.Device) string {
	switch r.scope {
	case ScopeZone:
		return r.cfg.ID + "@zone:" + dev.Zone
	case ScopeGateway:
		return r.cfg.ID + "@gateway"
	}
	return r.cfg.ID + "@dev:" + dev.ID
}

func (c *Core) state(key string) *subjState {
	s := c.subj[key]
	if s == nil {
		s = &subjState{}
		c.subj[key] = s
	}
	return s
}

func (c *Core) emit(kind alarm.EventKind, a *alarm.Alarm, level int, now time.Time) {
	c.events = append(c.events, alarm.Event{Kind: kind, At: now, Alarm: *a, Level: level})
}

func (c *Core) auditf(e audit.Entry) {
	if e.Time.IsZero() {
		e.Time = c.now
	}
	c.audit = append(c.audit, e)
}

func (c *Core) wakeAt(t time.Time) {
	if c.hint.IsZero() || t.Before(c.hint) {
		c.hint = t
	}
}

// TakeHint returns the earliest deadline created since the last call (or
// Tick), zero when none: the engine then runs Tick no later than that.
func (c *Core) TakeHint() time.Time {
	h := c.hint
	c.hint = time.Time{}
	return h
}

// Drain returns and clears the events and audit entries produced since
// the last call, and whether the persistent state changed.
func (c *Core) Drain() (events []alarm.Event, entries []audit.Entry, dirty bool) {
	events, entries, dirty = c.events, c.audit, c.dirty
	c.events, c.audit, c.dirty = nil, nil, false
	return events, entries, dirty
}

// Active returns the open alarms, most severe first, then oldest.
func (c *Core) Active() []alarm.Alarm {
	out := make([]alarm.Alarm, 0, len(c.open))
	for _, a := range c.open {
		al := a.Alarm
		al.ConditionCleared = a.CondCleared
		out = append(out, al)
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := out[i].Severity.Rank(), out[j].Severity.Rank(); ri != rj {
			return ri > rj
		}
		return out[i].Since.Before(out[j].Since)
	})
	return out
}
