package source

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

// An H.264 stream small enough to write by hand: the source reads NAL
// unit types, not pictures. The SPS is a real one (High, 1920x1080), as
// gortsplib drops an SDP's parameter sets when the SPS does not parse.
var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xb4, 0x03, 0xc0, 0x11, 0x3f, 0x2a}
	testPPS = []byte{0x68, 0xee, 0x01, 0x9e, 0x2c}
)

func testIDR(i int) []byte { return []byte{0x65, 0x88, 0x84, byte(i >> 8), byte(i)} }
func testP(i int) []byte   { return []byte{0x41, 0x9a, 0x21, byte(i >> 8), byte(i)} }
func testB(i int) []byte   { return []byte{0x01, 0x9e, 0x42, byte(i >> 8), byte(i)} }

func h264Media() *description.Media {
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: testSPS, PPS: testPPS}
	return &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
}

// videoSender packetizes one video media's access units with one encoder
// (one SSRC, consecutive sequence numbers), as a camera does. One
// goroutine uses it.
type videoSender struct {
	media  *description.Media
	encode func([][]byte) ([]*rtp.Packet, error)
}

func newVideoSender(t *testing.T, m *description.Media) *videoSender {
	t.Helper()
	s := &videoSender{media: m}
	switch f := m.Formats[0].(type) {
	case *format.H264:
		enc, err := f.CreateEncoder()
		if err != nil {
			t.Fatal(err)
		}
		s.encode = enc.Encode
	case *format.H265:
		enc, err := f.CreateEncoder()
		if err != nil {
			t.Fatal(err)
		}
		s.encode = enc.Encode
	default:
		t.Fatalf("video format %T", f)
	}
	return s
}

// packets packetizes access unit au stamped ts (90 kHz).
func (s *videoSender) packets(t *testing.T, au [][]byte, ts uint32) []testPacket {
	pkts, err := s.encode(au)
	if err != nil {
		t.Error(err)
		return nil
	}
	out := make([]testPacket, len(pkts))
	for i, p := range pkts {
		p.Timestamp = ts
		out[i] = testPacket{s.media, p}
	}
	return out
}

// startsWith checks that a frame's NAL units start with want, in order.
func startsWith(f *hub.Frame, want ...[]byte) bool {
	if len(f.NALUs) < len(want) {
		return false
	}
	for i, w := range want {
		if !bytes.Equal(f.NALUs[i], w) {
			return false
		}
	}
	return true
}

// testAudio is packet k's payload: its number, then a pattern, so a
// viewer can tell which packet it got and that it is intact.
func testAudio(k, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(k))
	for j := 4; j < size; j++ {
		p[j] = byte(k*7 + j)
	}
	return p
}

