package sensorsim

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// event is something a facility manager would want to hear about.
type event uint8

const (
	// eventDoorOpenAtNight: a door in a secure-ward zone opens at night
	// (a resident wandering off) and closes again after 20–90 s.
	eventDoorOpenAtNight event = iota + 1
	// eventHeatingFailure: a dormitory's temperature falls toward the
	// outdoor temperature for 30–45 min, then recovers.
	eventHeatingFailure
	// eventKitchenSmoke: a kitchen smoke detector reports smoke, cleared
	// after about a minute.
	eventKitchenSmoke
)

func (e event) String() string {
	switch e {
	case eventDoorOpenAtNight:
		return "door-open-at-night"
	case eventHeatingFailure:
		return "heating-failure"
	case eventKitchenSmoke:
		return "kitchen-smoke"
	}
	return "none"
}

// Night is 22:00–06:00 facility time.
const nightStartHour, nightEndHour = 22, 6

func isNight(local time.Time) bool {
	h := local.Hour()
	return h >= nightStartHour || h < nightEndHour
}

// eventFor returns the event d can take part in at local time, or 0.
func eventFor(d Device, local time.Time) event {
	switch {
	case d.Kind == reading.KindDoor && d.hasTag(TagSecureWard) && isNight(local):
		return eventDoorOpenAtNight
	case d.Kind == reading.KindTemperature && d.hasTag(TagDormitory):
		return eventHeatingFailure
	case d.Kind == reading.KindSmoke && d.hasTag(TagKitchen):
		return eventKitchenSmoke
	}
	return 0
}

// candidate is a device that can take part in an event now.
type candidate struct {
	index int // into the devices
	ev    event
}

// candidates returns every (device, event) pair possible at local time.
func candidates(devices []Device, local time.Time) []candidate {
	var out []candidate
	for i, d := range devices {
		if ev := eventFor(d, local); ev != 0 {
			out = append(out, candidate{i, ev})
		}
	}
	return out
}

// scheduler picks roughly one event every EventEvery and hands it to a
// device that can play it out.
type scheduler struct {
	opts    *Options
	runners []*deviceRunner
	rng     *rand.Rand // only this goroutine uses it
}

func (s *scheduler) run(ctx context.Context) {
	devices := make([]Device, len(s.runners))
	for i, r := range s.runners {
		devices[i] = r.dev
	}
	t := time.NewTimer(jitter(s.rng, s.opts.EventEvery))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(jitter(s.rng, s.opts.EventEvery))

		cands := candidates(devices, s.opts.Clock().In(s.opts.Location))
		if len(cands) == 0 {
			continue
		}
		c := cands[s.rng.IntN(len(cands))]
		if !s.runners[c.index].trySend(c.ev) {
			s.opts.Logger.Debug("sensorsim: event skipped, device busy", "event", c.ev.String(), "device", devices[c.index].ID)
		}
	}
}
