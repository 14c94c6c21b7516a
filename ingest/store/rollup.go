package store

// Rollups
//
// Every commit also writes, for each series and each hour its new readings
// fall in, the aggregate of those readings: count, min, max, sum, earliest
// time, and the latest value with its time. They are Pebble merge operands
// in the same batch as the readings, so rollups are exactly as durable as the
// readings they summarise and never disagree with them, and the writer never
// reads: Pebble folds the operands of a key (mergeRollup) when it compacts or
// reads it. A commit first folds its own readings in memory (rollupBatch), so
// it writes one operand per series and hour.
//
// Only hours are rolled up. Sensors report about once a minute, so a minute
// rollup mostly repeats a single reading: it added about one key per reading
// to every commit, while a scan of the readings answers anything finer than
// an hour about as fast. Measured on the 2-core reference machine against
// minute and hour rollups (medians of alternating runs):
//
//   - durable appends of 1,000 readings (BenchmarkAppend): 206k readings/s
//     instead of 135k, 7.8 µs of CPU per reading instead of 12.0;
//   - the whole gateway, 100 devices on the embedded broker (shelter-bench):
//     16.8k msgs/s instead of 15.9k, 6.2 CPU-s per 100k messages instead
//     of 6.7;
//   - 30 days of one-minute readings of 100 devices (BenchmarkHistory):
//     about 140 MB on disk instead of 230; hourly buckets in 27 ms either
//     way; one device at one-minute buckets in 17 ms from the readings
//     instead of 12 from minute rollups; all 100 at five-minute buckets in
//     about 1 s instead of 0.7.
//
// Widths that are not whole hours scan the readings, and so do the partial
// hours at the ends of a range. Gateways before this wrote minute rollups
// too; Open deletes them (ensureRollups).
//
// A rollup value is a sequence of self-delimiting records and means the fold
// of all of them, so concatenating two values is a correct merge too. That is
// why the engine's merger keeps the name of Pebble's default, concatenating
// merger: Pebble refuses to open a store whose OPTIONS file or tables name
// another merger, and every store written before rollups names that one
// (README: "replace the binary, start it"). The merger concatenates every
// other key exactly as the default does, and folds rollup keys into a single
// record; an engine with the plain default merger (an older gateway, Pebble's
// own tools) reads and writes rollups correctly, only less compactly.
//
// Sums are kept as double-double values (two float64s whose sum is the
// value), which represent sums of sensor readings exactly, so a mean from
// rollups equals the mean of a raw scan bit for bit whatever order Pebble
// merged the operands in.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
)

// resolution is the bucket width of a rollup, as stored in its key.
type resolution byte

const (
	resRaw  resolution = 0 // no rollup: read the readings themselves
	resHour resolution = 'h'
	// resMinute rollups were written by gateways before hour-only rollups.
	// Nothing reads them; Open deletes them.
	resMinute resolution = 'm'
)

// rollupResolutions are the rollups every commit writes.
var rollupResolutions = [...]resolution{resHour}

// width is the bucket width in nanoseconds.
func (r resolution) width() int64 {
	if r == resHour {
		return int64(time.Hour)
	}
	return 1
}

func (r resolution) String() string {
	if r == resHour {
		return "hour"
	}
	return "raw"
}

// coarsestRollup is the rollup whose buckets tile buckets of the given
// width, or resRaw when none does.
func coarsestRollup(width time.Duration) resolution {
	if width%time.Hour == 0 {
		return resHour
	}
	return resRaw
}

// rollupAtMost is the coarsest rollup no wider than d, or resRaw.
func rollupAtMost(d time.Duration) resolution {
	if d >= time.Hour {
		return resHour
	}
	return resRaw
}

