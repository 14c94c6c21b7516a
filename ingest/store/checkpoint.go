package store

import (
	"errors"
	"fmt"
	"os"

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
	// Appends are synced before they are acknowledged, so flushing the
	// WAL adds nothing for them; it makes cursor and dead-letter writes
	// that were not synced part of the copy too.
	if err := pebblelog.Guard(func() error { return s.db.Checkpoint(dir, pebble.WithFlushedWAL()) }); err != nil {
		return fmt.Errorf("store: checkpoint into %s: %w", dir, err)
	}
	return nil
}
