package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
)

// stored is what the test knows about one appended reading.
type stored struct {
	series Series
	t      int64
	seq    uint64
	v      float64 // NaN for states
}

// randomHistory appends readings of several series over about two days in
// random order and batch sizes (late and out-of-order arrivals), with
// readings that share a time, and returns them with their seqs. Between
// batches it sometimes compacts, so that Pebble folds rollup operands, and
// once it reopens the store.
func randomHistory(t *testing.T, rng *rand.Rand, dir string) (*Store, []stored) {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	type gen struct {
		device string
		kind   reading.Kind
		value  func() reading.Value
	}
	gens := []gen{
		{"dorm1-temp", reading.KindTemperature, func() reading.Value { return reading.Number(float64(rng.IntN(8000)-3000) / 100) }},
		{"dorm1-temp", reading.KindHumidity, func() reading.Value { return reading.Number(float64(rng.IntN(1000)) / 10) }},
		{"dorm2-door", reading.KindDoor, func() reading.Value { return reading.Bool(rng.IntN(2) == 1) }},
		{"dorm2-pressure", reading.KindPressure, func() reading.Value { return reading.Number(900 + float64(rng.IntN(20000))/100) }},
		{"hall-siren", "siren_mode", func() reading.Value { return reading.State([]string{"off", "alarm"}[rng.IntN(2)]) }},
	}
	const span = int64(50 * time.Hour)
	var rs []reading.Reading
	for range 6000 {
		g := gens[rng.IntN(len(gens))]
		var ns int64
		switch rng.IntN(10) {
		case 0: // on a minute boundary
			ns = rng.Int64N(span) / int64(time.Minute) * int64(time.Minute)
		case 1: // the same time as an earlier reading
			if len(rs) > 0 {
				ns = rs[rng.IntN(len(rs))].Time.Sub(t0).Nanoseconds()
				break
			}
			fallthrough
		default:
			ns = rng.Int64N(span)
		}
		at := t0.Add(time.Duration(ns) - 2*time.Hour)
		rs = append(rs, reading.Reading{Facility: "f1", Device: g.device, Zone: "z", Kind: g.kind, Format: "native",
			Time: at, Received: at, Value: g.value()})
	}
	// Arrival order: mostly in time order with stretches of late readings.
	slices.SortFunc(rs, func(a, b reading.Reading) int { return a.Time.Compare(b.Time) })
	for range 300 {
		i, j := rng.IntN(len(rs)), rng.IntN(len(rs))
		rs[i], rs[j] = rs[j], rs[i]
	}
	var out []stored
	reopened := false
	for len(rs) > 0 {
		n := min(len(rs), 1+rng.IntN(400))
		batch := slices.Clone(rs[:n])
		rs = rs[n:]
		if err := s.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		for _, r := range batch {
			out = append(out, stored{Series{Device: r.Device, Kind: r.Kind, Zone: r.Zone}, r.Time.UnixNano(), r.Seq, r.Value.Float()})
		}
		switch {
		case rng.IntN(8) == 0:
			if err := s.idx.Compact(context.Background(), []byte{prefixRollup}, []byte{prefixRollup + 1}, false); err != nil {
				t.Fatal(err)
			}
		case !reopened && len(rs) < 3000:
			reopened = true
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = Open(Options{Dir: dir}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	return s, out
}

// wantBuckets computes the buckets of one series from the readings alone:
// the sum exactly (big.Float), Last by time then arrival.
func wantBuckets(points []stored, sr Series, from, to, w int64) []Bucket {
	type acc struct {
		Bucket
		sum      *big.Float
		lastT    int64
		lastSeq  uint64
		hasValue bool
	}
	byStart := map[int64]*acc{}
	for _, p := range points {
		if p.series.Device != sr.Device || p.series.Kind != sr.Kind || p.t < from || p.t >= to || math.IsNaN(p.v) {
			continue
		}
		st := floorTo(p.t, w)
		a := byStart[st]
		if a == nil {
			a = &acc{Bucket: Bucket{Start: time.Unix(0, st).UTC(), Min: p.v, Max: p.v}, sum: new(big.Float).SetPrec(300)}
			byStart[st] = a
		}
		a.Count++
		a.Min, a.Max = math.Min(a.Min, p.v), math.Max(a.Max, p.v)
		a.sum.Add(a.sum, big.NewFloat(p.v))
		if !a.hasValue || p.t > a.lastT || p.t == a.lastT && p.seq > a.lastSeq {
			a.Last, a.lastT, a.lastSeq, a.hasValue = p.v, p.t, p.seq, true
		}
	}
	var out []Bucket
	for _, a := range byStart {
		sum, _ := a.sum.Float64()
		a.Mean = sum / float64(a.Count)
		out = append(out, a.Bucket)
	}
	slices.SortFunc(out, func(a, b Bucket) int { return a.Start.Compare(b.Start) })
	return out
}

func sameBuckets(a, b []Bucket) bool {
	return slices.EqualFunc(a, b, func(x, y Bucket) bool {
		return x.Start.Equal(y.Start) && x.Count == y.Count && x.Min == y.Min && x.Max == y.Max &&
			math.Float64bits(x.Mean) == math.Float64bits(y.Mean) && x.Last == y.Last
	})
}

// TestDownsampleRollupsMatchRawScan: whatever the widths and range ends,
// buckets read from rollups are exactly those of a scan of the readings,
// and both are those computed from the readings as appended.
func TestDownsampleRollupsMatchRawScan(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			s, points := randomHistory(t, rng, t.TempDir())
			// Whole hours read hour rollups and, at the ends of the range,
			// readings; every other width reads only readings.
			widths := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 24 * time.Hour,
				time.Minute, 15 * time.Minute, 90 * time.Minute, 7 * time.Second, 90 * time.Second}
			for i := range 60 {
				width := widths[rng.IntN(len(widths))]
				var q Query
				if rng.IntN(5) > 0 {
					q.From = t0.Add(time.Duration(rng.Int64N(int64(52*time.Hour))) - 3*time.Hour)
				}
				if rng.IntN(5) > 0 {
					q.To = q.From.Add(time.Duration(rng.Int64N(int64(30 * time.Hour))))
					if q.From.IsZero() {
						q.To = t0.Add(time.Duration(rng.Int64N(int64(50 * time.Hour))))
					}
				}
				if rng.IntN(2) == 0 {
					q.Device = "dorm1-temp"
				}
				name := fmt.Sprintf("%d/width=%v/from=%s/to=%s", i, width, q.From.Format(time.RFC3339Nano), q.To.Format(time.RFC3339Nano))
				fromRollups, err := s.Downsample(context.Background(), q, width)
				if err != nil {
					t.Fatalf("%s: downsample: %v", name, err)
				}
				raw, err := s.downsample(context.Background(), q, width, resRaw)
				if err != nil {
					t.Fatalf("%s: raw downsample: %v", name, err)
				}
				if len(fromRollups) != len(raw) || len(raw) == 0 {
					t.Fatalf("%s: %d series from rollups, %d from the raw scan", name, len(fromRollups), len(raw))
				}
				from, to := s.span(q.From, q.To)
				for j := range raw {
					want := wantBuckets(points, raw[j].Series, from, to, int64(width))
					if !sameBuckets(raw[j].Buckets, want) {
						t.Fatalf("%s: %s/%s raw scan\n got  %+v\n want %+v", name, raw[j].Device, raw[j].Kind, raw[j].Buckets, want)
					}
					if !sameBuckets(fromRollups[j].Buckets, want) {
						t.Fatalf("%s: %s/%s from rollups\n got  %+v\n want %+v", name, raw[j].Device, raw[j].Kind, fromRollups[j].Buckets, want)
					}
				}
			}
		})
	}
}