// aggregable reports whether a reading's Float takes part in aggregates:
// states (NaN) do not, and the decoders reject infinities.
func aggregable(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// agg aggregates numeric readings. The zero value is empty. Rollups, raw
// scans and buckets all fold with merge, so they agree exactly.
type agg struct {
	count        uint64
	min, max     float64
	sumHi, sumLo float64 // the sum is sumHi+sumLo, normalised (see ddAdd)
	first, last  int64   // Unix ns of the earliest and the latest reading
	lastSeq      uint64  // log seq of the latest reading: the later arrival wins a tie
	lastV        float64 // value of the latest reading
}

// single is the aggregate of one reading.
func single(t int64, seq uint64, v float64) agg {
	return agg{count: 1, min: v, max: v, sumHi: v, first: t, last: t, lastSeq: seq, lastV: v}
}

// merge folds b into a. It is commutative and associative.
func (a *agg) merge(b *agg) {
	if b.count == 0 {
		return
	}
	if a.count == 0 {
		*a = *b
		return
	}
	a.count += b.count
	a.min = math.Min(a.min, b.min)
	a.max = math.Max(a.max, b.max)
	a.sumHi, a.sumLo = ddAdd(a.sumHi, a.sumLo, b.sumHi, b.sumLo)
	a.first = min(a.first, b.first)
	if b.last > a.last || b.last == a.last && b.lastSeq > a.lastSeq {
		a.last, a.lastSeq, a.lastV = b.last, b.lastSeq, b.lastV
	}
}

func (a *agg) bucket(start int64) Bucket {
	return Bucket{Start: time.Unix(0, start).UTC(), Count: int(a.count), Min: a.min, Max: a.max,
		Mean: (a.sumHi + a.sumLo) / float64(a.count), Last: a.lastV}
}

// twoSum returns s = fl(a+b) and the rounding error e, so that s+e == a+b
// exactly (Knuth).
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	e = (a - (s - bb)) + (b - bb)
	return s, e
}

// quickTwoSum is twoSum for |a| >= |b|.
func quickTwoSum(a, b float64) (s, e float64) {
	s = a + b
	e = b - (s - a)
	return s, e
}

// ddAdd adds two double-double numbers and returns the normalised sum
// (hi == fl(hi+lo)). It is exact whenever the exact sum fits in 106
// significant bits, which sums of sensor readings (a few significant digits,
// at most a few million of them) always do; a normalised exact sum has one
// representation, so every order of addition gives the same bits.
func ddAdd(ah, al, bh, bl float64) (float64, float64) {
	s1, s2 := twoSum(ah, bh)
	t1, t2 := twoSum(al, bl)
	s2 += t1
	s1, s2 = quickTwoSum(s1, s2)
	s2 += t2
	return quickTwoSum(s1, s2)
}

// Rollup record tags. A value is one or more records.
const (
	// recSingle is one reading: time(8) value(8) seq(uvarint).
	recSingle = 's'
	// recAgg is an aggregate: count(uvarint) min max sumHi sumLo first last
	// lastV (8 bytes each) lastSeq(uvarint).
	recAgg = 'a'
)

// maxRecordLen bounds the encoded length of one record.
const maxRecordLen = 1 + 2*binary.MaxVarintLen64 + 7*8

var errRollupRecord = errors.New("malformed rollup record")

// appendAgg appends a as one record.
func appendAgg(dst []byte, a *agg) []byte {
	if a.count == 1 {
		dst = append(dst, recSingle)
		dst = binary.BigEndian.AppendUint64(dst, uint64(a.last))
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(a.lastV))
		return binary.AppendUvarint(dst, a.lastSeq)
	}
	dst = append(dst, recAgg)
	dst = binary.AppendUvarint(dst, a.count)
	for _, f := range [...]float64{a.min, a.max, a.sumHi, a.sumLo} {
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.first))
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.last))
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(a.lastV))
	return binary.AppendUvarint(dst, a.lastSeq)
}

// foldRollup folds every record of value into a.
func foldRollup(value []byte, a *agg) error {
	for b := value; len(b) > 0; {
		var r agg
		switch b[0] {
		case recSingle:
			if len(b) < 18 {
				return errRollupRecord
			}
			t := int64(binary.BigEndian.Uint64(b[1:]))
			v := math.Float64frombits(binary.BigEndian.Uint64(b[9:]))
			seq, n := binary.Uvarint(b[17:])
			if n <= 0 {
				return errRollupRecord
			}
			r, b = single(t, seq, v), b[17+n:]
		case recAgg:
			count, n := binary.Uvarint(b[1:])
			if n <= 0 || count == 0 || len(b) < 1+n+56+1 {
				return errRollupRecord
			}
			f := b[1+n:]
			u := func(i int) uint64 { return binary.BigEndian.Uint64(f[8*i:]) }
			r = agg{count: count, min: math.Float64frombits(u(0)), max: math.Float64frombits(u(1)),
				sumHi: math.Float64frombits(u(2)), sumLo: math.Float64frombits(u(3)),
				first: int64(u(4)), last: int64(u(5)), lastV: math.Float64frombits(u(6))}
			seq, m := binary.Uvarint(f[56:])
			if m <= 0 {
				return errRollupRecord
			}
			r.lastSeq, b = seq, f[56+m:]
		default:
			return errRollupRecord
		}
		a.merge(&r)
	}
	return nil
}

