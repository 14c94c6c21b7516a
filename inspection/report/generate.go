package report

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// AuditLog is the part of the audit log a report reads (*audit.Log).
type AuditLog interface {
	// Each calls fn with the entries matching f, newest first.
	Each(f audit.Filter, fn func(e *audit.Entry) bool) error
}

// AvailabilityFunc returns the availability timeline of dev over
// [from, end). In the gateway it is availability.Timeline over the store.
type AvailabilityFunc func(ctx context.Context, dev facility.Device, from, end time.Time) ([]facility.Segment, error)

// Facility is what the report needs of the facility model.
type Facility struct {
	ID, Name, NameZH string
	Location         *time.Location
	Zones            []facility.Zone
	Devices          []facility.Device
	Cameras          []facility.Camera
}

// Options are a report's sources and settings.
type Options struct {
	Facility Facility
	// Audit is the audit log (required).
	Audit AuditLog
	// Availability gives the devices' timelines; nil leaves the
	// availability figures "n/a".
	Availability AvailabilityFunc
	// DepartmentLevel is the escalation level at which the civil-affairs
	// department is told; 0 (not configured) makes that figure "n/a".
	DepartmentLevel int
	// SupervisedTag marks the zones that are foster placements, whose
	// cameras' remote supervision is reported (default "foster").
	SupervisedTag string
	// ColdSeason and HotSeason bound the dormitory temperature figures
	// (defaults facility.DefaultColdSeason, DefaultHotSeason).
	ColdSeason, HotSeason facility.Season
	// Lookback is how far before the period the audit log is read, for
	// what the period's entries need of earlier ones: when an alarm that
	// was still open at the period's start fired, and which hazard items
	// were open (default DefaultLookback). An alarm that fired and ended
	// outside the read has no entries in it and needs none; see the
	// tables' notes for what is approximated.
	Lookback time.Duration
	// Now is the clock (default time.Now): the generation time, and the
	// end of the figures of a period still running.
	Now func() time.Time
}

// DefaultLookback reads a month before the period: long enough for any
// alarm to have been acknowledged or escalated, short enough that a
// quarter's report reads at most four months of the log.
const DefaultLookback = 31 * 24 * time.Hour

// Zone tags and rule ids (rules/engine's built-in rules) some figures
// are about.
const (
	DefaultSupervisedTag = "foster"
	TagDormitory         = "dormitory"
	TagSecureWard        = "secure-ward"
	RuleDormCold         = "dorm-cold"
	RuleDormHot          = "dorm-hot"
	RuleWardNightDoor    = "ward-night-door"
)

// The alarm lifecycle actions the rules engine writes (rules/engine).
const (
	actionFired           = "fired"
	actionAcknowledged    = "acknowledged"
	actionReset           = "reset"
	actionResolved        = "resolved"
	actionDropped         = "dropped"
	actionEscalated       = "escalated"
	actionSilenced        = "silenced"
	actionWalktestCleared = "walktest_cleared"
	actionWalktestStarted = "walktest_started"
	actionWalktestEnded   = "walktest_ended"
)

// walkReason starts the Detail of a "silenced" entry of an alarm that a
// walk test holds back (rules/engine.applyInhibitions).
const walkReason = "walk test "

