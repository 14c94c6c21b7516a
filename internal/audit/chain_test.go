package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fill appends n alarm entries with seq from+1 … from+n, one Append each.
func fill(t *testing.T, l *Log, from, n int) {
	t.Helper()
	for i := from + 1; i <= from+n; i++ {
		e := Entry{Action: "fired", Detail: strings.Repeat("d", i%40), Alarm: &Alarm{AlarmID: fmt.Sprintf("smoke@dev:k%d", i%7), Seq: uint64(i), Rule: "smoke"}}
		if err := l.Append(e); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// files lists the log's files in chain order: segments oldest first, then
// the current file.
func files(t *testing.T, path string) []string {
	t.Helper()
	segs, err := segments(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.path)
	}
	return append(out, path)
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func prevOf(t *testing.T, line []byte) string {
	t.Helper()
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("line %s: %v", line, err)
	}
	return e.Prev
}

func verifyOK(t *testing.T, path string) Report {
	t.Helper()
	r, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Break != nil {
		t.Fatalf("verify: %v", r.Break)
	}
	return r
}

func openLog(t *testing.T, path string, o Options) *Log {
	t.Helper()
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Each segment's first entry links to the last entry of the segment
// before, and a reopened log goes on from the last line on disk.
func TestChainSpansRotationAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	l := openLog(t, path, Options{RotateBytes: 2000})
	fill(t, l, 0, 60)
	fs := files(t, path)
	if len(fs) < 4 {
		t.Fatalf("60 entries in 2000-byte segments made only %v", fs)
	}
	first := lines(t, fs[0])
	if got := prevOf(t, first[0]); got != Genesis {
		t.Fatalf("first entry's prev %q, want Genesis", got)
	}
	for i := 1; i < len(fs); i++ {
		before, after := lines(t, fs[i-1]), lines(t, fs[i])
		if got, want := prevOf(t, after[0]), lineHash(before[len(before)-1]); got != want {
			t.Fatalf("%s starts with prev %s; want the hash of the last line of %s, %s", fs[i], got, fs[i-1], want)
		}
	}
	for _, f := range fs[:len(fs)-1] {
		if st, _ := os.Stat(f); st.Size() > 2000 {
			t.Errorf("segment %s is %d bytes, over RotateBytes", f, st.Size())
		}
	}
	l.Close()

	l = openLog(t, path, Options{RotateBytes: 2000})
	fill(t, l, 60, 10)
	r := verifyOK(t, path)
	if r.Chained != 70 || r.Unchained != 0 || !strings.Contains(r.Anchor, "first entry") || r.HeadFile != path {
		t.Fatalf("report %+v; want 70 chained entries from the log's first entry to the current file", r)
	}
}

// A rotation that a crash cut short (renamed, no new file yet) resumes
// the chain from the newest segment.
func TestChainResumesFromNewestSegment(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	l := openLog(t, path, Options{})
	fill(t, l, 0, 5)
	l.Close()
	if err := os.Rename(path, segmentName(path, 1)); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, path, Options{})
	fill(t, l, 5, 3)
	if r := verifyOK(t, path); r.Chained != 8 || len(r.Files) != 2 {
		t.Fatalf("report %+v; want 8 entries over 2 files", r)
	}
}

// Retention deletes the oldest segments; verify still passes and says
// that it took the oldest entry left as the anchor.
func TestRetentionKeepsTheChainVerifiable(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	l := openLog(t, path, Options{RotateBytes: 1500, Keep: 2})
	fill(t, l, 0, 80)
	segs, _ := segments(path)
	if len(segs) != 2 || segs[0].n < 3 {
		t.Fatalf("segments %v; want the newest 2 of several", segs)
	}
	r := verifyOK(t, path)
	if !strings.Contains(r.Anchor, "deleted by retention") || !strings.Contains(r.Anchor, filepath.Base(segs[0].path)) {
		t.Fatalf("anchor %q; want the oldest segment left, as retention's", r.Anchor)
	}
	es, err := l.Read(Filter{}, 1000)
	if err != nil || len(es) == 0 || es[0].Alarm.Seq != 80 {
		t.Fatalf("read after retention: %d entries, %v", len(es), err)
	}
}

func TestRetentionByAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	l := openLog(t, path, Options{RotateBytes: 1500, Now: func() time.Time { return now }})
	fill(t, l, 0, 40)
	l.Close()
	segs, _ := segments(path)
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	// The two oldest segments were last written 100 days ago.
	for _, s := range segs[:2] {
		old := now.Add(-100 * 24 * time.Hour)
		if err := os.Chtimes(s.path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range segs[2:] {
		if err := os.Chtimes(s.path, now, now); err != nil {
			t.Fatal(err)
		}
	}
	openLog(t, path, Options{MaxAge: 90 * 24 * time.Hour, Now: func() time.Time { return now }})
	left, _ := segments(path)
	if len(left) != len(segs)-2 || left[0].n != segs[2].n {
		t.Fatalf("segments left %v; want all but the two older than 90 days", left)
	}
	verifyOK(t, path)
}

func TestRotateEvery(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	l := openLog(t, path, Options{RotateEvery: 24 * time.Hour, Now: func() time.Time { return now }})
	fill(t, l, 0, 3)
	now = now.Add(23 * time.Hour)
	fill(t, l, 3, 1)
	if segs, _ := segments(path); len(segs) != 0 {
		t.Fatalf("rotated after 23h: %v", segs)
	}
	now = now.Add(time.Hour)
	fill(t, l, 4, 1)
	if segs, _ := segments(path); len(segs) != 1 || len(lines(t, segs[0].path)) != 4 {
		t.Fatalf("after 24h: %v; want one segment of the first day's 4 entries", segs)
	}
	if ls := lines(t, path); len(ls) != 1 {
		t.Fatalf("current file has %d lines, want the new day's 1", len(ls))
	}
	verifyOK(t, path)
}

// Entries written before the chain existed have no prev; the chain
// begins at the first entry that has one, linked to the line before it.
func TestChainBeginsAfterOlderEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	old := `{"time":"2026-11-01T03:00:00Z","action":"fired","alarm_id":"smoke@dev:k1","seq":1}
{"time":"2026-11-01T03:05:00Z","action":"acknowledged","by":"manager","alarm_id":"smoke@dev:k1","seq":1}
`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, path, Options{})
	fill(t, l, 7, 3) // seq 8 is about smoke@dev:k1
	r := verifyOK(t, path)
	if r.Unchained != 2 || r.Chained != 3 || !strings.Contains(r.Anchor, "line 3") {
		t.Fatalf("report %+v; want 2 older entries, then the chain from line 3", r)
	}
	es, err := l.Read(Filter{AlarmID: "smoke@dev:k1"}, 10)
	if err != nil || len(es) != 3 || es[1].By != "manager" {
		t.Fatalf("read %+v, %v; want the new entry for k1, then the two older ones", es, err)
	}
}

