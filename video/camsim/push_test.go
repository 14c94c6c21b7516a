package camsim

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// pushWait bounds the wait for ffmpeg to start publishing and for a
// refused ffmpeg to give up.
const pushWait = 10 * time.Second

// ffmpegTicks is the RTP time between frames of the 15 fps pushes.
const ffmpegTicks = 90000 / 15

// startPushServer starts a server that accepts pushes, with UDP on a free
// port pair besides TCP, and the given clip cameras.
func startPushServer(t *testing.T, cams ...Camera) *Server {
	t.Helper()
	s, err := New(Options{
		Address:        "127.0.0.1:0",
		UDPRTPAddress:  "127.0.0.1:0",
		UDPRTCPAddress: "127.0.0.1:0",
		Cameras:        cams,
		Push:           true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rtspURL(s *Server, path string) string { return "rtsp://" + s.Addr().String() + path }

// ffmpegPush is a running ffmpeg that pushes a test pattern.
type ffmpegPush struct {
	cmd  *exec.Cmd
	log  *testpeer.SyncBuffer
	done chan struct{} // closed when ffmpeg has exited
	err  error         // how it exited, once done is closed
}

// startFFmpeg pushes a 320x240, 15 fps H.264 test pattern with an IDR
// every 2 s to url over transport ("tcp" or "udp"), with G.711 audio if
// audio is set. The process is killed at cleanup.
func startFFmpeg(t *testing.T, url, transport string, audio bool) *ffmpegPush {
	t.Helper()
	bin := testpeer.Require(t, "ffmpeg", "ffmpeg")
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"}
	if audio {
		args = append(args, "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000")
	}
	// yuv420p as from a camera: testsrc is RGB, which libx264 would keep
	// as 4:4:4, a profile that browsers do not decode.
	args = append(args, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30",
		"-tune", "zerolatency", "-preset", "ultrafast", "-bf", "0")
	if audio {
		args = append(args, "-c:a", "pcm_mulaw")
	}
	args = append(args, "-f", "rtsp", "-rtsp_transport", transport, url)

	p := &ffmpegPush{cmd: exec.Command(bin, args...), log: &testpeer.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start ffmpeg: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill stops ffmpeg at once, like pulling a camera's cable, and waits for it.
func (p *ffmpegPush) kill() {
	_ = p.cmd.Process.Kill() // fails only if it has already exited
	<-p.done
}

// waitRefused waits for ffmpeg to give up and checks that it failed
// mentioning reason.
func (p *ffmpegPush) waitRefused(t *testing.T, reason string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(pushWait):
		t.Fatalf("ffmpeg still runs after %v, want it refused; its log:\n%s", pushWait, p.log)
	}
	if p.err == nil || !strings.Contains(p.log.String(), reason) {
		t.Fatalf("ffmpeg exited with %v, want an error mentioning %q; its log:\n%s", p.err, reason, p.log)
	}
}

// waitPublished polls DESCRIBE until path has a stream from p.
func waitPublished(t *testing.T, s *Server, path string, p *ffmpegPush) {
	t.Helper()
	u, err := base.ParseURL(rtspURL(s, path))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(pushWait)
	for {
		c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
		if err := c.Start2(); err != nil {
			t.Fatal(err)
		}
		_, res, err := c.Describe(u)
		c.Close()
		if err == nil && res.StatusCode == base.StatusOK {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("ffmpeg exited (%v) before publishing %s; its log:\n%s", p.err, path, p.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not published within %v (last DESCRIBE: %v); ffmpeg log:\n%s", path, pushWait, err, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveReader plays a path: its H.264 access units, its G.711 packets, and
// the end of its stream.
type liveReader struct {
	desc  *description.Session
	video <-chan frame
	audio <-chan *rtp.Packet
	ended <-chan error // the client's end, when the server closes the stream
}

func readLive(t *testing.T, s *Server, path string, transport gortsplib.Transport) *liveReader {
	t.Helper()
	u, err := base.ParseURL(rtspURL(s, path))
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &transport}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ended := make(chan error, 1)
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		ended <- c.Wait()
	}()
	t.Cleanup(func() {
		close(done) // unblocks the callbacks
		c.Close()
		<-waited
	})

	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatalf("describe %s: %v", path, err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatalf("setup %s: %v", path, err)
	}
	video := make(chan frame, 256)
	audio := make(chan *rtp.Packet, 256)
	var h264f *format.H264
	if medi := desc.FindFormat(&h264f); medi != nil {
		dec, err := h264f.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		c.OnPacketRTP(medi, h264f, func(pkt *rtp.Packet) {
			au, err := dec.Decode(pkt)
			if err != nil {
				return // more packets needed, or joined mid access unit
			}
			select {
			case video <- frame{au: au, rtpTime: pkt.Timestamp, recv: time.Now()}:
			case <-done:
			}
		})
	}
	var g711 *format.G711
	if medi := desc.FindFormat(&g711); medi != nil {
		c.OnPacketRTP(medi, g711, func(pkt *rtp.Packet) {
			select {
			case audio <- pkt:
			case <-done:
			}
		})
	}
	if _, err := c.Play(nil); err != nil {
		t.Fatalf("play %s: %v", path, err)
	}
	return &liveReader{desc: desc, video: video, audio: audio, ended: ended}
}

// waitEnd waits for the server to end the reader's stream. A publisher
// that leaves ends it at once, also over UDP where gortsplib alone would
// wait 10 s for packets; endWait leaves room for a loaded machine only.
func (r *liveReader) waitEnd(t *testing.T, why string) {
	t.Helper()
	const endWait = 3 * time.Second
	select {
	case <-r.ended:
	case <-time.After(endWait):
		t.Fatalf("reader's stream still open %v after %s", endWait, why)
	}
}

// nextIDR returns the next IDR access unit; the pushes have one every 2 s.
func nextIDR(t *testing.T, frames <-chan frame) frame {
	t.Helper()
	for range 40 {
		if f := next(t, frames); h264.IsRandomAccess(f.au) {
			return f
		}
	}
	t.Fatal("no IDR access unit in 40 frames")
	return frame{}
}

// checkStampedIDR checks the layout a reader needs to start decoding: SPS
// and PPS first, then SEI messages ending with the stamp, then only IDR
// slices.
func checkStampedIDR(t *testing.T, au [][]byte) {
	t.Helper()
	types := naluTypes(au)
	if len(types) < 4 || types[0] != h264.NALUTypeSPS || types[1] != h264.NALUTypePPS {
		t.Fatalf("IDR access unit has NAL units %v, want SPS, PPS first", types)
	}
	first := slices.Index(types, h264.NALUTypeIDR)
	if first < 3 {
		t.Fatalf("IDR access unit has NAL units %v, want SPS, PPS, SEI before the slices", types)
	}
	for i, typ := range types[2:first] {
		if typ != h264.NALUTypeSEI {
			t.Fatalf("IDR access unit has NAL units %v, want only SEI between PPS and the slices", types)
		}
		if _, ok := ParseStamp(au[2+i : 3+i]); ok != (2+i == first-1) {
			t.Fatalf("IDR access unit has NAL units %v, want one stamp, just before the slices", types)
		}
	}
	for _, typ := range types[first:] {
		if typ != h264.NALUTypeIDR {
			t.Fatalf("IDR access unit has NAL units %v, want only IDR slices after the stamp", types)
		}
	}
	var sps h264.SPS
	if err := sps.Unmarshal(au[0]); err != nil {
		t.Fatal(err)
	}
	if sps.Width() != 320 || sps.Height() != 240 {
		t.Errorf("SPS size %dx%d, want 320x240", sps.Width(), sps.Height())
	}
}

func TestPushIsStamped(t *testing.T) {
	t.Parallel()
	for _, tr := range []struct {
		name      string
		transport gortsplib.Transport
	}{
		{"tcp", gortsplib.TransportTCP},
		{"udp", gortsplib.TransportUDP},
	} {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			s := startPushServer(t)
			ff := startFFmpeg(t, rtspURL(s, "/live"), tr.name, false)
			waitPublished(t, s, "/live", ff)
			r := readLive(t, s, "/live", tr.transport)
			var forma *format.H264
			if r.desc.FindFormat(&forma) == nil || forma.SPS == nil || forma.PPS == nil {
				t.Fatalf("DESCRIBE has no H.264 format with sprop-parameter-sets: %v", r.desc.Medias)
			}

			prev := nextIDR(t, r.video)
			checkStampedIDR(t, prev.au)
			prevStamp, _ := ParseStamp(prev.au)
			for i := range 20 {
				f := next(t, r.video)
				stamp := checkStamp(t, i, f, prevStamp)
				// ffmpeg's RTP times go through unchanged: one frame apart.
				if step := f.rtpTime - prev.rtpTime; step == 0 || step%ffmpegTicks != 0 || step > 1<<31 {
					t.Errorf("RTP timestamp went from %d to %d, want a step of a positive multiple of %d",
						prev.rtpTime, f.rtpTime, ffmpegTicks)
				}
				if h264.IsRandomAccess(f.au) {
					checkStampedIDR(t, f.au)
				}
				prev, prevStamp = f, stamp
			}
		})
	}
}

// TestPushRestart kills the publishing ffmpeg like a camera losing power,
// and starts it again.
func TestPushRestart(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"tcp", "udp"} {
		t.Run("publisher="+transport, func(t *testing.T) {
			t.Parallel()
			s := startPushServer(t)
			ff := startFFmpeg(t, rtspURL(s, "/live"), transport, false)
			waitPublished(t, s, "/live", ff)
			r := readLive(t, s, "/live", gortsplib.TransportTCP)
			if _, ok := ParseStamp(next(t, r.video).au); !ok {
				t.Fatal("access unit without stamp")
			}

			ff.kill()
			r.waitEnd(t, "ffmpeg was killed")

			ff = startFFmpeg(t, rtspURL(s, "/live"), transport, false)
			waitPublished(t, s, "/live", ff)
			r = readLive(t, s, "/live", gortsplib.TransportTCP)
			checkStampedIDR(t, nextIDR(t, r.video).au)
		})
	}
}

func TestPushRefusedByFFmpeg(t *testing.T) {
	t.Parallel()
	s := startPushServer(t, Camera{Path: "/cam1", Clip: loadClip(t, "testdata/gop2s.h264")})
	ff := startFFmpeg(t, rtspURL(s, "/live"), "tcp", false)
	waitPublished(t, s, "/live", ff)
	clipReader := readLive(t, s, "/cam1", gortsplib.TransportTCP)
	pushReader := readLive(t, s, "/live", gortsplib.TransportTCP)

	startFFmpeg(t, rtspURL(s, "/cam1"), "tcp", false).waitRefused(t, "403 Forbidden (path serves a looped clip)")
	startFFmpeg(t, rtspURL(s, "/live"), "tcp", false).waitRefused(t, "503 Service Unavailable (path already has a publisher)")

	// Neither the camera nor the first publisher noticed.
	for _, r := range []*liveReader{clipReader, pushReader} {
		for range 3 {
			if _, ok := ParseStamp(next(t, r.video).au); !ok {
				t.Fatal("access unit without stamp")
			}
		}
	}
	select {
	case <-ff.done:
		t.Fatalf("the first ffmpeg exited (%v); its log:\n%s", ff.err, ff.log)
	default:
	}
}

func TestPushWithAudio(t *testing.T) {
	t.Parallel()
	s := startPushServer(t)
	ff := startFFmpeg(t, rtspURL(s, "/live"), "tcp", true)
	waitPublished(t, s, "/live", ff)
	r := readLive(t, s, "/live", gortsplib.TransportTCP)

	var g711 *format.G711
	if r.desc.FindFormat(&g711) == nil {
		t.Fatalf("DESCRIBE has no G.711 format: %d medias", len(r.desc.Medias))
	}
	if !g711.MULaw || g711.SampleRate != 8000 || g711.ChannelCount != 1 {
		t.Errorf("G.711 format %+v, want mu-law, 8000 Hz, mono", g711)
	}
	if _, ok := ParseStamp(next(t, r.video).au); !ok {
		t.Fatal("access unit without stamp")
	}
	select {
	case pkt := <-r.audio:
		if len(pkt.Payload) == 0 {
			t.Error("audio packet without payload")
		}
	case <-time.After(frameWait):
		t.Fatalf("no audio packet within %v", frameWait)
	}
}

// TestAnnounceRefused checks the status of each refusal with a plain RTSP
// publisher, whose session stays open while ffmpeg would exit.
func TestAnnounceRefused(t *testing.T) {
	t.Parallel()
	clip := loadClip(t, "testdata/gop2s.h264")
	desc := func() *description.Session {
		return &description.Session{Medias: []*description.Media{{
			Type:    description.MediaTypeVideo,
			Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.SPS, PPS: clip.PPS}},
		}}}
	}
	tests := []struct {
		name     string
		push     bool
		busy     bool // another publisher already records the path
		path     string
		wantCode base.StatusCode
		wantText string
	}{
		{"pushes disabled", false, false, "/live", base.StatusForbidden, "pushes are disabled"},
		{"clip path", true, false, "/cam1", base.StatusForbidden, "path serves a looped clip"},
		{"busy path", true, true, "/live", base.StatusServiceUnavailable, "path already has a publisher"},
		{"no path", true, false, "/", base.StatusBadRequest, "a push needs a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(Options{Address: "127.0.0.1:0", Cameras: []Camera{{Path: "/cam1", Clip: clip}}, Push: tt.push})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if tt.busy {
				tcp := gortsplib.TransportTCP
				first := &gortsplib.Client{Transport: &tcp}
				if err := first.StartRecording(rtspURL(s, tt.path), desc()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(first.Close)
			}

			u, err := base.ParseURL(rtspURL(s, tt.path))
			if err != nil {
				t.Fatal(err)
			}
			c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
			if err := c.Start2(); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Announce(u, desc())
			var bad liberrors.ErrClientBadStatusCode
			if !errors.As(err, &bad) || bad.Code != tt.wantCode || !strings.Contains(bad.Message, tt.wantText) {
				t.Errorf("ANNOUNCE %s: %v; want %d with %q", tt.path, err, tt.wantCode, tt.wantText)
			}
		})
	}
}