// rollupMerger is the engine's merger; see the top of this file for why it
// carries the default merger's name.
var rollupMerger = &pebble.Merger{Name: pebble.DefaultMerger.Name, Merge: mergeRollup}

func mergeRollup(key, value []byte) (pebble.ValueMerger, error) {
	if len(key) == 0 || key[0] != prefixRollup {
		return pebble.DefaultMerger.Merge(key, value)
	}
	m := &rollupValueMerger{}
	if err := m.fold(value); err != nil {
		return nil, fmt.Errorf("store: merge rollup %q: %w", key, err)
	}
	return m, nil
}

type rollupValueMerger struct{ a agg }

func (m *rollupValueMerger) fold(v []byte) error { return foldRollup(v, &m.a) }

func (m *rollupValueMerger) MergeNewer(v []byte) error { return m.fold(v) }
func (m *rollupValueMerger) MergeOlder(v []byte) error { return m.fold(v) }

func (m *rollupValueMerger) Finish(includesBase bool) ([]byte, io.Closer, error) {
	return appendAgg(make([]byte, 0, maxRecordLen), &m.a), nil, nil
}

// rollupID names one rollup bucket.
type rollupID struct {
	series seriesID
	res    resolution
	start  int64
}

// rollupBatch folds the readings of one commit per rollup bucket. The writer
// owns it and reuses it.
type rollupBatch map[rollupID]agg

func (rb rollupBatch) add(r *reading.Reading) {
	f := r.Value.Float()
	if !aggregable(f) {
		return
	}
	t := r.Time.UnixNano()
	one := single(t, r.Seq, f)
	for _, res := range rollupResolutions {
		id := rollupID{series: seriesID{device: r.Device, kind: r.Kind}, res: res, start: floorTo(t, res.width())}
		a := rb[id]
		a.merge(&one)
		rb[id] = a
	}
}

// flush adds one merge operand per bucket to b and empties rb. key and val
// are scratch buffers, returned for reuse.
func (rb rollupBatch) flush(b *pebble.Batch, key, val []byte) ([]byte, []byte) {
	for id, a := range rb {
		key = appendRollupKey(key[:0], id.series.device, string(id.series.kind), id.res, id.start)
		val = appendAgg(val[:0], &a)
		_ = b.Merge(key, val, nil)
	}
	clear(rb)
	return key, val
}

// Rollup formats. The meta key "hour-rollups" holds hourRollupFormat once
// every stored reading is covered by hour rollups. Gateways that kept minute
// rollups too wrote "rollups" = legacyRollupFormat instead. The name changed
// so that such a gateway, started again on a store this one wrote, finds no
// marker and rebuilds its minute rollups from the readings rather than
// answering from minute rollups with holes in them.
const (
	hourRollupFormat   = "1"
	legacyRollupFormat = "1"
)

// ensureRollups makes the hour rollups cover every stored reading and
// deletes minute rollups, once. Open runs it before the writer starts, so
// nothing else writes. Rollups are written with Set, so an interrupted build
// is simply redone.
//
// Minute rollups are deleted rather than ignored: for sensors reporting once
// a minute they hold about as many keys as the readings (98 of the 231 MB of
// BenchmarkHistory's month), nothing reads them any more, and retention and
// the disk budget only delete hour rollups, so left alone they would fill
// the disk budget for good. One range deletion per series drops them without
// reading them, in milliseconds; the maintenance goroutine then compacts the
// rollups to return the space (reclaimSpace).
func (s *Store) ensureRollups() error {
	hour, err := s.metaFormat("hour-rollups", hourRollupFormat)
	if err != nil {
		return err
	}
	legacy, err := s.metaFormat("rollups", legacyRollupFormat)
	if err != nil {
		return err
	}
	if !hour && !legacy {
		start := time.Now()
		n, err := s.buildRollups()
		if err != nil {
			return fmt.Errorf("store: build rollups: %w", err)
		}
		if n > 0 {
			s.log.Info("store: built rollups of the readings stored before them", "rollups", n, "took", time.Since(start))
		}
	}
	if hour && !legacy {
		return nil
	}
	// A store with minute rollups has complete hour rollups too (the
	// gateways that wrote it kept both).
	b := s.idx.NewBatch()
	defer b.Close()
	if legacy {
		for _, sr := range s.Series(Query{}) {
			lo, hi := rollupResBounds(sr.Device, string(sr.Kind), resMinute)
			_ = b.DeleteRange(lo, hi, nil)
		}
		_ = b.Delete(metaKey("rollups"), nil)
	}
	_ = b.Set(metaKey("hour-rollups"), []byte(hourRollupFormat), nil)
	// The index has no WAL of its own: flushed, not synced.
	if err := pebblelog.Guard(func() error {
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		return s.idx.Flush()
	}); err != nil {
		return fmt.Errorf("store: hour rollups: %w", err)
	}
	if legacy {
		s.reclaim = append(s.reclaim, reclaimRange{db: s.idx, lo: []byte{prefixRollup}, hi: []byte{prefixRollup + 1}, what: "the minute rollups"})
		s.log.Info("store: deleted the minute rollups of an older gateway", "series", len(s.Series(Query{})))
	}
	return nil
}

