package camsim

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// frameWait bounds the wait for one access unit; frames come every 67 ms.
const frameWait = 5 * time.Second

type frame struct {
	au      [][]byte
	rtpTime uint32
	recv    time.Time
}

func loadClip(t *testing.T, path string) *Clip {
	t.Helper()
	c, err := LoadClip(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startServer(t *testing.T, cams ...Camera) *Server {
	t.Helper()
	s, err := New(Options{Address: "127.0.0.1:0", Cameras: cams})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// play reads path over the TCP transport and returns its access units and
// its format from the SDP.
func play(t *testing.T, s *Server, path string) (<-chan frame, *format.H264) {
	t.Helper()
	u, err := base.ParseURL("rtsp://" + s.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatalf("describe %s: %v", path, err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		t.Fatalf("describe %s: no H.264 media", path)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatal(err)
	}
	frames := make(chan frame, 64)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) }) // runs before c.Close: unblocks the callback
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		au, err := dec.Decode(pkt)
		if err != nil {
			return // more packets needed, or joined mid access unit
		}
		select {
		case frames <- frame{au: au, rtpTime: pkt.Timestamp, recv: time.Now()}:
		case <-done:
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	return frames, forma
}

func next(t *testing.T, frames <-chan frame) frame {
	t.Helper()
	select {
	case f := <-frames:
		return f
	case <-time.After(frameWait):
		t.Fatalf("no access unit within %v", frameWait)
		return frame{}
	}
}

func naluTypes(au [][]byte) []h264.NALUType {
	var types []h264.NALUType
	for _, n := range au {
		types = append(types, h264.NALUType(n[0]&0x1f))
	}
	return types
}

func TestFirstIDRCarriesParameterSets(t *testing.T) {
	t.Parallel()
	s := startServer(t, Camera{Path: "/cam1", Clip: loadClip(t, "testdata/gop2s.h264")})
	frames, forma := play(t, s, "/cam1")
	if forma.SPS == nil || forma.PPS == nil {
		t.Error("SDP has no sprop-parameter-sets")
	}
	// A GOP is 30 frames; a reader that joins mid-GOP waits for the next IDR.
	for range 40 {
		f := next(t, frames)
		if !h264.IsRandomAccess(f.au) {
			continue
		}
		types := naluTypes(f.au)
		if len(types) < 4 || types[0] != h264.NALUTypeSPS || types[1] != h264.NALUTypePPS ||
			types[2] != h264.NALUTypeSEI || types[3] != h264.NALUTypeIDR {
			t.Fatalf("IDR access unit has NAL units %v, want SPS, PPS, SEI, IDR slices", types)
		}
		var sps h264.SPS
		if err := sps.Unmarshal(f.au[0]); err != nil {
			t.Fatal(err)
		}
		if sps.Width() != 320 || sps.Height() != 240 {
			t.Errorf("SPS size %dx%d, want 320x240", sps.Width(), sps.Height())
		}
		return
	}
	t.Fatal("no IDR access unit in 40 frames")
}

func TestStampsFollowSendOrder(t *testing.T) {
	t.Parallel()
	s := startServer(t, Camera{Path: "/cam1", Clip: loadClip(t, "testdata/gop10s.h264")})
	frames, _ := play(t, s, "/cam1")
	var prev time.Time
	for i := range 10 {
		prev = checkStamp(t, i, next(t, frames), prev)
	}
}

// checkStamp checks access unit i's send-time stamp: present, after the
// previous one, and received within a second of it. It returns the stamp.
func checkStamp(t *testing.T, i int, f frame, prev time.Time) time.Time {
	t.Helper()
	stamp, ok := ParseStamp(f.au)
	if !ok {
		t.Fatalf("access unit %d (%v) has no stamp", i, naluTypes(f.au))
	}
	if !stamp.After(prev) {
		t.Errorf("access unit %d stamped %v, not after the previous %v", i, stamp, prev)
	}
	if lat := f.recv.Sub(stamp); lat < 0 || lat > time.Second {
		t.Errorf("access unit %d received %v after its stamp, want within 0..1s", i, lat)
	}
	return stamp
}

func TestLoopsPastClipEnd(t *testing.T) {
	t.Parallel()
	clip := *loadClip(t, "testdata/gop2s.h264")
	clip.AccessUnits = clip.AccessUnits[:5] // one IDR and four P pictures, 1/3 s
	s := startServer(t, Camera{Path: "/short", Clip: &clip})
	frames, _ := play(t, s, "/short")
	const ticks = 90000 / 15

	first := next(t, frames)
	for !h264.IsRandomAccess(first.au) {
		first = next(t, frames)
	}
	prev := first.rtpTime
	for range 3 * len(clip.AccessUnits) { // three loops
		f := next(t, frames)
		step := f.rtpTime - prev
		if step == 0 || step%ticks != 0 || step > 1<<31 {
			t.Fatalf("RTP timestamp went from %d to %d, want a step of a positive multiple of %d", prev, f.rtpTime, ticks)
		}
		frameNo := (f.rtpTime - first.rtpTime) / ticks
		if wantIDR := frameNo%5 == 0; h264.IsRandomAccess(f.au) != wantIDR {
			t.Errorf("frame %d: IDR %v, want %v (the clip restarts every 5 frames)", frameNo, !wantIDR, wantIDR)
		}
		prev = f.rtpTime
	}
}

func TestTwoReadersOfOnePath(t *testing.T) {
	t.Parallel()
	clip := loadClip(t, "testdata/gop2s.h264")
	s := startServer(t,
		Camera{Path: "/cam1", Clip: clip},
		Camera{Path: "/cam2", Clip: loadClip(t, "testdata/gop10s.h264")},
	)
	a, _ := play(t, s, "/cam1")
	b, _ := play(t, s, "/cam1")
	for _, frames := range []<-chan frame{a, b} {
		for range 3 {
			if _, ok := ParseStamp(next(t, frames).au); !ok {
				t.Fatal("access unit without stamp")
			}
		}
	}
}

func TestUnknownPathNotFound(t *testing.T) {
	t.Parallel()
	s := startServer(t, Camera{Path: "/cam1", Clip: loadClip(t, "testdata/gop2s.h264")})
	u, err := base.ParseURL("rtsp://" + s.Addr().String() + "/cam9")
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, res, err := c.Describe(u); err == nil || res == nil || res.StatusCode != base.StatusNotFound {
		t.Errorf("describe /cam9: response %v, error %v; want 404", res, err)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	clip := &Clip{AccessUnits: []AccessUnit{{IDR: true}}}
	tests := []struct {
		name string
		opts Options
	}{
		{"no address", Options{Cameras: []Camera{{Path: "/cam1", Clip: clip}}}},
		{"no cameras", Options{Address: "127.0.0.1:0"}},
		{"one UDP address", Options{Address: "127.0.0.1:0", UDPRTPAddress: ":8000", Cameras: []Camera{{Path: "/cam1", Clip: clip}}}},
		{"no path", Options{Address: "127.0.0.1:0", Cameras: []Camera{{Clip: clip}}}},
		{"no clip", Options{Address: "127.0.0.1:0", Cameras: []Camera{{Path: "/cam1"}}}},
		{"duplicate path", Options{Address: "127.0.0.1:0", Cameras: []Camera{{Path: "/cam1", Clip: clip}, {Path: "cam1", Clip: clip}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}
