package audit

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Reads that need more than the current file go on into the rotated
// segments, newest first, and stop once they have enough.
func TestReadAcrossSegments(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	l := openLog(t, path, Options{RotateBytes: 3000})
	fill(t, l, 0, 300)
	if segs, _ := segments(path); len(segs) < 10 {
		t.Fatalf("only %d segments", len(segs))
	}
	for _, tc := range []struct {
		name  string
		f     Filter
		limit int
		want  []uint64 // seqs, newest first
	}{
		{"newest 3", Filter{}, 3, []uint64{300, 299, 298}},
		{"all", Filter{}, 1000, seqs(300, 1, 1)},
		{"150 over several segments", Filter{}, 150, seqs(300, 151, 1)},
		{"one alarm, every seventh", Filter{AlarmID: "smoke@dev:k3"}, 5, []uint64{297, 290, 283, 276, 269}},
		{"one alarm, all", Filter{AlarmID: "smoke@dev:k0"}, 1000, seqs(294, 7, 7)},
		{"no match", Filter{Camera: "ward"}, 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := l.Read(tc.f, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range es {
				got = append(got, e.Alarm.Seq)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Read(%+v, %d) = %v; want %v", tc.f, tc.limit, got, tc.want)
			}
		})
	}
}

func seqs(from, to, step uint64) []uint64 {
	var out []uint64
	for s := from; s >= to && s <= from; s -= step {
		out = append(out, s)
	}
	return out
}

// A filter value with characters the encoder escapes still matches: the
// quick byte check leaves such values to the decoder.
func TestReadFilterEscapedValue(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), FileName), Options{})
	id := `door<&>"x"@zone:hall`
	if err := l.Append(Entry{Action: "fired", Alarm: &Alarm{AlarmID: id}}, Entry{Action: "fired", Alarm: &Alarm{AlarmID: "other"}}); err != nil {
		t.Fatal(err)
	}
	es, err := l.Read(Filter{AlarmID: id}, 10)
	if err != nil || len(es) != 1 || es[0].AlarmID() != id {
		t.Fatalf("Read = %+v, %v", es, err)
	}
}

// eachLineBack yields exactly the whole lines, last first, whatever the
// block boundaries: lines longer than a block, empty lines, a torn tail.
func TestEachLineBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 60 {
		var want []string
		var b strings.Builder
		n := rng.IntN(20)
		for range n {
			var line string
			switch rng.IntN(10) {
			case 0:
				line = strings.Repeat("L", readBlock+rng.IntN(readBlock)) // longer than a block
			case 1:
				line = "" // an empty line: skipped
			default:
				line = strings.Repeat("x", 1+rng.IntN(3000))
			}
			if line != "" {
				want = append(want, fmt.Sprintf("%d:%s", len(want), line))
				line = want[len(want)-1]
			}
			b.WriteString(line + "\n")
		}
		if rng.IntN(2) == 0 {
			b.WriteString(strings.Repeat("T", rng.IntN(2*readBlock))) // torn tail
		}
		data := []byte(b.String())
		var got []string
		err := eachLineBack(bytes.NewReader(data), int64(len(data)), func(line []byte, off int64) bool {
			if !bytes.Equal(data[off:off+int64(len(line))], line) {
				t.Fatalf("round %d: line at offset %d does not match the file there", round, off)
			}
			got = append(got, string(line))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(got)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: got %d lines, want %d", round, len(got), len(want))
		}
	}
}

// A read does not wait for an append that holds the lock (a slow fsync on
// an SD card): the test holds the append lock itself while it reads.
func TestReadNeverWaitsForTheAppendLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	l := openLog(t, path, Options{RotateBytes: 2000})
	fill(t, l, 0, 100)
	l.mu.Lock()
	defer l.mu.Unlock()
	done := make(chan []Entry, 1)
	go func() {
		es, _ := l.Read(Filter{}, 80)
		done <- es
	}()
	select {
	case es := <-done:
		if len(es) != 80 || es[0].Alarm.Seq != 100 {
			t.Fatalf("read %d entries while appends were held", len(es))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Read is waiting for the append lock")
	}
}