// reclaimRange is a key range Open deleted in bulk.
type reclaimRange struct {
	db     *pebble.DB
	lo, hi []byte
	what   string
}

// reclaimSpace compacts a range Open deleted in bulk: minute rollups
// (ensureRollups) or the index's old place in the log (splitIndex). The
// deletion alone returns no space until compactions reach those keys,
// which on a quiet gateway may take very long, and until then the disk
// budget would count them and delete readings instead. The maintenance
// goroutine runs it before its first pass, so the gateway takes readings
// meanwhile (30 days of 100 devices' minute rollups: 0.8 s, from 98 MB
// down to 3) and Close waits for it.
func (s *Store) reclaimSpace(r reclaimRange) {
	start := time.Now()
	before, _ := r.db.EstimateDiskUsage(r.lo, r.hi)
	if err := r.db.Compact(context.Background(), r.lo, r.hi, false); err != nil {
		s.log.Error("store: compact after a deletion at open", "what", r.what, "err", err)
		return
	}
	s.awaitObsoleteDeleted(context.Background(), 5*time.Second)
	after, _ := r.db.EstimateDiskUsage(r.lo, r.hi)
	s.log.Info("store: reclaimed the space of what was deleted at open", "what", r.what,
		"bytes_before", before, "bytes_after", after, "took", time.Since(start))
}

// metaFormat reports whether the meta key name is set, and fails if it
// holds a format other than known.
func (s *Store) metaFormat(name, known string) (bool, error) {
	v, closer, err := s.idx.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read %s format: %w", name, err)
	}
	format := string(v)
	_ = closer.Close()
	if format != known {
		return false, fmt.Errorf("store: %s are in format %q, this gateway knows %q: it is older than the store", name, format, known)
	}
	return true, nil
}

