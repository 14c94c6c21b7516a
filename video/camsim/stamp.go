package camsim

import (
	"encoding/binary"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// StampUUID identifies the send-time SEI message: the uuid_iso_iec_11578 of
// a user_data_unregistered message written by this package. It is readable
// ASCII so it stands out in a hex dump.
const StampUUID = "ShelterWatchTime"

const (
	seiUserDataUnregistered = 5
	stampPayloadSize        = len(StampUUID) + 8
)

// stampNALU returns an SEI NAL unit carrying t as the send-time stamp.
func stampNALU(t time.Time) []byte {
	rbsp := make([]byte, 0, 2+stampPayloadSize+1)
	rbsp = append(rbsp, seiUserDataUnregistered, byte(stampPayloadSize))
	rbsp = append(rbsp, StampUUID...)
	rbsp = binary.BigEndian.AppendUint64(rbsp, uint64(t.UnixNano()))
	rbsp = append(rbsp, 0x80) // rbsp_trailing_bits
	return append([]byte{byte(h264.NALUTypeSEI)}, addEmulationPrevention(rbsp)...)
}

// addEmulationPrevention escapes rbsp so that no start code can appear in it
// (ITU-T H.264 7.4.1): 0x03 goes after two zero bytes followed by 0x00..0x03.
func addEmulationPrevention(rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/2)
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// ParseStamp returns the send time of an access unit stamped by this
// package, and false when the unit carries no stamp.
func ParseStamp(au [][]byte) (time.Time, bool) {
	for _, nalu := range au {
		if len(nalu) < 2 || h264.NALUType(nalu[0]&0x1f) != h264.NALUTypeSEI {
			continue
		}
		if t, ok := parseSEIStamp(h264.EmulationPreventionRemove(nalu[1:])); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseSEIStamp walks the SEI messages of one SEI RBSP (ITU-T H.264 7.3.2.3).
func parseSEIStamp(rbsp []byte) (time.Time, bool) {
	for len(rbsp) > 0 && rbsp[0] != 0x80 {
		typ, n := seiNumber(rbsp)
		if n == 0 {
			return time.Time{}, false
		}
		rbsp = rbsp[n:]
		size, n := seiNumber(rbsp)
		if n == 0 || size > len(rbsp)-n {
			return time.Time{}, false
		}
		rbsp = rbsp[n:]
		payload := rbsp[:size]
		rbsp = rbsp[size:]
		if typ == seiUserDataUnregistered && size >= stampPayloadSize &&
			string(payload[:len(StampUUID)]) == StampUUID {
			ns := binary.BigEndian.Uint64(payload[len(StampUUID):])
			return time.Unix(0, int64(ns)), true
		}
	}
	return time.Time{}, false
}

// seiNumber reads an SEI payload type or size: 0xFF bytes each add 255, the
// first other byte ends the number. n is 0 when b ends first.
func seiNumber(b []byte) (v, n int) {
	for i, c := range b {
		v += int(c)
		if c != 0xff {
			return v, i + 1
		}
		if v > 1<<20 {
			return 0, 0
		}
	}
	return 0, 0
}