// Every kind of change to the files is found at the first line it breaks.
func TestVerifyFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, fs []string)
		file   int // index into the files, from the end when negative
		line   int
		reason string
	}{
		{"flipped byte in a detail", func(t *testing.T, fs []string) {
			flip(t, fs[1], 3, `"detail":"d`, 'e')
		}, 1, 4, "of line 3: that line was changed"},
		{"flipped byte in a prev", func(t *testing.T, fs []string) {
			ls := lines(t, fs[1])
			i := bytes.Index(ls[4], []byte(`"prev":"`)) + 10
			flip(t, fs[1], 5, string(ls[4][i-10:i]), 'x')
		}, 1, 5, "does not match the hash"},
		{"a line removed", func(t *testing.T, fs []string) {
			ls := lines(t, fs[1])
			ls = append(ls[:2], ls[3:]...)
			write(t, fs[1], ls)
		}, 1, 3, "removed or inserted"},
		{"a line inserted", func(t *testing.T, fs []string) {
			ls := lines(t, fs[1])
			extra := []byte(`{"time":"2026-12-01T00:00:00Z","action":"reset","by":"nobody","prev":"` + lineHash(ls[1]) + `"}`)
			ls = append(ls[:2], append([][]byte{extra}, ls[2:]...)...)
			write(t, fs[1], ls)
		}, 1, 4, "removed or inserted"},
		{"a prev removed", func(t *testing.T, fs []string) {
			ls := lines(t, fs[1])
			i := bytes.Index(ls[1], []byte(`,"prev":`))
			ls[1] = append(ls[1][:i:i], '}')
			write(t, fs[1], ls)
		}, 1, 2, "has no prev"},
		{"a middle segment deleted", func(t *testing.T, fs []string) {
			if err := os.Remove(fs[1]); err != nil {
				t.Fatal(err)
			}
		}, 1, 1, "a segment between them are missing"},
		{"a line made invalid", func(t *testing.T, fs []string) {
			flip(t, fs[2], 2, `{"time"`, '[')
		}, 2, 2, "not a JSON entry"},
		{"a rotated segment cut short", func(t *testing.T, fs []string) {
			b, _ := os.ReadFile(fs[0])
			if err := os.WriteFile(fs[0], b[:len(b)-20], 0o600); err != nil {
				t.Fatal(err)
			}
		}, 0, -1, "middle of a line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			l := openLog(t, path, Options{RotateBytes: 2000})
			fill(t, l, 0, 60)
			l.Close()
			fs := files(t, path)
			verifyOK(t, path)
			tc.tamper(t, fs)
			r, err := Verify(path)
			if err != nil {
				t.Fatal(err)
			}
			if r.Break == nil {
				t.Fatalf("verify found nothing; report %+v", r)
			}
			wantLine := tc.line
			if wantLine < 0 {
				wantLine = len(lines(t, fs[tc.file]))
			}
			wantFile := fs[tc.file]
			if tc.name == "a middle segment deleted" {
				wantFile = fs[2]
			}
			if r.Break.File != wantFile || r.Break.Line != wantLine || !strings.Contains(r.Break.Reason, tc.reason) {
				t.Fatalf("break %v; want %s:%d: …%s…", r.Break, wantFile, wantLine, tc.reason)
			}
		})
	}
}

// flip replaces the byte just after the first occurrence of after in line
// n (1-based) of path with b, keeping the file's length.
func flip(t *testing.T, path string, n int, after string, b byte) {
	t.Helper()
	ls := lines(t, path)
	i := bytes.Index(ls[n-1], []byte(after))
	if i < 0 {
		t.Fatalf("line %d of %s lacks %q", n, path, after)
	}
	i += len(after) - 1
	if after == `{"time"` {
		i = 0
	}
	ls[n-1][i] = b
	write(t, path, ls)
}

func write(t *testing.T, path string, ls [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, append(bytes.Join(ls, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A crash in the middle of an append leaves a torn last line: verify
// reports it without failing, and Open cuts it off so the next entry
// starts a line of its own and the chain holds.
func TestTornTailCutAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	l := openLog(t, path, Options{})
	fill(t, l, 0, 3)
	l.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026-12-01T00:00:00Z","action":"fir`)
	f.Close()
	if r := verifyOK(t, path); !r.TornTail || r.Chained != 3 {
		t.Fatalf("report %+v; want 3 entries and a torn tail", r)
	}
	l = openLog(t, path, Options{})
	fill(t, l, 3, 1)
	if r := verifyOK(t, path); r.TornTail || r.Chained != 4 {
		t.Fatalf("report %+v; want 4 entries and no torn tail", r)
	}
	if es, _ := l.Read(Filter{}, 10); len(es) != 4 || es[0].Alarm.Seq != 4 {
		t.Fatalf("read %d entries, newest %+v", len(es), es[0])
	}
}