// TestAudioPassThrough serves H.264 with one kind of audio and checks what
// a viewer gets: the announced media, keyframes that start with SPS and
// PPS (sent only in the SDP), and, for G.711 8 kHz mono and Opus, every
// audio payload intact with its PTS on the audio clock. Audio the gateway
// cannot relay is left out with a note, and the video still flows.
func TestAudioPassThrough(t *testing.T) {
	aac := &format.MPEG4Audio{PayloadTyp: 97, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3,
		Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelCount: 2}}
	for _, tc := range []struct {
		name      string
		audio     format.Format
		samples   int // per 20 ms packet, on the RTP clock
		size      int // payload bytes
		want      hub.Media
		wantNote  string
		wantAudio bool
	}{
		{name: "PCMU", audio: &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1},
			samples: 160, size: 160, wantAudio: true,
			want: hub.Media{Video: hub.CodecH264, Audio: hub.CodecPCMU, AudioRate: 8000, AudioChannels: 1}},
		{name: "PCMA", audio: &format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1},
			samples: 160, size: 160, wantAudio: true,
			want: hub.Media{Video: hub.CodecH264, Audio: hub.CodecPCMA, AudioRate: 8000, AudioChannels: 1}},
		{name: "Opus", audio: &format.Opus{PayloadTyp: 111, ChannelCount: 2},
			samples: 960, size: 75, wantAudio: true,
			want: hub.Media{Video: hub.CodecH264, Audio: hub.CodecOpus, AudioRate: 48000, AudioChannels: 2}},
		{name: "AAC", audio: aac, samples: 1024, size: 200,
			want:     hub.Media{Video: hub.CodecH264},
			wantNote: "audio AAC is not relayed: the gateway does not transcode; set the camera's audio to G.711 or Opus"},
		{name: "G.711 16 kHz", audio: &format.G711{PayloadTyp: 98, MULaw: true, SampleRate: 16000, ChannelCount: 1},
			samples: 320, size: 320,
			want:     hub.Media{Video: hub.CodecH264},
			wantNote: "audio G.711 16000 Hz mono is not relayed: WebRTC plays G.711 only at 8000 Hz mono"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm := h264Media()
			am := &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{tc.audio}}
			cam := startTestCamera(t, vm, am)
			video := newVideoSender(t, vm)
			// Every 20 ms: one audio packet and one video access unit, a
			// keyframe every 10 (no SPS/PPS in band: they are in the SDP).
			cam.feed(t, 20*time.Millisecond, func(i int) []testPacket {
				au := [][]byte{testP(i)}
				if i%10 == 0 {
					au = [][]byte{testIDR(i)}
				}
				pkts := video.packets(t, au, uint32(i*1800))
				return append(pkts, testPacket{am, &rtp.Packet{
					Header:  rtp.Header{Version: 2, PayloadType: tc.audio.PayloadType(), SequenceNumber: uint16(i), Timestamp: uint32(1000 + i*tc.samples), SSRC: 7},
					Payload: testAudio(i, tc.size),
				}})
			})
			src, h := runSource(t, cam.url)
			v := h.Subscribe()
			defer v.Close()

			m := mediaOf(t, h, 5*time.Second)
			if tc.wantNote != "" {
				if !strings.HasPrefix(m.Note, tc.wantNote) {
					t.Errorf("note %q, want it to start with %q", m.Note, tc.wantNote)
				}
				m.Note = ""
			}
			if m != tc.want {
				t.Errorf("media %+v, want %+v", m, tc.want)
			}
			// Read until a keyframe and 10 audio packets (or, with no audio
			// relayed, 20 video frames).
			var keyframe bool
			var audio []*hub.Frame
			for video := 0; !keyframe || (tc.wantAudio && len(audio) < 10) || (!tc.wantAudio && video < 20); {
				f := nextFrame(t, v, 5*time.Second, "frame", func(*hub.Frame) bool { return true })
				switch {
				case f.Audio:
					audio = append(audio, f)
				case f.Key:
					if !startsWith(f, testSPS, testPPS) || h264.NALUType(f.NALUs[2][0]&0x1f) != h264.NALUTypeIDR {
						t.Fatalf("keyframe of %d units does not start with SPS, PPS, IDR", len(f.NALUs))
					}
					keyframe = true
					fallthrough
				default:
					video++
				}
			}
			if !tc.wantAudio && len(audio) > 0 {
				t.Fatalf("%d audio frames relayed that the media does not announce", len(audio))
			}
			rate := time.Duration(tc.want.AudioRate)
			for n, f := range audio {
				if len(f.NALUs) != 1 || len(f.NALUs[0]) != tc.size {
					t.Fatalf("audio frame of %d units, want one payload of %d bytes", len(f.NALUs), tc.size)
				}
				k := int(binary.BigEndian.Uint32(f.NALUs[0]))
				if !bytes.Equal(f.NALUs[0], testAudio(k, tc.size)) {
					t.Fatalf("audio packet %d payload changed in the relay", k)
				}
				// The viewer was there before the source connected: it
				// hears the session's first packet, at PTS 0.
				k0 := int(binary.BigEndian.Uint32(audio[0].NALUs[0]))
				if want := time.Duration((k-k0)*tc.samples) * time.Second / rate; f.PTS != want {
					t.Fatalf("audio frame %d (packet %d): PTS %v, want %v", n, k, f.PTS, want)
				}
			}

			st := waitState(t, src, StateLive, 5*time.Second)
			hm, _ := h.Media()
			if st.Video != hm.Video || st.Audio != hm.Audio || st.Note != hm.Note {
				t.Errorf("status video %q audio %q note %q, hub media %+v", st.Video, st.Audio, st.Note, hm)
			}
			if tc.wantAudio && st.AudioPackets == 0 {
				t.Errorf("no audio packets counted: %+v", st)
			}
		})
	}
}