// Readers running beside appends that rotate the log see whole entries,
// newest first and without gaps, and never an error.
func TestReadWhileAppendingAndRotating(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	l := openLog(t, path, Options{RotateBytes: 4000, Keep: 50})
	readWhileAppending(t, l, 1000, 100, 120)
	verifyOK(t, path)
}

// readWhileAppending appends n entries (details of up to detailMod bytes)
// in one goroutine while reading the newest limit in a loop: every read
// is whole entries, newest first, without gaps, and never an error.
func readWhileAppending(t *testing.T, l *Log, n, detailMod, limit int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := l.Append(Entry{Action: "fired", Detail: strings.Repeat("x", i%detailMod), Alarm: &Alarm{AlarmID: "a@gateway", Seq: uint64(i + 1)}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for reading := true; reading; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			reading = false
		default:
		}
		es, err := l.Read(Filter{}, limit)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range es {
			if e.Action != "fired" || e.AlarmID() != "a@gateway" || (i > 0 && e.Alarm.Seq != es[i-1].Alarm.Seq-1) {
				t.Fatalf("entry %d: %+v after %+v", i, e.Alarm, es[max(i-1, 0)].Alarm)
			}
		}
	}
}

// timedEntry is a fired entry with its time and sequence number.
func timedEntry(seq uint64, at time.Time) Entry {
	return Entry{Time: at, Action: "fired", Alarm: &Alarm{AlarmID: fmt.Sprintf("smoke@dev:k%d", seq%7), Seq: seq, Rule: "smoke"}}
}

func seqsOf(es []Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Alarm.Seq)
	}
	return out
}

