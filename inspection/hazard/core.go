package hazard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Config is what a Core judges against.
type Config struct {
	Location *time.Location
	Zones    []facility.Zone
	// Devices are the facility's sensors (built-in gateway devices are
	// ignored; cameras are named by Cameras).
	Devices []facility.Device
	Cameras []facility.Camera
	// Rules overrides built-in thresholds by rule id; a rule left out
	// keeps its defaults.
	Rules map[string]Thresholds
	// Responsible is who rule-raised items are assigned to at first.
	Responsible string
	// ColdSeason and HotSeason bound the dorm-temperature rule (zero:
	// facility.DefaultColdSeason and DefaultHotSeason).
	ColdSeason, HotSeason facility.Season
}

// keepClosed is how long a verified item stays in the list (the audit
// log keeps its history for good).
const keepClosed = 400 * day

// cond is the condition of one rule for one subject.
type cond struct {
	Rule        string `json:"rule"`
	SubjectKind string `json:"subject_kind"`
	Subject     string `json:"subject"`
	Zone        string `json:"zone,omitempty"`
	// Active: the condition holds, since Since. Inactive since
	// ClearSince (zero: never held).
	Active     bool      `json:"active"`
	Since      time.Time `json:"since,omitzero"`
	ClearSince time.Time `json:"clear_since,omitzero"`
	// Hits are the times of the alarms a count rule counts, within its
	// window.
	Hits []time.Time `json:"hits,omitempty"`
}

// Core is the hazard list's state machine. It is not safe for concurrent
// use: Service owns it from one goroutine.
type Core struct {
	cfg   Config
	rules map[string]*ruleDef
	th    map[string]Thresholds

	devices map[string]*facility.Device
	zones   map[string]*facility.Zone
	cameras map[string]*facility.Camera

	items  []*Item          // oldest first
	byID   map[string]*Item // every item
	active map[string]*Item // the open or rectified item of a condition key
	conds  map[string]*cond
	// lastTest is when each smoke detector last raised a smoke alarm (or,
	// before its first, when the Core first knew it).
	lastTest map[string]time.Time
	nextID   int

	audit []audit.Entry
	dirty bool
}