// TestDownsampleReadsHourRollups: whole hours are answered from the hourly
// rollups, not the readings. With the readings deleted behind the store's
// back, whole hourly buckets still come back; partial hours at the ends of
// a range and widths finer than an hour, which read the readings, do not.
func TestDownsampleReadsHourRollups(t *testing.T) {
	s := openTest(t, Options{})
	var rs []reading.Reading
	for i := range 3 * 60 {
		rs = append(rs, temp("d1", "z", t0.Add(time.Duration(i)*time.Minute+time.Second), float64(i%7)))
	}
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if err := s.idx.DeleteRange([]byte{prefixSeries}, []byte{prefixSeries + 1}, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from, to time.Duration // after t0
		width    time.Duration
		want     int // buckets
	}{
		{"1h", 0, 3 * time.Hour, time.Hour, 3},
		{"3h", 0, 3 * time.Hour, 3 * time.Hour, 1},
		{"1h/partial ends", 30 * time.Minute, 2*time.Hour + 30*time.Minute, time.Hour, 1}, // only 01:00-02:00 is whole
		{"15m", 0, 3 * time.Hour, 15 * time.Minute, 0},
		{"90s", 0, 3 * time.Hour, 90 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := Query{Device: "d1", From: t0.Add(tc.from), To: t0.Add(tc.to)}
			got, err := s.Downsample(context.Background(), q, tc.width)
			if err != nil || len(got) != 1 || len(got[0].Buckets) != tc.want {
				t.Fatalf("got %+v, %v; want %d buckets", got, err, tc.want)
			}
		})
	}
}

