package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

var shanghai = mustLoc("Asia/Shanghai")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// t0 is Monday 2026-11-30 23:00 in Shanghai: night.
var t0 = time.Date(2026, 11, 30, 23, 0, 0, 0, shanghai)

func testConfig(rules ...RuleConfig) Config {
	return Config{
		Facility: "north-shelter",
		Location: shanghai,
		Zones: []facility.Zone{
			{ID: "kitchen", Name: "Kitchen", NameZH: "厨房", Tags: []string{"kitchen"}},
			{ID: "ward", Name: "Secure ward", NameZH: "封闭病区", Tags: []string{"secure-ward"}},
			{ID: "dorm-1", Name: "Dormitory 1", NameZH: "一号宿舍", Tags: []string{"dormitory"}},
		},
		Devices: []facility.Device{
			{ID: "kitchen-smoke-1", Kind: reading.KindSmoke, Zone: "kitchen", OfflineAfter: 25 * time.Hour},
			{ID: "kitchen-smoke-2", Kind: reading.KindSmoke, Zone: "kitchen", OfflineAfter: 25 * time.Hour},
			{ID: "ward-door", Name: "Ward exit", Kind: reading.KindDoor, Zone: "ward", OfflineAfter: 25 * time.Hour},
			{ID: "dorm1-temp", Kind: reading.KindTemperature, Zone: "dorm-1", OfflineAfter: time.Hour},
		},
		Rules: rules,
	}
}

func title(en string) TextConfig { return TextConfig{EN: en, ZH: en} }

// timeline drives a Core and collects what it says.
type timeline struct {
	t      *testing.T
	c      *Core
	now    time.Time
	events []alarm.Event
	audit  []audit.Entry
}

func newTimeline(t *testing.T, cfg Config) *timeline {
	t.Helper()
	c, err := NewCore(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &timeline{t: t, c: c, now: t0}
}

// at moves the clock to t0+d, running the timers on the way (as the
// engine's goroutine would), and returns the events that came out.
func (tl *timeline) at(d time.Duration) []alarm.Event {
	tl.t.Helper()
	target := t0.Add(d)
	var out []alarm.Event
	for {
		next := tl.c.Tick(tl.now)
		out = append(out, tl.drain()...)
		if next.IsZero() || next.After(target) {
			break
		}
		tl.now = next
	}
	tl.now = target
	tl.c.Tick(tl.now)
	return append(out, tl.drain()...)
}

func (tl *timeline) drain() []alarm.Event {
	ev, au, _ := tl.c.Drain()
	tl.events = append(tl.events, ev...)
	tl.audit = append(tl.audit, au...)
	return ev
}

func (tl *timeline) send(dev string, kind reading.Kind, v reading.Value) []alarm.Event {
	tl.t.Helper()
	tl.c.Observe(reading.Reading{Device: dev, Kind: kind, Value: v, Time: tl.now, Received: tl.now}, tl.now)
	return tl.drain()
}

func kinds(evs []alarm.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, fmt.Sprintf("%s:%s", e.Kind, e.Alarm.ID))
	}
	return strings.Join(s, ",")
}

func expect(t *testing.T, when string, got []alarm.Event, want string) {
	t.Helper()
	if k := kinds(got); k != want {
		t.Fatalf("%s: events %q, want %q", when, k, want)
	}
}

var smokeRule = RuleConfig{ID: "smoke", Kinds: []string{"smoke"}, When: "value", Severity: "critical", Latched: true,
	Title: TextConfig{EN: "Smoke in {{.ZoneName}} ({{.Device}})", ZH: "{{.ZoneNameZH}}检测到烟雾（{{.Device}}）"}}

