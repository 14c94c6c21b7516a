package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// FormatVersion is the layout of the store's keys and values this build
// writes and reads (keys.go, index.go; readings in the reading codec,
// which reads its own older versions). A store opened by this build
// records it. Format 1 kept the series index, registry and rollups in the
// log's instance; a store without a format record was written before the
// layout was versioned and is format 1 too. Both are upgraded by moving
// the index into its own instance (splitIndex). A store of a newer format
// is refused before anything is read or written, so a downgraded gateway
// cannot corrupt what a newer one wrote.
const FormatVersion = 2

// ErrNewerFormat: the data directory was written by a newer gateway.
var ErrNewerFormat = errors.New("the store was written by a newer gateway")

// refuseNewer looks at the store in opts.Dir without writing anything
// (Pebble's own format from its marker, then the store's format in a
// read-only open) and refuses one a newer gateway wrote. A directory with
// no store yet passes.
func refuseNewer(opts Options) error {
	desc, err := pebble.Peek(opts.Dir, vfs.Default)
	if err != nil || !desc.Exists {
		return nil // the real open says what is wrong, or creates the store
	}
	if desc.FormatMajorVersion > pebble.FormatNewest {
		return fmt.Errorf("store: %s: %w (its storage engine format %d is newer than this build's %d): "+
			"refusing to open it so that nothing is changed; run that gateway version or a newer one",
			opts.Dir, ErrNewerFormat, desc.FormatMajorVersion, pebble.FormatNewest)
	}
	po := pebbleOptions(opts)
	po.ReadOnly = true
	db, err := pebble.Open(opts.Dir, po)
	if err != nil {
		return nil // the real open reports it
	}
	defer db.Close()
	return newerFormat(opts.Dir, db)
}

// newerFormat reads the store's recorded format and refuses a newer one.
func newerFormat(dir string, db *pebble.DB) error {
	v, closer, err := db.Get(metaKey("format"))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("store: read format: %w", err)
	}
	defer closer.Close()
	if len(v) != 4 {
		return fmt.Errorf("store: format record of %d bytes, want 4", len(v))
	}
	if got := binary.BigEndian.Uint32(v); got > FormatVersion {
		return fmt.Errorf("store: %s: %w (store format %d; this build reads formats up to %d): "+
			"refusing to open it so that nothing is changed; run that gateway version or a newer one",
			dir, ErrNewerFormat, got, FormatVersion)
	}
	return nil
}

// checkFormat reads the store's format version, refuses a newer one and
// upgrades an older one (splitIndex records this build's).
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get(metaKey("format"))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return s.splitIndex()
	case err != nil:
		return fmt.Errorf("store: read format: %w", err)
	}
	older := len(v) == 4 && binary.BigEndian.Uint32(v) < FormatVersion
	closer.Close()
	if err := newerFormat(s.opts.Dir, s.db); err != nil {
		return err
	}
	if older {
		return s.splitIndex()
	}
	return nil
}