// TestPushedPathFreedOnLeave checks the path's life without ffmpeg: a
// reader is refused before the push, plays during it, and ends with it.
func TestPushedPathFreedOnLeave(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Address: "127.0.0.1:0", Push: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, err := base.ParseURL(rtspURL(s, "/live"))
	if err != nil {
		t.Fatal(err)
	}
	describe := func() base.StatusCode {
		t.Helper()
		c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
		if err := c.Start2(); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, res, _ := c.Describe(u)
		if res == nil {
			t.Fatal("DESCRIBE without response")
		}
		return res.StatusCode
	}
	if code := describe(); code != base.StatusNotFound {
		t.Fatalf("DESCRIBE before the push: %d, want 404", code)
	}

	clip := loadClip(t, "testdata/gop2s.h264")
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.SPS, PPS: clip.PPS}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	tcp := gortsplib.TransportTCP
	pub := &gortsplib.Client{Transport: &tcp}
	if err := pub.StartRecording(u.String(), &description.Session{Medias: []*description.Media{medi}}); err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	r := readLive(t, s, "/live", gortsplib.TransportTCP)

	enc, err := forma.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	// Slices only, as ffmpeg sends them: the server adds SPS, PPS and the stamp.
	pkts, err := enc.Encode(clip.AccessUnits[0].Slices)
	if err != nil {
		t.Fatal(err)
	}
	// Until the reader's PLAY has reached the stream, packets are lost:
	// send the IDR until one arrives.
	deadline := time.Now().Add(frameWait)
	var got frame
	for got.au == nil {
		for _, pkt := range pkts {
			pkt.Timestamp = 1234
			if err := pub.WritePacketRTP(medi, pkt); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case got = <-r.video:
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("no access unit within %v", frameWait)
			}
		}
	}
	checkStampedIDR(t, got.au)
	if got.rtpTime != 1234 {
		t.Errorf("RTP timestamp %d, want the publisher's 1234", got.rtpTime)
	}

	pub.Close()
	r.waitEnd(t, "the publisher closed")
	if code := describe(); code != base.StatusNotFound {
		t.Errorf("DESCRIBE after the push: %d, want 404", code)
	}
}