func TestRetentionDeletesWholeRollupBuckets(t *testing.T) {
	now := t0.Add(10 * time.Hour)
	s := openTest(t, Options{Retention: 4*time.Hour + 30*time.Minute + 30*time.Second, Clock: func() time.Time { return now }})
	var rs []reading.Reading
	for i := range 10 * 60 {
		rs = append(rs, temp("d1", "z", t0.Add(time.Duration(i)*time.Minute+20*time.Second), float64(i)))
	}
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	cutoff := now.Add(-4*time.Hour - 30*time.Minute - 30*time.Second) // t0+5h29m30s
	countRollups := func(res resolution, before time.Time) int {
		it, err := s.idx.NewIter(&pebble.IterOptions{
			LowerBound: appendRollupKey(nil, "d1", "temperature", res, math.MinInt64),
			UpperBound: appendRollupKey(nil, "d1", "temperature", res, before.UnixNano())})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		n := 0
		for it.First(); it.Valid(); it.Next() {
			n++
		}
		return n
	}
	if n := countRollups(resHour, t0.Add(5*time.Hour)); n != 0 {
		t.Errorf("%d hourly rollups wholly before the cutoff survived", n)
	}
	if n := countRollups(resHour, t0.Add(6*time.Hour)); n != 1 {
		t.Errorf("the hourly rollup straddling the cutoff: %d, want it kept", n)
	}
	if n := countRollups(resMinute, t0.Add(24*time.Hour)); n != 0 {
		t.Errorf("%d minute rollups written", n)
	}
	// Queries start at the cutoff; the straddling hour holds only what is left.
	for _, width := range []time.Duration{time.Hour, time.Minute, 30 * time.Second} {
		got, err := s.Downsample(context.Background(), Query{Device: "d1"}, width)
		if err != nil || len(got) != 1 {
			t.Fatalf("downsample %v: %+v %v", width, got, err)
		}
		raw, err := s.downsample(context.Background(), Query{Device: "d1"}, width, resRaw)
		if err != nil {
			t.Fatal(err)
		}
		b := got[0].Buckets
		if len(b) == 0 || b[0].Start.Before(cutoff.Truncate(width)) || !sameBuckets(b, raw[0].Buckets) {
			t.Fatalf("width %v after retention: %d buckets from rollups, %d from the readings; first %+v, %+v",
				width, len(b), len(raw[0].Buckets), b[:min(len(b), 1)], raw[0].Buckets[:min(len(raw[0].Buckets), 1)])
		}
	}
	got, _ := s.Downsample(context.Background(), Query{Device: "d1", To: t0.Add(6 * time.Hour)}, time.Hour)
	if b := got[0].Buckets; len(b) != 1 || b[0].Count != 30 || b[0].Min != 330 {
		t.Errorf("straddling hour = %+v, want the 30 readings from 05:30 on (330..359)", b)
	}
	// The horizon survives a restart.
	h := s.horizon.Load()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, Options{Dir: s.opts.Dir})
	if s2.horizon.Load() != h || h != cutoff.UnixNano() {
		t.Errorf("horizon after reopen = %v, want %v", time.Unix(0, s2.horizon.Load()).UTC(), cutoff)
	}
}

