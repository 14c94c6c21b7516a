package store

import (
	"context"
	"encoding/binary"
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
	it, err := s.idx.NewIter(&pebble.IterOptions{LowerBound: seriesBound(p, from), UpperBound: seriesBound(p, to)})
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
//
// Only readings in [q.From, q.To) count, so the first and last bucket may
// be partial. Widths that are whole hours are answered from the hourly
// rollups, with the partial hours at the ends of the range filled in from
// the readings themselves; any other width scans the readings. Both give
// the same buckets. Readings older than the retention horizon (the newest
// cutoff retention or the disk budget deleted before) are left out, so that
// a bucket that straddled the cutoff agrees with the readings that are left.
func (s *Store) Downsample(ctx context.Context, q Query, width time.Duration) ([]SeriesBuckets, error) {
	return s.downsample(ctx, q, width, coarsestRollup(width))
}

// downsample is Downsample reading rollups of at most res (resRaw: none).
func (s *Store) downsample(ctx context.Context, q Query, width time.Duration, res resolution) ([]SeriesBuckets, error) {
	if width <= 0 {
		return nil, fmt.Errorf("store: downsample: bucket width %v must be positive", width)
	}
	w := int64(width)
	from, to := s.span(q.From, q.To)
	var out []SeriesBuckets
	for _, sr := range s.Series(q) {
		sb := SeriesBuckets{Series: sr}
		if from > math.MinInt64 && to < math.MaxInt64 && to > from {
			sb.Buckets = make([]Bucket, 0, min(uint64(to-from)/uint64(w)+2, 4096))
		}
		var cur agg
		var curStart int64
		err := s.aggregates(ctx, sr, from, to, res, func(start int64, a *agg) {
			if bs := floorTo(start, w); cur.count == 0 || bs != curStart {
				if cur.count > 0 {
					sb.Buckets = append(sb.Buckets, cur.bucket(curStart))
				}
				cur, curStart = agg{}, bs
			}
			cur.merge(a)
		})
		if err != nil {
			return nil, err
		}
		if cur.count > 0 {
			sb.Buckets = append(sb.Buckets, cur.bucket(curStart))
		}
		out = append(out, sb)
	}
	return out, nil
}

// span turns a query's From and To into Unix ns, open ends and the
// retention horizon applied.
func (s *Store) span(from, to time.Time) (int64, int64) {
	f, t := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		f = from.UnixNano()
	}
	if !to.IsZero() {
		t = to.UnixNano()
	}
	return max(f, s.horizon.Load()), t
}

// Activity calls fn, in time order, with the times of the first and last
// reading of consecutive groups that together hold every reading of sr in
// [from, to). Readings within one group are less than grain apart: a group
// is a rollup no wider than grain, or a single reading. Availability uses it
// to find silences longer than grain without reading every reading.
func (s *Store) Activity(ctx context.Context, sr Series, from, to time.Time, grain time.Duration, fn func(first, last time.Time)) error {
	res := rollupAtMost(grain)
	if typ, ok := sr.Kind.Known(); !ok || typ == reading.TypeState {
		res = resRaw // state readings are not in the rollups
	}
	f, t := s.span(from, to)
	if res == resRaw {
		p := seriesPrefix(sr.Device, string(sr.Kind))
		return s.rawTimes(ctx, sr, p, f, t, func(ns int64) { fn(time.Unix(0, ns).UTC(), time.Unix(0, ns).UTC()) })
	}
	return s.aggregates(ctx, sr, f, t, res, func(_ int64, a *agg) {
		fn(time.Unix(0, a.first).UTC(), time.Unix(0, a.last).UTC())
	})
}

// rawTimes calls fn with the time of every reading of a series in [from, to).
func (s *Store) rawTimes(ctx context.Context, sr Series, p []byte, from, to int64, fn func(ns int64)) error {
	it, err := s.idx.NewIter(&pebble.IterOptions{LowerBound: seriesBoundNs(p, from), UpperBound: seriesBoundNs(p, to)})
	if err != nil {
		return fmt.Errorf("store: scan %s/%s: %w", sr.Device, sr.Kind, err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("store: scan %s/%s: %w", sr.Device, sr.Kind, ctx.Err())
		}
		if k := it.Key(); len(k) == len(p)+16 {
			fn(int64(binary.BigEndian.Uint64(k[len(p):]) ^ (1 << 63)))
		}
	}
	return it.Error()
}

// Last returns the newest point of a series (by time), and false when the
// series holds none. The gateway restores device state from it at start.
func (s *Store) Last(sr Series) (Point, bool, error) { return s.LastBefore(sr, maxTime) }

// LastBefore returns the newest point of a series older than t, and false
// when there is none.
func (s *Store) LastBefore(sr Series, t time.Time) (Point, bool, error) {
	p := seriesPrefix(sr.Device, string(sr.Kind))
	it, err := s.idx.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: seriesBound(p, t)})
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

// niceWidths are the bucket widths BucketWidth chooses from; past a day it
// takes whole days.
var niceWidths = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// BucketWidth is the narrowest "nice" bucket width (1s, 2s, 5s, 10s, 15s,
// 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d, then whole days)
// that splits [from, to) into at most maxPoints epoch-aligned buckets. Every
// width from an hour up is answered from rollups.
func BucketWidth(from, to time.Time, maxPoints int) time.Duration {
	span := to.Sub(from)
	if maxPoints < 1 || span <= 0 {
		return time.Second
	}
	// An unaligned range of n widths can touch n+1 buckets.
	fits := func(w time.Duration) bool {
		f, t := from.UnixNano(), to.UnixNano()-1
		return (floorTo(t, int64(w))-floorTo(f, int64(w)))/int64(w)+1 <= int64(maxPoints)
	}
	for _, w := range niceWidths {
		if fits(w) {
			return w
		}
	}
	days := max(span/(24*time.Hour)/time.Duration(maxPoints), 1)
	for !fits(days * 24 * time.Hour) {
		days++
	}
	return days * 24 * time.Hour
}
