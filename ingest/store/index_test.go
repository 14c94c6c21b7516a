package store

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// checkIndexMatchesLog holds the index to the log it is derived from:
// every series of the log is registered with its latest zone, its points
// are exactly the log's, and its hour buckets those computed from them.
func checkIndexMatchesLog(t *testing.T, s *Store) {
	t.Helper()
	var log []reading.Reading
	for after := uint64(0); ; {
		rs, err := s.ReadLog(after, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		log = append(log, rs...)
		after = rs[len(rs)-1].Seq
	}
	if len(log) == 0 {
		t.Fatal("the log is empty")
	}
	zones := map[seriesID]string{}
	points := map[seriesID][]Point{}
	var all []stored
	for _, r := range log {
		id := seriesID{device: r.Device, kind: r.Kind}
		zones[id] = r.Zone
		points[id] = append(points[id], Point{Time: r.Time, Seq: r.Seq, Value: r.Value})
		all = append(all, stored{Series{Device: r.Device, Kind: r.Kind}, r.Time.UnixNano(), r.Seq, r.Value.Float()})
	}
	got := s.Series(Query{})
	if len(got) != len(zones) {
		t.Fatalf("%d series registered, the log has %d", len(got), len(zones))
	}
	for _, sr := range got {
		id := seriesID{device: sr.Device, kind: sr.Kind}
		if z, ok := zones[id]; !ok || z != sr.Zone {
			t.Fatalf("series %s/%s registered in zone %q, the log's latest is %q (%v)", sr.Device, sr.Kind, sr.Zone, z, ok)
		}
		want := points[id]
		slices.SortStableFunc(want, func(a, b Point) int {
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			return int(a.Seq) - int(b.Seq)
		})
		var pts []Point
		if err := s.Points(context.Background(), sr, time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64), func(p Point) bool {
			pts = append(pts, p)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(pts, want, func(a, b Point) bool { return a.Time.Equal(b.Time) && a.Seq == b.Seq && a.Value == b.Value }) {
			t.Fatalf("series %s/%s: %d points in the index, %d in the log", sr.Device, sr.Kind, len(pts), len(want))
		}
		sb, err := s.Downsample(context.Background(), Query{Device: sr.Device, Kind: sr.Kind}, time.Hour)
		if err != nil || len(sb) != 1 {
			t.Fatalf("downsample %s/%s: %+v %v", sr.Device, sr.Kind, sb, err)
		}
		if w := wantBuckets(all, sr, math.MinInt64, math.MaxInt64, int64(time.Hour)); !sameBuckets(sb[0].Buckets, w) {
			t.Fatalf("series %s/%s hour buckets:\n got  %+v\n want %+v", sr.Device, sr.Kind, sb[0].Buckets, w)
		}
	}
}

func testIndexOptions() *pebble.Options {
	var o Options
	o.defaults()
	return indexOptions(o)
}

// peekIndexed reads the index's mark of a closed store.
func peekIndexed(t *testing.T, dir string) uint64 {
	t.Helper()
	po := testIndexOptions()
	po.ReadOnly = true
	idx, err := pebble.Open(indexDir(dir), po)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	mark, _, err := readIndexed(idx)
	if err != nil {
		t.Fatal(err)
	}
	return mark
}

// killChildEnv names the directory of TestIndexRebuiltAfterKill's child.
const killChildEnv = "SHELTERWATCH_STORE_KILL_CHILD"

// TestIndexRebuiltAfterKill: a process appending readings is killed with
// SIGKILL. The index, which has no WAL, lost its memtable with the
// process; the next open indexes the log after the index's mark again, and
// history then answers every acknowledged reading, with its rollups.
func TestIndexRebuiltAfterKill(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		appendUntilKilled(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIndexRebuiltAfterKill$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	sc := bufio.NewScanner(out)
	for acked < 30000 && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if acked < 30000 {
		t.Fatalf("the child acknowledged %d readings before it ended", acked)
	}
	mark := peekIndexed(t, dir)
	if mark >= acked {
		t.Fatalf("the index's mark is %d after the kill, at or past the %d acknowledged: the crash lost nothing of it, so this test proves nothing", mark, acked)
	}
	s := openTest(t, Options{Dir: dir})
	if s.LastSeq() < acked {
		t.Fatalf("after the kill the log ends at %d, %d were acknowledged", s.LastSeq(), acked)
	}
	t.Logf("acknowledged %d, the index held %d, the log %d", acked, mark, s.LastSeq())
	checkIndexMatchesLog(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if m := peekIndexed(t, dir); m != s.LastSeq() {
		t.Fatalf("after open and close the index's mark is %d, the log ends at %d", m, s.LastSeq())
	}
}

// appendUntilKilled is the child: 40 devices in two zones, one moving
// between them, each batch acknowledged on stdout.
func appendUntilKilled(dir string) {
	s, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	at := t0
	for i := 0; ; i++ {
		rs := make([]reading.Reading, 0, 40)
		for d := range 40 {
			zone := fmt.Sprintf("z%d", d%2)
			if d == 0 && i%50 >= 25 {
				zone = "moved"
			}
			rs = append(rs, temp(fmt.Sprintf("d%02d", d), zone, at.Add(time.Duration(d)*time.Millisecond), float64((i*7+d)%300)/10))
		}
		at = at.Add(20 * time.Second)
		if err := s.Append(context.Background(), rs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("acked %d\n", rs[len(rs)-1].Seq)
	}
}

// TestIndexRebuiltFromLog: an index that lost its entries after its mark
// (here all of them, the mark at 0) is rebuilt from the log at open.
func TestIndexRebuiltFromLog(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	for i := range 30 {
		var rs []reading.Reading
		for d := range 10 {
			zone := "z1"
			if d == 3 && i >= 20 {
				zone = "z2"
			}
			rs = append(rs, temp(fmt.Sprintf("d%d", d), zone, t0.Add(time.Duration(i*10+d)*time.Minute), float64(i+d)))
		}
		if err := s.Append(context.Background(), rs); err != nil {
			t.Fatal(err)
		}
	}
	checkIndexMatchesLog(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if m := peekIndexed(t, dir); m != 300 {
		t.Fatalf("the index's mark after close is %d, want 300", m)
	}

	idx, err := pebble.Open(indexDir(dir), testIndexOptions())
	if err != nil {
		t.Fatal(err)
	}
	b := idx.NewBatch()
	for _, r := range indexRanges {
		_ = b.DeleteRange(r[0], r[1], nil)
	}
	setIndexed(b, 0)
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := idx.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, Options{Dir: dir})
	checkIndexMatchesLog(t, s)
	if got := s.Series(Query{Device: "d3"}); len(got) != 1 || got[0].Zone != "z2" {
		t.Fatalf("d3 after the rebuild: %+v, want zone z2", got)
	}
}

// logHoldsIndexKeys reports whether the log instance still holds keys of
// the index's tables (a format 1 store not yet split).
func logHoldsIndexKeys(t *testing.T, s *Store) bool {
	t.Helper()
	for _, r := range indexRanges {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: r[0], UpperBound: r[1]})
		if err != nil {
			t.Fatal(err)
		}
		found := it.First()
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if found {
			return true
		}
	}
	return false
}

// The series index entries a batch writes in key order are the keys the
// queries read.
func TestAppendSeriesKeyIsSeriesKey(t *testing.T) {
	at := time.Date(2026, 12, 8, 3, 4, 5, 6, time.UTC)
	got := appendSeriesKey([]byte("x"), "dorm-1-temp", "temperature", at, 42)
	want := append([]byte("x"), seriesKey(seriesPrefix("dorm-1-temp", "temperature"), at, 42)...)
	if string(got) != string(want) {
		t.Fatalf("appendSeriesKey = %q, want %q", got, want)
	}
}
