package report

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/availability"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// The test facility: a kitchen with two smoke detectors, a dormitory
// thermometer, a secure ward's door, a foster placement with a camera
// and a door contact that never reported.
func testFacility(t testing.TB) Facility {
	return Facility{
		ID: "north-shelter", Name: "North Shelter", NameZH: "城北救助站", Location: mustLoc(t, "Asia/Shanghai"),
		Zones: []facility.Zone{
			{ID: "kitchen", Name: "Kitchen", NameZH: "厨房", Tags: []string{"kitchen"}},
			{ID: "dorm-3", Name: "Dormitory 3", NameZH: "三号宿舍", Tags: []string{"dormitory"}},
			{ID: "ward-1", Name: "Secure ward", NameZH: "封闭病区", Tags: []string{"secure-ward"}},
			{ID: "foster-1", Name: "Foster home 1", NameZH: "一号寄养点", Tags: []string{"foster"}},
		},
		Devices: []facility.Device{
			{ID: "kitchen-smoke-1", Kind: reading.KindSmoke, Zone: "kitchen", OfflineAfter: 25 * time.Hour},
			{ID: "kitchen-smoke-2", Kind: reading.KindSmoke, Zone: "kitchen", OfflineAfter: 25 * time.Hour},
			{ID: "dorm3-temp", Kind: reading.KindTemperature, Zone: "dorm-3", OfflineAfter: time.Hour},
			{ID: "ward1-door", Name: "Ward exit", Kind: reading.KindDoor, Zone: "ward-1", OfflineAfter: 25 * time.Hour},
			{ID: "foster1-door", Kind: reading.KindDoor, Zone: "foster-1", OfflineAfter: 25 * time.Hour},
			{ID: "gateway.camera.foster-cam", Kind: reading.KindFault, Builtin: true},
		},
		Cameras: []facility.Camera{
			{ID: "foster-cam", Name: "Foster home 1 living room", NameZH: "一号寄养点客厅", Zone: "foster-1"},
			{ID: "kitchen-cam", Name: "Kitchen", Zone: "kitchen"},
		},
	}
}

// driver runs the real rules engine over a timeline and appends what it
// writes to a real audit log, ticking every minute as the engine's
// goroutine would be woken.
type driver struct {
	t   testing.TB
	c   *engine.Core
	log *audit.Log
	now time.Time
	// others are entries of other writers (the video relay, the hazard
	// list), oldest first: appended as the clock passes them, so the log
	// is in time order as a live gateway's is.
	others []audit.Entry
}

func newDriver(t testing.TB, f Facility, log *audit.Log, start time.Time) *driver {
	t.Helper()
	var rules []engine.RuleConfig
	for _, r := range engine.Builtin() {
		if slices.Contains([]string{"smoke", RuleDormCold, RuleDormHot, RuleWardNightDoor}, r.ID) {
			rules = append(rules, r)
		}
	}
	c, err := engine.NewCore(engine.Config{Facility: f.ID, Location: f.Location, Devices: f.Devices, Zones: f.Zones, Rules: rules,
		Escalation: engine.Escalation{Levels: []time.Duration{5 * time.Minute, 15 * time.Minute}}}, start)
	if err != nil {
		t.Fatal(err)
	}
	return &driver{t: t, c: c, log: log, now: start}
}

// to moves the clock to at, ticking every minute on the way.
func (d *driver) to(at time.Time) {
	d.t.Helper()
	for d.now.Before(at) {
		d.now = d.now.Add(time.Minute).Truncate(time.Minute)
		if d.now.After(at) {
			d.now = at
		}
		d.c.Tick(d.now)
		d.flush()
	}
}

func (d *driver) flush() {
	d.t.Helper()
	n := 0
	for n < len(d.others) && !d.others[n].Time.After(d.now) {
		n++
	}
	_, entries, _ := d.c.Drain()
	entries = append(d.others[:n:n], entries...)
	d.others = d.others[n:]
	if err := d.log.Append(entries...); err != nil {
		d.t.Fatal(err)
	}
}

func (d *driver) observe(at time.Time, device string, kind reading.Kind, v reading.Value) {
	d.t.Helper()
	d.to(at)
	d.c.Observe(reading.Reading{Facility: "north-shelter", Device: device, Kind: kind, Time: at, Received: at, Value: v}, at)
	d.c.Tick(at)
	d.flush()
}

func (d *driver) do(at time.Time, what string, err func() error) {
	d.t.Helper()
	d.to(at)
	if e := err(); e != nil {
		d.t.Fatalf("%s at %s: %v", what, at, e)
	}
	d.flush()
}