// waitStatus polls the status until cond holds.
func waitStatus(t *testing.T, s *Source, within time.Duration, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := s.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v: %+v", what, within, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBFramesWarnAndKeepRelaying serves H.264 with B-frames (PTS going
// backwards in decode order, as a camera's main profile sends them): the
// camera stays live, its frames keep coming with their PTS as sent, and
// the status says what to change on the camera.
func TestBFramesWarnAndKeepRelaying(t *testing.T) {
	vm := h264Media()
	cam := startTestCamera(t, vm)
	video := newVideoSender(t, vm)
	// A GOP of 9 in decode order, with each frame's presentation slot:
	// I0 P3 B1 B2 P6 B4 B5 P8 B7 (3 steps back per GOP).
	order := []struct {
		slot int
		unit func(int) []byte
	}{{0, testIDR}, {3, testP}, {1, testB}, {2, testB}, {6, testP}, {4, testB}, {5, testB}, {8, testP}, {7, testB}}
	cam.feed(t, 10*time.Millisecond, func(i int) []testPacket {
		o := order[i%len(order)]
		ts := uint32((i - i%len(order) + o.slot) * 3000)
		return video.packets(t, [][]byte{o.unit(i)}, ts)
	})
	src, h := runSource(t, cam.url)
	v := h.Subscribe()
	defer v.Close()

	st := waitStatus(t, src, 5*time.Second, "B-frame warning", func(st Status) bool { return st.Warning != "" })
	const want = "the camera sends B-frames; WebRTC viewers may stutter; set the camera's profile to baseline or disable B-frames"
	if st.Warning != want || st.BFrames == 0 || st.State != StateLive {
		t.Fatalf("status %+v, want live with warning %q and B-frames counted", st, want)
	}
	// The relay goes on, PTS untouched: a keyframe, then a frame stamped
	// before the one ahead of it.
	nextFrame(t, v, 5*time.Second, "keyframe", func(f *hub.Frame) bool { return f.Key })
	var last time.Duration = -1
	nextFrame(t, v, 5*time.Second, "frame with an earlier PTS than the one before", func(f *hub.Frame) bool {
		back := last >= 0 && f.PTS < last
		last = f.PTS
		return back
	})
	if st2 := src.Status(); st2.BFrames <= st.BFrames || st2.State != StateLive {
		t.Fatalf("after more frames: %+v (before %+v)", st2, st)
	}
}

// needTool skips a test that needs a program this machine lacks, except
// in CI, where the program is part of the build image.
func needTool(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// h265Clip encodes 10 frames of H.265 with ffmpeg's libx265 (a keyframe
// every 5, parameter sets before each) and returns the access units.
func h265Clip(t *testing.T) [][][]byte {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		needTool(t, "ffmpeg is not installed")
	}
	out := filepath.Join(t.TempDir(), "clip.hevc")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc=size=128x72:rate=25", "-frames:v", "10",
		"-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "keyint=5:min-keyint=5:bframes=0:scenecut=0:log-level=error",
		"-f", "hevc", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(msg), "libx265") {
			needTool(t, "ffmpeg has no libx265: "+strings.TrimSpace(string(msg)))
		}
		t.Fatalf("ffmpeg: %v: %s", err, msg)
	}
	buf, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB // the same start codes as H.265
	if err := nalus.Unmarshal(buf); err != nil {
		t.Fatalf("ffmpeg output: %v", err)
	}
	// An access unit starts at a parameter set, delimiter or prefix SEI
	// after a picture, or at a picture's first slice.
	var aus [][][]byte
	var cur [][]byte
	var curPicture bool
	for _, n := range nalus {
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		vcl := typ < h265.NALUType_VPS_NUT
		starts := (vcl && len(n) > 2 && n[2]&0x80 != 0) || typ == h265.NALUType_VPS_NUT || typ == h265.NALUType_SPS_NUT ||
			typ == h265.NALUType_PPS_NUT || typ == h265.NALUType_AUD_NUT || typ == h265.NALUType_PREFIX_SEI_NUT
		if starts && curPicture {
			aus, cur, curPicture = append(aus, cur), nil, false
		}
		cur = append(cur, n)
		curPicture = curPicture || vcl
	}
	if curPicture {
		aus = append(aus, cur)
	}
	if len(aus) != 10 || !h265.IsRandomAccess(aus[0]) {
		t.Fatalf("ffmpeg clip: %d access units, first random access %v; want 10 from a keyframe", len(aus), len(aus) > 0 && h265.IsRandomAccess(aus[0]))
	}
	return aus
}

