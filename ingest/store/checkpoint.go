package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
)

// Checkpoint writes a consistent copy of the store into dir, which must
// not exist yet, while readings keep arriving: every reading acknowledged
// before the call, the cursors and the dead letters as they stood, and
// nothing half-written. Tables are hard-linked where dir is on the same
// file system (no extra space until compactions replace them), copied
// otherwise. The copy opens with Open like any store.
func (s *Store) Checkpoint(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("store: checkpoint: %s already exists", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	// The index and the cursors first, beside dir, then the log: the
	// copy's log then holds every reading its index does, which its open
	// indexes up to the log's end (replayIndex), and no cursor is past
	// its end. The index has no WAL, so only what is flushed is copied:
	// flushed first, little is left to index again.
	tmpIndex, tmpCursors := dir+".index", dir+".cursors"
	cleanup := func() {
		_ = os.RemoveAll(tmpIndex)
		_ = os.RemoveAll(tmpCursors)
	}
	cleanup() // what a checkpoint cut short left
	if err := pebblelog.Guard(func() error {
		if err := s.idx.Flush(); err != nil {
			return err
		}
		return s.idx.Checkpoint(tmpIndex)
	}); err != nil {
		cleanup()
		return fmt.Errorf("store: checkpoint the index into %s: %w", tmpIndex, err)
	}
	if err := os.Mkdir(tmpCursors, 0o700); err != nil {
		cleanup()
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	if err := s.copyCursors(tmpCursors); err != nil {
		cleanup()
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	// Appends are synced before they are acknowledged, so flushing the
	// WAL adds nothing for them; it makes dead-letter writes that were
	// not synced part of the copy too.
	if err := pebblelog.Guard(func() error { return s.db.Checkpoint(dir, pebble.WithFlushedWAL()) }); err != nil {
		cleanup()
		return fmt.Errorf("store: checkpoint into %s: %w", dir, err)
	}
	defer cleanup()
	if err := os.Rename(tmpIndex, indexDir(dir)); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	if _, err := os.Stat(filepath.Join(tmpCursors, CursorsFile)); err == nil {
		if err := os.Rename(filepath.Join(tmpCursors, CursorsFile), filepath.Join(dir, CursorsFile)); err != nil {
			return fmt.Errorf("store: checkpoint: %w", err)
		}
	}
	return nil
}
