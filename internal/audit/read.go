package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// Filter selects entries when reading; zero fields match everything.
type Filter struct {
	AlarmID string
	Camera  string
	Action  string
	// From and To bound the entries' times: From included, To excluded;
	// a zero value leaves that end open. A read with From stops at the
	// first entry more than TimeSlack older than From (see TimeSlack), so
	// it costs what the period holds, not what the log holds.
	From, To time.Time
	// Visible, when set, hides the entries the reader may not see. It is
	// applied while reading, so a limited read still returns the newest
	// limit entries the reader may see.
	Visible func(e *Entry) bool
}

// TimeSlack is how far out of time order entries may be appended. Entries
// are appended as things happen, but an entry's time is taken a moment
// before its append (the rules engine writes a batch after its step; a
// viewing session is stamped when it started), so the log is in time
// order only give or take that moment. A read with Filter.From reads on
// past From by TimeSlack and stops at the first entry older than that;
// a read with Filter.To skips a file whose first entry is newer than To
// by more than TimeSlack. Entries written while the system clock was
// wrong by more than TimeSlack (a board that booted without the time:
// the clock fault) may be missed by a time-bounded read; a read without
// From and To sees them.
const TimeSlack = time.Minute

func (f Filter) match(e *Entry) bool {
	return (f.AlarmID == "" || e.AlarmID() == f.AlarmID) &&
		(f.Camera == "" || e.Camera() == f.Camera) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.From.IsZero() || !e.Time.Before(f.From)) &&
		(f.To.IsZero() || e.Time.Before(f.To)) &&
		(f.Visible == nil || f.Visible(e))
}

// timed reports whether f bounds the entries' times.
func (f Filter) timed() bool { return !f.From.IsZero() || !f.To.IsZero() }

// lineTime is the time of an encoded entry without decoding all of it:
// Time is the first field Append writes. Lines of another shape are
// decoded.
func lineTime(line []byte) (time.Time, bool) {
	const prefix = `{"time":"`
	if rest, ok := bytes.CutPrefix(line, []byte(prefix)); ok {
		if i := bytes.IndexByte(rest, '"'); i > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(rest[:i])); err == nil {
				return t, true
			}
		}
	}
	var e struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(line, &e) != nil || e.Time.IsZero() {
		return time.Time{}, false
	}
	return e.Time, true
}

