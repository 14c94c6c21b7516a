package camsim

import (
	_ "embed"
	"fmt"
)

// The committed test clips are small (about 60 KB each), so the binary
// carries them: the demo's cameras work wherever the gateway is run from.
var (
	//go:embed testdata/gop2s.h264
	gop2s []byte
	//go:embed testdata/gop10s.h264
	gop10s []byte
)

// Built-in clips, by name.
const (
	ClipGOP2s  = "gop2s"  // keyframe every 2 s
	ClipGOP10s = "gop10s" // keyframe every 10 s, as many cameras ship
)

// BuiltinClip returns one of the clips compiled into the binary.
func BuiltinClip(name string) (*Clip, error) {
	var b []byte
	switch name {
	case ClipGOP2s:
		b = gop2s
	case ClipGOP10s:
		b = gop10s
	default:
		return nil, fmt.Errorf("camsim: no built-in clip %q", name)
	}
	c, err := ParseClip(b)
	if err != nil {
		return nil, fmt.Errorf("camsim: built-in clip %s: %w", name, err)
	}
	return c, nil
}
