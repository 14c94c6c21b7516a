package engine

// Walk tests, as fire-alarm panels have them: while an installer or
// inspector goes round a zone pressing every smoke detector's test
// button, opening every door and warming every thermometer, the alarms
// those devices raise are recorded but not notified, and the gateway
// lists which devices reported and which stayed silent. The list, signed
// off with the test, is the commissioning record an inspector reads later.
//
// Rules of a walk test:
//   - It covers the devices of its zones (every sensor of the facility
//     when it names none). The gateway's own devices are never covered.
//   - An alarm of a covered device, or a zone alarm of a covered zone
//     (two detectors under test within a minute look like a confirmed
//     fire), is silenced with the reason "walk test <id>". Everything
//     else, a smoke alarm next door included, is notified as always.
//   - It ends when someone ends it or, at the latest, at its end time,
//     so a forgotten test cannot keep a zone mute.
//   - At the end, alarms of covered devices whose condition is gone
//     (a detector's test tone is over, a latched smoke alarm waiting for
//     a reset) are resolved by the walk test; an alarm whose condition
//     still holds is real now and is notified at once.
//   - Starting and ending are audited; the ending entry names the
//     devices that did not report.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// MaxWalkTest bounds how long a walk test may run.
const MaxWalkTest = 4 * time.Hour

// keepWalkTests is how many finished walk tests the engine keeps.
const keepWalkTests = 50

// WalkTest is one walk test: what it covers, and what each device did.
type WalkTest struct {
	ID string `json:"id"`
	// Zones tested; empty: the whole facility.
	Zones   []string  `json:"zones"`
	Started time.Time `json:"started"`
	// Ends is when it ends by itself.
	Ends    time.Time `json:"ends"`
	By      string    `json:"by"`
	Comment string    `json:"comment,omitempty"`
	// Ended is zero while it runs. EndedBy is who ended it, empty when it
	// ran out.
	Ended   time.Time `json:"ended,omitzero"`
	EndedBy string    `json:"ended_by,omitempty"`
	// Devices covered, sorted by zone then id.
	Devices []WalkDevice `json:"devices"`
}

