package source

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

// pickVideo chooses the camera's video track: H.264 if it offers one
// (every WebRTC browser plays it), else H.265. It returns nil when there is
// neither.
func pickVideo(desc *description.Session) (*description.Media, format.Format) {
	var h265Media *description.Media
	var h265Format format.Format
	for _, m := range desc.Medias {
		if m.IsBackChannel {
			continue
		}
		for _, f := range m.Formats {
			switch f.(type) {
			case *format.H264:
				return m, f
			case *format.H265:
				if h265Media == nil {
					h265Media, h265Format = m, f
				}
			}
		}
	}
	return h265Media, h265Format
}

// audioTrack is the audio the hub relays: its media, format and how it is
// announced to viewers.
type audioTrack struct {
	media    *description.Media
	format   format.Format
	codec    string // hub.CodecPCMU, hub.CodecPCMA or hub.CodecOpus
	rate     int    // Hz, the RTP clock rate
	channels int
}

// pickAudio chooses the first audio track a WebRTC viewer can play as it
// is: G.711 at 8000 Hz mono, or Opus. When there is none but the camera
// sends audio, note says why that audio is not relayed, for the operator.
func pickAudio(desc *description.Session) (track *audioTrack, note string) {
	for _, m := range desc.Medias {
		if m.IsBackChannel || m.Type != description.MediaTypeAudio {
			continue
		}
		for _, f := range m.Formats {
			switch f := f.(type) {
			case *format.G711:
				if f.SampleRate == 8000 && f.ChannelCount == 1 {
					codec := hub.CodecPCMA
					if f.MULaw {
						codec = hub.CodecPCMU
					}
					return &audioTrack{media: m, format: f, codec: codec, rate: 8000, channels: 1}, ""
				}
				if note == "" {
					note = fmt.Sprintf("audio G.711 %d Hz %s is not relayed: WebRTC plays G.711 only at 8000 Hz mono; "+
						"set the camera's audio to G.711 8000 Hz mono or Opus", f.SampleRate, channels(f.ChannelCount))
				}
			case *format.Opus:
				// gortsplib reads the channel count from the SDP (1 when it
				// does not say stereo).
				return &audioTrack{media: m, format: f, codec: hub.CodecOpus, rate: f.ClockRate(), channels: max(f.ChannelCount, 1)}, ""
			default:
				if note == "" {
					note = fmt.Sprintf("audio %s is not relayed: the gateway does not transcode; "+
						"set the camera's audio to G.711 or Opus", audioName(f))
				}
			}
		}
	}
	return nil, note
}

func channels(n int) string {
	switch n {
	case 1:
		return "mono"
	case 2:
		return "stereo"
	}
	return fmt.Sprintf("%d channels", n)
}

// audioName names an audio format for the operator.
func audioName(f format.Format) string {
	switch f := f.(type) {
	case *format.MPEG4Audio, *format.MPEG4AudioLATM:
		return "AAC"
	case *format.G711:
		return "G.711"
	case *format.Generic:
		if name, _, _ := strings.Cut(f.RTPMap(), "/"); name != "" {
			return name
		}
		return "of an unknown format"
	}
	return f.Codec()
}

// rtpClock turns a track's 32-bit RTP timestamps into a running tick count
// that starts at 0 with the track's first packet, goes backwards when the
// timestamps do (B-frames), and does not wrap: a 90 kHz stamp wraps every
// 13 hours, and a camera runs for months.
type rtpClock struct {
	started bool
	last    uint32
	ticks   int64
}

// at returns the ticks since the first timestamp. Successive timestamps
// are assumed less than 2^31 ticks apart (6.6 hours at 90 kHz), so a
// difference is read as signed.
func (c *rtpClock) at(ts uint32) int64 {
	if !c.started {
		c.started, c.last = true, ts
		return 0
	}
	c.ticks += int64(int32(ts - c.last))
	c.last = ts
	return c.ticks
}

// ticksToDuration converts ticks of a rate Hz clock without overflowing
// for long-running streams.
func ticksToDuration(ticks int64, rate int) time.Duration {
	r := int64(rate)
	return time.Duration(ticks/r)*time.Second + time.Duration(ticks%r)*time.Second/time.Duration(r)
}

// NAL unit roles the source cares about.
type naluKind int

const (
	naluOther naluKind = iota
	naluVPS
	naluSPS
	naluPPS
	naluAUD
)

