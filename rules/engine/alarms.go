package engine

// The alarm lifecycle: firing, condition cleared, resolved, acknowledged,
// reset, silenced and inhibited; every step audited.

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// fire opens an alarm for key unless one is open.
func (c *Core) fire(r *rule, dev *facility.Device, key string, s *subjState, now time.Time) {
	if a := c.open[key]; a != nil {
		if a.CondCleared {
			// A latched alarm whose condition came back: still the same
			// episode, and it needs its reset all the more.
			a.CondCleared = false
			c.dirty = true
			c.auditf(audit.Entry{Action: "condition_returned", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
		}
		return
	}
	since := s.PendingSince
	if since.IsZero() {
		since = now
	}
	s.PendingSince = time.Time{}
	c.seq++
	a := &openAlarm{Alarm: alarm.Alarm{ID: key, Seq: c.seq, Rule: r.cfg.ID, Severity: r.severity, Facility: c.cfg.Facility,
		Zone: dev.Zone, State: alarm.StateFiring, Since: since, Updated: now, Latched: r.cfg.Latched, Labels: r.labels}, LastNotified: now}
	if r.scope == ScopeDevice {
		a.Device = dev.ID
	}
	td := TemplateData{Rule: r.cfg.ID, Facility: c.cfg.Facility, Device: a.Device, DeviceName: dev.Name, Kind: string(dev.Kind),
		Zone: a.Zone, Value: s.Value, Since: since.In(c.cfg.Location)}
	if z := c.zones[a.Zone]; z != nil {
		td.ZoneName, td.ZoneNameZH = z.Name, z.NameZH
	}
	if len(s.Hits) > 0 {
		for d := range s.Hits {
			td.Devices = append(td.Devices, d)
		}
		sort.Strings(td.Devices)
	}
	var err error
	for li, t := range []*alarm.Text{&a.Title, &a.Body} {
		tpls := r.title
		if li == 1 {
			tpls = r.body
		}
		if t.EN, err = render(tpls[0], td); err != nil {
			t.EN = r.cfg.ID + ": " + err.Error()
		}
		if t.ZH, err = render(tpls[1], td); err != nil {
			t.ZH = r.cfg.ID + ": " + err.Error()
		}
	}
	c.open[key] = a
	c.dirty = true
	c.auditf(audit.Entry{Action: "fired", Detail: a.Title.EN, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule, Severity: string(a.Severity)}})
	c.applyInhibitions(now)
	if !a.Silenced {
		c.emit(alarm.EventFiring, &a.Alarm, 0, now)
		if lv := c.cfg.Escalation.Levels; len(lv) > 0 {
			c.wakeAt(since.Add(lv[0]))
		}
	}
}

// conditionCleared ends an alarm's condition: it resolves, or, latched,
// waits for a reset.
func (c *Core) conditionCleared(key string, now time.Time) {
	a := c.open[key]
	if a == nil {
		return
	}
	if s := c.subj[key]; s != nil {
		s.ClearSince = time.Time{}
		s.PendingSince = time.Time{}
	}
	c.dirty = true
	if a.Latched {
		if !a.CondCleared {
			a.CondCleared = true
			a.Updated = now
			c.auditf(audit.Entry{Action: "condition_cleared", Detail: "latched: waiting for a manager's reset", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
		}
		return
	}
	c.resolve(a, "", now)
}

func (c *Core) resolve(a *openAlarm, by string, now time.Time) {
	a.State, a.ResolvedAt, a.Updated = alarm.StateResolved, now, now
	delete(c.open, a.ID)
	c.dirty = true
	c.auditf(audit.Entry{Action: "resolved", By: by, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
	if !a.Silenced {
		c.emit(alarm.EventResolved, &a.Alarm, a.Level, now)
	}
	c.applyInhibitions(now)
}

// ErrNotFound is returned for an alarm that is not open.
var ErrNotFound = fmt.Errorf("no such open alarm")

// Acknowledge records that someone has taken charge of an alarm; it stops
// escalation. Acknowledging twice is an error the API reports.
func (c *Core) Acknowledge(id, by, comment string, now time.Time) error {
	c.now = now
	a := c.open[id]
	if a == nil {
		return ErrNotFound
	}
	if a.State == alarm.StateAcknowledged {
		return fmt.Errorf("alarm %s was already acknowledged by %s at %s", id, a.AckedBy, a.AckedAt.Format(time.RFC3339))
	}
	a.State, a.AckedBy, a.AckedAt, a.AckComment, a.Updated = alarm.StateAcknowledged, by, now, comment, now
	c.dirty = true
	c.auditf(audit.Entry{Action: "acknowledged", By: by, Comment: comment, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
	if !a.Silenced {
		c.emit(alarm.EventAcknowledged, &a.Alarm, a.Level, now)
	}
	return nil
}

// Reset resolves a latched alarm once its condition is gone (a manager
// checked the kitchen and reset the smoke alarm).
func (c *Core) Reset(id, by, comment string, now time.Time) error {
	c.now = now
	a := c.open[id]
	if a == nil {
		return ErrNotFound
	}
	if !a.Latched {
		return fmt.Errorf("alarm %s is not latched: it resolves by itself when its condition clears", id)
	}
	if !a.CondCleared {
		return fmt.Errorf("alarm %s: its condition still holds; it cannot be reset yet", id)
	}
	c.auditf(audit.Entry{Action: "reset", By: by, Comment: comment, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
	c.resolve(a, by, now)
	return nil
}

// AddSilence mutes matching alarms until s.To.
func (c *Core) AddSilence(s Silence, now time.Time) error {
	// A silence naming something that does not exist silences nothing:
	// most likely a typo that would leave the real detector paging.
	switch {
	case s.Device != "" && c.devices[s.Device] == nil:
		return fmt.Errorf("%w: no device %q", ErrUnknownName, s.Device)
	case s.Zone != "" && c.zones[s.Zone] == nil:
		return fmt.Errorf("%w: no zone %q", ErrUnknownName, s.Zone)
	case s.Rule != "" && c.byID[s.Rule] == nil:
		return fmt.Errorf("%w: no rule %q", ErrUnknownName, s.Rule)
	}
	c.now = now
	c.silences = append(c.silences, s)
	c.wakeAt(s.To)
	c.dirty = true
	c.auditf(audit.Entry{Action: "silence_added", By: s.By, Comment: s.Comment, Detail: fmt.Sprintf("device=%q zone=%q rule=%q until %s", s.Device, s.Zone, s.Rule, s.To.Format(time.RFC3339))})
	c.applyInhibitions(now)
	return nil
}

// ErrUnknownName is returned for a silence naming a device, zone or rule
// the rules do not know.
var ErrUnknownName = errors.New("unknown name")

// applyInhibitions recomputes which open alarms are silenced: by a
// silence, or by an open alarm of a rule that inhibits theirs in the same
// zone (a gateway-scope inhibitor covers every zone).
func (c *Core) applyInhibitions(now time.Time) {
	for _, a := range c.open {
		reason := ""
		if c.walkCovers(&a.Alarm) {
			reason = "walk test " + c.walk.ID
		}
		for i := range c.silences {
			if reason != "" {
				break
			}
			if c.silences[i].matches(&a.Alarm, now) {
				reason = "silence " + c.silences[i].ID
				break
			}
		}
		if reason == "" {
			for _, b := range c.open {
				if b == a {
					continue
				}
				r := c.byID[b.Rule]
				if r == nil || !slices.Contains(r.inhibits, a.Rule) {
					continue
				}
				if r.scope == ScopeGateway || b.Zone == a.Zone {
					reason = "inhibited by " + b.ID
					break
				}
			}
		}
		if silenced := reason != ""; silenced != a.Silenced || reason != a.Reason {
			was := a.Silenced
			a.Silenced, a.Reason = silenced, reason
			c.dirty = true
			if silenced {
				c.auditf(audit.Entry{Action: "silenced", Detail: reason, Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
			} else if was {
				c.auditf(audit.Entry{Action: "unsilenced", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
				if a.State == alarm.StateFiring {
					// Nobody was told while it was muted: tell them now.
					a.LastNotified = now
					c.emit(alarm.EventFiring, &a.Alarm, a.Level, now)
				}
			}
		}
	}
}