// buildRollups scans every series and sets its rollups; it returns how many.
func (s *Store) buildRollups() (int, error) {
	it, err := s.idx.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSeries}, UpperBound: []byte{prefixSeries + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	b := s.idx.NewBatch()
	defer func() { _ = b.Close() }()
	var (
		prefix       []byte
		device, kind string
		open         [len(rollupResolutions)]struct {
			start int64
			a     agg
		}
		key, val []byte
		n        int
	)
	flush := func(i int) error {
		if open[i].a.count == 0 {
			return nil
		}
		key = appendRollupKey(key[:0], device, kind, rollupResolutions[i], open[i].start)
		val = appendAgg(val[:0], &open[i].a)
		_ = b.Set(key, val, nil)
		open[i].a = agg{}
		n++
		if b.Len() < 4<<20 {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		b.Reset()
		return nil
	}
	flushAll := func() error {
		for i := range open {
			if err := flush(i); err != nil {
				return err
			}
		}
		return nil
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 19 {
			continue
		}
		p := k[:len(k)-16]
		if !bytes.Equal(p, prefix) {
			if err := flushAll(); err != nil {
				return n, err
			}
			d, kd, ok := splitSeriesPrefix(p)
			if !ok {
				continue
			}
			prefix, device, kind = append(prefix[:0], p...), d, kd
		}
		t, seq := splitSeriesKey(k, len(p))
		v, err := reading.DecodeValue(it.Value())
		if err != nil {
			return n, fmt.Errorf("series %s/%s at seq %d: %w", device, kind, seq, err)
		}
		f := v.Float()
		if !aggregable(f) {
			continue
		}
		ns := t.UnixNano()
		one := single(ns, seq, f)
		for i, res := range rollupResolutions {
			st := floorTo(ns, res.width())
			if open[i].a.count > 0 && open[i].start != st {
				if err := flush(i); err != nil {
					return n, err
				}
			}
			open[i].start = st
			open[i].a.merge(&one)
		}
	}
	if err := it.Error(); err != nil {
		return n, err
	}
	if err := flushAll(); err != nil {
		return n, err
	}
	return n, b.Commit(pebble.NoSync)
}

// aggregates calls fn, in time order, with aggregates that together hold
// exactly the aggregable readings of sr in [from, to) (Unix ns). Rollups of
// resolution res cover the whole res-buckets inside the range; the partial
// buckets at its ends come from the readings themselves (given to fn one by
// one, with start = their time). A rollup is given with its bucket's start,
// so a caller bucketing by a multiple of res never splits one.
func (s *Store) aggregates(ctx context.Context, sr Series, from, to int64, res resolution, fn func(start int64, a *agg)) error {
	if from >= to {
		return nil
	}
	if res == resRaw {
		return s.rawAggregates(ctx, sr, from, to, fn)
	}
	w := res.width()
	lo, ok := ceilTo(from, w)
	hi := floorTo(to, w)
	if !ok || lo >= hi {
		return s.aggregates(ctx, sr, from, to, resRaw, fn)
	}
	if err := s.aggregates(ctx, sr, from, lo, resRaw, fn); err != nil {
		return err
	}
	if err := s.rollups(ctx, sr, res, lo, hi, fn); err != nil {
		return err
	}
	return s.aggregates(ctx, sr, hi, to, resRaw, fn)
}

// rollups calls fn with the stored rollups of sr at res whose buckets start
// in [from, to).
func (s *Store) rollups(ctx context.Context, sr Series, res resolution, from, to int64, fn func(start int64, a *agg)) error {
	lower := appendRollupKey(nil, sr.Device, string(sr.Kind), res, from)
	upper := appendRollupKey(nil, sr.Device, string(sr.Kind), res, to)
	it, err := s.idx.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("store: scan %s rollups of %s/%s: %w", res, sr.Device, sr.Kind, err)
	}
	defer it.Close()
	keyLen := rollupPrefixLen(sr.Device, string(sr.Kind)) + 8
	n := 0
	var a agg
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("store: scan %s rollups of %s/%s: %w", res, sr.Device, sr.Kind, ctx.Err())
		}
		k := it.Key()
		if len(k) != keyLen {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: scan %s rollups of %s/%s: %w", res, sr.Device, sr.Kind, err)
		}
		a = agg{}
		if err := foldRollup(v, &a); err != nil {
			return fmt.Errorf("store: %s rollup of %s/%s at %d: %w", res, sr.Device, sr.Kind, rollupStart(k), err)
		}
		if a.count > 0 {
			fn(rollupStart(k), &a)
		}
	}
	return it.Error()
}

// rawAggregates calls fn with each aggregable reading of sr in [from, to).
func (s *Store) rawAggregates(ctx context.Context, sr Series, from, to int64, fn func(start int64, a *agg)) error {
	p := seriesPrefix(sr.Device, string(sr.Kind))
	it, err := s.idx.NewIter(&pebble.IterOptions{LowerBound: seriesBoundNs(p, from), UpperBound: seriesBoundNs(p, to)})
	if err != nil {
		return fmt.Errorf("store: scan %s/%s: %w", sr.Device, sr.Kind, err)
	}
	defer it.Close()
	n := 0
	var a agg
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("store: scan %s/%s: %w", sr.Device, sr.Kind, ctx.Err())
		}
		k := it.Key()
		if len(k) != len(p)+16 {
			continue
		}
		t := int64(binary.BigEndian.Uint64(k[len(p):]) ^ (1 << 63))
		seq := binary.BigEndian.Uint64(k[len(p)+8:])
		v, err := reading.DecodeValue(it.Value())
		if err != nil {
			return fmt.Errorf("store: scan %s/%s at seq %d: %w", sr.Device, sr.Kind, seq, err)
		}
		if f := v.Float(); aggregable(f) {
			a = single(t, seq, f)
			fn(t, &a)
		}
	}
	return it.Error()
}

// floorTo rounds ns down to a multiple of w (aligned to the Unix epoch).
func floorTo(ns, w int64) int64 { return ns - mod(ns, w) }

// ceilTo rounds ns up to a multiple of w, and false if that overflows.
func ceilTo(ns, w int64) (int64, bool) {
	m := mod(ns, w)
	if m == 0 {
		return ns, true
	}
	if ns > math.MaxInt64-(w-m) {
		return 0, false
	}
	return ns + (w - m), true
}