// NewCore returns an empty hazard list judged by cfg, started at now.
func NewCore(cfg Config, now time.Time) (*Core, error) {
	c := &Core{byID: map[string]*Item{}, active: map[string]*Item{}, conds: map[string]*cond{}, lastTest: map[string]time.Time{}, nextID: 1}
	if err := c.Configure(cfg, now); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckRules returns what is wrong with rule overrides: unknown ids, or
// thresholds a rule cannot use.
func CheckRules(rules map[string]Thresholds) []string {
	var out []string
	for id, th := range rules {
		d := ruleDefOf(id)
		if d == nil {
			out = append(out, fmt.Sprintf("%s: no such hazard rule (rules: %s)", id, strings.Join(RuleIDs(), ", ")))
			continue
		}
		th = merged(d.defaults, th)
		switch {
		case th.Deadline <= 0:
			out = append(out, fmt.Sprintf("%s: deadline must be positive", id))
		case th.ClearFor < 0:
			out = append(out, fmt.Sprintf("%s: clear_for must not be negative", id))
		case d.typ == typeCount && (th.Count < 1 || th.Window <= 0):
			out = append(out, fmt.Sprintf("%s: count must be at least 1 and window positive", id))
		case d.typ != typeCount && th.After <= 0:
			out = append(out, fmt.Sprintf("%s: after must be positive", id))
		}
	}
	slices.Sort(out)
	return out
}

// merged is th over the defaults: zero fields keep the default.
func merged(def, th Thresholds) Thresholds {
	out := def
	if th.After != 0 {
		out.After = th.After
	}
	if th.Count != 0 {
		out.Count = th.Count
	}
	if th.Window != 0 {
		out.Window = th.Window
	}
	if th.Deadline != 0 {
		out.Deadline = th.Deadline
	}
	if th.ClearFor != 0 {
		out.ClearFor = th.ClearFor
	}
	out.Disabled = th.Disabled
	return out
}

// Configure applies a new configuration (at start and on reload). Items
// stay; conditions of subjects and rules that no longer exist are
// forgotten (their open items stay until someone closes them).
func (c *Core) Configure(cfg Config, now time.Time) error {
	if probs := CheckRules(cfg.Rules); len(probs) > 0 {
		return fmt.Errorf("hazard: %s", strings.Join(probs, "; "))
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.ColdSeason.IsZero() {
		cfg.ColdSeason = facility.DefaultColdSeason
	}
	if cfg.HotSeason.IsZero() {
		cfg.HotSeason = facility.DefaultHotSeason
	}
	c.cfg = cfg
	c.rules, c.th = map[string]*ruleDef{}, map[string]Thresholds{}
	for i := range ruleDefs {
		d := &ruleDefs[i]
		th := merged(d.defaults, cfg.Rules[d.id])
		if !th.Disabled {
			c.rules[d.id], c.th[d.id] = d, th
		}
	}
	c.devices, c.zones, c.cameras = map[string]*facility.Device{}, map[string]*facility.Zone{}, map[string]*facility.Camera{}
	for i := range cfg.Devices {
		if d := &cfg.Devices[i]; !d.Builtin {
			c.devices[d.ID] = d
		}
	}
	for i := range cfg.Zones {
		c.zones[cfg.Zones[i].ID] = &cfg.Zones[i]
	}
	for i := range cfg.Cameras {
		c.cameras[cfg.Cameras[i].ID] = &cfg.Cameras[i]
	}
	// Smoke detectors are due a test a quarter after the gateway first
	// knew them, not a quarter after 1970.
	for id, d := range c.devices {
		if d.Kind == "smoke" {
			if _, ok := c.lastTest[id]; !ok {
				c.lastTest[id] = now
			}
		}
	}
	for id := range c.lastTest {
		if d := c.devices[id]; d == nil || d.Kind != "smoke" {
			delete(c.lastTest, id)
		}
	}
	for k, cd := range c.conds {
		if c.rules[cd.Rule] == nil || !c.subjectExists(cd.SubjectKind, cd.Subject) {
			delete(c.conds, k)
		}
	}
	c.dirty = true
	return nil
}

func (c *Core) subjectExists(kind, id string) bool {
	switch kind {
	case SubjectDevice:
		return c.devices[id] != nil
	case SubjectCamera:
		return c.cameras[id] != nil
	case SubjectZone:
		return c.zones[id] != nil
	}
	return false
}

func condKey(rule, kind, subject string) string { return rule + "@" + kind + ":" + subject }

// subjectOf maps an alarm to what a hazard rule's item is about: the
// device, the camera behind a camera fault device, or the zone.
func (c *Core) subjectOf(ruleID string, a *alarm.Alarm) (kind, id, zone string, ok bool) {
	switch {
	case ruleID == RuleCameraDark:
		cam, found := strings.CutPrefix(a.Device, "gateway.camera.")
		if !found || c.cameras[cam] == nil {
			return "", "", "", false
		}
		return SubjectCamera, cam, c.cameras[cam].Zone, true
	case ruleID == RuleDormTemperature || c.rules[ruleID].typ == typeCount:
		if a.Zone == "" || c.zones[a.Zone] == nil {
			return "", "", "", false
		}
		return SubjectZone, a.Zone, a.Zone, true
	default:
		d := c.devices[a.Device]
		if d == nil {
			return "", "", "", false
		}
		return SubjectDevice, d.ID, d.Zone, true
	}
}

// watching returns the enabled hazard rules that watch alarm rule id.
func (c *Core) watching(alarmRule string) []*ruleDef {
	var out []*ruleDef
	for i := range ruleDefs {
		d := &ruleDefs[i]
		if c.rules[d.id] != nil && slices.Contains(d.alarms, alarmRule) {
			out = append(out, d)
		}
	}
	return out
}

// AlarmFired takes an alarm that fired at at: count rules count it, and a
// smoke alarm is a test of its detector.
func (c *Core) AlarmFired(a alarm.Alarm, at time.Time) {
	for _, d := range c.watching(a.Rule) {
		switch d.typ {
		case typeUntested:
			if _, ok := c.lastTest[a.Device]; ok && at.After(c.lastTest[a.Device]) {
				c.lastTest[a.Device] = at
				c.dirty = true
			}
		case typeCount:
			if d.id == RuleNuisanceAlarms && isWalkTest(&a) {
				continue // a detector pressed on purpose is no nuisance
			}
			kind, id, zone, ok := c.subjectOf(d.id, &a)
			if !ok {
				continue
			}
			cd := c.cond(d.id, kind, id, zone)
			cd.Hits = append(cd.Hits, at)
			c.dirty = true
		}
	}
}

func isWalkTest(a *alarm.Alarm) bool {
	return a.Silenced && strings.HasPrefix(a.Reason, "walk test")
}

func (c *Core) cond(rule, kind, subject, zone string) *cond {
	k := condKey(rule, kind, subject)
	cd := c.conds[k]
	if cd == nil {
		cd = &cond{Rule: rule, SubjectKind: kind, Subject: subject, Zone: zone}
		c.conds[k] = cd
	}
	return cd
}

// SyncAlarms takes the rules engine's open alarms at now: duration rules
// hold while an alarm they watch is open (and, for a latched alarm, its
// condition has not cleared).
func (c *Core) SyncAlarms(open []alarm.Alarm, now time.Time) {
	since := map[string]time.Time{}
	subj := map[string][3]string{}
	for i := range open {
		a := &open[i]
		if a.ConditionCleared {
			continue
		}
		for _, d := range c.watching(a.Rule) {
			if d.typ != typeDuration {
				continue
			}
			start := a.Since
			if d.id == RuleDormTemperature {
				// Only the campaign season of the alarm's kind counts.
				season := c.cfg.ColdSeason
				if a.Rule == alarmDormHot {
					season = c.cfg.HotSeason
				}
				s := season.Start(now, c.cfg.Location)
				if s.IsZero() {
					continue
				}
				if start.Before(s) {
					start = s
				}
			}
			kind, id, zone, ok := c.subjectOf(d.id, a)
			if !ok {
				continue
			}
			k := condKey(d.id, kind, id)
			if t, seen := since[k]; !seen || start.Before(t) {
				since[k] = start
			}
			subj[k] = [3]string{kind, id, zone}
		}
	}
	for k, s := range since {
		cd := c.conds[k]
		if cd == nil {
			sj := subj[k]
			cd = c.cond(c.ruleOfKey(k), sj[0], sj[1], sj[2])
		}
		if !cd.Active || !cd.Since.Equal(s) {
			cd.Active, cd.Since, cd.ClearSince = true, s, time.Time{}
			c.dirty = true
		}
	}
	for k, cd := range c.conds {
		d := c.rules[cd.Rule]
		if d == nil || d.typ != typeDuration {
			continue
		}
		if _, holds := since[k]; !holds && cd.Active {
			cd.Active, cd.ClearSince = false, now
			c.dirty = true
		}
	}
}

func (c *Core) ruleOfKey(k string) string {
	r, _, _ := strings.Cut(k, "@")
	return r
}

// sortedConds returns the conditions in key order, so Tick's output does
// not depend on map order.
func (c *Core) sortedConds() []string {
	keys := make([]string, 0, len(c.conds))
	for k := range c.conds {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Tick raises, reopens and rectifies items whose conditions say so, and
// marks open items past their deadline overdue. Times are exact: an item
// opens when its threshold was reached, not when Tick noticed it.
func (c *Core) Tick(now time.Time) {
	// Smoke detectors overdue a test.
	if d := c.rules[RuleSmokeUntested]; d != nil {
		th := c.th[d.id]
		ids := make([]string, 0, len(c.lastTest))
		for id := range c.lastTest {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			last := c.lastTest[id]
			cd := c.cond(d.id, SubjectDevice, id, c.devices[id].Zone)
			due := last.Add(th.After)
			switch {
			case !now.Before(due) && (!cd.Active || !cd.Since.Equal(last)):
				cd.Active, cd.Since, cd.ClearSince = true, last, time.Time{}
				c.dirty = true
			case now.Before(due) && cd.Active:
				cd.Active, cd.ClearSince = false, last // the test cleared it
				c.dirty = true
			}
		}
	}
	for _, k := range c.sortedConds() {
		cd := c.conds[k]
		d, th := c.rules[cd.Rule], c.th[cd.Rule]
		if d == nil {
			continue
		}
		var at time.Time // when the threshold was reached
		switch d.typ {
		case typeCount:
			c.pruneHits(cd, th, now)
			if cd.Active {
				at = cd.Hits[th.Count-1]
			}
		case typeDuration:
			if cd.Active && !now.Before(cd.Since.Add(th.After)) {
				at = cd.Since.Add(th.After)
			}
		case typeUntested:
			if cd.Active {
				at = cd.Since.Add(th.After)
			}
		}
		it := c.active[k]
		switch {
		case !at.IsZero() && it == nil:
			c.raise(k, cd, d, th, at)
		case cd.Active && it != nil && it.Status == StatusRectified:
			// The condition returned before an inspector verified the
			// fix: the fix did not hold.
			ret := cd.Since
			switch d.typ {
			case typeCount:
				ret = cd.Hits[th.Count-1]
			case typeUntested:
				ret = cd.Since.Add(th.After)
			}
			if ret.Before(it.RectifiedAt) {
				ret = it.RectifiedAt
			}
			c.reopen(it, By, "condition returned", ret)
		case !cd.Active && it != nil && it.Status == StatusOpen && !cd.ClearSince.IsZero() &&
			!now.Before(cd.ClearSince.Add(th.ClearFor)) && !cd.ClearSince.Before(it.Since):
			at := cd.ClearSince.Add(th.ClearFor)
			c.rectify(it, By, fmt.Sprintf("condition cleared at %s and stayed clear for %s",
				cd.ClearSince.In(c.cfg.Location).Format("2006-01-02 15:04"), span(th.ClearFor, false)), at)
		}
		if !cd.Active && len(cd.Hits) == 0 && c.active[k] == nil && d.typ != typeUntested {
			delete(c.conds, k) // nothing left to remember
		}
	}
	for _, it := range c.items {
		if it.Status == StatusOpen && !it.Overdue && !now.Before(it.Deadline) {
			it.Overdue = true
			c.change(it, audit.ActionHazardOverdue, By, "", it.Deadline)
		}
	}
	c.expire(now)
}

// pruneHits drops hits older than the window; a count condition that
// falls below its count clears when its oldest counted hit left the
// window.
func (c *Core) pruneHits(cd *cond, th Thresholds, now time.Time) {
	for len(cd.Hits) > 0 && !now.Before(cd.Hits[0].Add(th.Window)) {
		left := cd.Hits[0].Add(th.Window)
		cd.Hits = cd.Hits[1:]
		if cd.Active && len(cd.Hits) < th.Count {
			cd.Active, cd.ClearSince = false, left
		}
		c.dirty = true
	}
	if !cd.Active && len(cd.Hits) >= th.Count {
		cd.Active, cd.Since, cd.ClearSince = true, cd.Hits[0], time.Time{}
		c.dirty = true
	}
}

// raise opens a new item for condition key k, reached at at.
func (c *Core) raise(k string, cd *cond, d *ruleDef, th Thresholds, at time.Time) {
	n := len(cd.Hits)
	it := &Item{
		ID: fmt.Sprintf("HZ-%04d", c.nextID), Rule: d.id, Zone: cd.Zone, SubjectKind: cd.SubjectKind, Subject: cd.Subject,
		Title: d.title(c.displayName(cd.SubjectKind, cd.Subject), n, th), Standard: d.standard,
		Responsible: c.cfg.Responsible, Since: cd.Since, Opened: at, By: By, Deadline: at.Add(th.Deadline), Status: StatusOpen,
	}
	c.nextID++
	c.items = append(c.items, it)
	c.byID[it.ID] = it
	c.active[k] = it
	c.change(it, audit.ActionHazardOpened, By, "", at)
}

// displayName names a subject for a title: its name, or its id.
func (c *Core) displayName(kind, id string) string {
	switch kind {
	case SubjectDevice:
		if d := c.devices[id]; d != nil && d.Name != "" {
			return d.Name
		}
	case SubjectCamera:
		if cam := c.cameras[id]; cam != nil {
			return cam.DisplayName()
		}
	case SubjectZone:
		if z := c.zones[id]; z != nil && z.Name != "" {
			return z.Name
		}
	}
	return id
}

func (c *Core) change(it *Item, action, by, note string, at time.Time) {
	it.History = append(it.History, Change{At: at, Action: action, By: by, Note: note, Status: it.Status})
	c.audit = append(c.audit, audit.Entry{Time: at, Action: action, By: by, Comment: note, Detail: it.Title.EN,
		Hazard: &audit.Hazard{HazardID: it.ID, Rule: it.Rule, Zone: it.Zone, Subject: it.Subject, Status: string(it.Status), Deadline: it.Deadline}})
	c.dirty = true
}

func (c *Core) rectify(it *Item, by, evidence string, at time.Time) {
	it.Status, it.Overdue, it.Evidence, it.RectifiedAt, it.RectifiedBy = StatusRectified, false, evidence, at, by
	c.change(it, audit.ActionHazardRectified, by, evidence, at)
}

func (c *Core) reopen(it *Item, by, note string, at time.Time) {
	it.Status, it.Reopened = StatusOpen, it.Reopened+1
	c.change(it, audit.ActionHazardReopened, by, note, at)
}

// expire forgets verified items older than keepClosed.
func (c *Core) expire(now time.Time) {
	kept := c.items[:0]
	for _, it := range c.items {
		if it.Status == StatusVerified && now.Sub(it.VerifiedAt) > keepClosed {
			delete(c.byID, it.ID)
			c.dirty = true
			continue
		}
		kept = append(kept, it)
	}
	clear(c.items[len(kept):])
	c.items = kept
}

// itemKey is the condition key of a rule-raised item ("" for a manual
// one).
func itemKey(it *Item) string {
	if it.Rule == RuleManual {
		return ""
	}
	return condKey(it.Rule, it.SubjectKind, it.Subject)
}

// Items returns copies of the items, newest first.
func (c *Core) Items() []Item {
	out := make([]Item, 0, len(c.items))
	for i := len(c.items) - 1; i >= 0; i-- {
		out = append(out, c.items[i].clone())
	}
	return out
}

// Item returns a copy of one item.
func (c *Core) Item(id string) (Item, error) {
	it := c.byID[id]
	if it == nil {
		return Item{}, ErrNotFound
	}
	return it.clone(), nil
}

// Overdue returns the overdue items by zone ("" for items of no zone),
// each list oldest deadline first.
func (c *Core) Overdue() map[string][]Item {
	out := map[string][]Item{}
	for _, it := range c.items {
		if it.Overdue {
			out[it.Zone] = append(out[it.Zone], it.clone())
		}
	}
	for _, l := range out {
		slices.SortFunc(l, func(a, b Item) int { return cmp.Or(a.Deadline.Compare(b.Deadline), cmp.Compare(a.ID, b.ID)) })
	}
	return out
}

// NextDeadline is the earliest deadline of an open item not yet overdue
// (zero: none), so that the Service marks it overdue on time.
func (c *Core) NextDeadline() time.Time {
	var next time.Time
	for _, it := range c.items {
		if it.Status == StatusOpen && !it.Overdue && (next.IsZero() || it.Deadline.Before(next)) {
			next = it.Deadline
		}
	}
	return next
}

// Drain returns the audit entries written since the last Drain and
// whether the state changed (and must be saved).
func (c *Core) Drain() (entries []audit.Entry, dirty bool) {
	entries, dirty = c.audit, c.dirty
	c.audit, c.dirty = nil, false
	return entries, dirty
}