// h265Params returns the parameter sets of a keyframe access unit.
func h265Params(t *testing.T, au [][]byte) (vps, sps, pps []byte) {
	t.Helper()
	for _, n := range au {
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			vps = n
		case h265.NALUType_SPS_NUT:
			sps = n
		case h265.NALUType_PPS_NUT:
			pps = n
		}
	}
	if vps == nil || sps == nil || pps == nil {
		t.Fatal("ffmpeg clip: no VPS, SPS and PPS before the first keyframe")
	}
	return vps, sps, pps
}

// withoutParams drops an access unit's parameter sets.
func withoutParams(au [][]byte) [][]byte {
	var out [][]byte
	for _, n := range au {
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
		default:
			out = append(out, n)
		}
	}
	return out
}

// An H.265 access unit delimiter (pic_type 2: any slice type).
var h265AUD = []byte{0x46, 0x01, 0x50}

// TestH265 serves a camera with H.265 only (a real libx265 clip) and checks
// that viewers are told H.265 and get keyframes that start with VPS, SPS
// and PPS whether the camera sends them in the SDP only or in band only,
// and once.
func TestH265(t *testing.T) {
	clip := h265Clip(t)
	vps, sps, pps := h265Params(t, clip[0])
	isKeyframe := func(f *hub.Frame) bool { return f.Key && h265.IsRandomAccess(f.NALUs) }

	t.Run("parameter sets in the SDP", func(t *testing.T) {
		f := &format.H265{PayloadTyp: 96, VPS: vps, SPS: sps, PPS: pps}
		m := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
		cam := startTestCamera(t, m)
		video := newVideoSender(t, m)
		cam.feed(t, 10*time.Millisecond, func(i int) []testPacket {
			return video.packets(t, withoutParams(clip[i%len(clip)]), uint32(i*3600))
		})
		src, h := runSource(t, cam.url)
		v := h.Subscribe()
		defer v.Close()
		if got := mediaOf(t, h, 5*time.Second); got != (hub.Media{Video: hub.CodecH265}) {
			t.Fatalf("media %+v, want H.265 video only", got)
		}
		for n := 0; n < 3; n++ {
			k := nextFrame(t, v, 5*time.Second, "keyframe", isKeyframe)
			if !startsWith(k, vps, sps, pps) {
				t.Fatalf("keyframe %d does not start with the SDP's VPS, SPS and PPS: %d units", n, len(k.NALUs))
			}
		}
		if st := waitState(t, src, StateLive, 5*time.Second); st.Video != hub.CodecH265 || st.Audio != "" || st.Note != "" {
			t.Fatalf("status %+v", st)
		}
	})

	t.Run("parameter sets in band once", func(t *testing.T) {
		f := &format.H265{PayloadTyp: 96}
		m := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
		cam := startTestCamera(t, m)
		video := newVideoSender(t, m)
		// Until the viewer has a keyframe, the clip as encoded (parameter
		// sets in band); then without them, each access unit marked by a
		// delimiter so the test knows which is which.
		var stripped atomic.Bool
		cam.feed(t, 10*time.Millisecond, func(i int) []testPacket {
			au := clip[i%len(clip)]
			if stripped.Load() {
				au = append([][]byte{h265AUD}, withoutParams(au)...)
			}
			return video.packets(t, au, uint32(i*3600))
		})
		_, h := runSource(t, cam.url)
		v := h.Subscribe()
		defer v.Close()
		nextFrame(t, v, 5*time.Second, "keyframe with in-band parameter sets", func(f *hub.Frame) bool {
			return isKeyframe(f) && startsWith(f, vps, sps, pps)
		})
		stripped.Store(true)
		for n := 0; n < 2; n++ {
			k := nextFrame(t, v, 5*time.Second, "keyframe sent without parameter sets", func(f *hub.Frame) bool {
				return isKeyframe(f) && bytes.Equal(f.NALUs[0], h265AUD)
			})
			if !startsWith(k, h265AUD, vps, sps, pps) {
				t.Fatalf("keyframe %d: want the delimiter, then the VPS, SPS and PPS seen in band; %d units", n, len(k.NALUs))
			}
		}
	})
}

