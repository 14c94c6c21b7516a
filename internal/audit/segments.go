package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// segment is one rotated file of the log.
type segment struct {
	path string
	n    uint64 // its number: higher is newer
}

// segmentName is the name of rotated segment n of the log whose current
// file is path: audit.jsonl → audit.00000042.jsonl.
func segmentName(path string, n uint64) string {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	return filepath.Join(dir, fmt.Sprintf("%s.%08d%s", strings.TrimSuffix(base, ext), n, ext))
}

// segments lists the rotated segments of the log whose current file is
// path, oldest first.
func segments(path string) ([]segment, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "."
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list segments in %s: %w", dir, err)
	}
	var out []segment
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ext) {
			continue
		}
		num := strings.TrimSuffix(strings.TrimPrefix(name, prefix), ext)
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || n == 0 || len(num) < 8 {
			continue
		}
		out = append(out, segment{path: filepath.Join(dir, name), n: n})
	}
	slices.SortFunc(out, func(a, b segment) int {
		switch {
		case a.n < b.n:
			return -1
		case a.n > b.n:
			return 1
		}
		return 0
	})
	return out, nil
}

// shouldRotate reports, under mu, whether an append of n bytes starts a
// new segment. An empty current file never rotates: one entry larger
// than RotateBytes still has to be written somewhere.
func (l *Log) shouldRotate(n int64) bool {
	if l.size == 0 {
		return false
	}
	if l.opts.RotateBytes > 0 && l.size+n > l.opts.RotateBytes {
		return true
	}
	return l.opts.RotateEvery > 0 && !l.started.IsZero() && l.opts.Now().Sub(l.started) >= l.opts.RotateEvery
}

// rotate, under mu, renames the current file to the next segment and
// starts a new one, then applies retention. The chain's position (prev)
// is kept, so the new file's first entry links to the old file's last.
func (l *Log) rotate() error {
	segs, err := segments(l.path)
	if err != nil {
		return err
	}
	next := uint64(1)
	if len(segs) > 0 {
		next = segs[len(segs)-1].n + 1
	}
	to := segmentName(l.path, next)
	if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: rotate to %s: already exists or cannot be checked (%v)", to, err)
	}
	if err := os.Rename(l.path, to); err != nil {
		return fmt.Errorf("audit: rotate %s to %s: %w", l.path, to, err)
	}
	// From here the old descriptor names the segment: never append to it.
	old := l.f
	l.f = nil
	_ = old.Close()
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		// ready opens it at the next append.
		return fmt.Errorf("audit: rotate: open a new %s: %w", l.path, err)
	}
	syncDir(filepath.Dir(l.path))
	l.f, l.size, l.started, l.dirty = f, 0, time.Time{}, false
	l.opts.Logger.Info("audit: rotated", "segment", to)
	if err := l.retain(); err != nil {
		l.opts.Logger.Warn("audit: retention", "err", err)
	}
	return nil
}

// retain deletes the rotated segments beyond Keep and those older than
// MaxAge, oldest first. The current file is never deleted.
func (l *Log) retain() error {
	if l.opts.Keep <= 0 && l.opts.MaxAge <= 0 {
		return nil
	}
	segs, err := segments(l.path)
	if err != nil {
		return err
	}
	now := l.opts.Now()
	var errs []error
	removed := false
	for i, s := range segs {
		drop := l.opts.Keep > 0 && len(segs)-i > l.opts.Keep
		if !drop && l.opts.MaxAge > 0 {
			if st, err := os.Stat(s.path); err == nil && now.Sub(st.ModTime()) > l.opts.MaxAge {
				drop = true
			}
		}
		if !drop {
			continue
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("audit: delete old segment: %w", err))
			continue
		}
		removed = true
		l.opts.Logger.Info("audit: deleted an old segment (retention)", "segment", s.path)
	}
	if removed {
		syncDir(filepath.Dir(l.path))
	}
	return errors.Join(errs...)
}

// syncDir makes a rename or removal in dir durable; best effort, as some
// file systems cannot sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
