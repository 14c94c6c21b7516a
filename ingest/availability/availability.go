// Package availability replays what the store holds about a device's
// signs of life into its availability timeline: online, offline (and
// why) and unknown spans over a period, decided by the facility model's
// one availability rule (internal/facility). The history API's
// availability report and the inspection summary report both read it
// here, so they cannot disagree.
//
// It only reads the store; a timeline costs one lookup per series before
// the period plus the series' rollups (or, for availability and reach
// messages, their points) within it.
package availability

import (
	"context"
	"fmt"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// Source is the part of the store a timeline reads (*store.Store).
type Source interface {
	Series(q store.Query) []store.Series
	LastBefore(sr store.Series, t time.Time) (store.Point, bool, error)
	Points(ctx context.Context, sr store.Series, from, to time.Time, fn func(store.Point) bool) error
	Activity(ctx context.Context, sr store.Series, from, to time.Time, grain time.Duration, fn func(first, last time.Time)) error
}

// DeviceSeries are the stored series of device that say whether it is
// alive: all but the gateway's own fault series, which say how the
// gateway is and are alarms, not outages.
func DeviceSeries(src Source, device string) []store.Series {
	var out []store.Series
	for _, sr := range src.Series(store.Query{Device: device}) {
		if sr.Kind != reading.KindFault {
			out = append(out, sr)
		}
	}
	return out
}

// Timeline replays the series of one device over [from, end): silence is
// its offline_after. The newest reading of each series before from decides
// the state at the start.
func Timeline(ctx context.Context, src Source, series []store.Series, from, end time.Time, silence time.Duration) ([]facility.Segment, error) {
	var events []facility.Event
	for _, sr := range series {
		p, ok, err := src.LastBefore(sr, from)
		if err != nil {
			return nil, fmt.Errorf("availability: last reading of %s/%s before %s: %w", sr.Device, sr.Kind, from.Format(time.RFC3339), err)
		}
		if ok {
			events = append(events, facility.EventOf(sr.Kind, p.Value, p.Time, p.Seq))
		}
		if !end.After(from) {
			continue
		}
		if sr.Kind == reading.KindAvailability || sr.Kind == reading.KindReach {
			// Every availability and reach message counts: each one
			// changes the state.
			err = src.Points(ctx, sr, from, end, func(p store.Point) bool {
				events = append(events, facility.EventOf(sr.Kind, p.Value, p.Time, p.Seq))
				return true
			})
		} else {
			// Readings closer together than the silence timeout cannot hide
			// an outage, so groups of them (rollups) are enough.
			err = src.Activity(ctx, sr, from, end, silence, func(first, last time.Time) {
				events = append(events, facility.Event{At: first, Kind: facility.EventData})
				if last.After(first) {
					events = append(events, facility.Event{At: last, Kind: facility.EventData})
				}
			})
		}
		if err != nil {
			return nil, fmt.Errorf("availability: readings of %s/%s: %w", sr.Device, sr.Kind, err)
		}
	}
	return facility.Replay(from, end, silence, events), nil
}
