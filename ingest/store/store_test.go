package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var t0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func temp(device, zone string, at time.Time, c float64) reading.Reading {
	return reading.Reading{Facility: "f1", Device: device, Zone: zone, Kind: reading.KindTemperature,
		Format: "native", Time: at, Received: at, Value: reading.Number(c)}
}

func TestAppendAssignsSeqAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rs := []reading.Reading{temp("d1", "z1", t0, 20), temp("d2", "z1", t0, 21)}
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatalf("append: %v", err)
	}
	if rs[0].Seq != 1 || rs[1].Seq != 2 {
		t.Fatalf("seqs = %d,%d, want 1,2", rs[0].Seq, rs[1].Seq)
	}
	if err := s.SetCursor("influx", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), rs); err != ErrClosed {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}

	s = openTest(t, Options{Dir: dir})
	if s.LastSeq() != 2 || s.FirstSeq() != 1 {
		t.Fatalf("after reopen first/last = %d/%d, want 1/2", s.FirstSeq(), s.LastSeq())
	}
	if c := s.Cursor("influx"); c != 1 {
		t.Fatalf("cursor after reopen = %d, want 1", c)
	}
	got, err := s.ReadLog(s.Cursor("influx"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != 2 || got[0].Device != "d2" || got[0].Value.Num != 21 {
		t.Fatalf("read after cursor: %+v", got)
	}
	more := []reading.Reading{temp("d1", "z1", t0.Add(time.Second), 22)}
	if err := s.Append(context.Background(), more); err != nil || more[0].Seq != 3 {
		t.Fatalf("append after reopen: seq %d err %v, want 3", more[0].Seq, err)
	}
	if got := s.Series(Query{Zone: "z1"}); len(got) != 2 {
		t.Fatalf("series registry after reopen: %+v", got)
	}
}

func TestConcurrentAppendsAreGroupCommittedInOrder(t *testing.T) {
	s := openTest(t, Options{})
	const writers, each = 16, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := []reading.Reading{temp(fmt.Sprintf("d%d", w), "z", t0.Add(time.Duration(i)*time.Second), float64(i))}
				if err := s.Append(context.Background(), r); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.LastSeq() != writers*each {
		t.Fatalf("last seq %d, want %d", s.LastSeq(), writers*each)
	}
	all, err := s.ReadLog(0, writers*each+10)
	if err != nil {
		t.Fatal(err)
	}
	perDevice := map[string]float64{}
	for i, r := range all {
		if r.Seq != uint64(i+1) {
			t.Fatalf("log position %d has seq %d: gap or reorder", i, r.Seq)
		}
		// Each writer appends in order, so its values must appear in order.
		if prev, ok := perDevice[r.Device]; ok && r.Value.Num != prev+1 {
			t.Fatalf("device %s: value %v after %v", r.Device, r.Value.Num, prev)
		}
		perDevice[r.Device] = r.Value.Num
	}
	commits := testutilCounter(t, s.metrics.commits)
	if commits >= writers*each {
		t.Logf("no grouping observed (%v commits for %d appends); acceptable on an idle disk", commits, writers*each)
	}
}

func TestRangeAndDownsample(t *testing.T) {
	s := openTest(t, Options{})
	var rs []reading.Reading
	for i := range 120 { // two hours, one reading a minute
		rs = append(rs, temp("dorm3-temp", "dorm-3", t0.Add(time.Duration(i)*time.Minute), float64(i%60)))
	}
	rs = append(rs, reading.Reading{Device: "door-1", Zone: "ward", Kind: reading.KindDoor,
		Time: t0, Received: t0, Value: reading.Bool(true)})
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	tests := []struct {
		name    string
		q       Query
		width   time.Duration
		series  int
		buckets []Bucket // of the first series
	}{
		{"hourly", Query{Device: "dorm3-temp"}, time.Hour, 1, []Bucket{
			{Start: t0, Count: 60, Min: 0, Max: 59, Mean: 29.5, Last: 59},
			{Start: t0.Add(time.Hour), Count: 60, Min: 0, Max: 59, Mean: 29.5, Last: 59}}},
		{"range cut", Query{Kind: reading.KindTemperature, From: t0.Add(30 * time.Minute), To: t0.Add(90 * time.Minute)}, time.Hour, 1, []Bucket{
			{Start: t0, Count: 30, Min: 30, Max: 59, Mean: 44.5, Last: 59},
			{Start: t0.Add(time.Hour), Count: 30, Min: 0, Max: 29, Mean: 14.5, Last: 29}}},
		{"by zone", Query{Zone: "ward"}, time.Hour, 1, []Bucket{{Start: t0, Count: 1, Min: 1, Max: 1, Mean: 1, Last: 1}}},
		{"no match", Query{Zone: "kitchen"}, time.Hour, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Downsample(ctx, tc.q, tc.width)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.series {
				t.Fatalf("%d series, want %d: %+v", len(got), tc.series, got)
			}
			if tc.series == 0 {
				return
			}
			if len(got[0].Buckets) != len(tc.buckets) {
				t.Fatalf("buckets %+v, want %+v", got[0].Buckets, tc.buckets)
			}
			for i, b := range got[0].Buckets {
				w := tc.buckets[i]
				if !b.Start.Equal(w.Start) || b.Count != w.Count || b.Min != w.Min || b.Max != w.Max || b.Mean != w.Mean || b.Last != w.Last {
					t.Fatalf("bucket %d = %+v, want %+v", i, b, w)
				}
			}
		})
	}

	var n int
	err := s.Points(ctx, Series{Device: "dorm3-temp", Kind: reading.KindTemperature}, t0.Add(10*time.Minute), t0.Add(20*time.Minute), func(p Point) bool {
		if p.Time.Before(t0.Add(10*time.Minute)) || !p.Time.Before(t0.Add(20*time.Minute)) {
			t.Errorf("point %v outside range", p.Time)
		}
		n++
		return true
	})
	if err != nil || n != 10 {
		t.Fatalf("points in 10-minute range: %d (err %v), want 10", n, err)
	}
}