func openLog(t testing.TB) *audit.Log {
	t.Helper()
	l, err := audit.Open(filepath.Join(t.TempDir(), audit.FileName), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// storeAvailability is the gateway's availability source over s.
func storeAvailability(s *store.Store) AvailabilityFunc {
	return func(ctx context.Context, dev facility.Device, from, end time.Time) ([]facility.Segment, error) {
		return availability.Timeline(ctx, s, availability.DeviceSeries(s, dev.ID), from, end, dev.OfflineAfter)
	}
}

// fixture fills a real audit log (through the rules engine, plus the
// entries the video relay and the hazard list write) and a real store
// with January 2026 at the test facility. The expected figures are
// worked out in TestGenerate.
func fixture(t testing.TB) (Facility, *audit.Log, *store.Store) {
	t.Helper()
	f := testFacility(t)
	sh := f.Location
	d := func(m time.Month, day, h, min int) time.Time {
		y := 2026
		if m == time.December {
			y = 2025
		}
		return time.Date(y, m, day, h, min, 0, 0, sh)
	}
	log := openLog(t)
	var others []audit.Entry
	// Viewing sessions as the video relay writes them (gateway/app).
	view := func(sess, cam, by string, start, end time.Time) {
		es := []audit.Entry{{Action: audit.ActionVideoViewStarted, By: by, Time: start,
			Video: &audit.Video{Camera: cam, Session: sess, Remote: "10.0.0.7:50000", Started: start}}}
		if !end.IsZero() {
			es = append(es, audit.Entry{Action: audit.ActionVideoViewEnded, By: by, Time: end, Detail: "the viewer hung up",
				Video: &audit.Video{Camera: cam, Session: sess, Remote: "10.0.0.7:50000", Started: start, Bytes: 1 << 20}})
		}
		others = append(others, es...)
	}
	view("s1", "foster-cam", "supervisor-li", d(time.December, 31, 23, 50), d(time.January, 1, 0, 20))
	view("s2", "foster-cam", "supervisor-li", d(time.January, 3, 9, 0), d(time.January, 3, 9, 45))
	view("s3", "foster-cam", "inspector-wu", d(time.January, 3, 20, 0), d(time.January, 3, 20, 10))
	view("k1", "kitchen-cam", "supervisor-li", d(time.January, 4, 9, 0), d(time.January, 4, 10, 0))
	view("s4", "foster-cam", "supervisor-li", d(time.January, 31, 23, 30), time.Time{})

	// Hazard list entries (inspection/hazard).
	hz := func(at time.Time, action, item, status string) {
		others = append(others, audit.Entry{Time: at, Action: action, By: "manager-sun",
			Hazard: &audit.Hazard{HazardID: item, Rule: "manual", Zone: "kitchen", Subject: "kitchen-smoke-1", Status: status,
				Deadline: d(time.January, 31, 0, 0)}})
	}
	hz(time.Date(2025, 11, 1, 9, 0, 0, 0, sh), audit.ActionHazardOpened, "hz-4", "open") // before the read: not seen
	hz(d(time.December, 15, 9, 0), audit.ActionHazardOpened, "hz-1", "open")
	hz(d(time.January, 4, 9, 0), audit.ActionHazardOpened, "hz-2", "open")
	hz(d(time.January, 6, 9, 0), audit.ActionHazardOpened, "hz-3", "open")
	hz(d(time.January, 8, 9, 0), audit.ActionHazardRectified, "hz-3", "rectified")
	hz(d(time.January, 10, 9, 0), audit.ActionHazardRectified, "hz-1", "rectified")
	hz(d(time.January, 12, 9, 0), audit.ActionHazardVerified, "hz-1", "verified")
	hz(d(time.January, 15, 9, 0), audit.ActionHazardReopened, "hz-3", "open")
	hz(d(time.January, 18, 9, 0), audit.ActionHazardOverdue, "hz-2", "open")
	hz(d(time.January, 25, 9, 0), audit.ActionHazardRectified, "hz-3", "rectified")

	slices.SortStableFunc(others, func(a, b audit.Entry) int { return a.Time.Compare(b.Time) })
	e := newDriver(t, f, log, time.Date(2025, 10, 20, 0, 0, 0, 0, sh))
	e.others = others
	temp := func(at time.Time, c float64) { e.observe(at, "dorm3-temp", reading.KindTemperature, reading.Number(c)) }
	smoke := func(at time.Time, dev string, on bool) { e.observe(at, dev, reading.KindSmoke, reading.Bool(on)) }
	door := func(at time.Time, open bool) { e.observe(at, "ward1-door", reading.KindDoor, reading.Bool(open)) }
	ack := func(at time.Time, id, by, comment string) {
		e.do(at, "ack "+id, func() error { return e.c.Acknowledge(id, by, comment, at) })
	}
	reset := func(at time.Time, id, by string) {
		e.do(at, "reset "+id, func() error { return e.c.Reset(id, by, "checked", at) })
	}
	const (
		cold   = "dorm-cold@dev:dorm3-temp"
		smoke1 = "smoke@dev:kitchen-smoke-1"
		smoke2 = "smoke@dev:kitchen-smoke-2"
		ward   = "ward-night-door@dev:ward1-door"
	)
	// #1: cold from before the period into it; escalated in December.
	temp(d(time.December, 28, 22, 0), 14)
	temp(d(time.January, 2, 8, 0), 19)
	// #2: smoke, acknowledged in 3 minutes, reset.
	smoke(d(time.January, 5, 10, 0), "kitchen-smoke-1", true)
	ack(d(time.January, 5, 10, 3), smoke1, "zhang", "burnt toast")
	smoke(d(time.January, 5, 10, 4), "kitchen-smoke-1", false)
	reset(d(time.January, 5, 10, 10), smoke1, "zhang")
	// #3: smoke, escalated to level 2 (the department) before its
	// acknowledgement after 20 minutes, without a comment.
	smoke(d(time.January, 6, 14, 0), "kitchen-smoke-2", true)
	ack(d(time.January, 6, 14, 20), smoke2, "li", "")
	smoke(d(time.January, 6, 14, 21), "kitchen-smoke-2", false)
	reset(d(time.January, 6, 14, 25), smoke2, "li")
	// #4, #5: night exits; the first closes before anyone acknowledges.
	door(d(time.January, 8, 2, 0), true)
	door(d(time.January, 8, 2, 1), false)
	door(d(time.January, 9, 3, 0), true)
	ack(d(time.January, 9, 3, 2), ward, "wang", "resident back in bed")
	door(d(time.January, 9, 3, 3), false)
	// #6: a walk test of the kitchen; its smoke alarm is no real alarm.
	e.do(d(time.January, 12, 10, 0), "start walk test", func() error {
		_, err := e.c.StartWalkTest(engine.WalkTest{ID: "wt-1", Zones: []string{"kitchen"}, Ends: d(time.January, 12, 12, 0), By: "installer-chen"}, e.now)
		return err
	})
	smoke(d(time.January, 12, 10, 5), "kitchen-smoke-1", true)
	smoke(d(time.January, 12, 10, 6), "kitchen-smoke-1", false)
	e.do(d(time.January, 12, 10, 30), "end walk test", func() error { _, err := e.c.EndWalkTest("installer-chen", e.now); return err })
	// #7: cold for 10 hours, acknowledged after 8.
	temp(d(time.January, 20, 23, 0), 15)
	ack(d(time.January, 21, 7, 15), cold, "zhao", "heater repaired")
	temp(d(time.January, 21, 9, 15), 18.5)
	// #8: cold from the last evening of the period on.
	temp(d(time.January, 31, 20, 0), 14)
	e.to(d(time.February, 1, 0, 0))
	if len(e.others) > 0 {
		t.Fatalf("%d entries of other writers were not written", len(e.others))
	}
	ack(d(time.February, 1, 1, 0), cold, "zhao", "after the period")

	// Signs of life in the store: the thermometer every half hour but
	// for a night, the detectors' and door's daily check-ins, one
	// detector missing three, the door saying it is offline for a morning.
	st := openStore(t, t.TempDir())
	var rs []reading.Reading
	add := func(dev string, kind reading.Kind, at time.Time, v reading.Value) {
		zone := ""
		for _, x := range f.Devices {
			if x.ID == dev {
				zone = x.Zone
			}
		}
		rs = append(rs, reading.Reading{Facility: f.ID, Device: dev, Zone: zone, Kind: kind, Format: "native", Time: at, Received: at, Value: v})
	}
	for at := d(time.December, 31, 0, 0); at.Before(d(time.February, 1, 0, 0)); at = at.Add(30 * time.Minute) {
		if at.After(d(time.January, 14, 23, 30)) && at.Before(d(time.January, 15, 6, 0)) {
			continue
		}
		add("dorm3-temp", reading.KindTemperature, at, reading.Number(20))
	}
	for day := d(time.December, 31, 12, 0); day.Before(d(time.February, 1, 0, 0)); day = day.AddDate(0, 0, 1) {
		add("kitchen-smoke-1", reading.KindSmoke, day, reading.Bool(false))
		if day.Before(d(time.January, 20, 0, 0)) || day.After(d(time.January, 23, 0, 0)) {
			add("kitchen-smoke-2", reading.KindSmoke, day, reading.Bool(false))
		}
		add("ward1-door", reading.KindDoor, day, reading.Bool(false))
	}
	add("ward1-door", reading.KindAvailability, d(time.January, 25, 8, 0), reading.Bool(false))
	if err := st.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	return f, log, st
}