// TestOpenBuildsRollupsOfAnOlderStore: a store written before rollups (by
// Pebble's default merger, without rollup keys) opens, and its history is
// summarised once.
func TestOpenBuildsRollupsOfAnOlderStore(t *testing.T) {
	for _, format := range []uint32{0, 1} {
		t.Run(fmt.Sprintf("format=%d", format), func(t *testing.T) { testOpenOlderStore(t, format) })
	}
}

// testOpenOlderStore writes the store of TestOpenBuildsRollupsOfAnOlderStore
// in one instance, with format recorded (0: no record), and opens it: the
// index moves into its own instance.
func testOpenOlderStore(t *testing.T, format uint32) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebblelog.Logger{Name: "store", Log: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	var want []stored
	for i := range 500 {
		r := temp("old-sensor", "z", t0.Add(time.Duration(i)*37*time.Second), float64(i%40)/4)
		r.Seq = uint64(i + 1)
		p := seriesPrefix(r.Device, string(r.Kind))
		if err := db.Set(logKey(r.Seq), reading.AppendBinary(nil, &r), nil); err != nil {
			t.Fatal(err)
		}
		if err := db.Set(seriesKey(p, r.Time, r.Seq), reading.AppendValue(nil, r.Value), nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, stored{Series{Device: r.Device, Kind: r.Kind}, r.Time.UnixNano(), r.Seq, r.Value.Num})
	}
	if err := db.Set(registryKey("old-sensor", "temperature"), []byte("z"), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(cursorKey("influx:old"), binary.BigEndian.AppendUint64(nil, 321), nil); err != nil {
		t.Fatal(err)
	}
	if format > 0 {
		if err := db.Set(metaKey("format"), binary.BigEndian.AppendUint32(nil, format), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil { // tables naming the default merger
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, Options{Dir: dir})
	if logHoldsIndexKeys(t, s) {
		t.Fatal("the log instance still holds index keys after the upgrade")
	}
	// The cursors moved into their file.
	if c := s.Cursor("influx:old"); c != 321 {
		t.Fatalf("the older store's cursor reads %d after the upgrade, want 321", c)
	}
	if it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCursor}, UpperBound: []byte{prefixCursor + 1}}); err != nil {
		t.Fatal(err)
	} else if it.First() {
		t.Fatal("the log instance still holds cursor keys after the upgrade")
	} else {
		_ = it.Close()
	}
	if b, err := os.ReadFile(filepath.Join(dir, CursorsFile)); err != nil || !strings.Contains(string(b), `"influx:old":321`) {
		t.Fatalf("%s after the upgrade: %q %v", CursorsFile, b, err)
	}
	checkIndexMatchesLog(t, s)
	// New readings merge onto the built rollups.
	more := []reading.Reading{temp("old-sensor", "z", t0.Add(30*time.Second), 100)}
	if err := s.Append(context.Background(), more); err != nil {
		t.Fatal(err)
	}
	want = append(want, stored{Series{Device: "old-sensor", Kind: reading.KindTemperature}, more[0].Time.UnixNano(), more[0].Seq, 100})
	sr := Series{Device: "old-sensor", Kind: reading.KindTemperature, Zone: "z"}
	for _, width := range []time.Duration{time.Minute, time.Hour} {
		got, err := s.Downsample(context.Background(), Query{Device: "old-sensor"}, width)
		if err != nil || len(got) != 1 {
			t.Fatalf("downsample: %+v %v", got, err)
		}
		if w := wantBuckets(want, sr, math.MinInt64, math.MaxInt64, int64(width)); !sameBuckets(got[0].Buckets, w) {
			t.Fatalf("width %v:\n got  %+v\n want %+v", width, got[0].Buckets, w)
		}
	}
}

