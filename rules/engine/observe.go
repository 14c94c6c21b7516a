package engine

// Readings: what one stored reading does to the rules' state.

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// Observe evaluates every rule against one stored reading.
func (c *Core) Observe(rd reading.Reading, now time.Time) {
	c.now = now
	dev := c.devices[rd.Device]
	if dev == nil {
		return // readings only come from configured devices
	}
	// Device liveness follows the facility model's one availability rule
	// (data proves a device online, an availability message may say
	// offline), timed by the engine's own clock.
	c.avail[rd.Device] = c.avail[rd.Device].Apply(facility.EventOf(rd.Kind, rd.Value, now, 0))
	if !dev.Builtin {
		// A gateway fault reading is no sign that sensors get through.
		c.lastAny = now
	}
	if c.walk != nil {
		c.walkObserve(&rd, now)
	}
	local := now.In(c.cfg.Location)
	// One environment for every reading: the rules' programs take it by
	// pointer, so a local one escaped to the heap at every reading.
	ev := &c.ev
	ev.ready = false
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
		when, ok := c.eval(r, r.when, ev)
		if !ok {
			continue
		}
		if r.active != nil && !r.active.contains(local) {
			when = false
		}
		switch r.typ {
		case TypeState:
			c.observeState(r, dev, dr.key, rd, ev, when, now)
		case TypeRateOfRise:
			c.observeRise(r, dev, dr.key, rd, ev, when, now)
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

// weekdays are the names rules compare `weekday` with.
var weekdays = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func (c *Core) envFor(rd reading.Reading, dev *facility.Device, local time.Time) env {
	e := env{Kind: string(rd.Kind), Value: rd.Value.Any(), Num: rd.Value.Float(), Device: dev.ID, DeviceKind: string(dev.Kind),
		Zone: dev.Zone, Battery: math.NaN(), LinkQuality: math.NaN(), Hour: local.Hour(),
		Weekday: weekdays[local.Weekday()]}
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
			if r.forD > 0 {
				// Without a `for` the alarm fires just below: nothing to
				// wait for, and a hint due now would cost a Tick (a pass
				// over every subject) per alarm in a storm.
				c.wakeAt(now.Add(r.forD))
			}
			c.dirty = true
		}
		if now.Sub(s.PendingSince) >= r.forD {
			c.fire(r, dev, key, s, now)
		}
		return
	}
	if !s.PendingSince.IsZero() {
		// The condition stopped holding before `for` ran out.
		s.PendingSince = time.Time{}
		c.dirty = true
	}
	if !firing {
		return // nothing to clear: the clear condition is not evaluated
	}
	if r.clear != nil {
		if clear, ok := c.eval(r, r.clear, re); !ok || !clear {
			return
		}
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
	if _, cause := c.avail[dev.ID].At(now, 0); cause == facility.CauseReported {
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
