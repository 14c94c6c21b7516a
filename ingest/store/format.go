package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// FormatVersion is the layout of the store's keys and values this build
// writes and reads (keys.go; readings in the reading codec, which reads
// its own older versions). A store opened by this build records it; a
// store without it was written before the layout was versioned (format
// 1, the same layout) and is upgraded by recording it. A store of a
// newer format is refused before anything is read or written, so a
// downgraded gateway cannot corrupt what a newer one wrote.
const FormatVersion = 1

// ErrNewerFormat: the data directory was written by a newer gateway.
var ErrNewerFormat = errors.New("the store was written by a newer gateway")

// checkFormat reads the store's format version, refuses a newer one and
// records this build's in a store that has none.
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get(metaKey("format"))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		b := binary.BigEndian.AppendUint32(nil, FormatVersion)
		if err := s.db.Set(metaKey("format"), b, pebble.Sync); err != nil {
			return fmt.Errorf("store: record format %d: %w", FormatVersion, err)
		}
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
			s.opts.Dir, ErrNewerFormat, got, FormatVersion)
	}
	return nil
}