func TestStampAccessUnit(t *testing.T) {
	t.Parallel()
	var (
		sps    = []byte{byte(h264.NALUTypeSPS), 1}
		pps    = []byte{byte(h264.NALUTypePPS), 2}
		aud    = []byte{byte(h264.NALUTypeAccessUnitDelimiter), 0xf0}
		sei    = []byte{byte(h264.NALUTypeSEI), 6, 1, 0, 0x80}
		idr    = []byte{0x65, 0x88}
		idr2   = []byte{0x65, 0x99}
		slice  = []byte{0x41, 0x9a}
		oldSPS = []byte{byte(h264.NALUTypeSPS), 9}
		t0     = time.Unix(1700000000, 0)
		stamp  = stampNALU(t0)
	)
	tests := []struct {
		name string
		au   [][]byte
		want [][]byte
	}{
		{"IDR gets parameter sets and stamp", [][]byte{idr}, [][]byte{sps, pps, stamp, idr}},
		{"parameter sets after delimiter, stamp after SEI",
			[][]byte{aud, sei, idr, idr2}, [][]byte{aud, sps, pps, sei, stamp, idr, idr2}},
		{"in-band parameter sets kept", [][]byte{oldSPS, pps, idr}, [][]byte{oldSPS, pps, stamp, idr}},
		{"missing PPS added after SPS", [][]byte{oldSPS, idr}, [][]byte{oldSPS, pps, stamp, idr}},
		{"missing SPS added before PPS", [][]byte{aud, pps, idr}, [][]byte{aud, sps, pps, stamp, idr}},
		{"P picture gets only the stamp", [][]byte{slice}, [][]byte{stamp, slice}},
		{"older stamp replaced", [][]byte{stampNALU(t0.Add(-time.Hour)), slice}, [][]byte{stamp, slice}},
		{"empty NAL unit dropped", [][]byte{{}, slice}, [][]byte{stamp, slice}},
		{"RTP-only NAL unit dropped", [][]byte{{0xdc, 0xc2}, slice}, [][]byte{stamp, slice}},
		{"no slice not stamped", [][]byte{sei}, [][]byte{sei}},
		{"nothing left", [][]byte{{}, {0x7c, 0x85}}, [][]byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stampAccessUnit(tt.au, sps, pps, t0)
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("stampAccessUnit(%v) = %v, want %v", naluTypes(tt.au), got, tt.want)
			}
		})
	}
}

