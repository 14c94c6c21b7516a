package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Query selects series and a time range. Empty fields match everything;
// a zero From or To leaves that end open.
type Query struct {
	Device string
	Kind   reading.Kind
	Zone   string
	From   time.Time // inclusive
	To     time.Time // exclusive
}

// Series names one stored series: one device's readings of one kind. Zone is
// the zone of the series' newest reading.
type Series struct {
	Device string       `json:"device"`
	Kind   reading.Kind `json:"kind"`
	Zone   string       `json:"zone"`
}

// Point is one stored reading of a series.
type Point struct {
	Time  time.Time
	Seq   uint64
	Value reading.Value
}

// Bucket aggregates the numeric readings of one series in [Start, Start+width).
// Booleans count as 0 and 1, so Mean of a door series is the fraction of time
// samples it was open and Max says whether it opened at all.
type Bucket struct {
	Start time.Time `json:"start"`
	Count int       `json:"count"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	Mean  float64   `json:"mean"`
	Last  float64   `json:"last"`
}

// SeriesBuckets is a downsampled series.
type SeriesBuckets struct {
	Series
	Buckets []Bucket `json:"buckets"`
}

// Series lists the stored series matching q's Device, Kind and Zone,
// sorted by device then kind.
func (s *Store) Series(q Query) []Series {
	s.regMu.RLock()
	out := make([]Series, 0, 8)
	for id, zone := range s.registry {
		if (q.Device == "" || q.Device == id.device) && (q.Kind == "" || q.Kind == id.kind) && (q.Zone == "" || q.Zone == zone) {
			out = append(out, Series{Device: id.device, Kind: id.kind, Zone: zone})
		}
	}
	s.regMu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// Points calls fn for every reading of the series in [from, to) in time
// order, until fn returns false or ctx is done.
func (s *Store) Points(ctx context.Context, sr Series, from, to time.Time, fn func(Point) bool) error {
	if from.IsZero() {
		from = minTime
	}
	if to.IsZero() {
		to = maxTime
	}
	p := seriesPrefix(sr.Device, string(sr.Kind))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: seriesBound(p, from), UpperBound: seriesBound(p, to)})
	if err != nil {
		return fmt.Errorf("store: scan %s/%s: %w", sr.Device, sr.Kind, err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("store: scan %s/%s: %w", sr.Device, sr.Kind, ctx.Err())
		}
		k := it.Key()
		if len(k) != len(p)+16 {
			continue
		}
		t, seq := splitSeriesKey(k, len(p))
		v, err := reading.DecodeValue(it.Value())
		if err != nil {
			return fmt.Errorf("store: scan %s/%s at seq %d: %w", sr.Device, sr.Kind, seq, err)
		}
		if !fn(Point{Time: t, Seq: seq, Value: v}) {
			break
		}
	}
	return it.Error()
}

// Downsample aggregates every series matching q into buckets of the given
// width aligned to the Unix epoch. Empty buckets are omitted.
func (s *Store) Downsample(ctx context.Context, q Query, width time.Duration) ([]SeriesBuckets, error) {
	if width <= 0 {
		return nil, fmt.Errorf("store: downsample: bucket width %v must be positive", width)
	}
	var out []SeriesBuckets
	for _, sr := range s.Series(q) {
		sb := SeriesBuckets{Series: sr}
		var cur *Bucket
		var sum float64
		err := s.Points(ctx, sr, q.From, q.To, func(p Point) bool {
			f := p.Value.Float()
			if math.IsNaN(f) {
				return true // states have no numeric aggregate
			}
			// Align buckets to the Unix epoch (time.Truncate aligns to year 1).
			start := time.Unix(0, p.Time.UnixNano()-mod(p.Time.UnixNano(), int64(width)))
			if cur == nil || !cur.Start.Equal(start) {
				if cur != nil {
					cur.Mean = sum / float64(cur.Count)
				}
				sb.Buckets = append(sb.Buckets, Bucket{Start: start, Min: f, Max: f})
				cur, sum = &sb.Buckets[len(sb.Buckets)-1], 0
			}
			cur.Count++
			sum += f
			cur.Min = math.Min(cur.Min, f)
			cur.Max = math.Max(cur.Max, f)
			cur.Last = f
			return true
		})
		if err != nil {
			return nil, err
		}
		if cur != nil {
			cur.Mean = sum / float64(cur.Count)
		}
		out = append(out, sb)
	}
	return out, nil
}

// Last returns the newest point of a series (by time), and false when the
// series holds none. The gateway restores device state from it at start.
func (s *Store) Last(sr Series) (Point, bool, error) {
	p := seriesPrefix(sr.Device, string(sr.Kind))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: seriesBound(p, maxTime)})
	if err != nil {
		return Point{}, false, fmt.Errorf("store: last of %s/%s: %w", sr.Device, sr.Kind, err)
	}
	defer it.Close()
	for ok := it.Last(); ok; ok = it.Prev() {
		k := it.Key()
		if len(k) != len(p)+16 {
			continue
		}
		t, seq := splitSeriesKey(k, len(p))
		v, err := reading.DecodeValue(it.Value())
		if err != nil {
			return Point{}, false, fmt.Errorf("store: last of %s/%s: %w", sr.Device, sr.Kind, err)
		}
		return Point{Time: t, Seq: seq, Value: v}, true, nil
	}
	return Point{}, false, it.Error()
}

// mod is the non-negative remainder of a/b.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