// A read bounded by From and To returns the entries of [From, To) only,
// across segments, newest first, with the other filters and the limit.
func TestReadTimeBounds(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	l := openLog(t, filepath.Join(t.TempDir(), FileName), Options{RotateBytes: 2000})
	for i := range 120 { // one a minute for two hours: seq i at t0+i min
		if err := l.Append(timedEntry(uint64(i), at(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		f     Filter
		limit int
		want  []uint64
	}{
		{"a ten-minute period", Filter{From: at(60), To: at(70)}, 1000, seqs(69, 60, 1)},
		{"From included, To excluded, to the nanosecond", Filter{From: at(60), To: at(61).Add(-time.Nanosecond)}, 1000, []uint64{60}},
		{"From only", Filter{From: at(100)}, 1000, seqs(119, 100, 1)},
		{"To only", Filter{To: at(10)}, 1000, seqs(9, 0, 1)},
		{"the newest three of a period", Filter{From: at(60), To: at(70)}, 3, []uint64{69, 68, 67}},
		{"with an alarm", Filter{AlarmID: "smoke@dev:k3", From: at(30), To: at(60)}, 1000, []uint64{59, 52, 45, 38, 31}},
		{"with an offset zone", Filter{From: at(60).In(time.FixedZone("CST", 8*3600)), To: at(62)}, 1000, []uint64{61, 60}},
		{"after the last entry", Filter{From: at(120)}, 1000, nil},
		{"before the first entry", Filter{To: at(0)}, 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := l.Read(tc.f, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqsOf(es); !slices.Equal(got, tc.want) {
				t.Fatalf("Read = %v; want %v", got, tc.want)
			}
		})
	}
}

// Entries out of time order by less than TimeSlack are found; a read
// with From stops at the first entry older than From by more than that,
// and one with To does not open a file whose entries are all newer
// (witnessed by entries far out of order, which such a read does not
// see and an unbounded read does).
func TestReadTimeBoundsStopEarly(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

	t.Run("out of order within the slack", func(t *testing.T) {
		l := openLog(t, filepath.Join(t.TempDir(), FileName), Options{})
		if err := l.Append(
			timedEntry(1, at(8)),
			timedEntry(2, at(10).Add(20*time.Second)), // in the period
			timedEntry(3, at(9).Add(30*time.Second)),  // before it, stamped a moment early
			timedEntry(4, at(11)),
		); err != nil {
			t.Fatal(err)
		}
		es, err := l.Read(Filter{From: at(10)}, 100)
		if err != nil || !slices.Equal(seqsOf(es), []uint64{4, 2}) {
			t.Fatalf("Read from t0+10m = %v, %v; want [4 2]", seqsOf(es), err)
		}
	})

	t.Run("From: no further than the slack", func(t *testing.T) {
		l := openLog(t, filepath.Join(t.TempDir(), FileName), Options{RotateBytes: 2000})
		// The witness: the oldest line, stamped inside the period.
		if err := l.Append(Entry{Time: at(65), Action: "witness"}); err != nil {
			t.Fatal(err)
		}
		for i := range 120 {
			if err := l.Append(timedEntry(uint64(i), at(i))); err != nil {
				t.Fatal(err)
			}
		}
		es, err := l.Read(Filter{From: at(60)}, 1000)
		if err != nil || !slices.Equal(seqsOf(es), seqs(119, 60, 1)) {
			t.Fatalf("Read from t0+60m = %v, %v", seqsOf(es), err)
		}
		if es, _ := l.Read(Filter{Action: "witness"}, 10); len(es) != 1 {
			t.Fatal("an unbounded read does not find the witness")
		}
	})

	t.Run("To: files wholly after it unread", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		l := openLog(t, path, Options{RotateBytes: 2000})
		for i := range 60 {
			if err := l.Append(timedEntry(uint64(i), at(i))); err != nil {
				t.Fatal(err)
			}
		}
		// The witness: the newest line, in the current file (whose first
		// entry is long after t0+10m), stamped inside the period.
		if err := l.Append(Entry{Time: at(1), Action: "witness"}); err != nil {
			t.Fatal(err)
		}
		if segs, _ := segments(path); len(segs) < 3 {
			t.Fatalf("only %d segments", len(segs))
		}
		es, err := l.Read(Filter{To: at(10)}, 1000)
		if err != nil || !slices.Equal(seqsOf(es), seqs(9, 0, 1)) {
			t.Fatalf("Read to t0+10m = %v, %v", seqsOf(es), err)
		}
		if es, _ := l.Read(Filter{Action: "witness"}, 10); len(es) != 1 {
			t.Fatal("an unbounded read does not find the witness")
		}
	})
}

// Each hands over every matching entry, newest first, until told to stop.
func TestEach(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), FileName), Options{RotateBytes: 2000})
	fill(t, l, 0, 100)
	var got []uint64
	if err := l.Each(Filter{AlarmID: "smoke@dev:k2"}, func(e *Entry) bool {
		got = append(got, e.Alarm.Seq)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, seqs(100, 2, 7)) {
		t.Fatalf("Each = %v", got)
	}
	got = nil
	if err := l.Each(Filter{}, func(e *Entry) bool {
		got = append(got, e.Alarm.Seq)
		return len(got) < 2
	}); err != nil || !slices.Equal(got, []uint64{100, 99}) {
		t.Fatalf("Each stopped after two = %v, %v", got, err)
	}
}

func TestLineTime(t *testing.T) {
	want := time.Date(2026, 12, 1, 3, 4, 5, 600, time.FixedZone("", 8*3600))
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{`{"time":"2026-12-01T03:04:05.0000006+08:00","action":"fired"}`, true},
		{`{"action":"fired","time":"2026-12-01T03:04:05.0000006+08:00"}`, true}, // not first: decoded
		{`{"time":"yesterday","action":"fired"}`, false},
		{`{"action":"fired"}`, false},
		{`not json`, false},
	} {
		got, ok := lineTime([]byte(tc.line))
		if ok != tc.ok || (ok && !got.Equal(want)) {
			t.Errorf("lineTime(%s) = %v, %v; want ok=%v", tc.line, got, ok, tc.ok)
		}
	}
}