func TestSmokeFiresAtOnceAndIsLatched(t *testing.T) {
	tl := newTimeline(t, testConfig(smokeRule))
	ev := tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	expect(t, "smoke", ev, "firing:smoke@dev:kitchen-smoke-1")
	a := ev[0].Alarm
	if a.Severity != alarm.SeverityCritical || a.Title.EN != "Smoke in Kitchen (kitchen-smoke-1)" || a.Title.ZH != "厨房检测到烟雾（kitchen-smoke-1）" ||
		a.Zone != "kitchen" || a.Facility != "north-shelter" || !a.Since.Equal(t0) {
		t.Fatalf("alarm: %+v", a)
	}
	// The same condition again is the same alarm (dedup).
	expect(t, "smoke again", tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true)), "")
	// Smoke gone: latched, nothing resolves until a manager resets it.
	expect(t, "smoke cleared", tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(false)), "")
	if len(tl.c.Active()) != 1 {
		t.Fatal("latched alarm resolved by itself")
	}
	if err := tl.c.Reset("nope", "li", "", tl.now); err != ErrNotFound {
		t.Fatalf("reset unknown: %v", err)
	}
	if err := tl.c.Reset(a.ID, "li.manager", "checked: toast", tl.now); err != nil {
		t.Fatal(err)
	}
	expect(t, "reset", tl.drain(), "resolved:smoke@dev:kitchen-smoke-1")
	// A new episode is a new alarm with a new sequence number.
	ev = tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	if len(ev) != 1 || ev[0].Alarm.Seq != a.Seq+1 {
		t.Fatalf("second episode: %+v", ev)
	}
}

func TestResetRefusedWhileConditionHolds(t *testing.T) {
	tl := newTimeline(t, testConfig(smokeRule))
	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	if err := tl.c.Reset("smoke@dev:kitchen-smoke-1", "li", "", tl.now); err == nil || !strings.Contains(err.Error(), "still holds") {
		t.Fatalf("reset while smoke: %v", err)
	}
}

func TestThresholdHoldHysteresisAndKeepFiring(t *testing.T) {
	cold := RuleConfig{ID: "cold-dorm", Kinds: []string{"temperature"}, Match: `"dormitory" in tags`,
		When: "value < 16", Clear: "value >= 18", For: facility.Duration(10 * time.Minute), KeepFiringFor: facility.Duration(5 * time.Minute),
		Severity: "warning", Title: title("Cold in {{.ZoneName}}: {{.Value}} °C")}
	tl := newTimeline(t, testConfig(cold))
	temp := func(v float64) []alarm.Event {
		return tl.send("dorm1-temp", reading.KindTemperature, reading.Number(v))
	}

	expect(t, "t0 15.5", temp(15.5), "")
	expect(t, "t0+5m", tl.at(5*time.Minute), "")
	expect(t, "t0+6m back to 16.5 (for restarts)", func() []alarm.Event { tl.at(6 * time.Minute); return temp(16.5) }(), "")
	tl.at(7 * time.Minute)
	expect(t, "t0+7m 15", temp(15), "")
	expect(t, "t0+16m59s pending", tl.at(16*time.Minute+59*time.Second), "")
	ev := tl.at(17 * time.Minute)
	expect(t, "t0+17m", ev, "firing:cold-dorm@dev:dorm1-temp")
	if ev[0].Alarm.Title.EN != "Cold in Dormitory 1: 15 °C" || !ev[0].Alarm.Since.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("alarm: %+v", ev[0].Alarm)
	}
	// 17 °C is inside the hysteresis band: still firing.
	tl.at(20 * time.Minute)
	expect(t, "17 in the band", temp(17), "")
	// 18.5 clears, but keep_firing_for holds it 5 more minutes...
	tl.at(21 * time.Minute)
	expect(t, "18.5", temp(18.5), "")
	expect(t, "t0+25m59s", tl.at(25*time.Minute+59*time.Second), "")
	expect(t, "t0+26m", tl.at(26*time.Minute), "resolved:cold-dorm@dev:dorm1-temp")
}

