package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// TestFormatVersion: a store records its format; one written before the
// format was recorded opens and is upgraded, readings intact; one of a
// newer format is refused with a message that says what to do, and is
// left as it was.
func TestFormatVersion(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	if err := s.Append(context.Background(), []reading.Reading{temp("d", "z", t0, 1), temp("d", "z", t0.Add(1e9), 2)}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	format := func() (uint32, bool) {
		db, err := pebble.Open(dir, &pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		v, closer, err := db.Get(metaKey("format"))
		if errors.Is(err, pebble.ErrNotFound) {
			return 0, false
		}
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return binary.BigEndian.Uint32(v), true
	}
	set := func(v []byte) {
		db, err := pebble.Open(dir, &pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if v == nil {
			err = db.Delete(metaKey("format"), pebble.Sync)
		} else {
			err = db.Set(metaKey("format"), v, pebble.Sync)
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
	}
	if v, ok := format(); !ok || v != FormatVersion {
		t.Fatalf("format recorded %d %v, want %d", v, ok, FormatVersion)
	}

	// A store from before the format was recorded.
	set(nil)
	s = openTest(t, Options{Dir: dir})
	rs, err := s.ReadLog(0, 10)
	if err != nil || len(rs) != 2 {
		t.Fatalf("readings after the upgrade: %d, %v", len(rs), err)
	}
	_ = s.Close()
	if v, ok := format(); !ok || v != FormatVersion {
		t.Fatalf("after opening an unversioned store, format %d %v", v, ok)
	}

	// A newer gateway's store.
	set(binary.BigEndian.AppendUint32(nil, FormatVersion+1))
	_, err = Open(Options{Dir: dir})
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), fmt.Sprintf("this build reads formats up to %d", FormatVersion)) ||
		!strings.Contains(err.Error(), "run that gateway version or a newer one") {
		t.Fatalf("opening a newer store: %v", err)
	}
	if v, _ := format(); v != FormatVersion+1 {
		t.Fatalf("the refused store's format became %d", v)
	}
}