// TestStamperRTPTime feeds access units of two packets each, with and
// without marker bits, and checks the RTP time of what comes out.
func TestStamperRTPTime(t *testing.T) {
	t.Parallel()
	clip := loadClip(t, "testdata/gop2s.h264")
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.SPS, PPS: clip.PPS}
	for _, marker := range []bool{true, false} {
		t.Run("marker="+map[bool]string{true: "set", false: "never"}[marker], func(t *testing.T) {
			t.Parallel()
			st, err := newH264Stamper(forma, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			enc := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
			e, err := enc.CreateEncoder()
			if err != nil {
				t.Fatal(err)
			}
			e.PayloadMaxSize = 200 // every slice in several FU-A packets
			var times []uint32
			for n, au := range clip.AccessUnits[:4] {
				pkts, err := e.Encode(au.Slices)
				if err != nil {
					t.Fatal(err)
				}
				for _, pkt := range pkts {
					pkt.Timestamp = uint32(1000 + n*ffmpegTicks)
					pkt.Marker = pkt.Marker && marker
					out, _ := st.stamp(pkt)
					if len(out) > 0 {
						times = append(times, out[0].Timestamp)
						for _, o := range out {
							if o.Timestamp != out[0].Timestamp {
								t.Errorf("one access unit with RTP times %d and %d", out[0].Timestamp, o.Timestamp)
							}
						}
					}
				}
			}
			want := []uint32{1000, 1000 + ffmpegTicks, 1000 + 2*ffmpegTicks, 1000 + 3*ffmpegTicks}
			if !marker {
				want = want[:3] // the last one ends only with the next timestamp
			}
			if !slices.Equal(times, want) {
				t.Errorf("access units at RTP times %v, want %v", times, want)
			}
		})
	}
}

func TestNewPushOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"push without cameras", Options{Address: "127.0.0.1:0", Push: true}, false},
		{"free UDP pair", Options{Address: "127.0.0.1:0", Push: true, UDPRTPAddress: "127.0.0.1:0", UDPRTCPAddress: "127.0.0.1:0"}, false},
		{"no cameras and no push", Options{Address: "127.0.0.1:0"}, true},
		{"UDP port 0 in one address", Options{Address: "127.0.0.1:0", Push: true, UDPRTPAddress: "127.0.0.1:0", UDPRTCPAddress: "127.0.0.1:8001"}, true},
		{"UDP address without port", Options{Address: "127.0.0.1:0", Push: true, UDPRTPAddress: "127.0.0.1", UDPRTCPAddress: "127.0.0.1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if err := s.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			s.Close()
		})
	}
}

// FuzzStamper feeds arbitrary RTP payloads from a publisher to the H.264
// stamper. data is a sequence of packets, each a flags byte (bit 0: marker,
// bit 1: next timestamp) then a length byte and that many payload bytes.
// Whatever comes in, each access unit that comes out with a slice carries
// a stamp.
func FuzzStamper(f *testing.F) {
	clip, err := LoadClip("testdata/gop2s.h264")
	if err != nil {
		f.Fatal(err)
	}
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.SPS, PPS: clip.PPS}
	enc, err := forma.CreateEncoder()
	if err != nil {
		f.Fatal(err)
	}
	enc.PayloadMaxSize = 100
	var seed []byte
	for _, au := range clip.AccessUnits[:2] {
		pkts, err := enc.Encode(au.Slices)
		if err != nil {
			f.Fatal(err)
		}
		for i, pkt := range pkts {
			flags := byte(0)
			if pkt.Marker {
				flags |= 1
			}
			if i == 0 {
				flags |= 2
			}
			seed = append(seed, flags, byte(len(pkt.Payload)))
			seed = append(seed, pkt.Payload...)
		}
	}
	f.Add(seed)
	f.Add([]byte{3, 2, 0x7c, 0x85}) // a lone FU-A start with end bit clear
	// An FU-A with start and end bits both set carrying a NAL unit of type
	// 28 (FU-A), which readers took for a fragment of a slice.
	f.Add([]byte("10\xdc\xdc\xc2"))

	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := newH264Stamper(forma, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		check, err := forma.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		ts := uint32(0)
		for len(data) >= 2 {
			flags, n := data[0], int(data[1])
			data = data[2:]
			if n > len(data) {
				n = len(data)
			}
			if flags&2 != 0 {
				ts += ffmpegTicks
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: flags&1 != 0, Timestamp: ts},
				Payload: data[:n]}
			data = data[n:]
			out, _ := st.stamp(pkt)
			for _, o := range out {
				au, err := check.Decode(o)
				if err != nil {
					continue
				}
				isSlice := func(nalu []byte) bool {
					return len(nalu) > 0 && nalu[0]&0x1f >= 1 && nalu[0]&0x1f <= 5 // non-IDR, partitions, IDR
				}
				if slices.ContainsFunc(au, isSlice) {
					if _, ok := ParseStamp(au); !ok {
						t.Fatalf("access unit %v without stamp", naluTypes(au))
					}
				}
			}
		}
	})
}