func TestKeepFiringInterruptedByRelapse(t *testing.T) {
	hot := RuleConfig{ID: "hot", Kinds: []string{"temperature"}, When: "value > 35", KeepFiringFor: facility.Duration(5 * time.Minute),
		Severity: "warning", Title: title("hot")}
	tl := newTimeline(t, testConfig(hot))
	expect(t, "36", tl.send("dorm1-temp", reading.KindTemperature, reading.Number(36)), "firing:hot@dev:dorm1-temp")
	tl.at(time.Minute)
	tl.send("dorm1-temp", reading.KindTemperature, reading.Number(30))
	tl.at(3 * time.Minute)
	expect(t, "relapse", tl.send("dorm1-temp", reading.KindTemperature, reading.Number(36)), "")
	expect(t, "t0+10m: still firing", tl.at(10*time.Minute), "")
	if len(tl.c.Active()) != 1 {
		t.Fatal("relapse within keep_firing_for resolved the alarm")
	}
}

func TestRateOfRise(t *testing.T) {
	rise := RuleConfig{ID: "heat-rise", Type: TypeRateOfRise, Kinds: []string{"temperature"}, When: "true",
		Rise: "8", Window: facility.Duration(time.Minute), Severity: "critical", Title: title("Temperature up {{.Value}} °C in a minute")}
	tl := newTimeline(t, testConfig(rise))
	temp := func(d time.Duration, v float64) []alarm.Event {
		tl.at(d)
		return tl.send("dorm1-temp", reading.KindTemperature, reading.Number(v))
	}
	expect(t, "20", temp(0, 20), "")
	expect(t, "25 at 30s", temp(30*time.Second, 25), "")
	// 7.9 in a minute is not enough; 8 over 1m10s is outside the window.
	expect(t, "27.9 at 1m", temp(time.Minute, 27.9), "")
	expect(t, "28 at 1m10s (20 left the window)", temp(70*time.Second, 28), "")
	ev := temp(80*time.Second, 33.5)
	expect(t, "33.5 at 1m20s (+8.5 from 25)", ev, "firing:heat-rise@dev:dorm1-temp")
	if ev[0].Alarm.Title.EN != "Temperature up +8.5 °C in a minute" {
		t.Fatalf("title %q", ev[0].Alarm.Title.EN)
	}
	expect(t, "steady", temp(3*time.Minute, 33.5), "resolved:heat-rise@dev:dorm1-temp")
}

var nightDoor = RuleConfig{ID: "ward-night-door", Kinds: []string{"door"}, Match: `"secure-ward" in tags`, When: "value",
	Active: ActiveConfig{Between: "22:00-06:00"}, Severity: "critical", Title: title("{{.DeviceName}} opened at night")}

func TestNightDoorInSecureWard(t *testing.T) {
	tl := newTimeline(t, testConfig(nightDoor))
	// 23:00 Shanghai: night.
	expect(t, "23:00 open", tl.send("ward-door", reading.KindDoor, reading.Bool(true)), "firing:ward-night-door@dev:ward-door")
	expect(t, "23:01 closed", func() []alarm.Event {
		tl.at(time.Minute)
		return tl.send("ward-door", reading.KindDoor, reading.Bool(false))
	}(),
		"resolved:ward-night-door@dev:ward-door")
	// 14:00 next day: daytime, an open door is normal.
	tl.at(15 * time.Hour)
	expect(t, "14:00 open", tl.send("ward-door", reading.KindDoor, reading.Bool(true)), "")
	tl.send("ward-door", reading.KindDoor, reading.Bool(false))
	// 05:59: still night.
	tl.at(6*time.Hour + 59*time.Minute)
	expect(t, "05:59 open", tl.send("ward-door", reading.KindDoor, reading.Bool(true)), "firing:ward-night-door@dev:ward-door")
}

