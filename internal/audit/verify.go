package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Report is what Verify found.
type Report struct {
	// Files are the files walked, oldest first (the current file last).
	Files []string
	// Chained is the number of entries whose link was checked.
	Chained int
	// Unchained counts entries before the chain began (written by a
	// version without the hash chain).
	Unchained int
	// Anchor says where the chain begins and why that start is accepted.
	Anchor string
	// Head is the hash of the last entry (what the next entry's prev will
	// be), and HeadFile, HeadLine where that entry is.
	Head     string
	HeadFile string
	HeadLine int
	// TornTail is set when the current file ends in a line without a
	// newline: an append in progress or cut short by a crash (the next
	// Open removes it). It is not part of the chain.
	TornTail bool
	// Break is the first broken link, nil when the chain holds.
	Break *Break
}

// Break is a broken link of the chain: where, and what broke.
type Break struct {
	File   string
	Line   int // 1-based
	Reason string
}

func (b *Break) Error() string { return fmt.Sprintf("%s:%d: %s", b.File, b.Line, b.Reason) }

// Verify walks every segment of the log whose current file is path,
// oldest first, and checks the hash chain (see the package doc). A broken
// chain is reported in Report.Break; the error is for files that cannot
// be read. It reads the files as they are, without the Log: it may run
// beside a gateway that is appending.
func Verify(path string) (Report, error) {
	var r Report
	segs, err := segments(path)
	if err != nil {
		return r, err
	}
	files := make([]string, 0, len(segs)+1)
	for _, s := range segs {
		files = append(files, s.path)
	}
	if _, err := os.Stat(path); err == nil || len(files) == 0 {
		files = append(files, path)
	}
	v := &verifier{r: &r}
	for i, file := range files {
		r.Files = append(r.Files, file)
		if err := v.file(file, i == len(files)-1); err != nil {
			return r, err
		}
		if r.Break != nil {
			return r, nil
		}
	}
	if r.Anchor == "" && r.Unchained > 0 {
		r.Anchor = "none: no entry carries a hash yet (all were written before the chain existed)"
	}
	return r, nil
}

type verifier struct {
	r        *Report
	chained  bool   // the chain has begun
	last     string // hash of the previous line ("" before the first)
	lastFile string
	lastLine int
}

func (v *verifier) file(path string, current bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: verify %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return nil
			}
			if current {
				v.r.TornTail = true
				return nil
			}
			v.brk(path, n, "the segment ends in the middle of a line (it was cut short)")
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: verify %s: %w", path, err)
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			continue
		}
		if !v.line(path, n, line) {
			return nil
		}
	}
}

// line checks one line; false once the chain is broken.
func (v *verifier) line(path string, n int, line []byte) bool {
	var e struct {
		Prev *string `json:"prev"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		v.brk(path, n, fmt.Sprintf("not a JSON entry (changed or damaged): %v", err))
		return false
	}
	switch {
	case e.Prev == nil && !v.chained:
		v.r.Unchained++
	case e.Prev == nil:
		v.brk(path, n, "the entry has no prev, but the chain began earlier (an entry inserted, or its prev removed)")
		return false
	case !v.chained && v.last == "" && *e.Prev == Genesis:
		v.r.Anchor = fmt.Sprintf("the log's first entry (%s line %d)", path, n)
	case !v.chained && v.last == "":
		v.r.Anchor = fmt.Sprintf("%s line %d, the oldest entry left: the entries before it were deleted by retention, "+
			"so its prev (%.12s…) cannot be checked and is accepted", path, n, *e.Prev)
	case *e.Prev != v.last:
		if v.lastFile != path {
			v.brk(path, n, fmt.Sprintf("prev %.12s… does not match the hash %.12s… of the last entry of %s (line %d): "+
				"that entry was changed, or entries or a segment between them are missing", *e.Prev, v.last, v.lastFile, v.lastLine))
		} else {
			v.brk(path, n, fmt.Sprintf("prev %.12s… does not match the hash %.12s… of line %d: "+
				"that line was changed, or lines between them were removed or inserted", *e.Prev, v.last, v.lastLine))
		}
		return false
	case !v.chained:
		v.r.Anchor = fmt.Sprintf("%s line %d, the first entry with a hash; it links to the older entry before it", path, n)
	}
	if e.Prev != nil {
		v.chained = true
		v.r.Chained++
	}
	v.last, v.lastFile, v.lastLine = lineHash(line), path, n
	v.r.Head, v.r.HeadFile, v.r.HeadLine = v.last, path, n
	return true
}

func (v *verifier) brk(path string, n int, reason string) {
	v.r.Break = &Break{File: path, Line: n, Reason: reason}
}
