package hazard

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return l
}()

// t0 is a Monday in January, in the cold season.
var t0 = time.Date(2027, 1, 4, 9, 0, 0, 0, shanghai)

func testConfig() Config {
	return Config{
		Location: shanghai,
		Zones: []facility.Zone{
			{ID: "dorm-1", Name: "Dormitory 1", NameZH: "一号宿舍", Tags: []string{"dormitory"}},
			{ID: "ward", Name: "Secure ward", Tags: []string{"secure-ward"}},
			{ID: "kitchen", Name: "Kitchen"},
		},
		Devices: []facility.Device{
			{ID: "dorm-1-smoke", Name: "Dorm 1 smoke", Kind: "smoke", Zone: "dorm-1"},
			{ID: "dorm-1-temp", Kind: "temperature", Zone: "dorm-1"},
			{ID: "ward-door", Kind: "door", Zone: "ward"},
			{ID: "kitchen-smoke", Kind: "smoke", Zone: "kitchen"},
			{ID: "gateway.camera.ward-cam", Kind: "fault", Builtin: true},
		},
		Cameras:     []facility.Camera{{ID: "ward-cam", Name: "Ward camera", Zone: "ward"}},
		Responsible: "Facility manager",
	}
}

// timeline drives a Core the way the Service does: alarm events and the
// engine's open alarms at each step.
type timeline struct {
	t       *testing.T
	c       *Core
	open    map[string]alarm.Alarm
	entries []audit.Entry
}