// An alarm that fires at once leaves nothing to wait for: no Tick (a pass
// over every subject) is asked for, while one with a `for` asks for its end.
func TestImmediateAlarmAsksForNoTick(t *testing.T) {
	held := RuleConfig{ID: "door-held", Kinds: []string{"door"}, When: "value", For: facility.Duration(5 * time.Minute),
		Severity: "warning", Title: title("door open 5 min")}
	tl := newTimeline(t, testConfig(nightDoor, held))
	tl.c.TakeHint()
	expect(t, "23:00 open", tl.send("ward-door", reading.KindDoor, reading.Bool(true)), "firing:ward-night-door@dev:ward-door")
	if h, want := tl.c.TakeHint(), t0.Add(5*time.Minute); !h.Equal(want) {
		t.Fatalf("hint after the door opened = %v, want the held-open rule's end %v", h, want)
	}
	tl.send("ward-door", reading.KindDoor, reading.Bool(false))
	tl.c.TakeHint()
	tl.at(time.Second)
	expect(t, "open again", tl.send("ward-door", reading.KindDoor, reading.Bool(true)), "firing:ward-night-door@dev:ward-door")
	if h, want := tl.c.TakeHint(), t0.Add(time.Second+5*time.Minute); !h.Equal(want) {
		t.Fatalf("hint after the door opened again = %v, want %v", h, want)
	}
}

func TestWindowDays(t *testing.T) {
	w, err := parseWindow(&ActiveConfig{Between: "22:00-06:00", Days: []string{"fri"}})
	if err != nil {
		t.Fatal(err)
	}
	fri := time.Date(2026, 12, 4, 0, 0, 0, 0, shanghai) // a Friday
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{fri.Add(21*time.Hour + 59*time.Minute), false},
		{fri.Add(22 * time.Hour), true},
		{fri.Add(27 * time.Hour), true},  // Saturday 03:00 belongs to Friday night
		{fri.Add(30 * time.Hour), false}, // Saturday 06:00
		{fri.Add(3 * time.Hour), false},  // Friday 03:00 belongs to Thursday night
	} {
		if got := w.contains(tc.at); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.at.Format("Mon 15:04"), got, tc.want)
		}
	}
}

func TestDoorHeldOpenTooLong(t *testing.T) {
	held := RuleConfig{ID: "door-held", Kinds: []string{"door"}, When: "value", For: facility.Duration(5 * time.Minute),
		Severity: "warning", Title: title("door open 5 min")}
	tl := newTimeline(t, testConfig(held))
	tl.send("ward-door", reading.KindDoor, reading.Bool(true))
	// No reading arrives while the door stays open: the timer fires.
	expect(t, "4m59s", tl.at(4*time.Minute+59*time.Second), "")
	expect(t, "5m", tl.at(5*time.Minute), "firing:door-held@dev:ward-door")
	tl.send("ward-door", reading.KindDoor, reading.Bool(false))
	// Opened and closed within 5 minutes: nothing.
	tl.at(10 * time.Minute)
	tl.send("ward-door", reading.KindDoor, reading.Bool(true))
	tl.at(12 * time.Minute)
	tl.send("ward-door", reading.KindDoor, reading.Bool(false))
	expect(t, "after a short opening", tl.at(30*time.Minute), "")
}

func TestAbsenceAvailabilityAndGatewaySilence(t *testing.T) {
	offline := RuleConfig{ID: "offline", Type: TypeAbsence, Severity: "trouble", Title: title("{{.Device}} offline: {{.Value}}")}
	silent := RuleConfig{ID: "no-readings", Type: TypeAbsence, Scope: ScopeGateway, After: facility.Duration(10 * time.Minute),
		Severity: "critical", Inhibits: []string{"offline"}, Title: title("No readings at all: check the broker and network")}
	cfg := testConfig(offline, silent)
	cfg.Devices = cfg.Devices[3:] // dorm1-temp only: offline after 1h
	tl := newTimeline(t, cfg)
	tl.send("dorm1-temp", reading.KindTemperature, reading.Number(20))
	tl.at(5 * time.Minute)
	// The device says it is going offline (LWT): at once.
	ev := tl.send("dorm1-temp", reading.KindAvailability, reading.Bool(false))
	expect(t, "LWT offline", ev, "firing:offline@dev:dorm1-temp")
	if ev[0].Alarm.Title.EN != "dorm1-temp offline: reported offline" {
		t.Fatalf("title %q", ev[0].Alarm.Title.EN)
	}
	expect(t, "back", tl.send("dorm1-temp", reading.KindTemperature, reading.Number(20)), "resolved:offline@dev:dorm1-temp")
	// Silence: at 15m nothing at all for 10m → gateway-wide alarm.
	expect(t, "gateway silent", tl.at(15*time.Minute), "firing:no-readings@gateway")
	// At 1h05 the device's own silence would page, but the gateway-wide
	// alarm explains it: recorded, silenced, no page.
	expect(t, "device silent under gateway silence", tl.at(65*time.Minute), "")
	act := tl.c.Active()
	if len(act) != 2 || !act[1].Silenced || act[1].ID != "offline@dev:dorm1-temp" || !strings.Contains(act[1].Reason, "no-readings@gateway") {
		t.Fatalf("active: %+v", act)
	}
	// A reading: both clear; the silenced one resolves without a page.
	expect(t, "reading", tl.send("dorm1-temp", reading.KindTemperature, reading.Number(20)), "resolved:no-readings@gateway")
	if len(tl.c.Active()) != 0 {
		t.Fatalf("still active: %+v", tl.c.Active())
	}
}

