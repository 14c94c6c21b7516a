package notify

import (
	"slices"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

type route struct {
	channels []string
	minRank  int
	levels   []int
	kinds    []alarm.EventKind
}

func compileRoute(r Route) route {
	return route{channels: r.Channels, minRank: r.MinSeverity.Rank(), levels: r.Levels, kinds: r.Kinds}
}

func (r route) match(ev alarm.Event) bool {
	if ev.Alarm.Severity.Rank() < r.minRank {
		return false
	}
	if len(r.kinds) > 0 && !slices.Contains(r.kinds, ev.Kind) {
		return false
	}
	if len(r.levels) == 0 {
		return true
	}
	if ev.Kind == alarm.EventAcknowledged || ev.Kind == alarm.EventResolved {
		// Everyone who was paged hears how it ended.
		return slices.ContainsFunc(r.levels, func(l int) bool { return l <= ev.Level })
	}
	return slices.Contains(r.levels, ev.Level)
}

// Route returns the channels ev goes to, in configuration order. Events
// of silenced alarms page nobody: they only go to the channels that keep
// a state (MQTT zone states), which must stop showing the alarm.
func (o *Outbox) Route(ev alarm.Event) []string {
	want := map[string]bool{}
	for _, r := range o.routes {
		if r.match(ev) {
			for _, c := range r.channels {
				want[c] = true
			}
		}
	}
	var out []string
	for _, n := range o.order {
		if len(o.routes) > 0 && !want[n] {
			continue
		}
		if _, keepsState := o.lanes[n].ch.(stateful); ev.Alarm.Silenced && !keepsState {
			continue
		}
		out = append(out, n)
	}
	return out
}
