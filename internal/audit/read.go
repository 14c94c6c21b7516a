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
)

// Filter selects entries when reading; zero fields match everything.
type Filter struct {
	AlarmID string
	Camera  string
	Action  string
	// Visible, when set, hides the entries the reader may not see. It is
	// applied while reading, so a limited read still returns the newest
	// limit entries the reader may see.
	Visible func(e *Entry) bool
}

func (f Filter) match(e *Entry) bool {
	return (f.AlarmID == "" || e.AlarmID() == f.AlarmID) &&
		(f.Camera == "" || e.Camera() == f.Camera) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.Visible == nil || f.Visible(e))
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
// soon as it has limit entries. A line still being appended (no newline
// yet) is skipped, and so is a line that is not an entry.
func (l *Log) Read(f Filter, limit int) ([]Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	out := make([]Entry, 0, min(limit, 1024))
	needles := f.needles()
	collect := func(line []byte, _ int64) bool {
		for _, n := range needles {
			if !bytes.Contains(line, n) {
				return true
			}
		}
		var e Entry
		if json.Unmarshal(line, &e) != nil || !f.match(&e) {
			return true
		}
		out = append(out, e)
		return len(out) < limit
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
		return nil, fmt.Errorf("audit: read %s: %w", l.path, err)
	default:
		defer cur.Close()
		if curInfo, err = cur.Stat(); err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", l.path, err)
		}
		if err := eachLineBack(cur, curInfo.Size(), collect); err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", l.path, err)
		}
	}
	if len(out) >= limit {
		return out, nil
	}
	segs, err := segments(l.path)
	if err != nil {
		return nil, err
	}
	segs = olderThan(segs, curInfo)
	for i := len(segs) - 1; i >= 0 && len(out) < limit; i-- {
		if err := readSegment(segs[i].path, collect); err != nil {
			return nil, err
		}
	}
	return out, nil
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

// readSegment walks one rotated segment backwards. A segment deleted by
// retention meanwhile is skipped.
func readSegment(path string, fn func([]byte, int64) bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", path, err)
	}
	if err := eachLineBack(f, st.Size(), fn); err != nil {
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