func TestLowBattery(t *testing.T) {
	low := RuleConfig{ID: "low-battery", When: "has_battery && battery < 15", Clear: "has_battery && battery >= 25",
		Severity: "trouble", Title: title("{{.Device}} battery low")}
	tl := newTimeline(t, testConfig(low))
	send := func(b float64) []alarm.Event {
		tl.c.Observe(reading.Reading{Device: "kitchen-smoke-1", Kind: reading.KindSmoke, Value: reading.Bool(false),
			Battery: reading.Ptr(b), Time: tl.now}, tl.now)
		return tl.drain()
	}
	expect(t, "40%", send(40), "")
	expect(t, "12%", send(12), "firing:low-battery@dev:kitchen-smoke-1")
	expect(t, "20% (band)", send(20), "")
	// A reading without battery decides nothing.
	expect(t, "no battery field", tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(false)), "")
	expect(t, "new battery", send(100), "resolved:low-battery@dev:kitchen-smoke-1")
}

func TestCoincidenceConfirmsFireAndInhibitsSingleDetector(t *testing.T) {
	fire := RuleConfig{ID: "confirmed-fire", Type: TypeCoincidence, Kinds: []string{"smoke"}, When: "value", Window: facility.Duration(time.Minute),
		Count: 2, Severity: "fire", Latched: true, Inhibits: []string{"smoke"},
		Title: TextConfig{EN: "FIRE in {{.ZoneName}}: {{len .Devices}} detectors", ZH: "{{.ZoneNameZH}}确认火警"}}
	tl := newTimeline(t, testConfig(smokeRule, fire))
	expect(t, "first detector", tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true)), "firing:smoke@dev:kitchen-smoke-1")
	tl.at(70 * time.Second)
	// 70 s later: outside the 60 s window, no confirmation yet... but
	// detector 1 still reports smoke now.
	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	ev := tl.send("kitchen-smoke-2", reading.KindSmoke, reading.Bool(true))
	// One page: the fire. The second detector's own alarm is recorded but
	// inhibited from the start.
	expect(t, "second detector", ev, "firing:confirmed-fire@zone:kitchen")
	if ev[0].Alarm.Severity != alarm.SeverityFire || ev[0].Alarm.Title.EN != "FIRE in Kitchen: 2 detectors" {
		t.Fatalf("fire alarm: %+v", ev[0].Alarm)
	}
	if len(tl.c.Active()) != 3 {
		t.Fatalf("active: %+v", tl.c.Active())
	}
	// The single-detector alarms are now inhibited: they escalate no more.
	for _, a := range tl.c.Active() {
		if a.Rule == "smoke" && !a.Silenced {
			t.Fatalf("single-detector alarm not inhibited: %+v", a)
		}
	}
}

func TestCoincidenceNeedsTheWindow(t *testing.T) {
	fire := RuleConfig{ID: "confirmed-fire", Type: TypeCoincidence, Kinds: []string{"smoke"}, When: "value", Window: facility.Duration(time.Minute),
		Severity: "fire", Title: title("fire")}
	tl := newTimeline(t, testConfig(fire))
	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	tl.at(2 * time.Minute)
	expect(t, "2 minutes apart", tl.send("kitchen-smoke-2", reading.KindSmoke, reading.Bool(true)), "")
}

