package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

func startWalk(t *testing.T, tl *timeline, zones []string, d time.Duration) WalkTest {
	t.Helper()
	w, err := tl.c.StartWalkTest(WalkTest{ID: "w1", Zones: zones, Ends: tl.now.Add(d), By: "wang.installer", Comment: "commissioning"}, tl.now)
	if err != nil {
		t.Fatal(err)
	}
	tl.drain()
	return w
}

// A walk test of the kitchen: both detectors' test buttons raise alarms
// that are recorded, silenced and (being latched smoke alarms whose
// condition is gone) resolved at the end; two detectors within a minute do
// not page a confirmed fire; a smoke alarm in the ward is paged as usual.
func TestWalkTestHoldsItsZoneAndNothingElse(t *testing.T) {
	cfg := testConfig(Builtin()...)
	tl := newTimeline(t, cfg)
	w := startWalk(t, tl, []string{"kitchen"}, 30*time.Minute)
	if got := len(w.Devices); got != 2 {
		t.Fatalf("walk test covers %d devices, want the kitchen's 2: %+v", got, w.Devices)
	}
	if _, err := tl.c.StartWalkTest(WalkTest{ID: "w2", Ends: tl.now.Add(time.Minute)}, tl.now); !errors.Is(err, ErrWalkTestRunning) {
		t.Fatalf("second walk test: %v, want ErrWalkTestRunning", err)
	}

	tl.at(time.Minute)
	expect(t, "test button 1", tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true)), "")
	tl.at(time.Minute + 20*time.Second)
	expect(t, "test button 2 (a confirmed fire, were it real)", tl.send("kitchen-smoke-2", reading.KindSmoke, reading.Bool(true)), "")
	act := tl.c.Active()
	if len(act) != 3 || slices.ContainsFunc(act, func(a alarm.Alarm) bool { return !a.Silenced || !strings.HasPrefix(a.Reason, "walk test w1") }) {
		t.Fatalf("alarms during the walk test: %+v, want three, all held by the walk test", act)
	}
	// A smoke alarm outside the tested zone is never held back.
	cfg.Devices = append(cfg.Devices, facility.Device{ID: "ward-smoke", Kind: reading.KindSmoke, Zone: "ward", OfflineAfter: 25 * time.Hour})
	if err := tl.c.configure(cfg); err != nil {
		t.Fatal(err)
	}
	expect(t, "ward smoke", tl.send("ward-smoke", reading.KindSmoke, reading.Bool(true)), "firing:smoke@dev:ward-smoke")

	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(false))
	tl.send("kitchen-smoke-2", reading.KindSmoke, reading.Bool(false))
	rec, err := tl.c.EndWalkTest("wang.installer", tl.now)
	if err != nil {
		t.Fatal(err)
	}
	tl.drain()
	if s := rec.Silent(); len(s) != 0 {
		t.Fatalf("silent devices %v, want none", s)
	}
	for _, d := range rec.Devices {
		if !d.Reported || !d.Triggered || d.Readings != 2 {
			t.Fatalf("record of %s: %+v, want reported and triggered with 2 readings", d.Device, d)
		}
	}
	// The test's alarms ended with it; the ward's is still open and loud.
	act = tl.c.Active()
	if len(act) != 1 || act[0].ID != "smoke@dev:ward-smoke" || act[0].Silenced {
		t.Fatalf("after the walk test: %+v, want only the ward's smoke alarm", act)
	}
	if !slices.ContainsFunc(tl.audit, func(e audit.Entry) bool {
		return e.Action == "walktest_ended" && e.By == "wang.installer" && strings.Contains(e.Detail, "2 of 2 devices reported")
	}) {
		t.Fatalf("no walktest_ended audit entry: %+v", tl.audit)
	}
}

