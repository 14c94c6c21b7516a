package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Snapshot is the log as it stood at one instant: its files, held open,
// with the bytes each had then. Appends, rotation and retention go on
// meanwhile without changing what the snapshot reads. Close it when done.
type Snapshot struct {
	Files []SnapshotFile
}

// SnapshotFile is one file of a Snapshot: its base name (audit.jsonl or a
// rotated segment's, oldest first, the current file last) and exactly
// Size bytes of whole entries.
type SnapshotFile struct {
	Name string
	Size int64
	f    *os.File
}

// Reader reads the file's bytes of the snapshot.
func (f SnapshotFile) Reader() io.Reader { return io.NewSectionReader(f.f, 0, f.Size) }

// Close releases the files.
func (s *Snapshot) Close() {
	for _, f := range s.Files {
		f.f.Close()
	}
	s.Files = nil
}

// Snapshot takes the log as it stands: the rotated segments whole and the
// current file up to its last whole entry. The append lock is held only
// while the files are opened; a copy of what the snapshot reads verifies
// on its own (Verify).
func (l *Log) Snapshot() (_ *Snapshot, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &Snapshot{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if l.closed {
		return nil, errors.New("audit: snapshot: the log is closed")
	}
	segs, err := segments(l.path)
	if err != nil {
		return nil, err
	}
	for _, seg := range segs {
		f, err := os.Open(seg.path)
		if err != nil {
			return nil, fmt.Errorf("audit: snapshot: %w", err)
		}
		s.Files = append(s.Files, SnapshotFile{Name: filepath.Base(seg.path), f: f})
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("audit: snapshot: %w", err)
		}
		s.Files[len(s.Files)-1].Size = st.Size()
	}
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("audit: snapshot: %w", err)
	}
	// l.size counts whole entries only: a failed append's leftovers past
	// it are not part of the log.
	s.Files = append(s.Files, SnapshotFile{Name: filepath.Base(l.path), Size: l.size, f: f})
	return s, nil
}