// WalkDevice is what one covered device did during a walk test.
type WalkDevice struct {
	Device string `json:"device"`
	Name   string `json:"name,omitempty"`
	Zone   string `json:"zone"`
	Kind   string `json:"kind"`
	// Reported: at least one reading arrived during the test.
	Reported bool      `json:"reported"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	Readings int       `json:"readings"`
	// Triggered: the device showed what it detects (smoke, an open door,
	// water, a press), or, for a measuring device, a change of its primary
	// value; a report without it is only a sign of life.
	Triggered bool `json:"triggered"`
	// Fault: it reported a sensor fault during the test.
	Fault bool `json:"fault,omitempty"`
	// Min and Max of the primary value of a measuring device.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// Silent returns the devices of w that did not report.
func (w *WalkTest) Silent() []string {
	var out []string
	for _, d := range w.Devices {
		if !d.Reported {
			out = append(out, d.Device)
		}
	}
	return out
}

// Errors of walk-test actions.
var (
	ErrWalkTestRunning = errors.New("a walk test is already running")
	ErrNoWalkTest      = errors.New("no walk test is running")
)

// StartWalkTest starts w (ID, Zones, Ends, By, Comment set by the caller)
// at now and returns it with its devices.
func (c *Core) StartWalkTest(w WalkTest, now time.Time) (WalkTest, error) {
	c.now = now
	if c.walk != nil {
		return WalkTest{}, fmt.Errorf("%w (%s, started by %s)", ErrWalkTestRunning, c.walk.ID, c.walk.By)
	}
	for _, z := range w.Zones {
		if c.zones[z] == nil {
			return WalkTest{}, fmt.Errorf("%w: no zone %q", ErrUnknownName, z)
		}
	}
	if !w.Ends.After(now) || w.Ends.Sub(now) > MaxWalkTest {
		return WalkTest{}, fmt.Errorf("a walk test must end within %v", MaxWalkTest)
	}
	w.Started, w.Ended, w.EndedBy = now, time.Time{}, ""
	w.Zones = slices.Clone(w.Zones)
	slices.Sort(w.Zones)
	w.Devices = nil
	for _, d := range c.cfg.Devices {
		if d.Builtin || (len(w.Zones) > 0 && !slices.Contains(w.Zones, d.Zone)) {
			continue
		}
		w.Devices = append(w.Devices, WalkDevice{Device: d.ID, Name: d.Name, Zone: d.Zone, Kind: string(d.Kind)})
	}
	slices.SortFunc(w.Devices, func(a, b WalkDevice) int {
		if c := strings.Compare(a.Zone, b.Zone); c != 0 {
			return c
		}
		return strings.Compare(a.Device, b.Device)
	})
	c.setWalk(&w)
	c.dirty = true
	c.wakeAt(w.Ends)
	c.auditf(audit.Entry{Action: "walktest_started", By: w.By, Comment: w.Comment,
		Detail: fmt.Sprintf("%s: %s, %d devices, until %s", w.ID, zonesText(w.Zones), len(w.Devices), w.Ends.Format(time.RFC3339))})
	c.applyInhibitions(now)
	return cloneWalk(&w), nil
}

// EndWalkTest ends the running walk test on behalf of by and returns its
// record.
func (c *Core) EndWalkTest(by string, now time.Time) (WalkTest, error) {
	c.now = now
	if c.walk == nil {
		return WalkTest{}, ErrNoWalkTest
	}
	return c.endWalk(by, now), nil
}

// WalkTests returns the running walk test (nil when none) and the
// finished ones, newest first.
func (c *Core) WalkTests() (*WalkTest, []WalkTest) {
	var cur *WalkTest
	if c.walk != nil {
		w := cloneWalk(c.walk)
		cur = &w
	}
	done := make([]WalkTest, 0, len(c.walks))
	for i := len(c.walks) - 1; i >= 0; i-- {
		done = append(done, cloneWalk(&c.walks[i]))
	}
	return cur, done
}

func (c *Core) setWalk(w *WalkTest) {
	c.walk = w
	c.walkIdx = nil
	if w == nil {
		return
	}
	c.walkIdx = make(map[string]int, len(w.Devices))
	for i, d := range w.Devices {
		c.walkIdx[d.Device] = i
	}
}

// walkCovers reports whether the running walk test holds a's
// notifications back.
func (c *Core) walkCovers(a *alarm.Alarm) bool {
	if c.walk == nil {
		return false
	}
	if a.Device != "" {
		_, ok := c.walkIdx[a.Device]
		return ok
	}
	// A zone alarm (confirmed fire) of a tested zone; never a
	// gateway-wide one.
	return a.Zone != "" && (len(c.walk.Zones) == 0 || slices.Contains(c.walk.Zones, a.Zone))
}

// walkObserve records a reading of a covered device.
func (c *Core) walkObserve(rd *reading.Reading, now time.Time) {
	i, ok := c.walkIdx[rd.Device]
	if !ok || rd.Kind == reading.KindAvailability || rd.Kind == reading.KindReach {
		return
	}
	d := &c.walk.Devices[i]
	if !d.Reported {
		d.Reported, d.First = true, now
	}
	d.Last = now
	d.Readings++
	c.dirty = true
	switch {
	case rd.Kind == reading.KindSensorFault:
		d.Fault = d.Fault || rd.Value.Bool
	case rd.Value.Type == reading.TypeBool:
		// The active state of what the device detects (smoke, door open,
		// water, a press); a low-battery flag says nothing of the test.
		if rd.Value.Bool && rd.Kind != reading.KindBatteryLow {
			d.Triggered = true
		}
	case rd.Value.Type == reading.TypeNumber && string(rd.Kind) == d.Kind:
		v := rd.Value.Num
		if d.Min == nil || v < *d.Min {
			d.Min = &v
		}
		if d.Max == nil || v > *d.Max {
			d.Max = &v
		}
		// Breathing on a thermometer or holding it moves it by a degree
		// or more, a hygrometer by several percent: more than the
		// sensor's own noise, which a still room shows too.
		d.Triggered = *d.Max-*d.Min >= walkTriggerSpan(rd.Kind)
	}
}

// endWalk finishes the running walk test (see the rules at the top).
func (c *Core) endWalk(by string, now time.Time) WalkTest {
	w := c.walk
	w.Ended, w.EndedBy = now, by
	c.dirty = true
	reported := 0
	for _, d := range w.Devices {
		if d.Reported {
			reported++
		}
	}
	detail := fmt.Sprintf("%s: %d of %d devices reported", w.ID, reported, len(w.Devices))
	if silent := w.Silent(); len(silent) > 0 {
		detail += "; silent: " + strings.Join(silent, ", ")
	}
	if by == "" {
		detail += "; ended at its end time"
	}
	c.auditf(audit.Entry{Action: "walktest_ended", By: by, Detail: detail})
	// Alarms the test raised and whose condition is gone end with it,
	// resolved while the test still holds them so nobody is paged for
	// them. A zone alarm of the test (two detectors pressed within a
	// minute) ends with them unless a covered device is still in alarm.
	// applyInhibitions then notifies those whose condition still holds.
	var done, zone []*openAlarm
	holding := false
	for _, a := range c.open {
		if !c.walkCovers(&a.Alarm) {
			continue
		}
		switch {
		case a.Device == "":
			zone = append(zone, a)
		case a.CondCleared:
			done = append(done, a)
		default:
			holding = true
		}
	}
	if !holding {
		done = append(done, zone...)
	}
	for _, a := range done {
		if s := c.subj[a.ID]; s != nil {
			s.Hits = nil
		}
		c.auditf(audit.Entry{Action: "walktest_cleared", Detail: w.ID, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
		c.resolve(a, "walk test", now)
	}
	c.setWalk(nil)
	c.applyInhibitions(now)
	c.walks = append(c.walks, *w)
	if n := len(c.walks) - keepWalkTests; n > 0 {
		c.walks = slices.Delete(c.walks, 0, n)
	}
	return cloneWalk(w)
}

// tickWalk ends a walk test that reached its end time.
func (c *Core) tickWalk(now time.Time, due func(time.Time)) {
	if c.walk == nil {
		return
	}
	if !now.Before(c.walk.Ends) {
		c.endWalk("", now)
		return
	}
	due(c.walk.Ends)
}

// walkTriggerSpan is how far a measuring device's value must move during a
// walk test to count as triggered.
func walkTriggerSpan(k reading.Kind) float64 {
	switch k {
	case reading.KindTemperature:
		return 0.5 // °C
	case reading.KindHumidity:
		return 3 // %RH
	case reading.KindPressure:
		return 0.5 // hPa
	case reading.KindCO:
		return 5 // ppm
	}
	return 0.001
}

func cloneWalk(w *WalkTest) WalkTest {
	out := *w
	out.Zones = slices.Clone(w.Zones)
	out.Devices = slices.Clone(w.Devices)
	return out
}

func zonesText(zones []string) string {
	if len(zones) == 0 {
		return "whole facility"
	}
	return "zones " + strings.Join(zones, ", ")
}