func TestRetentionDropsOldKeepsNewest(t *testing.T) {
	now := t0.Add(100 * time.Hour)
	s := openTest(t, Options{Retention: 24 * time.Hour, Clock: func() time.Time { return now }})
	var rs []reading.Reading
	for i := range 100 {
		rs = append(rs, temp("d", "z", t0.Add(time.Duration(i)*time.Hour), float64(i)))
	}
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Readings at hours 76..99 are within 24h of hour 100.
	if s.FirstSeq() != 77 {
		t.Fatalf("first seq after retention = %d, want 77", s.FirstSeq())
	}
	got, _ := s.ReadLog(0, 1000)
	if len(got) != 24 || got[0].Value.Num != 76 {
		t.Fatalf("log after retention: %d readings starting at %v", len(got), got[0].Value)
	}
	var pts int
	_ = s.Points(context.Background(), Series{Device: "d", Kind: reading.KindTemperature}, time.Time{}, time.Time{}, func(Point) bool { pts++; return true })
	if pts != 24 {
		t.Fatalf("series points after retention = %d, want 24", pts)
	}
	if v := testutilCounter(t, s.metrics.dropped.WithLabelValues("retention")); v != 76 {
		t.Fatalf("dropped{retention} = %v, want 76", v)
	}

	// Everything expired: the newest reading stays so seqs continue.
	now = now.Add(1000 * time.Hour)
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.FirstSeq() != 100 || s.LastSeq() != 100 {
		t.Fatalf("first/last after full expiry = %d/%d, want 100/100", s.FirstSeq(), s.LastSeq())
	}
}

