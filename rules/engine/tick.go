package engine

// Timers: `for` holds, keep-firing ends, absences, escalations and
// silences running out, all driven by Tick(now).

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

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
	c.tickWalk(now, due)
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
		for _, dev := range c.applies[i] {
			id := dev.ID
			after := r.after
			if after <= 0 {
				after = dev.OfflineAfter
			}
			if after <= 0 {
				continue
			}
			if c.avail[id].Unreachable != facility.CauseNone {
				// Behind a bridge that is down, or removed: unknown, not
				// silent; the bridge-down alarm speaks for it.
				continue
			}
			last := c.avail[id].LastSeen
			if last.IsZero() {
				// Never heard since the gateway started: a detector that
				// never checks in must page too, so its silence counts
				// from the start (the history API calls it unknown).
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

func (c *Core) expireSilences(now time.Time) {
	n := len(c.silences)
	c.silences = slices.DeleteFunc(c.silences, func(s Silence) bool { return !now.Before(s.To) })
	if len(c.silences) != n {
		c.dirty = true
		c.applyInhibitions(now)
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