// TestOpenDeletesMinuteRollups: a store written by a gateway that kept
// minute rollups as well opens, its minute rollups are deleted, and history
// is answered from the hour rollups and the readings alone. The minute
// rollups here are deliberately wrong, so an answer that used one would
// show. The old marker is removed, so that the older gateway, started again
// on the store, rebuilds its minute rollups instead of trusting them.
func TestOpenDeletesMinuteRollups(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var rs []reading.Reading
	for i := range 5 * 60 {
		at := t0.Add(time.Duration(i)*time.Minute + time.Duration(i%50)*time.Second)
		rs = append(rs, temp("d1", "z", at, float64(i%13)), temp("d2", "z", at, float64(i%7)/2))
	}
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	var want []stored
	for _, r := range rs {
		want = append(want, stored{Series{Device: r.Device, Kind: r.Kind}, r.Time.UnixNano(), r.Seq, r.Value.Num})
		wrong := single(r.Time.UnixNano(), r.Seq, r.Value.Num+1000)
		key := appendRollupKey(nil, r.Device, string(r.Kind), resMinute, floorTo(r.Time.UnixNano(), int64(time.Minute)))
		if err := s.idx.Merge(key, appendAgg(nil, &wrong), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.idx.Set(metaKey("rollups"), []byte("1"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := s.idx.Delete(metaKey("hour-rollups"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := s.idx.Flush(); err != nil {
		t.Fatal(err)
	}
	rollupBytes := func() uint64 {
		t.Helper()
		n, err := s.idx.EstimateDiskUsage([]byte{prefixRollup}, []byte{prefixRollup + 1})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	withMinutes := rollupBytes()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, Options{Dir: dir})
	// The maintenance goroutine compacts the deleted minute rollups away.
	for deadline := time.Now().Add(10 * time.Second); rollupBytes() > withMinutes/3; {
		if time.Now().After(deadline) {
			t.Fatalf("rollups still take %d bytes on disk 10s after open, %d with minute rollups", rollupBytes(), withMinutes)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("rollups: %d bytes with minute rollups, %d after", withMinutes, rollupBytes())
	for _, device := range []string{"d1", "d2"} {
		lo, hi := rollupResBounds(device, "temperature", resMinute)
		it, err := s.idx.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			t.Fatal(err)
		}
		if it.First() {
			t.Errorf("%s: minute rollups left after open", device)
		}
		_ = it.Close()
	}
	for name, want := range map[string]bool{"rollups": false, "hour-rollups": true} {
		_, closer, err := s.idx.Get(metaKey(name))
		if err == nil {
			_ = closer.Close()
		}
		if (err == nil) != want {
			t.Errorf("meta %q: %v, want set=%v", name, err, want)
		}
	}
	for _, width := range []time.Duration{time.Minute, 15 * time.Minute, time.Hour, 90 * time.Minute} {
		q := Query{From: t0.Add(17*time.Minute + 3*time.Second), To: t0.Add(4*time.Hour + 41*time.Minute)}
		got, err := s.Downsample(context.Background(), q, width)
		if err != nil || len(got) != 2 {
			t.Fatalf("downsample %v: %+v %v", width, got, err)
		}
		from, to := s.span(q.From, q.To)
		for _, sb := range got {
			if w := wantBuckets(want, sb.Series, from, to, int64(width)); !sameBuckets(sb.Buckets, w) {
				t.Errorf("%s width %v:\n got  %+v\n want %+v", sb.Device, width, sb.Buckets, w)
			}
		}
	}
}

// TestOpenRefusesNewerRollups: a store whose rollups are in a format this
// gateway does not know is not opened, rather than answered wrongly.
func TestOpenRefusesNewerRollups(t *testing.T) {
	for _, name := range []string{"hour-rollups", "rollups"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.idx.Set(metaKey(name), []byte("2"), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(Options{Dir: dir})
			if err == nil {
				_ = s.Close()
				t.Fatal("opened a store with rollups in format 2")
			}
			if want := `in format "2", this gateway knows "1"`; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		})
	}
}

func TestRollupRecords(t *testing.T) {
	a := single(10, 1, 2.5)
	b := agg{}
	for i, v := range []float64{3, -1, 7.25} {
		one := single(int64(20+i), uint64(5-i), v)
		b.merge(&one)
	}
	var ab agg
	ab.merge(&a)
	ab.merge(&b)

	t.Run("a record round-trips", func(t *testing.T) {
		for _, x := range []agg{a, b, ab} {
			var got agg
			if err := foldRollup(appendAgg(nil, &x), &got); err != nil || got != x {
				t.Errorf("round trip of %+v = %+v, %v", x, got, err)
			}
		}
	})
	t.Run("concatenation is merging", func(t *testing.T) {
		// Pebble's default merger concatenates; that must mean the same.
		var got agg
		if err := foldRollup(append(appendAgg(nil, &b), appendAgg(nil, &a)...), &got); err != nil || got != ab {
			t.Errorf("fold of concatenation = %+v, %v; want %+v", got, err, ab)
		}
	})
	t.Run("the merger folds operands in either direction", func(t *testing.T) {
		key := appendRollupKey(nil, "d", "temperature", resHour, 0)
		for _, newer := range []bool{false, true} {
			m, err := mergeRollup(key, appendAgg(nil, &a))
			if err != nil {
				t.Fatal(err)
			}
			if newer {
				err = m.MergeNewer(appendAgg(nil, &b))
			} else {
				err = m.MergeOlder(appendAgg(nil, &b))
			}
			if err != nil {
				t.Fatal(err)
			}
			v, _, err := m.Finish(true)
			var got agg
			if err != nil || foldRollup(v, &got) != nil || got != ab || v[0] != recAgg || len(v) != len(appendAgg(nil, &ab)) {
				t.Errorf("merged value %x (%+v), %v; want one record of %+v", v, got, err, ab)
			}
		}
	})
	t.Run("other keys are concatenated", func(t *testing.T) {
		m, err := mergeRollup([]byte("Lxyz"), []byte("ab"))
		if err != nil {
			t.Fatal(err)
		}
		_ = m.MergeNewer([]byte("cd"))
		if v, _, _ := m.Finish(true); string(v) != "abcd" {
			t.Errorf("merge of a non-rollup key = %q, want abcd", v)
		}
	})
	t.Run("last breaks time ties by arrival", func(t *testing.T) {
		x, y := single(50, 7, 1), single(50, 9, 2)
		var xy, yx agg
		xy.merge(&x)
		xy.merge(&y)
		yx.merge(&y)
		yx.merge(&x)
		if xy.lastV != 2 || yx.lastV != 2 {
			t.Errorf("last = %v / %v, want 2 (seq 9) both ways", xy.lastV, yx.lastV)
		}
	})
	full := appendAgg(nil, &ab)
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"unknown tag", []byte{'z', 1, 2}},
		{"truncated single", appendAgg(nil, &a)[:10]},
		{"single without seq", appendAgg(nil, &a)[:17]},
		{"truncated aggregate", full[:len(full)-3]},
		{"zero count", append([]byte{recAgg, 0}, full[2:]...)},
		{"trailing garbage", append(slices.Clone(full), 'a')},
	} {
		t.Run("malformed/"+tc.name, func(t *testing.T) {
			var got agg
			if err := foldRollup(tc.value, &got); !errors.Is(err, errRollupRecord) {
				t.Errorf("fold(%x) = %v, want errRollupRecord", tc.value, err)
			}
			if _, err := mergeRollup(appendRollupKey(nil, "d", "k", resMinute, 0), tc.value); err == nil {
				t.Errorf("merger accepted %x", tc.value)
			}
		})
	}
}

// TestDoubleDoubleSumIsOrderIndependent: the same readings summed in any
// grouping give the same bits; a plain float64 sum does not.
func TestDoubleDoubleSumIsOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	vs := make([]float64, 20000)
	for i := range vs {
		vs[i] = float64(rng.IntN(200000)-50000) / 100
	}
	sumOf := func(order []int, chunk int) (float64, float64) {
		var total agg
		for i := 0; i < len(order); i += chunk {
			var part agg
			for _, j := range order[i:min(i+chunk, len(order))] {
				one := single(0, 0, vs[j])
				part.merge(&one)
			}
			total.merge(&part)
		}
		return total.sumHi, total.sumLo
	}
	order := make([]int, len(vs))
	for i := range order {
		order[i] = i
	}
	hi0, lo0 := sumOf(order, len(vs))
	exact := new(big.Float).SetPrec(300)
	for _, v := range vs {
		exact.Add(exact, big.NewFloat(v))
	}
	if want, _ := exact.Float64(); hi0 != want {
		t.Fatalf("sum = %v, want the exact sum rounded %v", hi0, want)
	}
	for _, chunk := range []int{1, 7, 60, 1000} {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if hi, lo := sumOf(order, chunk); hi != hi0 || lo != lo0 {
			t.Errorf("chunk %d: sum (%v, %v), want (%v, %v)", chunk, hi, lo, hi0, lo0)
		}
	}
}

func TestActivityGroupsReadings(t *testing.T) {
	s := openTest(t, Options{})
	m := time.Minute
	var rs []reading.Reading
	// 10:00-10:59 every minute, a gap, then 13:10 and 13:20.
	for i := range 60 {
		rs = append(rs, temp("d1", "z", t0.Add(time.Duration(i)*m), 20))
	}
	rs = append(rs, temp("d1", "z", t0.Add(3*time.Hour+10*m), 20), temp("d1", "z", t0.Add(3*time.Hour+20*m), 20))
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	sr := Series{Device: "d1", Kind: reading.KindTemperature}
	type group struct{ first, last time.Duration }
	for _, tc := range []struct {
		grain time.Duration
		want  []group
	}{
		{time.Hour, []group{{0, 59 * m}, {190 * m, 200 * m}}},
		{5 * time.Minute, nil}, // finer than an hour reads the readings: one group each
		{time.Second, nil},
	} {
		t.Run(tc.grain.String(), func(t *testing.T) {
			var got []group
			err := s.Activity(context.Background(), sr, t0, t0.Add(4*time.Hour), tc.grain, func(first, last time.Time) {
				got = append(got, group{first.Sub(t0), last.Sub(t0)})
			})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == nil {
				for _, r := range rs {
					want = append(want, group{r.Time.Sub(t0), r.Time.Sub(t0)})
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("groups = %v, want %v", got, want)
			}
		})
	}
}

func TestLastBefore(t *testing.T) {
	s := openTest(t, Options{})
	rs := []reading.Reading{temp("d", "z", t0.Add(2*time.Minute), 3), temp("d", "z", t0, 1), temp("d", "z", t0.Add(time.Minute), 2)}
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	sr := Series{Device: "d", Kind: reading.KindTemperature}
	for _, tc := range []struct {
		before time.Time
		want   float64 // 0: none
	}{
		{t0, 0},
		{t0.Add(time.Nanosecond), 1},
		{t0.Add(2 * time.Minute), 2},
		{t0.Add(time.Hour), 3},
	} {
		p, ok, err := s.LastBefore(sr, tc.before)
		if err != nil || ok != (tc.want != 0) || ok && p.Value.Num != tc.want {
			t.Errorf("LastBefore(%v) = %v %v %v, want %v", tc.before.Sub(t0), p.Value, ok, err, tc.want)
		}
	}
}