// A detector that does not report is named; a condition that still holds
// when the test runs out is real and pages at once; a restart keeps the
// running test.
func TestWalkTestRunsOutAndNamesTheSilent(t *testing.T) {
	tl := newTimeline(t, testConfig(Builtin()...))
	startWalk(t, tl, nil, 20*time.Minute) // the whole facility
	tl.at(time.Minute)
	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	tl.send("dorm1-temp", reading.KindTemperature, reading.Number(21.5))
	tl.send("dorm1-temp", reading.KindTemperature, reading.Number(23.0))
	expect(t, "door opened during the test", tl.send("ward-door", reading.KindDoor, reading.Bool(true)), "")

	snap, err := tl.c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := NewCore(tl.c.cfg, tl.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Restore(snap, tl.now); err != nil {
		t.Fatal(err)
	}
	tl.c = c2
	tl.c.applyInhibitions(tl.now)
	tl.drain()

	// The smoke detector is still in alarm at the end: people are told.
	ev := tl.at(20 * time.Minute)
	if !slices.ContainsFunc(ev, func(e alarm.Event) bool {
		return e.Alarm.ID == "smoke@dev:kitchen-smoke-1" && e.Kind == alarm.EventFiring
	}) {
		t.Fatalf("events at the end of the walk test: %q, want the held smoke alarm paged", kinds(ev))
	}
	cur, done := tl.c.WalkTests()
	if cur != nil || len(done) != 1 {
		t.Fatalf("walk tests after the end: %v, %d finished", cur, len(done))
	}
	rec := done[0]
	if rec.EndedBy != "" || rec.Ended.IsZero() {
		t.Fatalf("record %+v, want ended by its end time", rec)
	}
	if s := rec.Silent(); !slices.Equal(s, []string{"kitchen-smoke-2"}) {
		t.Fatalf("silent %v, want [kitchen-smoke-2]", s)
	}
	var temp WalkDevice
	for _, d := range rec.Devices {
		if d.Device == "dorm1-temp" {
			temp = d
		}
	}
	if !temp.Triggered || *temp.Min != 21.5 || *temp.Max != 23 {
		t.Fatalf("thermometer record %+v, want triggered 21.5..23", temp)
	}
}

// Built-in sensor-fault: a sensor that cannot measure pages trouble and
// clears at the device's next real reading.
func TestSensorFaultRule(t *testing.T) {
	tl := newTimeline(t, testConfig(Builtin()...))
	expect(t, "fault", tl.send("dorm1-temp", reading.KindSensorFault, reading.Bool(true)), "firing:sensor-fault@dev:dorm1-temp")
	expect(t, "reach is no reading", tl.send("dorm1-temp", reading.KindReach, reading.State(reading.ReachOK)), "")
	expect(t, "back", tl.send("dorm1-temp", reading.KindTemperature, reading.Number(20)), "resolved:sensor-fault@dev:dorm1-temp")
}

// A device behind a bridge that is down is unknown: no offline alarm of
// its own however long the bridge stays down.
func TestUnreachableDeviceRaisesNoOfflineAlarm(t *testing.T) {
	tl := newTimeline(t, testConfig(Builtin()...))
	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(false))
	tl.send("kitchen-smoke-1", reading.KindReach, reading.State(reading.ReachBridgeOffline))
	tl.at(26 * time.Hour)
	var ids []string
	for _, a := range tl.c.Active() {
		ids = append(ids, a.ID)
	}
	if slices.Contains(ids, "device-offline@dev:kitchen-smoke-1") || !slices.Contains(ids, "device-offline@dev:kitchen-smoke-2") {
		t.Fatalf("open alarms %v: want device-offline for the silent detector, none for the one behind the dead bridge", ids)
	}
}

func TestRuleInfos(t *testing.T) {
	tl := newTimeline(t, testConfig(Builtin()...))
	infos := tl.c.RuleInfos()
	if len(infos) != len(Builtin()) {
		t.Fatalf("%d rule infos, want %d", len(infos), len(Builtin()))
	}
	var smoke RuleInfo
	for i, r := range infos {
		if i > 0 && infos[i-1].ID >= r.ID {
			t.Fatalf("not sorted by id: %s before %s", infos[i-1].ID, r.ID)
		}
		if r.ID == "smoke" {
			smoke = r
		}
	}
	if smoke.Type != TypeState || smoke.Scope != ScopeDevice || smoke.Severity != "critical" || !smoke.Latched ||
		!slices.Equal(smoke.Kinds, []string{"smoke"}) || !strings.Contains(smoke.Title.ZH, "烟雾报警") {
		t.Fatalf("smoke rule info: %+v", smoke)
	}
}
