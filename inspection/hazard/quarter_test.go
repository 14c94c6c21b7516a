package hazard_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/availability"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/inspection/hazard"
	"github.com/shelterwatch/shelterwatch/inspection/report"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// quarter drives the gateway's judgement over a simulated quarter on the
// engines' clocks: the real rules engine and hazard list step functions,
// every reading also appended to a real store (availability), every
// audit entry to a real audit log, in time order, as the gateway's
// goroutines would.
type quarter struct {
	t      *testing.T
	loc    *time.Location
	eng    *engine.Core
	hz     *hazard.Core
	log    *audit.Log
	st     *store.Store
	now    time.Time
	others []audit.Entry // the video relay's entries, oldest first
}

func (q *quarter) at(m time.Month, d, h, min int) time.Time {
	return time.Date(2026, m, d, h, min, 0, 0, q.loc)
}

// to moves the clock to t, stepping every minute as the engines'
// timers would wake them.
func (q *quarter) to(t time.Time) {
	q.t.Helper()
	for q.now.Before(t) {
		q.now = q.now.Add(time.Minute).Truncate(time.Minute)
		if q.now.After(t) {
			q.now = t
		}
		q.step()
	}
}

func (q *quarter) step() {
	q.t.Helper()
	q.eng.Tick(q.now)
	events, entries, _ := q.eng.Drain()
	for _, ev := range events {
		if ev.Kind == alarm.EventFiring {
			q.hz.AlarmFired(ev.Alarm, ev.At)
		}
	}
	q.hz.SyncAlarms(q.eng.Active(), q.now)
	q.hz.Tick(q.now)
	hzEntries, _ := q.hz.Drain()
	n := 0
	for n < len(q.others) && !q.others[n].Time.After(q.now) {
		n++
	}
	all := append(append(q.others[:n:n], entries...), hzEntries...)
	q.others = q.others[n:]
	if err := q.log.Append(all...); err != nil {
		q.t.Fatal(err)
	}
}

func (q *quarter) observe(t time.Time, device string, kind reading.Kind, v reading.Value, battery float64) {
	q.t.Helper()
	q.to(t)
	zone := map[string]string{"dorm1-smoke": "dorm-1", "ward-door": "ward"}[device]
	rd := reading.Reading{Facility: "east-station", Device: device, Zone: zone, Format: "zigbee2mqtt", Kind: kind, Time: t, Received: t, Value: v}
	if battery > 0 {
		rd.Battery = &battery
	}
	if err := q.st.Append(context.Background(), []reading.Reading{rd}); err != nil {
		q.t.Fatal(err)
	}
	q.eng.Observe(rd, t)
	q.step()
}

func (q *quarter) act(t time.Time, what string, fn func() error) {
	q.t.Helper()
	q.to(t)
	if err := fn(); err != nil {
		q.t.Fatalf("%s at %s: %v", what, t, err)
	}
	q.step()
}