func newTimeline(t *testing.T, cfg Config) *timeline {
	t.Helper()
	c, err := NewCore(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &timeline{t: t, c: c, open: map[string]alarm.Alarm{}}
}

func alarmOf(rule, device, zone string) alarm.Alarm {
	id := rule + "@dev:" + device
	if device == "" {
		id = rule + "@zone:" + zone
	}
	return alarm.Alarm{ID: id, Rule: rule, Device: device, Zone: zone, Severity: alarm.SeverityTrouble}
}

// fire opens an alarm at at (and tells the Core it fired).
func (tl *timeline) fire(a alarm.Alarm, at time.Time) {
	tl.step(at)
	a.Since = at
	tl.open[a.ID] = a
	tl.c.AlarmFired(a, at)
	tl.step(at)
}

// end resolves an alarm at at.
func (tl *timeline) end(id string, at time.Time) {
	tl.step(at)
	delete(tl.open, id)
	tl.step(at)
}

func (tl *timeline) step(now time.Time) {
	open := make([]alarm.Alarm, 0, len(tl.open))
	for _, a := range tl.open {
		open = append(open, a)
	}
	tl.c.SyncAlarms(open, now)
	tl.c.Tick(now)
	e, _ := tl.c.Drain()
	tl.entries = append(tl.entries, e...)
}

// run steps every 10 minutes from from to to.
func (tl *timeline) run(from, to time.Time) {
	for t := from; !t.After(to); t = t.Add(10 * time.Minute) {
		tl.step(t)
	}
}

func (tl *timeline) items() []Item { return tl.c.Items() }

func (tl *timeline) only(rule string) Item {
	tl.t.Helper()
	var got []Item
	for _, it := range tl.items() {
		if it.Rule == rule {
			got = append(got, it)
		}
	}
	if len(got) != 1 {
		tl.t.Fatalf("want one %s item, got %d: %+v", rule, len(got), got)
	}
	return got[0]
}

func (tl *timeline) actions(id string) []string {
	var out []string
	for _, e := range tl.entries {
		if e.Hazard != nil && e.Hazard.HazardID == id {
			out = append(out, e.Action+"@"+e.Time.In(shanghai).Format("01-02 15:04"))
		}
	}
	return out
}

func TestDetectorOfflineLifecycle(t *testing.T) {
	tl := newTimeline(t, testConfig())
	off := alarmOf("device-offline", "dorm-1-smoke", "dorm-1")
	tl.fire(off, t0)
	tl.run(t0, t0.Add(23*time.Hour))
	if n := len(tl.items()); n != 0 {
		t.Fatalf("an item before the detector was offline a day: %+v", tl.items())
	}
	tl.run(t0.Add(23*time.Hour), t0.Add(30*time.Hour))
	it := tl.only(RuleDetectorOffline)
	if !it.Opened.Equal(t0.Add(24*time.Hour)) || !it.Since.Equal(t0) || !it.Deadline.Equal(t0.Add(4*24*time.Hour)) ||
		it.Status != StatusOpen || it.Zone != "dorm-1" || it.Subject != "dorm-1-smoke" || it.Responsible != "Facility manager" {
		t.Fatalf("item = %+v", it)
	}
	if it.Title.EN != "Detector Dorm 1 smoke offline for more than 1 day" || it.Title.ZH != "探测器 Dorm 1 smoke 离线超过 1 天" {
		t.Fatalf("title = %+v", it.Title)
	}
	// A manager cannot call it fixed while the detector is still offline.
	if _, err := tl.c.Rectify(it.ID, "li.manager", "replaced", t0.Add(31*time.Hour)); !errors.Is(err, ErrConditionHolds) {
		t.Fatalf("rectify while offline: %v", err)
	}
	// Back at 40h; a day later the gateway counts it rectified.
	tl.end(off.ID, t0.Add(40*time.Hour))
	tl.run(t0.Add(40*time.Hour), t0.Add(64*time.Hour+10*time.Minute))
	it = tl.only(RuleDetectorOffline)
	if it.Status != StatusRectified || !it.RectifiedAt.Equal(t0.Add(64*time.Hour)) || it.RectifiedBy != By || it.Overdue {
		t.Fatalf("after a day back online: %+v", it)
	}
	if _, err := tl.c.Verify(it.ID, "wang.inspector", "checked on site", t0.Add(70*time.Hour)); err != nil {
		t.Fatal(err)
	}
	e, _ := tl.c.Drain()
	tl.entries = append(tl.entries, e...)
	want := []string{"hazard_opened@01-05 09:00", "hazard_rectified@01-07 01:00", "hazard_verified@01-07 07:00"}
	if got := tl.actions(it.ID); !slices.Equal(got, want) {
		t.Fatalf("audit = %v, want %v", got, want)
	}
	// Offline again later: a new item, not the closed one.
	tl.fire(off, t0.Add(100*time.Hour))
	tl.run(t0.Add(100*time.Hour), t0.Add(125*time.Hour))
	if n := len(tl.items()); n != 2 || tl.items()[0].Status != StatusOpen || tl.items()[0].ID == it.ID {
		t.Fatalf("items = %+v", tl.items())
	}
}

func TestDeadlines(t *testing.T) {
	low := alarmOf("low-battery", "ward-door", "ward")
	t.Run("overdue unrectified notifies", func(t *testing.T) {
		tl := newTimeline(t, testConfig())
		tl.fire(low, t0)
		tl.run(t0, t0.Add(10*24*time.Hour+time.Hour))
		it := tl.only(RuleBatteryLow)
		if !it.Opened.Equal(t0.Add(7*24*time.Hour)) || !it.Deadline.Equal(t0.Add(10*24*time.Hour)) || !it.Overdue {
			t.Fatalf("item = %+v", it)
		}
		if got := tl.actions(it.ID); !slices.Equal(got, []string{"hazard_opened@01-11 09:00", "hazard_overdue@01-14 09:00"}) {
			t.Fatalf("audit = %v", got)
		}
		od := tl.c.Overdue()
		if len(od) != 1 || len(od["ward"]) != 1 || od["ward"][0].ID != it.ID {
			t.Fatalf("overdue = %+v", od)
		}
		// Fixed late: no longer overdue.
		tl.end(low.ID, t0.Add(11*24*time.Hour))
		tl.run(t0.Add(11*24*time.Hour), t0.Add(12*24*time.Hour+time.Hour))
		if it := tl.only(RuleBatteryLow); it.Status != StatusRectified || it.Overdue || len(tl.c.Overdue()) != 0 {
			t.Fatalf("after rectification: %+v", it)
		}
	})
	t.Run("rectified before the deadline", func(t *testing.T) {
		tl := newTimeline(t, testConfig())
		tl.fire(low, t0)
		tl.run(t0, t0.Add(8*24*time.Hour))
		tl.end(low.ID, t0.Add(8*24*time.Hour))
		tl.run(t0.Add(8*24*time.Hour), t0.Add(20*24*time.Hour))
		it := tl.only(RuleBatteryLow)
		if it.Status != StatusRectified || it.Overdue {
			t.Fatalf("item = %+v", it)
		}
		for _, e := range tl.entries {
			if e.Action == audit.ActionHazardOverdue {
				t.Fatalf("overdue entry for an item rectified in time: %+v", e)
			}
		}
	})
	t.Run("condition returns after rectification", func(t *testing.T) {
		tl := newTimeline(t, testConfig())
		tl.fire(low, t0)
		tl.run(t0, t0.Add(8*24*time.Hour))
		tl.end(low.ID, t0.Add(8*24*time.Hour))
		tl.run(t0.Add(8*24*time.Hour), t0.Add(9*24*time.Hour+time.Hour))
		if it := tl.only(RuleBatteryLow); it.Status != StatusRectified {
			t.Fatalf("item = %+v", it)
		}
		back := t0.Add(9*24*time.Hour + 2*time.Hour)
		tl.fire(low, back)
		it := tl.only(RuleBatteryLow)
		if it.Status != StatusOpen || it.Reopened != 1 || it.History[len(it.History)-1].Action != audit.ActionHazardReopened ||
			!it.History[len(it.History)-1].At.Equal(back) {
			t.Fatalf("item = %+v", it)
		}
		// Its deadline stays: it is overdue at once past it.
		tl.run(back, t0.Add(10*24*time.Hour+time.Minute))
		if it := tl.only(RuleBatteryLow); !it.Overdue {
			t.Fatalf("reopened item past its deadline not overdue: %+v", it)
		}
	})
	t.Run("manager's note and inspector's rejection", func(t *testing.T) {
		tl := newTimeline(t, testConfig())
		it, err := tl.c.Create(Manual{Zone: "kitchen", Title: alarm.Text{ZH: "灭火器过期"}, Standard: alarm.Text{ZH: "灭火器在有效期内"},
			Responsible: "Chef", Deadline: t0.Add(48 * time.Hour)}, "wang.inspector", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tl.c.Verify(it.ID, "wang.inspector", "", t0.Add(time.Hour)); !errors.Is(err, ErrStatus) {
			t.Fatalf("verify an open item: %v", err)
		}
		if _, err := tl.c.Rectify(it.ID, "li.manager", "", t0.Add(time.Hour)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("rectify without a note: %v", err)
		}
		if _, err := tl.c.Rectify(it.ID, "li.manager", "replaced both extinguishers", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := tl.c.Reopen(it.ID, "wang.inspector", "only one was replaced", t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		tl.run(t0.Add(2*time.Hour), t0.Add(49*time.Hour))
		got, _ := tl.c.Item(it.ID)
		if got.Status != StatusOpen || !got.Overdue || got.Reopened != 1 {
			t.Fatalf("item = %+v", got)
		}
		// A new deadline ahead ends the overdue state.
		got, err = tl.c.Change(it.ID, "wang.inspector", Update{Deadline: t0.Add(96 * time.Hour), Note: "parts ordered"}, t0.Add(50*time.Hour))
		if err != nil || got.Overdue {
			t.Fatalf("change: %+v %v", got, err)
		}
	})
}

func TestCountRules(t *testing.T) {
	tl := newTimeline(t, testConfig())
	night := func(d int) time.Time { return time.Date(2027, 1, 4+d, 2, 30, 0, 0, shanghai) }
	door := alarmOf("ward-night-door", "ward-door", "ward")
	for _, d := range []int{0, 3} {
		tl.fire(door, night(d))
		tl.end(door.ID, night(d).Add(time.Minute))
	}
	tl.run(night(3), night(4))
	if len(tl.items()) != 0 {
		t.Fatalf("two exits in a week raised %+v", tl.items())
	}
	tl.fire(door, night(5))
	it := tl.only(RuleNightExits)
	if !it.Opened.Equal(night(5)) || !it.Since.Equal(night(0)) || it.Subject != "ward" || it.SubjectKind != SubjectZone ||
		it.Title.EN != "3 night exits from Secure ward within 7 days" {
		t.Fatalf("item = %+v", it)
	}
	// The first exit leaves the window on day 7: the condition clears,
	// and a quiet week later the item is rectified.
	tl.run(night(5), night(13))
	if it := tl.only(RuleNightExits); it.Status != StatusOpen {
		t.Fatalf("rectified before a quiet week: %+v", it)
	}
	tl.run(night(13), night(15))
	if it := tl.only(RuleNightExits); it.Status != StatusRectified || !it.RectifiedAt.Equal(night(14)) {
		t.Fatalf("after a quiet week: %+v", it)
	}

	// Nuisance alarms: walk-test alarms do not count.
	smoke := alarmOf("smoke", "kitchen-smoke", "kitchen")
	walk := smoke
	walk.Silenced, walk.Reason = true, "walk test WT-1"
	at := t0.Add(20 * 24 * time.Hour)
	for i, a := range []alarm.Alarm{smoke, walk, walk, smoke} {
		tl.fire(a, at.Add(time.Duration(i)*24*time.Hour))
		tl.end(a.ID, at.Add(time.Duration(i)*24*time.Hour+time.Minute))
	}
	for _, it := range tl.items() {
		if it.Rule == RuleNuisanceAlarms {
			t.Fatalf("walk-test alarms counted as nuisance: %+v", it)
		}
	}
	tl.fire(smoke, at.Add(5*24*time.Hour))
	if it := tl.only(RuleNuisanceAlarms); it.Subject != "kitchen" {
		t.Fatalf("item = %+v", it)
	}
}

func TestSmokeUntested(t *testing.T) {
	tl := newTimeline(t, testConfig())
	// The kitchen detector is pressed in week 2; the dormitory's never.
	tl.fire(alarmOf("smoke", "kitchen-smoke", "kitchen"), t0.Add(14*24*time.Hour))
	tl.run(t0.Add(91*24*time.Hour), t0.Add(92*24*time.Hour))
	it := tl.only(RuleSmokeUntested)
	if it.Subject != "dorm-1-smoke" || !it.Opened.Equal(t0.Add(92*24*time.Hour)) || !it.Since.Equal(t0) {
		t.Fatalf("item = %+v", it)
	}
	// A walk test (a silenced smoke alarm) is a test: rectified at once.
	walk := alarmOf("smoke", "dorm-1-smoke", "dorm-1")
	walk.Silenced, walk.Reason = true, "walk test WT-2"
	tested := t0.Add(95 * 24 * time.Hour)
	tl.fire(walk, tested)
	if it := tl.only(RuleSmokeUntested); it.Status != StatusRectified || !it.RectifiedAt.Equal(tested) {
		t.Fatalf("after the test: %+v", it)
	}
}

func TestCameraAndTemperature(t *testing.T) {
	tl := newTimeline(t, testConfig())
	cam := alarmOf("camera-down", "gateway.camera.ward-cam", "ward")
	tl.fire(cam, t0)
	// The camera is back after 20 hours; the latched alarm waits for a
	// reset, which does not keep the hazard going.
	cleared := cam
	cleared.Since, cleared.ConditionCleared = t0, true
	tl.run(t0, t0.Add(20*time.Hour))
	tl.open[cam.ID] = cleared
	tl.run(t0.Add(20*time.Hour), t0.Add(48*time.Hour))
	if len(tl.items()) != 0 {
		t.Fatalf("items = %+v", tl.items())
	}
	tl.open[cam.ID] = alarm.Alarm{ID: cam.ID, Rule: cam.Rule, Device: cam.Device, Zone: "ward", Since: t0.Add(50 * time.Hour)}
	tl.run(t0.Add(50*time.Hour), t0.Add(75*time.Hour))
	if it := tl.only(RuleCameraDark); it.Subject != "ward-cam" || it.SubjectKind != SubjectCamera {
		t.Fatalf("item = %+v", it)
	}

	// Cold in January counts; heat in January would not be a season's.
	cold := alarmOf("dorm-cold", "dorm-1-temp", "dorm-1")
	tl.fire(cold, t0.Add(100*time.Hour))
	tl.run(t0.Add(100*time.Hour), t0.Add(105*time.Hour))
	if it := tl.only(RuleDormTemperature); it.Subject != "dorm-1" || !it.Opened.Equal(t0.Add(104*time.Hour)) {
		t.Fatalf("item = %+v", it)
	}
	hot := alarmOf("dorm-hot", "dorm-1-temp", "kitchen")
	tl.fire(hot, t0.Add(110*time.Hour))
	tl.run(t0.Add(110*time.Hour), t0.Add(120*time.Hour))
	for _, it := range tl.items() {
		if it.Rule == RuleDormTemperature && it.Subject == "kitchen" {
			t.Fatalf("heat out of season raised %+v", it)
		}
	}
}

func TestRestoreKeepsTheList(t *testing.T) {
	tl := newTimeline(t, testConfig())
	tl.fire(alarmOf("low-battery", "ward-door", "ward"), t0)
	tl.run(t0, t0.Add(8*24*time.Hour))
	b, err := tl.c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := NewCore(testConfig(), t0.Add(8*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Restore(b, t0.Add(8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	tl.c = c2
	tl.run(t0.Add(8*24*time.Hour), t0.Add(11*24*time.Hour))
	it := tl.only(RuleBatteryLow)
	if it.ID != "HZ-0001" || !it.Overdue {
		t.Fatalf("after restore: %+v", it)
	}
	if _, err := c2.Create(Manual{Zone: "ward", Title: alarm.Text{EN: "x"}, Standard: alarm.Text{EN: "y"}, Responsible: "z",
		Deadline: t0.Add(20 * 24 * time.Hour)}, "i", t0.Add(11*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if items := c2.Items(); items[0].ID != "HZ-0002" {
		t.Fatalf("ids restart after restore: %s", items[0].ID)
	}
}

func TestManualValidation(t *testing.T) {
	ok := Manual{Zone: "kitchen", Title: alarm.Text{EN: "Exit blocked"}, Standard: alarm.Text{EN: "Exits clear"}, Responsible: "Li", Deadline: t0.Add(time.Hour)}
	for _, tc := range []struct {
		name string
		edit func(m *Manual)
	}{
		{"unknown zone", func(m *Manual) { m.Zone = "attic" }},
		{"unknown device", func(m *Manual) { m.Device = "nope" }},
		{"device and camera", func(m *Manual) { m.Device, m.Camera = "ward-door", "ward-cam" }},
		{"no title", func(m *Manual) { m.Title = alarm.Text{} }},
		{"no standard", func(m *Manual) { m.Standard = alarm.Text{} }},
		{"no responsible", func(m *Manual) { m.Responsible = " " }},
		{"past deadline", func(m *Manual) { m.Deadline = t0.Add(-time.Minute) }},
		{"far deadline", func(m *Manual) { m.Deadline = t0.Add(400 * 24 * time.Hour) }},
		{"long title", func(m *Manual) { m.Title.EN = string(make([]byte, 501)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := NewCore(testConfig(), t0)
			m := ok
			tc.edit(&m)
			if _, err := c.Create(m, "i", t0); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	c, _ := NewCore(testConfig(), t0)
	if _, err := c.Create(ok, "i", t0); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRules(t *testing.T) {
	probs := CheckRules(map[string]Thresholds{"nope": {}, RuleNightExits: {Count: -1}, RuleBatteryLow: {After: -time.Hour}})
	if len(probs) != 3 {
		t.Fatalf("problems = %q", probs)
	}
	c, err := NewCore(Config{Rules: map[string]Thresholds{RuleSmokeUntested: {Disabled: true}}}, t0)
	if err != nil || c.rules[RuleSmokeUntested] != nil {
		t.Fatalf("disabled rule: %v", err)
	}
}

func TestRestoreRefusesANewerFormat(t *testing.T) {
	c, _ := NewCore(testConfig(), t0)
	err := c.Restore([]byte(`{"version":2,"next_id":1}`), t0)
	if err == nil || !strings.Contains(err.Error(), "written by a newer gateway") {
		t.Fatalf("restore of format 2: %v", err)
	}
}