// TestPickTracks: which tracks of a camera's description are relayed, and
// the note for audio that is not.
func TestPickTracks(t *testing.T) {
	video := func(fs ...format.Format) *description.Media {
		return &description.Media{Type: description.MediaTypeVideo, Formats: fs}
	}
	audio := func(fs ...format.Format) *description.Media {
		return &description.Media{Type: description.MediaTypeAudio, Formats: fs}
	}
	h264f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	h265f := &format.H265{PayloadTyp: 97}
	pcmu := &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}
	pcmaStereo := &format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 2}
	opusMono := &format.Opus{PayloadTyp: 111, ChannelCount: 1}
	aac := &format.MPEG4Audio{PayloadTyp: 98, Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: 1}}
	lpcm := &format.LPCM{PayloadTyp: 99, BitDepth: 16, SampleRate: 8000, ChannelCount: 1}
	backchannel := audio(pcmu)
	backchannel.IsBackChannel = true
	for _, tc := range []struct {
		name     string
		medias   []*description.Media
		video    format.Format
		audio    string
		rate, ch int
		wantNote string
	}{
		{name: "H.264 and PCMU", medias: []*description.Media{video(h264f), audio(pcmu)}, video: h264f, audio: hub.CodecPCMU, rate: 8000, ch: 1},
		{name: "H.265 only", medias: []*description.Media{video(h265f)}, video: h265f},
		{name: "H.264 preferred to H.265", medias: []*description.Media{video(h265f), video(h264f)}, video: h264f},
		{name: "no H.264 or H.265", medias: []*description.Media{video(&format.MJPEG{}), audio(pcmu)}, audio: hub.CodecPCMU, rate: 8000, ch: 1},
		{name: "Opus mono", medias: []*description.Media{video(h264f), audio(opusMono)}, video: h264f, audio: hub.CodecOpus, rate: 48000, ch: 1},
		{name: "AAC first, then G.711", medias: []*description.Media{video(h264f), audio(aac), audio(pcmu)}, video: h264f, audio: hub.CodecPCMU, rate: 8000, ch: 1},
		{name: "AAC", medias: []*description.Media{video(h264f), audio(aac)}, video: h264f,
			wantNote: "audio AAC is not relayed: the gateway does not transcode; set the camera's audio to G.711 or Opus"},
		{name: "G.711 stereo", medias: []*description.Media{video(h264f), audio(pcmaStereo)}, video: h264f,
			wantNote: "audio G.711 8000 Hz stereo is not relayed: WebRTC plays G.711 only at 8000 Hz mono; set the camera's audio to G.711 8000 Hz mono or Opus"},
		{name: "LPCM", medias: []*description.Media{video(h264f), audio(lpcm)}, video: h264f,
			wantNote: "audio LPCM is not relayed: the gateway does not transcode; set the camera's audio to G.711 or Opus"},
		{name: "back channel ignored", medias: []*description.Media{video(h264f), backchannel}, video: h264f},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desc := &description.Session{Medias: tc.medias}
			vm, vf := pickVideo(desc)
			if vf != tc.video || (vm == nil) != (tc.video == nil) {
				t.Errorf("video %v, want %v", vf, tc.video)
			}
			a, note := pickAudio(desc)
			var got string
			var rate, ch int
			if a != nil {
				got, rate, ch = a.codec, a.rate, a.channels
				if a.format.Codec() != "G711" && a.format.Codec() != "Opus" {
					t.Errorf("audio format %s", a.format.Codec())
				}
			}
			if got != tc.audio || rate != tc.rate || ch != tc.ch || note != tc.wantNote {
				t.Errorf("audio %q %d Hz %d ch, note %q; want %q %d Hz %d ch, note %q", got, rate, ch, note, tc.audio, tc.rate, tc.ch, tc.wantNote)
			}
		})
	}
}

