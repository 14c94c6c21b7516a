package camsim

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestStampRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
	}{
		{"now", time.Unix(1764486000, 123456789)},
		{"zero bytes need escaping", time.Unix(0, 0x0000000100000002)},
		{"epoch", time.Unix(0, 0)},
		{"all ones", time.Unix(0, -1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nalu := stampNALU(tt.t)
			if bytes.Contains(nalu, []byte{0, 0, 1}) || bytes.Contains(nalu, []byte{0, 0, 0}) {
				t.Fatalf("SEI NAL unit %x contains a start code", nalu)
			}
			au := [][]byte{{0x67, 0x42}, nalu, {0x65, 0x88}}
			got, ok := ParseStamp(au)
			if !ok || !got.Equal(tt.t) {
				t.Errorf("ParseStamp = %v, %v; want %v", got, ok, tt.t)
			}
		})
	}
}

func TestParseStampIgnoresOtherSEI(t *testing.T) {
	otherUUID := append([]byte{byte(h264.NALUTypeSEI), 5, 24}, bytes.Repeat([]byte{0xab}, 24)...)
	otherUUID = append(otherUUID, 0x80)
	recovery := []byte{byte(h264.NALUTypeSEI), 6, 1, 0x84, 0x80}
	tests := []struct {
		name string
		au   [][]byte
		ok   bool
	}{
		{"no SEI", [][]byte{{0x65, 0x88}}, false},
		{"another UUID", [][]byte{otherUUID}, false},
		{"recovery point", [][]byte{recovery}, false},
		{"truncated", [][]byte{stampNALU(time.Unix(5, 0))[:20]}, false},
		{"after other SEI", [][]byte{otherUUID, recovery, stampNALU(time.Unix(5, 0))}, true},
		{
			"second message of one SEI",
			[][]byte{append([]byte{6, 6, 1, 0x84}, stampNALU(time.Unix(5, 0))[1:]...)},
			true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseStamp(tt.au)
			if ok != tt.ok || (ok && !got.Equal(time.Unix(5, 0))) {
				t.Errorf("ParseStamp = %v, %v; want ok %v", got, ok, tt.ok)
			}
		})
	}
}

func FuzzParseStamp(f *testing.F) {
	f.Add(stampNALU(time.Unix(1764486000, 1)))
	f.Add(stampNALU(time.Unix(0, 0x0000000100000002)))
	f.Add([]byte{6, 6, 1, 0x84, 0x80})
	f.Add([]byte{6, 0xff, 0xff, 0xff})
	f.Add([]byte{6, 5, 0xff, 0x10})
	f.Fuzz(func(t *testing.T, nalu []byte) {
		got, ok := ParseStamp([][]byte{nalu})
		if !ok {
			return
		}
		// A stamp that parses must survive a round trip.
		again, ok2 := ParseStamp([][]byte{stampNALU(got)})
		if !ok2 || !again.Equal(got) {
			t.Errorf("round trip of %v gave %v, %v", got, again, ok2)
		}
	})
}