// TestQuarterTimeline is the inspection records of one quarter (Q1 2026)
// at a small relief station, end to end: a dormitory smoke detector goes
// offline for two and a half days and comes back; the secure ward door's
// battery stays low past its week and past the deadline; the ward door
// is opened at night five times in ten days; a supervisor watches the
// foster placement's camera on four days and not on the others. The
// hazard list holds exactly the three items those raise, with their
// lifecycle, and the report built from the audit log and the store holds
// exactly the figures they make, each with its drill-down list.
func TestQuarterTimeline(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	zones := []facility.Zone{
		{ID: "dorm-1", Name: "Dormitory 1", NameZH: "一号宿舍", Tags: []string{"dormitory"}},
		{ID: "ward", Name: "Secure ward", NameZH: "封闭病区", Tags: []string{"secure-ward"}},
		{ID: "foster-1", Name: "Foster home 1", NameZH: "一号寄养点", Tags: []string{"foster"}},
	}
	devices := []facility.Device{
		{ID: "dorm1-smoke", Name: "Dorm 1 smoke", Kind: reading.KindSmoke, Zone: "dorm-1", OfflineAfter: 25 * time.Hour},
		{ID: "ward-door", Name: "Ward exit", Kind: reading.KindDoor, Zone: "ward", OfflineAfter: 25 * time.Hour},
	}
	cameras := []facility.Camera{{ID: "foster-cam", Name: "Foster home 1 living room", Zone: "foster-1", OnDemand: true}}
	var rules []engine.RuleConfig
	for _, r := range engine.Builtin() {
		// A two-sensor station: the gateway-wide silence rule would fire
		// between heartbeats, and doors here close within a minute.
		if !slices.Contains([]string{"no-readings", "door-held-open"}, r.ID) {
			rules = append(rules, r)
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	eng, err := engine.NewCore(engine.Config{Facility: "east-station", Location: loc, Devices: devices, Zones: zones, Rules: rules,
		Escalation: engine.Escalation{Levels: []time.Duration{5 * time.Minute, 15 * time.Minute}}}, start)
	if err != nil {
		t.Fatal(err)
	}
	hz, err := hazard.NewCore(hazard.Config{Location: loc, Zones: zones, Devices: devices, Cameras: cameras, Responsible: "Director Zhao"}, start)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(filepath.Join(t.TempDir(), audit.FileName), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Close() })
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	q := &quarter{t: t, loc: loc, eng: eng, hz: hz, log: log, st: st, now: start}

	// The supervisor's visits: 30 minutes on 5 and 6 January, 10
	// February and 20 March.
	for i, day := range []time.Time{q.at(1, 5, 10, 0), q.at(1, 6, 10, 0), q.at(2, 10, 15, 0), q.at(3, 20, 9, 0)} {
		sess := fmt.Sprintf("v%d", i+1)
		q.others = append(q.others,
			audit.Entry{Time: day, Action: audit.ActionVideoViewStarted, By: "li.supervisor",
				Video: &audit.Video{Camera: "foster-cam", Session: sess, Remote: "10.8.0.2:50000", Started: day}},
			audit.Entry{Time: day.Add(30 * time.Minute), Action: audit.ActionVideoViewEnded, By: "li.supervisor",
				Video: &audit.Video{Camera: "foster-cam", Session: sess, Remote: "10.8.0.2:50000", Started: day, Bytes: 40 << 20}})
	}

	// Both sensors check in every 6 hours. The smoke detector is silent
	// from 10 January 00:00 until 13 January 12:00; the door's battery
	// reads 10 % from 1 February 12:00 until the manager replaces it on
	// 12 February at 09:00.
	type event struct {
		at     time.Time
		device string
		kind   reading.Kind
		v      reading.Value
		bat    float64
		act    func()
	}
	var evs []event
	for t := start; t.Before(q.at(4, 1, 0, 0)); t = t.Add(6 * time.Hour) {
		if t.Before(q.at(1, 10, 0, 1)) || !t.Before(q.at(1, 13, 12, 0)) {
			evs = append(evs, event{at: t, device: "dorm1-smoke", kind: reading.KindSmoke, v: reading.Bool(false), bat: 90})
		}
		bat := 95.0
		if !t.Before(q.at(2, 1, 12, 0)) && t.Before(q.at(2, 12, 9, 0)) {
			bat = 10
		}
		evs = append(evs, event{at: t, device: "ward-door", kind: reading.KindDoor, v: reading.Bool(false), bat: bat})
	}
	evs = append(evs, event{at: q.at(1, 13, 12, 0), device: "dorm1-smoke", kind: reading.KindSmoke, v: reading.Bool(false), bat: 90},
		event{at: q.at(2, 12, 9, 0), device: "ward-door", kind: reading.KindDoor, v: reading.Bool(false), bat: 100})
	// Five night exits; the night nurse acknowledges each after 2 to 6
	// minutes, the door closes after 8.
	nurse := []string{"", "", "resident back in bed", "", "resident walked to the gate, brought back"}
	for i, d := range []int{2, 4, 6, 8, 10} {
		open := q.at(3, d, 2, 0)
		comment := nurse[i]
		if comment == "" {
			comment = "checked"
		}
		evs = append(evs,
			event{at: open, device: "ward-door", kind: reading.KindDoor, v: reading.Bool(true), bat: 95},
			event{at: open.Add(time.Duration(2+i) * time.Minute), act: func() {
				q.act(open.Add(time.Duration(2+i)*time.Minute), "acknowledge a night exit", func() error {
					return q.eng.Acknowledge("ward-night-door@dev:ward-door", "night.nurse", comment, q.now)
				})
			}},
			event{at: open.Add(8 * time.Minute), device: "ward-door", kind: reading.KindDoor, v: reading.Bool(false), bat: 95})
	}
	// What people do on the hazard list.
	var refused error
	evs = append(evs,
		event{at: q.at(1, 20, 10, 0), act: func() {
			q.act(q.at(1, 20, 10, 0), "verify HZ-0001", func() error {
				_, err := q.hz.Verify("HZ-0001", "wu.inspector", "detector checked on site", q.now)
				return err
			})
		}},
		event{at: q.at(3, 10, 12, 0), act: func() {
			q.to(q.at(3, 10, 12, 0))
			_, refused = q.hz.Rectify("HZ-0003", "zhao.manager", "talked to the night staff", q.now)
		}},
		event{at: q.at(3, 15, 9, 0), act: func() {
			q.act(q.at(3, 15, 9, 0), "rectify HZ-0003", func() error {
				_, err := q.hz.Rectify("HZ-0003", "zhao.manager", "night rounds every two hours; the door alarm now sounds at the nurses' station", q.now)
				return err
			})
		}},
		event{at: q.at(3, 18, 10, 0), act: func() {
			q.act(q.at(3, 18, 10, 0), "verify HZ-0003", func() error {
				_, err := q.hz.Verify("HZ-0003", "wu.inspector", "rounds log checked", q.now)
				return err
			})
		}},
	)
	slices.SortStableFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
	for _, e := range evs {
		if e.act != nil {
			e.act()
			continue
		}
		q.observe(e.at, e.device, e.kind, e.v, e.bat)
	}
	q.to(q.at(4, 1, 0, 0))
	if !errors.Is(refused, hazard.ErrConditionHolds) {
		t.Fatalf("rectifying HZ-0003 while exits went on: %v, want ErrConditionHolds", refused)
	}

	// The hazard list.
	items := q.hz.Items()
	slices.Reverse(items)
	type want struct {
		id, rule, subject     string
		status                hazard.Status
		since, opened, dl     time.Time
		overdue               bool
		rectified, verified   time.Time
		rectifiedBy, evidence string
	}
	wants := []want{
		{"HZ-0001", hazard.RuleDetectorOffline, "dorm1-smoke", hazard.StatusVerified, q.at(1, 11, 1, 0), q.at(1, 12, 1, 0), q.at(1, 15, 1, 0),
			false, q.at(1, 14, 12, 0), q.at(1, 20, 10, 0), hazard.By, "condition cleared at 2026-01-13 12:00 and stayed clear for 1 day"},
		{"HZ-0002", hazard.RuleBatteryLow, "ward-door", hazard.StatusRectified, q.at(2, 1, 12, 0), q.at(2, 8, 12, 0), q.at(2, 11, 12, 0),
			false, q.at(2, 13, 9, 0), time.Time{}, hazard.By, "condition cleared at 2026-02-12 09:00 and stayed clear for 1 day"},
		{"HZ-0003", hazard.RuleNightExits, "ward", hazard.StatusVerified, q.at(3, 2, 2, 0), q.at(3, 6, 2, 0), q.at(3, 20, 2, 0),
			false, q.at(3, 15, 9, 0), q.at(3, 18, 10, 0), "zhao.manager", "night rounds every two hours; the door alarm now sounds at the nurses' station"},
	}
	if len(items) != len(wants) {
		t.Fatalf("%d items, want %d: %+v", len(items), len(wants), items)
	}
	for i, w := range wants {
		it := items[i]
		if it.ID != w.id || it.Rule != w.rule || it.Subject != w.subject || it.Status != w.status || !it.Since.Equal(w.since) ||
			!it.Opened.Equal(w.opened) || !it.Deadline.Equal(w.dl) || it.Overdue != w.overdue || !it.RectifiedAt.Equal(w.rectified) ||
			!it.VerifiedAt.Equal(w.verified) || it.RectifiedBy != w.rectifiedBy || it.Evidence != w.evidence || it.Responsible != "Director Zhao" {
			t.Errorf("item %d = %+v\nwant %+v", i, it, w)
		}
	}
	var hist []string
	for _, c := range items[1].History {
		hist = append(hist, c.Action+"@"+c.At.In(loc).Format("01-02 15:04"))
	}
	if want := []string{"hazard_opened@02-08 12:00", "hazard_overdue@02-11 12:00", "hazard_rectified@02-13 09:00"}; !slices.Equal(hist, want) {
		t.Errorf("HZ-0002 history = %v, want %v", hist, want)
	}

	// The report of the quarter, generated on 2 April.
	p, err := report.LastCompletePeriod(report.KindQuarter, q.at(4, 2, 9, 0), loc)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.Generate(context.Background(), report.Options{
		Facility: report.Facility{ID: "east-station", Name: "East Relief Station", NameZH: "城东救助站", Location: loc,
			Zones: zones, Devices: devices, Cameras: cameras},
		Audit: log, DepartmentLevel: 2,
		Availability: func(ctx context.Context, dev facility.Device, from, end time.Time) ([]facility.Segment, error) {
			return availability.Timeline(ctx, st, availability.DeviceSeries(st, dev.ID), from, end, dev.OfflineAfter)
		},
		Now: func() time.Time { return q.at(4, 2, 9, 0) },
	}, p)
	if err != nil {
		t.Fatal(err)
	}
	fig := func(table, rowKey, col string) (report.Cell, *report.Table) {
		t.Helper()
		tb := rep.Table(table)
		if tb == nil {
			t.Fatalf("no table %s", table)
		}
		for _, row := range tb.Rows {
			if rowKey == "" || row[0].String("en", loc) == rowKey {
				c := row[tb.Col(col)]
				if c.Detail == "" {
					t.Fatalf("%s/%s/%s has no drill-down", table, rowKey, col)
				}
				d := rep.Table(c.Detail)
				if d == nil {
					t.Fatalf("%s/%s/%s: drill-down %s is not in the report", table, rowKey, col, c.Detail)
				}
				return c, d
			}
		}
		var keys []string
		for _, row := range tb.Rows {
			keys = append(keys, row[0].String("en", loc))
		}
		t.Fatalf("table %s has no row %q (rows: %q)", table, rowKey, keys)
		return report.Cell{}, nil
	}
	num := func(table, rowKey, col string, want float64) *report.Table {
		t.Helper()
		c, d := fig(table, rowKey, col)
		if c.Num == nil || *c.Num != want {
			t.Errorf("%s / %s / %s = %s, want %v", table, rowKey, col, c.String("en", loc), want)
		}
		return d
	}
	rowsWith := func(d *report.Table, col, text string) int {
		n := 0
		for _, r := range d.Rows {
			if strings.Contains(r[d.Col(col)].String("en", loc), text) {
				n++
			}
		}
		return n
	}

	// Devices: the detector's outage (11 Jan 01:00 to 13 Jan 12:00, 59 h).
	d := num("devices", "Smoke detectors", "offline_hours", 59)
	if rowsWith(d, "state", "offline") != 1 || rowsWith(d, "start", "2026-01-11 01:00") != 1 || rowsWith(d, "end", "2026-01-13 12:00") != 1 {
		t.Errorf("smoke outage drill-down: %+v", d.Rows)
	}
	num("devices", "Smoke detectors", "devices_with_outage", 1)
	num("devices", "Door contacts", "offline_hours", 0)

	// Alarms: one offline, one low battery, five night exits acknowledged
	// after 2, 3, 4, 5 and 6 minutes.
	if d := num("alarms", "device-offline", "raised", 1); len(d.Rows) != 1 {
		t.Errorf("device-offline episodes: %d", len(d.Rows))
	}
	num("alarms", "low-battery", "raised", 1)
	d = num("alarms", "ward-night-door", "raised", 5)
	if len(d.Rows) != 5 || rowsWith(d, "by", "night.nurse") != 5 {
		t.Errorf("night exit episodes: %+v", d.Rows)
	}
	num("alarms", "ward-night-door", "acknowledged", 5)
	num("alarms", "ward-night-door", "ack_median_min", 4)
	num("alarms", "ward-night-door", "ack_p90_min", 6)
	num("alarms", "ward-night-door", "ack_max_min", 6)
	reason := rep.Table("alarms")
	for _, r := range reason.Rows {
		if r[0].String("en", loc) == "ward-night-door" && r[reason.Col("slowest_reason")].String("en", loc) != "resident walked to the gate, brought back" {
			t.Errorf("slowest reason = %q", r[reason.Col("slowest_reason")].String("en", loc))
		}
	}
	// Escalations that reached the department (level 2, after 15
	// unacknowledged minutes): the offline detector and the low battery.
	if d := num("escalations", "", "alarms", 2); len(d.Rows) != 2 {
		t.Errorf("escalations drill-down: %+v", d.Rows)
	}
	// The hazard list's quarter.
	num("hazards", "", "opened", 3)
	num("hazards", "", "rectified", 3)
	num("hazards", "", "verified", 2)
	if d := num("hazards", "", "overdue", 1); rowsWith(d, "hazard", "HZ-0002") != 1 {
		t.Errorf("overdue drill-down: %+v", d.Rows)
	}
	num("hazards", "", "reopened", 0)
	num("hazards", "", "open_at_end", 0)
	// Night exits from the secure ward.
	if d := num("ward", "Secure ward", "night_exits", 5); len(d.Rows) != 5 {
		t.Errorf("night exits drill-down: %d rows", len(d.Rows))
	}
	// Remote supervision of the foster placement: 4 sessions, 1
	// supervisor, 120 minutes, and 86 of the quarter's 90 days unseen.
	num("video", "Foster home 1 living room", "sessions", 4)
	num("video", "Foster home 1 living room", "supervisors", 1)
	num("video", "Foster home 1 living room", "minutes", 120)
	d = num("video", "Foster home 1 living room", "days_without_view", 86)
	if len(d.Rows) != 86 || rowsWith(d, "date", "2026-01-05") != 0 || rowsWith(d, "date", "2026-01-07") != 1 {
		t.Errorf("days without a view: %d rows", len(d.Rows))
	}
}