func TestSilenceRecordsButPagesNobody(t *testing.T) {
	tl := newTimeline(t, testConfig(smokeRule))
	if err := tl.c.AddSilence(Silence{ID: "s1", Device: "kitchen-smoke-1", From: t0, To: t0.Add(time.Hour), By: "li.manager", Comment: "detector test"}, tl.now); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Silence{{Device: "kitchen-smoke-9"}, {Zone: "attic"}, {Rule: "smok"}} {
		if err := tl.c.AddSilence(bad, tl.now); !errors.Is(err, ErrUnknownName) {
			t.Fatalf("silence %+v: %v, want ErrUnknownName", bad, err)
		}
	}
	expect(t, "test smoke", tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true)), "")
	act := tl.c.Active()
	if len(act) != 1 || !act[0].Silenced {
		t.Fatalf("silenced alarm not recorded: %+v", act)
	}
	// The other detector is not under test.
	expect(t, "other detector", tl.send("kitchen-smoke-2", reading.KindSmoke, reading.Bool(true)), "firing:smoke@dev:kitchen-smoke-2")
	// When the silence ends with smoke still present, people are told.
	expect(t, "silence over", tl.at(time.Hour), "firing:smoke@dev:kitchen-smoke-1")
}

func TestEscalationStopsOnAcknowledge(t *testing.T) {
	cfg := testConfig(smokeRule)
	cfg.Escalation = Escalation{Levels: []time.Duration{5 * time.Minute, 15 * time.Minute}, Repeat: 10 * time.Minute}
	tl := newTimeline(t, cfg)
	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	expect(t, "4m", tl.at(4*time.Minute), "")
	ev := tl.at(5 * time.Minute)
	expect(t, "5m", ev, "escalated:smoke@dev:kitchen-smoke-1")
	if ev[0].Level != 1 {
		t.Fatalf("level %d", ev[0].Level)
	}
	expect(t, "15m", tl.at(15*time.Minute), "escalated:smoke@dev:kitchen-smoke-1")
	expect(t, "25m", tl.at(25*time.Minute), "repeat:smoke@dev:kitchen-smoke-1")
	if err := tl.c.Acknowledge("smoke@dev:kitchen-smoke-1", "wang.supervisor", "on my way", tl.now); err != nil {
		t.Fatal(err)
	}
	expect(t, "ack", tl.drain(), "acknowledged:smoke@dev:kitchen-smoke-1")
	if err := tl.c.Acknowledge("smoke@dev:kitchen-smoke-1", "li", "", tl.now); err == nil || !strings.Contains(err.Error(), "wang.supervisor") {
		t.Fatalf("second ack: %v", err)
	}
	expect(t, "after ack", tl.at(2*time.Hour), "")
	var actions []string
	for _, a := range tl.audit {
		actions = append(actions, a.Action+"@"+a.Time.Sub(t0).String())
	}
	if got := strings.Join(actions, " "); got != "fired@0s escalated@5m0s escalated@15m0s repeated@25m0s acknowledged@25m0s" {
		t.Fatalf("audit: %s", got)
	}
}