// needles are byte strings a line must contain to match f, checked before
// the line is decoded: a filtered read of a long log decodes only the
// lines that may match. A value the encoder would escape is left to the
// decoder.
func (f Filter) needles() [][]byte {
	var out [][]byte
	for _, v := range []string{f.AlarmID, f.Camera, f.Action} {
		if v != "" && !strings.ContainsAny(v, "\"\\<>&\u2028\u2029") && isPrintableASCII(v) {
			out = append(out, []byte(`"`+v+`"`))
		}
	}
	return out
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Read returns the newest entries matching f (up to limit), newest first.
// It never takes the append lock: it reads the current file backwards from
// its end in blocks, then the rotated segments newest first, and stops as
// soon as it has limit entries (or, with f.From, at the first entry older
// than f.From by more than TimeSlack). A line still being appended (no
// newline yet) is skipped, and so is a line that is not an entry.
func (l *Log) Read(f Filter, limit int) ([]Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	out := make([]Entry, 0, min(limit, 1024))
	err := l.Each(f, func(e *Entry) bool {
		out = append(out, *e)
		return len(out) < limit
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Each calls fn with every entry matching f, newest first, until fn
// returns false: Read without a limit, for a caller that sums entries up
// rather than keeping them (a report over a month of alarms). It reads as
// Read does; fn may keep the entry.
func (l *Log) Each(f Filter, fn func(e *Entry) bool) error {
	needles := f.needles()
	stopped := false // fn said so, or the read is past f.From
	collect := func(line []byte, _ int64) bool {
		if f.timed() {
			t, ok := lineTime(line)
			if !ok {
				return true
			}
			if !f.From.IsZero() && t.Before(f.From.Add(-TimeSlack)) {
				stopped = true
				return false
			}
			if (!f.From.IsZero() && t.Before(f.From)) || (!f.To.IsZero() && !t.Before(f.To)) {
				return true
			}
		}
		for _, n := range needles {
			if !bytes.Contains(line, n) {
				return true
			}
		}
		var e Entry
		if json.Unmarshal(line, &e) != nil || !f.match(&e) {
			return true
		}
		if !fn(&e) {
			stopped = true
			return false
		}
		return true
	}
	// The current file is opened before the segments are listed: if it is
	// rotated in between, the descriptor still reads the same entries and
	// the segment it became is skipped below.
	cur, err := os.Open(l.path)
	var curInfo os.FileInfo
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Between a rotation's rename and the new file: all is in segments.
	case err != nil:
		return fmt.Errorf("audit: read %s: %w", l.path, err)
	default:
		defer cur.Close()
		if curInfo, err = cur.Stat(); err != nil {
			return fmt.Errorf("audit: read %s: %w", l.path, err)
		}
		if !f.after(cur, curInfo.Size()) {
			if err := eachLineBack(cur, curInfo.Size(), collect); err != nil {
				return fmt.Errorf("audit: read %s: %w", l.path, err)
			}
		}
	}
	if stopped {
		return nil
	}
	segs, err := segments(l.path)
	if err != nil {
		return err
	}
	segs = olderThan(segs, curInfo)
	for i := len(segs) - 1; i >= 0 && !stopped; i-- {
		if err := readSegment(segs[i].path, f, collect); err != nil {
			return err
		}
	}
	return nil
}

// after reports whether every entry of the file f (of size bytes) is
// newer than the filter's To: its first entry is newer by more than
// TimeSlack. Such a file need not be read.
func (f Filter) after(r *os.File, size int64) bool {
	if f.To.IsZero() {
		return false
	}
	first := firstTime(r, size)
	return !first.IsZero() && !first.Add(-TimeSlack).Before(f.To)
}

// olderThan drops, when the current file read was rotated meanwhile, the
// segment it became and every newer one: their entries are newer than
// what was read, and the answer must stay newest first without gaps.
func olderThan(segs []segment, cur os.FileInfo) []segment {
	if cur == nil {
		return segs
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if st, err := os.Stat(segs[i].path); err == nil && os.SameFile(st, cur) {
			return segs[:i]
		}
	}
	return segs
}

// readSegment walks one rotated segment backwards, unless it is wholly
// after f's period. A segment deleted by retention meanwhile is skipped.
func readSegment(path string, f Filter, fn func([]byte, int64) bool) error {
	r, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", path, err)
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", path, err)
	}
	if f.after(r, st.Size()) {
		return nil
	}
	if err := eachLineBack(r, st.Size(), fn); err != nil {
		return fmt.Errorf("audit: read %s: %w", path, err)
	}
	return nil
}

// readBlock is how much eachLineBack reads at a time: a few hundred
// entries, so the newest hundred usually take one read.
const readBlock = 64 << 10

// eachLineBack calls fn with every whole line of the first size bytes of
// r, last line first, with the line's offset, until fn returns false.
// Bytes after the last newline (a line still being written) are skipped.
// The line is only valid during the call.
func eachLineBack(r io.ReaderAt, size int64, fn func(line []byte, off int64) bool) error {
	var tail []byte // the end of a line whose start is in an earlier block
	end := size
	torn := true // until the last newline is found
	for end > 0 {
		start := max(0, end-readBlock)
		data := make([]byte, end-start, end-start+int64(len(tail)))
		if _, err := r.ReadAt(data, start); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		data = append(data, tail...)
		tail = nil
		if torn {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				end = start // all of it belongs to the torn line
				continue
			}
			data = data[:i]
			torn = false
		}
		j := len(data)
		for {
			i := bytes.LastIndexByte(data[:j], '\n')
			if i < 0 {
				break
			}
			if line := data[i+1 : j]; len(line) > 0 && !fn(line, start+int64(i)+1) {
				return nil
			}
			j = i
		}
		if start == 0 {
			if j > 0 {
				fn(data[:j], 0)
			}
			return nil
		}
		tail = data[:j]
		end = start
	}
	return nil
}
