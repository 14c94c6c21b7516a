package camsim

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Clip is an H.264 clip split into access units, ready to loop.
type Clip struct {
	SPS, PPS []byte
	Width    int // pixels
	Height   int // pixels
	// FrameDuration is the time between access units, from the SPS timing
	// information.
	FrameDuration time.Duration
	// AccessUnits holds the slices of each access unit in decode order
	// (no B-frames, so also presentation order). Parameter sets, SEI and
	// delimiters from the file are not kept: the server writes its own.
	AccessUnits []AccessUnit
}

// AccessUnit is the slice NAL units of one picture, without start codes.
type AccessUnit struct {
	IDR    bool
	Slices [][]byte
}

// LoadClip reads and parses an Annex-B H.264 file.
func LoadClip(path string) (*Clip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("camsim: load clip: %w", err)
	}
	c, err := ParseClip(b)
	if err != nil {
		return nil, fmt.Errorf("camsim: load clip %s: %w", path, err)
	}
	return c, nil
}

// ParseClip parses an Annex-B H.264 elementary stream. The stream must start
// with an IDR picture, carry SPS and PPS and state its frame rate in the SPS.
func ParseClip(annexB []byte) (*Clip, error) {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(annexB); err != nil {
		return nil, fmt.Errorf("split Annex-B: %w", err)
	}
	c := &Clip{}
	c.AccessUnits = splitAccessUnits(nalus, func(typ h264.NALUType, nalu []byte) {
		switch {
		case typ == h264.NALUTypeSPS && c.SPS == nil:
			c.SPS = nalu
		case typ == h264.NALUTypePPS && c.PPS == nil:
			c.PPS = nalu
		}
	})
	if c.SPS == nil || c.PPS == nil {
		return nil, errors.New("no SPS or PPS")
	}
	if len(c.AccessUnits) == 0 || !c.AccessUnits[0].IDR {
		return nil, errors.New("does not start with an IDR picture")
	}
	var sps h264.SPS
	if err := sps.Unmarshal(c.SPS); err != nil {
		return nil, fmt.Errorf("decode SPS: %w", err)
	}
	c.Width, c.Height = sps.Width(), sps.Height()
	fps := sps.FPS()
	if fps <= 0 || math.IsInf(fps, 0) || math.IsNaN(fps) {
		return nil, errors.New("SPS has no frame rate")
	}
	c.FrameDuration = time.Duration(float64(time.Second) / fps)
	return c, nil
}

// splitAccessUnits groups NAL units into access units of slices. A new access
// unit starts at a non-VCL unit that may only precede a picture (delimiter,
// SPS, PPS, SEI) or at a slice whose first_mb_in_slice is 0, once the current
// unit has a slice (ITU-T H.264 7.4.1.2.3). Non-VCL units are passed to other
// and dropped.
func splitAccessUnits(nalus [][]byte, other func(h264.NALUType, []byte)) []AccessUnit {
	var aus []AccessUnit
	var cur AccessUnit
	flush := func() {
		if len(cur.Slices) > 0 {
			aus = append(aus, cur)
		}
		cur = AccessUnit{}
	}
	for _, nalu := range nalus {
		if len(nalu) == 0 {
			continue
		}
		typ := h264.NALUType(nalu[0] & 0x1f)
		switch typ {
		case h264.NALUTypeNonIDR, h264.NALUTypeIDR:
			// first_mb_in_slice is ue(v); it is 0 exactly when its first bit is 1.
			if len(nalu) > 1 && nalu[1]&0x80 != 0 {
				flush()
			}
			cur.Slices = append(cur.Slices, nalu)
			cur.IDR = cur.IDR || typ == h264.NALUTypeIDR
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeSEI:
			flush()
			other(typ, nalu)
		default:
			other(typ, nalu)
		}
	}
	flush()
	return aus
}
