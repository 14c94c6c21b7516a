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
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/audit"
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
	cfg     Config
	rules   []*rule
	byID    map[string]*rule
	devices map[string]*facility.Device
	zones   map[string]*facility.Zone
	// applies caches rule.match per device: rule index → device → bool.
	applies []map[string]bool
	// devRules lists, per device, the rules that apply to it with their
	// subject keys, in evaluation order: one map lookup per reading.
	devRules map[string][]devRule

	subj     map[string]*subjState // keyed like the alarm ID: rule@subject
	open     map[string]*openAlarm // by alarm ID
	lastSeen map[string]time.Time
	offline  map[string]bool // device reported itself offline
	lastAny  time.Time
	started  time.Time
	silences []Silence
	seq      uint64

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
	c := &Core{subj: map[string]*subjState{}, open: map[string]*openAlarm{}, lastSeen: map[string]time.Time{},
		offline: map[string]bool{}, started: start}
	if err := c.configure(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// RulesError lists every problem of a rule set.
type RulesError []FieldError

func (e RulesError) Error() string {
	var b strings.Builder
	for i, fe := range e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// CheckRules compiles rules and returns every problem (nil when none).
func CheckRules(rules []RuleConfig) []FieldError {
	_, errs := compileRules(rules)
	return errs
}

// configure swaps in a new configuration; on error nothing changes. Open
// alarms and pending timers of rules that still exist are kept.
func (c *Core) configure(cfg Config) error {
	rules, errs := compileRules(cfg.Rules)
	if len(errs) > 0 {
		return RulesError(errs)
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
	applies := make([]map[string]bool, len(rules))
	for i, r := range rules {
		applies[i] = map[string]bool{}
		for _, d := range cfg.Devices {
			if d.Builtin && !r.kinds[reading.KindFault] {
				// The gateway's own devices are seen only by rules written
				// for their faults: sensor rules, absence and "no readings"
				// never count them.
				continue
			}
			ok, err := r.matches(&d, zones[d.Zone])
			if err != nil {
				return RulesError{{Index: i, Key: "match", Msg: fmt.Sprintf("device %s: %v", d.ID, err)}}
			}
			applies[i][d.ID] = ok
		}
	}
	byID := map[string]*rule{}
	for _, r := range rules {
		byID[r.cfg.ID] = r
	}
	devRules := map[string][]devRule{}
	for i, r := range rules {
		for _, d := range cfg.Devices {
			if applies[i][d.ID] {
				devRules[d.ID] = append(devRules[d.ID], devRule{r: r, key: subjectKey(r, devices[d.ID])})
			}
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

// Observe evaluates every rule against one stored reading.
func (c *Core) Observe(rd reading.Reading, now time.Time) {
	c.now = now
	dev := c.devices[rd.Device]
	if dev == nil {
		return // readings only come from configured devices
	}
	c.lastSeen[rd.Device] = now
	if !dev.Builtin {
		// A gateway fault reading is no sign that sensors get through.
		c.lastAny = now
	}
	if rd.Kind == reading.KindAvailability {
		c.offline[rd.Device] = !rd.Value.Bool
	} else {
		delete(c.offline, rd.Device)
	}
	local := now.In(c.cfg.Location)
	var ev readingEnv
	for _, dr := range c.devRules[dev.ID] {
		r := dr.r
		if r.typ == TypeAbsence {
			c.observeAbsence(r, dev, dr.key, now)
			continue
		}
		if r.kinds != nil && !r.kinds[rd.Kind] {
			continue
		}
		if r.valueType != 0 && rd.Value.Type != r.valueType {
			continue
		}
		if !ev.ready {
			ev.set(c.envFor(rd, dev, local))
		}
		when, ok := c.eval(r, r.when, &ev)
		if !ok {
			continue
		}
		if r.active != nil && !r.active.contains(local) {
			when = false
		}
		switch r.typ {
		case TypeState:
			c.observeState(r, dev, dr.key, rd, &ev, when, now)
		case TypeRateOfRise:
			c.observeRise(r, dev, dr.key, rd, &ev, when, now)
		case TypeCoincidence:
			c.observeCoincidence(r, dev, dr.key, when, now)
		}
	}
}

// readingEnv holds the three typed views of one reading's environment,
// built once per reading and passed by pointer (no copy per rule).
type readingEnv struct {
	ready bool
	any   env
	num   envNumber
	bool  envBool
}

func (re *readingEnv) set(e env) {
	re.ready, re.any = true, e
	re.num = envNumber{env: e, Value: e.Num}
	b, _ := e.Value.(bool)
	re.bool = envBool{env: e, Value: b}
}

func (c *Core) envFor(rd reading.Reading, dev *facility.Device, local time.Time) env {
	e := env{Kind: string(rd.Kind), Value: rd.Value.Any(), Num: rd.Value.Float(), Device: dev.ID, DeviceKind: string(dev.Kind),
		Zone: dev.Zone, Battery: math.NaN(), LinkQuality: math.NaN(), Hour: local.Hour(),
		Weekday: strings.ToLower(local.Weekday().String()[:3])}
	if z := c.zones[dev.Zone]; z != nil {
		e.Tags = z.Tags
	}
	if rd.Kind == reading.KindBattery {
		e.Battery, e.HasBattery = rd.Value.Num, true
	} else if rd.Battery != nil {
		e.Battery, e.HasBattery = *rd.Battery, true
	}
	if rd.LinkQuality != nil {
		e.LinkQuality = *rd.LinkQuality
	}
	return e
}

// eval runs a condition; an evaluation error (a type mismatch the
// compiler could not see) counts as "no decision" and is audited once per
// rule, never a crash.
func (c *Core) eval(r *rule, prog *vm.Program, re *readingEnv) (bool, bool) {
	var in any = &re.any
	switch r.valueType {
	case reading.TypeNumber:
		in = &re.num
	case reading.TypeBool:
		in = &re.bool
	}
	out, err := c.vm.Run(prog, in)
	if err != nil {
		c.auditf(audit.Entry{Action: "rule_error", Detail: oneLine(err.Error()), Alarm: &audit.Alarm{Rule: r.cfg.ID}})
		return false, false
	}
	b, ok := out.(bool)
	return b, ok
}

func (c *Core) observeState(r *rule, dev *facility.Device, key string, rd reading.Reading, re *readingEnv, when bool, now time.Time) {
	s := c.state(key)
	id := key
	firing := c.open[id] != nil && !c.open[id].CondCleared
	if when {
		if r.typ == TypeState {
			s.Value = rd.Value.String()
			if rd.Value.Type == reading.TypeState {
				s.Value = rd.Value.State // a fault's text, unquoted in messages
			}
		}
		if !s.ClearSince.IsZero() {
			s.ClearSince = time.Time{}
			c.dirty = true
		}
		if firing {
			return
		}
		if s.PendingSince.IsZero() {
			s.PendingSince = now
			c.wakeAt(now.Add(r.forD))
			c.dirty = true
		}
		if now.Sub(s.PendingSince) >= r.forD {
			c.fire(r, dev, key, s, now)
		}
		return
	}
	clear := true
	if r.clear != nil {
		var ok bool
		if clear, ok = c.eval(r, r.clear, re); !ok {
			return
		}
	}
	if !s.PendingSince.IsZero() {
		// The condition stopped holding before `for` ran out.
		s.PendingSince = time.Time{}
		c.dirty = true
	}
	if !firing || !clear {
		return
	}
	if r.keep > 0 {
		if s.ClearSince.IsZero() {
			s.ClearSince = now
			c.wakeAt(now.Add(r.keep))
			c.dirty = true
		}
		if now.Sub(s.ClearSince) < r.keep {
			return
		}
	}
	c.conditionCleared(id, now)
}

func (c *Core) observeRise(r *rule, dev *facility.Device, key string, rd reading.Reading, re *readingEnv, when bool, now time.Time) {
	s := c.state(key)
	v := rd.Value.Float()
	if math.IsNaN(v) {
		return
	}
	lo := s.windowMin(rd.Time, v, r.window)
	rising := when && v-lo >= r.rise
	if rising {
		s.Value = fmt.Sprintf("+%.1f", v-lo)
	}
	c.observeState(r, dev, key, rd, re, rising, now)
}

// windowMin adds (t, v) and returns the lowest value of the samples within
// window before t. s.samples is a monotonic queue: the candidates for the
// window's minimum in time order with increasing values (a later, lower
// value makes every earlier higher one irrelevant). Each sample is pushed
// and popped at most once: O(1) amortised however often a sensor reports.
func (s *subjState) windowMin(t time.Time, v float64, window time.Duration) float64 {
	for len(s.samples) > s.head && s.samples[len(s.samples)-1].v >= v {
		s.samples = s.samples[:len(s.samples)-1]
	}
	s.samples = append(s.samples, sample{t, v})
	for s.head < len(s.samples)-1 && t.Sub(s.samples[s.head].t) > window {
		s.head++
	}
	if s.head > 64 && s.head > len(s.samples)/2 {
		// Reclaim the dropped front now and then, not on every reading.
		s.samples = append(s.samples[:0], s.samples[s.head:]...)
		s.head = 0
	}
	return s.samples[s.head].v
}

func (c *Core) observeCoincidence(r *rule, dev *facility.Device, key string, when bool, now time.Time) {
	s := c.state(key)
	if s.Hits == nil {
		s.Hits = map[string]time.Time{}
	}
	if when {
		s.Hits[dev.ID] = now
		c.wakeAt(now.Add(r.window))
		c.dirty = true
	} else if _, ok := s.Hits[dev.ID]; ok {
		delete(s.Hits, dev.ID)
		c.dirty = true
	}
	n := 0
	var devs []string
	for d, t := range s.Hits {
		if now.Sub(t) <= r.window {
			n++
			devs = append(devs, d)
		}
	}
	sort.Strings(devs)
	if n >= r.count {
		if c.open[key] == nil {
			s.Value = strings.Join(devs, ", ")
			c.fire(r, dev, key, s, now)
		}
		return
	}
	if len(s.Hits) == 0 && c.open[key] != nil {
		c.conditionCleared(key, now)
	}
}

func (c *Core) observeAbsence(r *rule, dev *facility.Device, key string, now time.Time) {
	if r.scope == ScopeGateway {
		if a := c.open[key]; a != nil && !a.CondCleared {
			c.conditionCleared(key, now)
		}
		return
	}
	if c.offline[dev.ID] {
		if c.open[key] == nil {
			s := c.state(key)
			s.Value = "reported offline"
			c.fire(r, dev, key, s, now)
		}
		return
	}
	if a := c.open[key]; a != nil && !a.CondCleared {
		c.conditionCleared(key, now)
	}
}

// Tick runs the timers due at now: `for` holds, keep-firing ends,
// absences, escalations and repeats. It returns when it next needs to run
// (zero: nothing scheduled).
func (c *Core) Tick(now time.Time) time.Time {
	c.now = now
	c.hint = time.Time{}
	var next time.Time
	due := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	// One pass over the subjects with state (not one per rule).
	for key, s := range c.subj {
		rid, _, _ := strings.Cut(key, "@")
		r := c.byID[rid]
		if r == nil {
			continue
		}
		a := c.open[key]
		switch r.typ {
		case TypeState, TypeRateOfRise:
			if !s.PendingSince.IsZero() && a == nil {
				if at := s.PendingSince.Add(r.forD); !at.After(now) {
					if dev := c.deviceOf(key); dev != nil {
						c.fire(r, dev, key, s, now)
					}
				} else {
					due(at)
				}
			}
			if !s.ClearSince.IsZero() && a != nil && !a.CondCleared {
				if at := s.ClearSince.Add(r.keep); !at.After(now) {
					c.conditionCleared(key, now)
				} else {
					due(at)
				}
			}
		case TypeCoincidence:
			if a != nil {
				continue
			}
			for d, t := range s.Hits {
				if now.Sub(t) > r.window {
					delete(s.Hits, d)
					c.dirty = true
				} else {
					due(t.Add(r.window))
				}
			}
		}
	}
	for _, r := range c.rules {
		if r.typ == TypeAbsence {
			c.tickAbsence(r, now, due)
		}
	}
	c.expireSilences(now)
	c.escalate(now, due)
	return next
}

func (c *Core) tickAbsence(r *rule, now time.Time, due func(time.Time)) {
	if r.scope == ScopeGateway {
		key := r.cfg.ID + "@gateway"
		last := c.lastAny
		if last.IsZero() {
			last = c.started
		}
		if at := last.Add(r.after); !at.After(now) {
			if c.open[key] == nil {
				s := c.state(key)
				s.Value = fmt.Sprintf("no readings for %v", now.Sub(last).Round(time.Second))
				c.fire(r, &facility.Device{}, key, s, now)
			}
		} else {
			due(at)
		}
		return
	}
	for i, ri := range c.rules {
		if ri != r {
			continue
		}
		for id, ok := range c.applies[i] {
			if !ok {
				continue
			}
			dev := c.devices[id]
			after := r.after
			if after <= 0 {
				after = dev.OfflineAfter
			}
			if after <= 0 {
				continue
			}
			last, seen := c.lastSeen[id]
			if !seen {
				last = c.started
			}
			key := subjectKey(r, dev)
			if at := last.Add(after); !at.After(now) {
				if c.open[key] == nil {
					s := c.state(key)
					s.Value = fmt.Sprintf("silent for %v", now.Sub(last).Round(time.Second))
					c.fire(r, dev, key, s, now)
				}
			} else {
				due(at)
			}
		}
	}
}

// deviceOf returns the device of a device-scope subject key, or a
// stand-in carrying the zone of a zone-scope key.
func (c *Core) deviceOf(key string) *facility.Device {
	_, subj, _ := strings.Cut(key, "@")
	switch {
	case strings.HasPrefix(subj, "dev:"):
		return c.devices[subj[4:]]
	case strings.HasPrefix(subj, "zone:"):
		return &facility.Device{Zone: subj[5:]}
	}
	return &facility.Device{}
}

// fire opens an alarm for key unless one is open.
func (c *Core) fire(r *rule, dev *facility.Device, key string, s *subjState, now time.Time) {
	if a := c.open[key]; a != nil {
		if a.CondCleared {
			// A latched alarm whose condition came back: still the same
			// episode, and it needs its reset all the more.
			a.CondCleared = false
			c.dirty = true
			c.auditf(audit.Entry{Action: "condition_returned", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
		}
		return
	}
	since := s.PendingSince
	if since.IsZero() {
		since = now
	}
	s.PendingSince = time.Time{}
	c.seq++
	a := &openAlarm{Alarm: alarm.Alarm{ID: key, Seq: c.seq, Rule: r.cfg.ID, Severity: r.severity, Facility: c.cfg.Facility,
		Zone: dev.Zone, State: alarm.StateFiring, Since: since, Updated: now, Latched: r.cfg.Latched, Labels: r.labels}, LastNotified: now}
	if r.scope == ScopeDevice {
		a.Device = dev.ID
	}
	td := TemplateData{Rule: r.cfg.ID, Facility: c.cfg.Facility, Device: a.Device, DeviceName: dev.Name, Kind: string(dev.Kind),
		Zone: a.Zone, Value: s.Value, Since: since.In(c.cfg.Location)}
	if z := c.zones[a.Zone]; z != nil {
		td.ZoneName, td.ZoneNameZH = z.Name, z.NameZH
	}
	if len(s.Hits) > 0 {
		for d := range s.Hits {
			td.Devices = append(td.Devices, d)
		}
		sort.Strings(td.Devices)
	}
	var err error
	for li, t := range []*alarm.Text{&a.Title, &a.Body} {
		tpls := r.title
		if li == 1 {
			tpls = r.body
		}
		if t.EN, err = render(tpls[0], td); err != nil {
			t.EN = r.cfg.ID + ": " + err.Error()
		}
		if t.ZH, err = render(tpls[1], td); err != nil {
			t.ZH = r.cfg.ID + ": " + err.Error()
		}
	}
	c.open[key] = a
	c.dirty = true
	c.auditf(audit.Entry{Action: "fired", Detail: a.Title.EN, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule, Severity: string(a.Severity)}})
	c.applyInhibitions(now)
	if !a.Silenced {
		c.emit(alarm.EventFiring, &a.Alarm, 0, now)
		if lv := c.cfg.Escalation.Levels; len(lv) > 0 {
			c.wakeAt(since.Add(lv[0]))
		}
	}
}

// conditionCleared ends an alarm's condition: it resolves, or, latched,
// waits for a reset.
func (c *Core) conditionCleared(key string, now time.Time) {
	a := c.open[key]
	if a == nil {
		return
	}
	if s := c.subj[key]; s != nil {
		s.ClearSince = time.Time{}
		s.PendingSince = time.Time{}
	}
	c.dirty = true
	if a.Latched {
		if !a.CondCleared {
			a.CondCleared = true
			a.Updated = now
			c.auditf(audit.Entry{Action: "condition_cleared", Detail: "latched: waiting for a manager's reset", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
		}
		return
	}
	c.resolve(a, "", now)
}

func (c *Core) resolve(a *openAlarm, by string, now time.Time) {
	a.State, a.ResolvedAt, a.Updated = alarm.StateResolved, now, now
	delete(c.open, a.ID)
	c.dirty = true
	c.auditf(audit.Entry{Action: "resolved", By: by, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
	if !a.Silenced {
		c.emit(alarm.EventResolved, &a.Alarm, a.Level, now)
	}
	c.applyInhibitions(now)
}

// ErrNotFound is returned for an alarm that is not open.
var ErrNotFound = fmt.Errorf("no such open alarm")

// Acknowledge records that someone has taken charge of an alarm; it stops
// escalation. Acknowledging twice is an error the API reports.
func (c *Core) Acknowledge(id, by, comment string, now time.Time) error {
	c.now = now
	a := c.open[id]
	if a == nil {
		return ErrNotFound
	}
	if a.State == alarm.StateAcknowledged {
		return fmt.Errorf("alarm %s was already acknowledged by %s at %s", id, a.AckedBy, a.AckedAt.Format(time.RFC3339))
	}
	a.State, a.AckedBy, a.AckedAt, a.AckComment, a.Updated = alarm.StateAcknowledged, by, now, comment, now
	c.dirty = true
	c.auditf(audit.Entry{Action: "acknowledged", By: by, Comment: comment, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
	if !a.Silenced {
		c.emit(alarm.EventAcknowledged, &a.Alarm, a.Level, now)
	}
	return nil
}

// Reset resolves a latched alarm once its condition is gone (a manager
// checked the kitchen and reset the smoke alarm).
func (c *Core) Reset(id, by, comment string, now time.Time) error {
	c.now = now
	a := c.open[id]
	if a == nil {
		return ErrNotFound
	}
	if !a.Latched {
		return fmt.Errorf("alarm %s is not latched: it resolves by itself when its condition clears", id)
	}
	if !a.CondCleared {
		return fmt.Errorf("alarm %s: its condition still holds; it cannot be reset yet", id)
	}
	c.auditf(audit.Entry{Action: "reset", By: by, Comment: comment, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
	c.resolve(a, by, now)
	return nil
}

// AddSilence mutes matching alarms until s.To.
func (c *Core) AddSilence(s Silence, now time.Time) {
	c.now = now
	c.silences = append(c.silences, s)
	c.wakeAt(s.To)
	c.dirty = true
	c.auditf(audit.Entry{Action: "silence_added", By: s.By, Comment: s.Comment, Detail: fmt.Sprintf("device=%q zone=%q rule=%q until %s", s.Device, s.Zone, s.Rule, s.To.Format(time.RFC3339))})
	c.applyInhibitions(now)
}

func (c *Core) expireSilences(now time.Time) {
	n := len(c.silences)
	c.silences = slices.DeleteFunc(c.silences, func(s Silence) bool { return !now.Before(s.To) })
	if len(c.silences) != n {
		c.dirty = true
		c.applyInhibitions(now)
	}
}

// applyInhibitions recomputes which open alarms are silenced: by a
// silence, or by an open alarm of a rule that inhibits theirs in the same
// zone (a gateway-scope inhibitor covers every zone).
func (c *Core) applyInhibitions(now time.Time) {
	for _, a := range c.open {
		reason := ""
		for i := range c.silences {
			if c.silences[i].matches(&a.Alarm, now) {
				reason = "silence " + c.silences[i].ID
				break
			}
		}
		if reason == "" {
			for _, b := range c.open {
				if b == a {
					continue
				}
				r := c.byID[b.Rule]
				if r == nil || !slices.Contains(r.inhibits, a.Rule) {
					continue
				}
				if r.scope == ScopeGateway || b.Zone == a.Zone {
					reason = "inhibited by " + b.ID
					break
				}
			}
		}
		if silenced := reason != ""; silenced != a.Silenced || reason != a.Reason {
			was := a.Silenced
			a.Silenced, a.Reason = silenced, reason
			c.dirty = true
			if silenced {
				c.auditf(audit.Entry{Action: "silenced", Detail: reason, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
			} else if was {
				c.auditf(audit.Entry{Action: "unsilenced", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
				if a.State == alarm.StateFiring {
					// Nobody was told while it was muted: tell them now.
					a.LastNotified = now
					c.emit(alarm.EventFiring, &a.Alarm, a.Level, now)
				}
			}
		}
	}
}

// escalate moves unacknowledged alarms up the levels and repeats the top
// level.
func (c *Core) escalate(now time.Time, due func(time.Time)) {
	levels := c.cfg.Escalation.Levels
	for _, a := range c.open {
		if a.State != alarm.StateFiring || a.Silenced {
			continue
		}
		if a.Level < len(levels) {
			at := a.Since.Add(levels[a.Level])
			if !at.After(now) {
				a.Level++
				a.LastNotified, a.Updated = now, now
				c.dirty = true
				c.auditf(audit.Entry{Action: "escalated", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule, Level: a.Level}})
				c.emit(alarm.EventEscalated, &a.Alarm, a.Level, now)
				if a.Level < len(levels) {
					due(a.Since.Add(levels[a.Level]))
				} else if c.cfg.Escalation.Repeat > 0 {
					due(now.Add(c.cfg.Escalation.Repeat))
				}
			} else {
				due(at)
			}
			continue
		}
		if rep := c.cfg.Escalation.Repeat; rep > 0 {
			if at := a.LastNotified.Add(rep); !at.After(now) {
				a.LastNotified = now
				c.dirty = true
				c.auditf(audit.Entry{Action: "repeated", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule, Level: a.Level}})
				c.emit(alarm.EventRepeat, &a.Alarm, a.Level, now)
				due(now.Add(rep))
			} else {
				due(at)
			}
		}
	}
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
		out = append(out, a.Alarm)
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := out[i].Severity.Rank(), out[j].Severity.Rank(); ri != rj {
			return ri > rj
		}
		return out[i].Since.Before(out[j].Since)
	})
	return out
}
