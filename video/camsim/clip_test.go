package camsim

import (
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestSplitAccessUnits(t *testing.T) {
	var (
		aud   = []byte{0x09, 0xf0}
		sps   = []byte{0x67, 0x42}
		pps   = []byte{0x68, 0xce}
		sei   = []byte{0x06, 0x05}
		idr0  = []byte{0x65, 0x88} // first_mb_in_slice 0
		idr1  = []byte{0x65, 0x40} // first_mb_in_slice 1: same picture
		p0    = []byte{0x41, 0x9a}
		p0b   = []byte{0x41, 0x9b}
		p1    = []byte{0x41, 0x20}
		other = []byte{0x0c, 0xff} // filler
	)
	tests := []struct {
		name  string
		nalus [][]byte
		want  []AccessUnit
	}{
		{"empty", nil, nil},
		{"parameter sets only", [][]byte{sps, pps}, nil},
		{
			"one slice per picture",
			[][]byte{sps, pps, sei, idr0, p0, p0b},
			[]AccessUnit{{IDR: true, Slices: [][]byte{idr0}}, {Slices: [][]byte{p0}}, {Slices: [][]byte{p0b}}},
		},
		{
			"two slices per picture",
			[][]byte{idr0, idr1, p0, p1},
			[]AccessUnit{{IDR: true, Slices: [][]byte{idr0, idr1}}, {Slices: [][]byte{p0, p1}}},
		},
		{
			"delimiter and SEI start a picture, filler does not",
			[][]byte{aud, idr0, other, idr1, aud, sei, p1},
			[]AccessUnit{{IDR: true, Slices: [][]byte{idr0, idr1}}, {Slices: [][]byte{p1}}},
		},
		{"empty NAL units are skipped", [][]byte{{}, p0, {}}, []AccessUnit{{Slices: [][]byte{p0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var others []h264.NALUType
			got := splitAccessUnits(tt.nalus, func(typ h264.NALUType, _ []byte) { others = append(others, typ) })
			if !slices.EqualFunc(got, tt.want, func(a, b AccessUnit) bool {
				return a.IDR == b.IDR && slices.EqualFunc(a.Slices, b.Slices, slices.Equal)
			}) {
				t.Errorf("access units = %v, want %v", got, tt.want)
			}
			for _, typ := range others {
				if typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
					t.Errorf("slice passed to other")
				}
			}
		})
	}
}

func TestParseClipRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"no start code", []byte{0x65, 0x88}},
		{"no parameter sets", []byte{0, 0, 0, 1, 0x65, 0x88}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseClip(tt.in); err == nil {
				t.Error("ParseClip succeeded, want an error")
			}
		})
	}
}

func TestLoadTestdataClips(t *testing.T) {
	tests := []struct {
		file string
		idrs int
	}{
		{"testdata/gop2s.h264", 5},
		{"testdata/gop10s.h264", 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := LoadClip(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if c.Width != 320 || c.Height != 240 {
				t.Errorf("size = %dx%d, want 320x240", c.Width, c.Height)
			}
			if want := time.Second / 15; c.FrameDuration != want {
				t.Errorf("frame duration = %v, want %v", c.FrameDuration, want)
			}
			if len(c.AccessUnits) != 150 {
				t.Errorf("%d access units, want 150 (10 s at 15 fps)", len(c.AccessUnits))
			}
			idrs := 0
			for _, au := range c.AccessUnits {
				if au.IDR {
					idrs++
				}
			}
			if idrs != tt.idrs {
				t.Errorf("%d IDR pictures, want %d", idrs, tt.idrs)
			}
		})
	}
}

func TestBuiltinClipsMatchTestdata(t *testing.T) {
	for _, name := range []string{ClipGOP2s, ClipGOP10s} {
		c, err := BuiltinClip(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := LoadClip("testdata/" + name + ".h264")
		if err != nil {
			t.Fatal(err)
		}
		if len(c.AccessUnits) != len(f.AccessUnits) || len(c.AccessUnits) == 0 {
			t.Fatalf("%s: %d access units built in, %d in the file", name, len(c.AccessUnits), len(f.AccessUnits))
		}
	}
	if _, err := BuiltinClip("gop99s"); err == nil {
		t.Fatal("unknown clip accepted")
	}
}
