// Package atomicfile replaces a file so that a crash leaves either the old
// content or the new, never a mix: the new content is written to a
// temporary file beside it, fsynced, renamed over it, and the directory is
// fsynced so the rename itself survives a power cut. The rules engine's
// and the hazard list's state files and the kept reports are written
// this way.
package atomicfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with b (mode 0600), atomically and durably.
func Write(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("atomicfile: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("atomicfile: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync directory of %s: %w", path, err)
	}
	return nil
}

// Version reads the "version" member of a JSON state file written by
// Write, without decoding the rest; false when the file is missing or is
// not such JSON (loading it then says what is wrong).
func Version(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	var v struct {
		Version int `json:"version"`
	}
	if json.Unmarshal(b, &v) != nil {
		return 0, false
	}
	return v.Version, true
}