func TestRestartInTheMiddleOfFor(t *testing.T) {
	held := RuleConfig{ID: "door-held", Kinds: []string{"door"}, When: "value", For: facility.Duration(5 * time.Minute),
		Severity: "warning", Title: title("door open 5 min")}
	tl := newTimeline(t, testConfig(held, smokeRule))
	tl.send("ward-door", reading.KindDoor, reading.Bool(true))
	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	tl.at(3 * time.Minute)
	snap, err := tl.c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// The gateway restarts at 3m: a new core from the saved state.
	c2, err := NewCore(testConfig(held, smokeRule), t0.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Restore(snap, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	tl2 := &timeline{t: t, c: c2, now: t0.Add(3 * time.Minute)}
	expect(t, "4m59s after restart", tl2.at(4*time.Minute+59*time.Second), "")
	ev := tl2.at(5 * time.Minute)
	expect(t, "5m after restart", ev, "firing:door-held@dev:ward-door")
	if !ev[0].Alarm.Since.Equal(t0) {
		t.Fatalf("since %v, want the door's opening", ev[0].Alarm.Since)
	}
	// The smoke alarm survived, latched, with its sequence number.
	if act := c2.Active(); len(act) != 2 || act[0].ID != "smoke@dev:kitchen-smoke-1" || act[0].Seq != 1 || ev[0].Alarm.Seq != 2 {
		t.Fatalf("active after restart: %+v", act)
	}
}

func TestReloadWhileFiring(t *testing.T) {
	tl := newTimeline(t, testConfig(smokeRule))
	tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	// A broken rule set is refused as a whole; nothing changes.
	bad := smokeRule
	bad.When = "value >"
	if err := tl.c.configure(testConfig(bad)); err == nil {
		t.Fatal("broken rules accepted")
	}
	// A good one swaps in; the firing alarm stays, and reacts to the new
	// rule (now unlatched, it resolves when the smoke clears).
	changed := smokeRule
	changed.Latched = false
	if err := tl.c.configure(testConfig(changed)); err != nil {
		t.Fatal(err)
	}
	if act := tl.c.Active(); len(act) != 1 || act[0].Seq != 1 {
		t.Fatalf("after reload: %+v", act)
	}
	expect(t, "smoke still there", tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true)), "")
	// The open alarm keeps the latch it was raised with.
	expect(t, "cleared", tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(false)), "")
}

func TestRuleErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule RuleConfig
		want string
	}{
		{"syntax", RuleConfig{ID: "r", When: "value >", Severity: "warning", Title: title("x")}, "rules[0].when: unexpected token EOF"},
		{"type error caught at load", RuleConfig{ID: "r", Kinds: []string{"smoke"}, When: "value > 30", Severity: "warning", Title: title("x")},
			"rules[0].when: invalid operation: > (mismatched types bool and int)"},
		{"not a boolean", RuleConfig{ID: "r", Kinds: []string{"temperature"}, When: "value + 1", Severity: "warning", Title: title("x")},
			"rules[0].when: expected bool, but got float64"},
		{"unknown variable", RuleConfig{ID: "r", When: "temprature > 3", Severity: "warning", Title: title("x")}, "rules[0].when: unknown name temprature"},
		{"unknown kind", RuleConfig{ID: "r", Kinds: []string{"smoek"}, When: "true", Severity: "warning", Title: title("x")}, `rules[0].kinds: unknown kind "smoek"`},
		{"bad severity", RuleConfig{ID: "r", When: "true", Severity: "urgent", Title: title("x")}, `rules[0].severity: want info, trouble, warning, critical or fire, got "urgent"`},
		{"template names a missing field", RuleConfig{ID: "r", When: "true", Severity: "warning", Title: title("{{.Temperature}}")},
			"rules[0].title.en: template title.en: template: title.en:1:2: executing \"title.en\" at <.Temperature>: can't evaluate field Temperature in type engine.TemplateData"},
		{"template syntax", RuleConfig{ID: "r", When: "true", Severity: "warning", Title: title("{{.Zone")}, "rules[0].title.en: bad template: template: title.en:1: unclosed action"},
		{"rise", RuleConfig{ID: "r", Type: TypeRateOfRise, When: "true", Rise: "fast", Window: facility.Duration(time.Minute), Severity: "warning", Title: title("x")},
			`rules[0].rise: want a positive number (in the value's unit), got "fast"`},
		{"window", RuleConfig{ID: "r", When: "value", Kinds: []string{"door"}, Active: ActiveConfig{Between: "22:00"}, Severity: "warning", Title: title("x")},
			`rules[0].active: between: want HH:MM-HH:MM, got "22:00"`},
		{"unknown inhibited rule", RuleConfig{ID: "r", When: "true", Severity: "warning", Inhibits: []string{"smok"}, Title: title("x")}, `rules[0].inhibits: unknown rule "smok"`},
		{"gateway scope", RuleConfig{ID: "r", When: "true", Scope: ScopeGateway, Severity: "warning", Title: title("x")}, "rules[0].scope: only absence rules may have scope gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := CheckRules([]RuleConfig{tc.rule})
			if len(errs) == 0 {
				t.Fatalf("accepted")
			}
			if got := cfgerr.Err("rules", errs[:1]).Error(); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("error\n got %s\nwant %s…", got, tc.want)
			}
		})
	}
	dup := []RuleConfig{smokeRule, smokeRule}
	if errs := CheckRules(dup); len(errs) != 1 || errs[0].Error() != `[1].id: duplicate rule id "smoke" (first is rules[0])` {
		t.Fatalf("duplicate: %v", errs)
	}
}