// videoTrack turns the decoded access units of one session's video into
// hub frames: it marks keyframes, puts the parameter sets in front of each
// keyframe that lacks them and notices PTS going backwards (B-frames).
// One goroutine uses it.
type videoTrack struct {
	codec string // hub.CodecH264 or hub.CodecH265
	// Latest parameter sets, from the SDP and then from the stream.
	vps, sps, pps []byte
	clock         rtpClock
	lastPTS       int64
	havePTS       bool
}

func newVideoTrack(f format.Format) *videoTrack {
	switch f := f.(type) {
	case *format.H264:
		sps, pps := f.SafeParams()
		return &videoTrack{codec: hub.CodecH264, sps: sps, pps: pps}
	case *format.H265:
		vps, sps, pps := f.SafeParams()
		return &videoTrack{codec: hub.CodecH265, vps: vps, sps: sps, pps: pps}
	}
	panic(fmt.Sprintf("source: video format %T", f)) // pickVideo returns only these
}

func (v *videoTrack) kind(n []byte) naluKind {
	if v.codec == hub.CodecH265 {
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			return naluVPS
		case h265.NALUType_SPS_NUT:
			return naluSPS
		case h265.NALUType_PPS_NUT:
			return naluPPS
		case h265.NALUType_AUD_NUT:
			return naluAUD
		}
		return naluOther
	}
	switch h264.NALUType(n[0] & 0x1f) {
	case h264.NALUTypeSPS:
		return naluSPS
	case h264.NALUTypePPS:
		return naluPPS
	case h264.NALUTypeAccessUnitDelimiter:
		return naluAUD
	}
	return naluOther
}

// frame makes the hub frame for access unit au stamped ts (RTP, 90 kHz).
// backwards reports that its PTS is earlier than the previous unit's: the
// camera reorders frames (B-frames).
func (v *videoTrack) frame(au [][]byte, ts uint32, now time.Time) (f *hub.Frame, backwards bool) {
	// Empty NAL units carry nothing, and the random-access checks index
	// the first byte of each unit.
	units := au
	if slices.ContainsFunc(au, isEmpty) {
		units = slices.DeleteFunc(slices.Clone(au), isEmpty)
	}
	pts := v.clock.at(ts)
	backwards = v.havePTS && pts < v.lastPTS
	v.lastPTS, v.havePTS = pts, true
	f = &hub.Frame{PTS: ticksToDuration(pts, 90000), Received: now}
	if len(units) == 0 {
		return f, backwards
	}

	var hasVPS, hasSPS, hasPPS bool
	for _, n := range units {
		switch v.kind(n) {
		case naluVPS:
			v.vps, hasVPS = n, true
		case naluSPS:
			v.sps, hasSPS = n, true
		case naluPPS:
			v.pps, hasPPS = n, true
		}
	}
	var random bool
	if v.codec == hub.CodecH265 {
		random = h265.IsRandomAccess(units)
	} else {
		random = h264.IsRandomAccess(units)
	}
	needVPS := v.codec == hub.CodecH265
	complete := v.sps != nil && v.pps != nil && (!needVPS || v.vps != nil)
	if random && complete && (!hasSPS || !hasPPS || (needVPS && !hasVPS)) {
		units = v.withParams(units)
	}
	f.NALUs = units
	// A keyframe a decoder cannot start from is no keyframe: a viewer
	// waits for one that carries (or gets) its parameter sets.
	f.Key = random && complete
	return f, backwards
}

// withParams rebuilds keyframe au with the full, ordered parameter sets
// after its access unit delimiter, if any.
func (v *videoTrack) withParams(au [][]byte) [][]byte {
	out := make([][]byte, 0, len(au)+3)
	rest := au
	if len(rest) > 0 && v.kind(rest[0]) == naluAUD {
		out, rest = append(out, rest[0]), rest[1:]
	}
	if v.codec == hub.CodecH265 {
		out = append(out, v.vps)
	}
	out = append(out, v.sps, v.pps)
	for _, n := range rest {
		switch v.kind(n) {
		case naluVPS, naluSPS, naluPPS:
			// already in front
		default:
			out = append(out, n)
		}
	}
	return out
}

func isEmpty(n []byte) bool { return len(n) == 0 }

// bFrameWarning is the status warning for a camera that reorders frames.
func bFrameWarning(codec string) string {
	if codec == hub.CodecH264 {
		return "the camera sends B-frames; WebRTC viewers may stutter; set the camera's profile to baseline or disable B-frames"
	}
	return "the camera sends B-frames; WebRTC viewers may stutter; disable B-frames in the camera's encoder settings"
}