// Generate computes the report of period p. It only reads its sources.
func Generate(ctx context.Context, opts Options, p Period) (*Report, error) {
	if opts.Audit == nil {
		return nil, errors.New("report: generate: no audit log")
	}
	if !p.To.After(p.From) {
		return nil, fmt.Errorf("report: generate: period %s to %s is empty", p.From.Format(time.RFC3339), p.To.Format(time.RFC3339))
	}
	opts = withDefaults(opts)
	for name, s := range map[string]facility.Season{"cold season": opts.ColdSeason, "hot season": opts.HotSeason} {
		if _, err := facility.ParseSeason(s.String()); err != nil {
			return nil, fmt.Errorf("report: generate: %s: %w", name, err)
		}
	}
	f := &opts.Facility
	now := opts.Now()
	// Nothing after now has happened yet: a running period's figures stop
	// at now, and an alarm still open is open now.
	end := p.To
	if now.Before(end) {
		end = now
	}
	if end.Before(p.From) {
		end = p.From
	}
	g := &gen{opts: opts, f: f, loc: f.Location, from: p.From, end: end, readFrom: p.From.Add(-opts.Lookback),
		zoneOf: map[string]string{}, zones: map[string]*facility.Zone{}}
	for i := range f.Devices {
		g.zoneOf[f.Devices[i].ID] = f.Devices[i].Zone
	}
	for i := range f.Zones {
		g.zones[f.Zones[i].ID] = &f.Zones[i]
	}
	if err := g.read(); err != nil {
		return nil, err
	}
	r := &Report{
		Generated: now.UTC(),
		Facility:  FacilityInfo{ID: f.ID, Name: Text{ZH: f.NameZH, EN: f.Name}, Timezone: f.Location.String()},
		Period:    p,
		End:       end.UTC(),
		loc:       f.Location,
	}
	r.Period.From, r.Period.To = p.From.In(f.Location), p.To.In(f.Location)
	if r.Facility.Name.ZH == "" {
		r.Facility.Name.ZH = f.Name
	}
	devices, err := g.devices(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range []section{devices, g.alarms(), g.escalations(), g.walkTests(), g.hazards(), g.video(), g.dormitories(), g.wards()} {
		r.Tables = append(r.Tables, s.table)
		r.Details = append(r.Details, s.details...)
	}
	return r, nil
}

func withDefaults(o Options) Options {
	if o.Facility.Location == nil {
		o.Facility.Location = time.UTC
	}
	if o.SupervisedTag == "" {
		o.SupervisedTag = DefaultSupervisedTag
	}
	if o.ColdSeason.IsZero() {
		o.ColdSeason = facility.DefaultColdSeason
	}
	if o.HotSeason.IsZero() {
		o.HotSeason = facility.DefaultHotSeason
	}
	if o.Lookback <= 0 {
		o.Lookback = DefaultLookback
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// section is one summary table and its drill-down lists.
type section struct {
	table   Table
	details []Table
}

// gen holds what one report's read of the audit log found.
type gen struct {
	opts      Options
	f         *Facility
	loc       *time.Location
	from, end time.Time // the figures' stretch [from, end)
	readFrom  time.Time // where the read of the log starts (from − lookback)
	zoneOf    map[string]string
	zones     map[string]*facility.Zone

	episodes    map[episodeKey]*episode
	escalated   []audit.Entry // escalations in [from, end), newest first
	walkEntries []audit.Entry // walk test starts and ends, newest first
	hazard      []audit.Entry // hazard entries, newest first
	sessions    map[string]*session
}

// episodeKey names one alarm episode: an alarm id fires again with a new
// sequence number.
type episodeKey struct {
	id  string
	seq uint64
}

// episode is one alarm from firing to its end, as far as the read shows it.
type episode struct {
	key            episodeKey
	rule, severity string
	zone           string
	fired          time.Time // zero: fired before the read
	acked          time.Time // the first acknowledgement; zero: none
	ackBy, comment string
	ended          time.Time // resolved, reset or dropped; zero: still open at the end
	walkTest       bool      // raised while a walk test held it back
}

// session is one remote viewing session of a camera.
type session struct {
	id, camera, by string
	started, ended time.Time // ended zero: still open at the end
}

// read walks the audit log once, newest first, over [readFrom, end).
func (g *gen) read() error {
	g.episodes = map[episodeKey]*episode{}
	g.sessions = map[string]*session{}
	err := g.opts.Audit.Each(audit.Filter{From: g.readFrom, To: g.end}, func(e *audit.Entry) bool {
		switch {
		case e.Alarm != nil && e.Alarm.AlarmID != "":
			g.alarmEntry(e)
		case e.Video != nil && e.Video.Session != "":
			g.videoEntry(e)
		case e.Hazard != nil && e.Hazard.HazardID != "":
			g.hazard = append(g.hazard, *e)
		case e.Action == actionWalktestStarted || e.Action == actionWalktestEnded:
			g.walkEntries = append(g.walkEntries, *e)
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("report: read the audit log from %s to %s: %w", g.readFrom.Format(time.RFC3339), g.end.Format(time.RFC3339), err)
	}
	return nil
}

func (g *gen) alarmEntry(e *audit.Entry) {
	k := episodeKey{e.Alarm.AlarmID, e.Alarm.Seq}
	ep := g.episodes[k]
	if ep == nil {
		ep = &episode{key: k, rule: e.Alarm.Rule, zone: g.alarmZone(k.id)}
		g.episodes[k] = ep
	}
	if ep.rule == "" {
		ep.rule = e.Alarm.Rule
	}
	switch e.Action {
	case actionFired:
		ep.fired, ep.severity = e.Time, e.Alarm.Severity
	case actionAcknowledged:
		// Newest first: the last one seen is the first made.
		ep.acked, ep.ackBy, ep.comment = e.Time, e.By, e.Comment
	case actionReset, actionResolved, actionDropped:
		ep.ended = e.Time
	case actionSilenced:
		if strings.HasPrefix(e.Detail, walkReason) {
			ep.walkTest = true
		}
	case actionWalktestCleared:
		ep.walkTest = true
	case actionEscalated:
		if !e.Time.Before(g.from) {
			g.escalated = append(g.escalated, *e)
		}
	}
}

func (g *gen) videoEntry(e *audit.Entry) {
	v := e.Video
	s := g.sessions[v.Session]
	if s == nil {
		s = &session{id: v.Session}
		g.sessions[v.Session] = s
	}
	s.camera, s.by = v.Camera, e.By
	switch e.Action {
	case audit.ActionVideoViewStarted:
		s.started = e.Time
		if !v.Started.IsZero() {
			s.started = v.Started
		}
	case audit.ActionVideoViewEnded:
		s.ended = e.Time
		if s.started.IsZero() {
			s.started = v.Started
		}
	}
}

// alarmZone is the zone of an alarm id: "<rule>@dev:<device>" is in the
// device's zone, "<rule>@zone:<zone>" in that zone, a gateway alarm in
// none.
func (g *gen) alarmZone(id string) string {
	_, subject, _ := strings.Cut(id, "@")
	if z, ok := strings.CutPrefix(subject, "zone:"); ok {
		return z
	}
	if d, ok := strings.CutPrefix(subject, "dev:"); ok {
		return g.zoneOf[d]
	}
	return ""
}

// inPeriod reports whether t is within the figures' stretch.
func (g *gen) inPeriod(t time.Time) bool { return !t.Before(g.from) && t.Before(g.end) }

// zoneText is a zone's name in both languages (its id when it has none).
func (g *gen) zoneText(id string) Text {
	z := g.zones[id]
	if z == nil {
		return same(id)
	}
	t := Text{ZH: z.NameZH, EN: z.Name}
	if t.EN == "" {
		t.EN = id
	}
	if t.ZH == "" {
		t.ZH = t.EN
	}
	return t
}