// TestVideoTrackKeyframes: parameter sets go in front of keyframes that
// lack them, after a leading delimiter; a keyframe nothing can decode is
// not marked key; empty NAL units are dropped.
func TestVideoTrackKeyframes(t *testing.T) {
	aud := []byte{0x09, 0xf0}
	sps2 := append([]byte{}, testSPS...)
	sps2[len(sps2)-1]++ // a changed SPS, sent in band
	idr, p := testIDR(1), testP(2)
	for _, tc := range []struct {
		name    string
		sdpSPS  []byte
		sdpPPS  []byte
		au      [][]byte
		want    [][]byte
		wantKey bool
	}{
		{name: "keyframe gets the SDP's", sdpSPS: testSPS, sdpPPS: testPPS, au: [][]byte{idr}, want: [][]byte{testSPS, testPPS, idr}, wantKey: true},
		{name: "after the delimiter", sdpSPS: testSPS, sdpPPS: testPPS, au: [][]byte{aud, idr}, want: [][]byte{aud, testSPS, testPPS, idr}, wantKey: true},
		{name: "complete keyframe untouched", sdpSPS: testSPS, sdpPPS: testPPS, au: [][]byte{sps2, testPPS, idr}, want: [][]byte{sps2, testPPS, idr}, wantKey: true},
		{name: "only the PPS missing", sdpSPS: testSPS, sdpPPS: testPPS, au: [][]byte{sps2, idr}, want: [][]byte{sps2, testPPS, idr}, wantKey: true},
		{name: "no parameter sets anywhere", au: [][]byte{idr}, want: [][]byte{idr}, wantKey: false},
		{name: "non-key untouched", sdpSPS: testSPS, sdpPPS: testPPS, au: [][]byte{p}, want: [][]byte{p}},
		{name: "empty units dropped", sdpSPS: testSPS, sdpPPS: testPPS, au: [][]byte{{}, idr, {}}, want: [][]byte{testSPS, testPPS, idr}, wantKey: true},
		{name: "all empty", au: [][]byte{{}, nil}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVideoTrack(&format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: tc.sdpSPS, PPS: tc.sdpPPS})
			f, _ := v.frame(tc.au, 0, time.Now())
			if f.Key != tc.wantKey || len(f.NALUs) != len(tc.want) {
				t.Fatalf("key %v, %d units; want key %v, %d units", f.Key, len(f.NALUs), tc.wantKey, len(tc.want))
			}
			for i := range tc.want {
				if !bytes.Equal(f.NALUs[i], tc.want[i]) {
					t.Fatalf("unit %d is % x, want % x", i, f.NALUs[i], tc.want[i])
				}
			}
		})
	}
}

// TestRTPClock: PTS from 32-bit RTP timestamps survives wrap-around and
// goes backwards with them.
func TestRTPClock(t *testing.T) {
	var c rtpClock
	start := uint32(0xffff_f000) // a variable: the sums below wrap
	for _, step := range []struct {
		ts   uint32
		want int64
	}{
		{start, 0},
		{start + 3000, 3000},               // wraps through 0
		{start + 1000, 1000},               // B-frame: back
		{start + 90000*3600, 90000 * 3600}, // an hour on
		{start + 90000*3600*2, 90000 * 3600 * 2},
	} {
		if got := c.at(step.ts); got != step.want {
			t.Fatalf("at(%#x) = %d, want %d", step.ts, got, step.want)
		}
	}
	if d := ticksToDuration(90000*3600*30+45000, 90000); d != 30*time.Hour+500*time.Millisecond {
		t.Fatalf("30 h of 90 kHz ticks = %v", d)
	}
	if d := ticksToDuration(-1500, 90000); d != -time.Second/60 {
		t.Fatalf("-1500 ticks = %v", d)
	}
}
