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