func TestDiskBudgetDropsOldestAndCountsUnforwarded(t *testing.T) {
	// Pebble keeps a floor of a few MiB (memtable WAL, recycled WAL files),
	// so the budget must be well above it to be meaningful.
	const budget = 2 << 20
	var raised uint64
	s := openTest(t, Options{DiskBudget: budget, MemTableSize: 256 << 10,
		OnUnforwardedDrop: func(_ string, n uint64) { raised += n }})
	if err := s.SetCursor("influx", 0); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const batches = 60
	for b := range batches {
		rs := make([]reading.Reading, 1000)
		for i := range rs {
			rs[i] = temp(fmt.Sprintf("device-%03d", i%50), "z", t0.Add(time.Duration(b*1000+i)*time.Second), float64(i))
		}
		if err := s.Append(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	if s.DiskUsage() <= budget {
		t.Fatalf("test data (%d bytes) does not exceed the budget", s.DiskUsage())
	}
	before := s.DiskUsage()
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	after := s.DiskUsage()
	if after > budget {
		t.Fatalf("usage after budget pass %d bytes (was %d), budget %d", after, before, budget)
	}
	dropped := testutilCounter(t, s.metrics.dropped.WithLabelValues("disk_budget"))
	if dropped == 0 || uint64(dropped) != s.FirstSeq()-1 {
		t.Fatalf("dropped{disk_budget}=%v but first seq is %d", dropped, s.FirstSeq())
	}
	if lost := testutilCounter(t, s.metrics.droppedUnforwarded); lost != dropped {
		t.Fatalf("unforwarded dropped = %v, want %v (cursor at 0)", lost, dropped)
	}
	if raised != uint64(dropped) {
		t.Fatalf("data-loss hook told of %d unforwarded readings, want %v", raised, dropped)
	}
	if s.LastSeq() != batches*1000 {
		t.Fatalf("last seq %d", s.LastSeq())
	}
}

func TestDiskBudgetDropsForwardedReadingsFirst(t *testing.T) {
	const budget = 2 << 20
	var raised []uint64
	s := openTest(t, Options{DiskBudget: budget, MemTableSize: 256 << 10,
		OnUnforwardedDrop: func(_ string, n uint64) { raised = append(raised, n) }})
	ctx := context.Background()
	const batches = 60
	for b := range batches {
		rs := make([]reading.Reading, 1000)
		for i := range rs {
			rs[i] = temp(fmt.Sprintf("device-%03d", i%50), "z", t0.Add(time.Duration(b*1000+i)*time.Second), float64(i))
		}
		if err := s.Append(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	// One consumer has taken 80% of the log: deleting that alone fits the
	// budget, so nothing it has not read may go.
	const forwarded = batches * 800
	if err := s.SetCursor("influx:facility", forwarded); err != nil {
		t.Fatal(err)
	}
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if s.DiskUsage() > budget {
		t.Fatalf("usage after budget pass %d bytes, budget %d", s.DiskUsage(), budget)
	}
	if s.FirstSeq() <= 1 || s.FirstSeq() > forwarded+1 {
		t.Fatalf("first seq after budget pass = %d, want within (1, %d]", s.FirstSeq(), forwarded+1)
	}
	if lost := testutilCounter(t, s.metrics.droppedUnforwarded); lost != 0 || len(raised) != 0 {
		t.Fatalf("unforwarded readings dropped: counter %v, alarms %v", lost, raised)
	}
	rs, err := s.ReadLog(forwarded, 1)
	if err != nil || len(rs) != 1 || rs[0].Seq != forwarded+1 {
		t.Fatalf("first unforwarded reading after budget pass: %v %v", rs, err)
	}
}

func TestDeadLettersBounded(t *testing.T) {
	s := openTest(t, Options{DeadLetterMax: 5})
	big := make([]byte, 10000)
	for i := range 12 {
		s.AddDeadLetter(DeadLetter{Time: t0, Topic: fmt.Sprintf("t/%d", i), Reason: "malformed", Error: "x", Payload: big})
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutilCounter(t, s.metrics.deadLetters) < 12 {
		if time.Now().After(deadline) {
			t.Fatalf("dead letters not written within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, err := s.DeadLetters(100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Topic != "t/11" || got[4].Topic != "t/7" {
		t.Fatalf("dead letters: %d, newest %q oldest %q", len(got), got[0].Topic, got[len(got)-1].Topic)
	}
	if !got[0].Truncated || len(got[0].Payload) != maxDeadLetterPayload || got[0].Size != 10000 {
		t.Fatalf("oversized payload not truncated: %d bytes, size %d", len(got[0].Payload), got[0].Size)
	}
}

func TestLastPointOfSeries(t *testing.T) {
	s := openTest(t, Options{})
	// Arrival order differs from time order: Last is by time.
	rs := []reading.Reading{temp("d", "z", t0.Add(2*time.Minute), 3), temp("d", "z", t0, 1), temp("d", "z", t0.Add(time.Minute), 2)}
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	p, ok, err := s.Last(Series{Device: "d", Kind: reading.KindTemperature})
	if err != nil || !ok || p.Value.Num != 3 || !p.Time.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("last = %+v %v %v, want 3 at t0+2m", p, ok, err)
	}
	if _, ok, _ := s.Last(Series{Device: "other", Kind: reading.KindTemperature}); ok {
		t.Fatal("last of an empty series reported a point")
	}
	// A device whose id is a prefix of another must not see its points.
	if err := s.Append(context.Background(), []reading.Reading{temp("dd", "z", t0.Add(time.Hour), 9)}); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := s.Last(Series{Device: "d", Kind: reading.KindTemperature}); p.Value.Num != 3 {
		t.Fatalf("last of d = %v after appending to dd", p.Value)
	}
}

// TestSeriesOfNoZone: a device of no zone (the gateway's own, a camera
// without one) has its series listed like any other, and after a
// restart too.
func TestSeriesOfNoZone(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	if err := s.Append(context.Background(), []reading.Reading{temp("gw", "", t0, 1), temp("d", "z", t0, 2)}); err != nil {
		t.Fatal(err)
	}
	if got := s.Series(Query{Device: "gw"}); len(got) != 1 || got[0].Zone != "" {
		t.Fatalf("series of gw = %+v, want one of no zone", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: dir})
	if got := s.Series(Query{}); len(got) != 2 {
		t.Fatalf("series after a restart = %+v, want gw's and d's", got)
	}
}

func TestDeleteCursor(t *testing.T) {
	s := openTest(t, Options{})
	for name, seq := range map[string]uint64{"influx:facility": 7, "influx:old": 3} {
		if err := s.SetCursor(name, seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCursor("influx:old"); err != nil {
		t.Fatal(err)
	}
	if got := s.Cursors(); len(got) != 1 || got["influx:facility"] != 7 {
		t.Fatalf("cursors after delete: %v", got)
	}
	if m, ok := s.minCursor(); !ok || m != 7 {
		t.Fatalf("min cursor %d %v: the deleted consumer still holds it back", m, ok)
	}
}

func TestBudgetCondition(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name                               string
		usage, budget, first, last, cursor uint64
		want                               string
	}{
		{"no budget", 900 * mb, 0, 1, 1000, 0, "ok"},
		{"empty log", 10 * mb, 100 * mb, 0, 0, 0, "ok"},
		{"all forwarded", 95 * mb, 100 * mb, 1, 1000, 1000, "ok"},
		{"half unforwarded, store full", 100 * mb, 100 * mb, 1, 1000, 500, "ok"},
		{"80 % unforwarded", 100 * mb, 100 * mb, 1, 1000, 200, "unforwarded readings fill 80% of the store's disk budget; past 100% the oldest of them are deleted"},
		{"nothing forwarded, over budget", 120 * mb, 100 * mb, 1, 1000, 0, "unforwarded readings fill 120% of the store's disk budget; past 100% the oldest of them are deleted"},
		{"cursor behind the first kept reading", 90 * mb, 100 * mb, 501, 1000, 10, "unforwarded readings fill 90% of the store's disk budget; past 100% the oldest of them are deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := budgetCondition(tc.usage, tc.budget, tc.first, tc.last, tc.cursor); got != tc.want {
				t.Errorf("budgetCondition = %q, want %q", got, tc.want)
			}
		})
	}
}