func TestBuiltinRulesCompileAndWork(t *testing.T) {
	if errs := CheckRules(append(Builtin(), GatewayRules()...)); len(errs) > 0 {
		t.Fatalf("built-in rules: %v", cfgerr.Err("rules", errs))
	}
	tl := newTimeline(t, testConfig(Builtin()...))
	ev := tl.send("kitchen-smoke-1", reading.KindSmoke, reading.Bool(true))
	expect(t, "smoke", ev, "firing:smoke@dev:kitchen-smoke-1")
	if ev[0].Alarm.Body.ZH != "厨房的探测器 kitchen-smoke-1 自 23:00:00 起检测到烟雾。请立即到场查看，确认安全后复位报警。" {
		t.Fatalf("body: %q", ev[0].Alarm.Body.ZH)
	}
	tl.at(10 * time.Second)
	ev = tl.send("kitchen-smoke-2", reading.KindSmoke, reading.Bool(true))
	expect(t, "second detector", ev, "firing:confirmed-fire@zone:kitchen")
	if ev[0].Alarm.Severity != alarm.SeverityFire || ev[0].Alarm.Title.ZH != "确认火警：厨房" {
		t.Fatalf("fire: %+v", ev[0].Alarm)
	}
	tl.at(11 * time.Second)
	expect(t, "night door", tl.send("ward-door", reading.KindDoor, reading.Bool(true)), "firing:ward-night-door@dev:ward-door")
}

func TestMergeReplacesBuiltinByID(t *testing.T) {
	own := []RuleConfig{{ID: "dorm-cold", When: "value < 14"}, {ID: "extra"}}
	got := Merge(Builtin(), own)
	if len(got) != len(Builtin())+1 {
		t.Fatalf("%d rules", len(got))
	}
	for _, r := range got {
		if r.ID == "dorm-cold" && r.When != "value < 14" {
			t.Fatalf("built-in not replaced: %+v", r)
		}
	}
	if got[len(got)-1].ID != "extra" {
		t.Fatalf("own rule not appended: %v", got[len(got)-1].ID)
	}
}

// TestWindowMinMatchesAScan compares the sliding-window minimum behind
// rate-of-rise with a plain scan over random readings.
func TestWindowMinMatchesAScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s subjState
	var all []sample
	at := t0
	const window = time.Minute
	for i := range 20000 {
		at = at.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		v := 20 + rng.NormFloat64()*3
		got := s.windowMin(at, v, window)
		all = append(all, sample{at, v})
		want := v
		for _, sm := range all {
			if at.Sub(sm.t) <= window {
				want = min(want, sm.v)
			}
		}
		if got != want {
			t.Fatalf("reading %d: window minimum %v, a scan says %v", i, got, want)
		}
		if len(all) > 500 {
			all = all[len(all)-500:] // older ones are outside any window here
		}
	}
	if len(s.samples) > 1000 {
		t.Fatalf("queue holds %d samples: not bounded by the window", len(s.samples))
	}
}

func TestRestoreRefusesANewerState(t *testing.T) {
	c, err := NewCore(Config{Location: time.UTC}, t0)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Restore([]byte(`{"version":2}`), t0)
	if err == nil || !strings.Contains(err.Error(), "written by a newer gateway") {
		t.Fatalf("restore of state version 2: %v", err)
	}
}
