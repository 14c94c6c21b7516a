package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/internal/atomicfile"
	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
)

// CursorsFile holds the consumers' durable positions, in Dir, as a JSON
// object of name → sequence number, replaced atomically on every change.
//
// Cursors are not kept in the log's instance: a consumer saves its
// position every second or so, and one key of another table in each
// flushed memtable made every flushed table overlap the one before it, so
// that compactions rewrote the log again and again instead of moving its
// tables down unchanged (compactions fell from 25 % to 16 % of the
// gateway's CPU without them, profiled at 100 devices). Older stores kept
// them as 'C' keys; loadCursors moves them.
const CursorsFile = "cursors.json"

func (s *Store) cursorsPath() string { return filepath.Join(s.opts.Dir, CursorsFile) }

// loadCursors reads the cursors file, or moves the cursors an older store
// kept in the log's instance into it.
func (s *Store) loadCursors() error {
	b, err := os.ReadFile(s.cursorsPath())
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s.cursors); err != nil {
			return fmt.Errorf("store: read %s: %w", s.cursorsPath(), err)
		}
		if s.cursors == nil {
			s.cursors = make(map[string]uint64)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store: read cursors: %w", err)
	}
	lo, hi := []byte{prefixCursor}, []byte{prefixCursor + 1}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("store: read cursors: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		if len(it.Value()) == 8 {
			s.cursors[string(it.Key()[1:])] = binary.BigEndian.Uint64(it.Value())
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("store: read cursors: %w", err)
	}
	if err := s.writeCursors(s.cursors); err != nil {
		return err
	}
	// Written first, deleted after: a crash between leaves both, and the
	// file, which is read first, wins.
	if err := pebblelog.Guard(func() error { return s.db.DeleteRange(lo, hi, pebble.Sync) }); err != nil {
		return fmt.Errorf("store: move the cursors: %w", err)
	}
	return nil
}

func (s *Store) writeCursors(c map[string]uint64) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("store: encode cursors: %w", err)
	}
	if err := atomicfile.Write(s.cursorsPath(), b); err != nil {
		return fmt.Errorf("store: write cursors: %w", err)
	}
	return nil
}

// changeCursors writes the cursors with change applied, then makes them
// current: readers never see a position that is not on disk.
func (s *Store) changeCursors(change func(map[string]uint64)) error {
	s.curWrite.Lock()
	defer s.curWrite.Unlock()
	s.curMu.Lock()
	next := maps.Clone(s.cursors)
	s.curMu.Unlock()
	change(next)
	if err := s.writeCursors(next); err != nil {
		return err
	}
	s.curMu.Lock()
	s.cursors = next
	s.curMu.Unlock()
	return nil
}

// copyCursors copies the cursors file into a checkpoint directory.
func (s *Store) copyCursors(dir string) error {
	s.curWrite.Lock()
	defer s.curWrite.Unlock()
	b, err := os.ReadFile(s.cursorsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: copy cursors: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, CursorsFile), b)
}

// Cursor returns the durable position of a consumer (0 when it has none).
func (s *Store) Cursor(name string) uint64 {
	s.curMu.Lock()
	defer s.curMu.Unlock()
	return s.cursors[name]
}

// SetCursor durably records that consumer name has processed every reading
// up to and including seq.
func (s *Store) SetCursor(name string, seq uint64) error {
	if err := s.changeCursors(func(c map[string]uint64) { c[name] = seq }); err != nil {
		return fmt.Errorf("store: set cursor %q to %d: %w", name, seq, err)
	}
	return nil
}

// Cursors returns every consumer's durable position.
func (s *Store) Cursors() map[string]uint64 {
	s.curMu.Lock()
	defer s.curMu.Unlock()
	return maps.Clone(s.cursors)
}

// DeleteCursor forgets a consumer that no longer exists (an InfluxDB
// target removed from the config), so that it no longer holds back what
// the disk budget may delete first.
func (s *Store) DeleteCursor(name string) error {
	if err := s.changeCursors(func(c map[string]uint64) { delete(c, name) }); err != nil {
		return fmt.Errorf("store: delete cursor %q: %w", name, err)
	}
	return nil
}

// minCursor is the lowest consumer position, and whether any consumer exists.
func (s *Store) minCursor() (uint64, bool) {
	s.curMu.Lock()
	defer s.curMu.Unlock()
	var m uint64
	found := false
	for _, c := range s.cursors {
		if !found || c < m {
			m, found = c, true
		}
	}
	return m, found
}
