package source

import (
	"context"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/shelterwatch/shelterwatch/video/camsim"
	"github.com/shelterwatch/shelterwatch/video/hub"
)

func startCamera(t *testing.T, addr string) *camsim.Server {
	t.Helper()
	clip, err := camsim.LoadClip("../camsim/testdata/gop2s.h264")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := camsim.New(camsim.Options{Address: addr, Cameras: []camsim.Camera{{Path: "/cam1", Clip: clip}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return srv
}

// nextKeyframe reads v until a keyframe and checks it can start a decoder.
func nextKeyframe(t *testing.T, v *hub.Viewer, within time.Duration) *hub.Frame {
	t.Helper()
	f := nextFrame(t, v, within, "keyframe", func(f *hub.Frame) bool { return f.Key })
	var sps, pps, idr bool
	for _, n := range f.NALUs {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = true
		case h264.NALUTypePPS:
			pps = true
		case h264.NALUTypeIDR:
			idr = true
		}
	}
	if !sps || !pps || !idr {
		t.Fatalf("keyframe without SPS/PPS/IDR: sps=%v pps=%v idr=%v", sps, pps, idr)
	}
	return f
}

func waitState(t *testing.T, s *Source, state string, within time.Duration) Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := s.Status()
		if st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera state %q (reason %q), want %q within %v", st.State, st.Reason, state, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPullsIntoHubAndSurvivesCameraRestart pulls the simulated camera over
// RTSP (TCP), checks that a viewer gets decodable keyframes with the
// camera's send-time stamps, then restarts the camera: the source
// reconnects and the same viewer continues without resubscribing.
func TestPullsIntoHubAndSurvivesCameraRestart(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	addr := cam.Addr().String()
	src, h := runSource(t, "rtsp://"+addr+"/cam1")

	v := h.Subscribe()
	defer v.Close()
	f := nextKeyframe(t, v, 10*time.Second)
	if _, ok := camsim.ParseStamp(f.NALUs); !ok {
		t.Fatal("the camera's send-time stamp did not survive the relay")
	}
	st := waitState(t, src, StateLive, 5*time.Second)
	if st.Frames == 0 {
		t.Fatalf("live with no frames: %+v", st)
	}

	// The camera goes away and comes back on the same address.
	if err := cam.Close(); err != nil {
		t.Fatal(err)
	}
	waitState(t, src, StateFailed, 15*time.Second)
	if n := h.Stats().CachedFrames; n != 0 {
		t.Fatalf("%d frames of the lost stream still cached for new viewers", n)
	}
	cam2 := startCamera(t, addr)
	defer cam2.Close()
	waitState(t, src, StateLive, 15*time.Second)
	nextKeyframe(t, v, 10*time.Second)
	if st := src.Status(); st.Reconnects == 0 {
		t.Fatalf("no reconnect counted: %+v", st)
	}
}

func TestRejectsBadOptions(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	for _, o := range []Options{
		{Name: "c", URL: "http://x/cam", Hub: h},
		{Name: "c", URL: "rtsp://x/cam", Hub: h, Transport: "quic"},
		{Name: "", URL: "rtsp://x/cam", Hub: h},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
	s, err := New(Options{Name: "c", URL: "rtsp://admin:secret@10.0.0.5/cam", Hub: h})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != StateConnecting {
		t.Fatalf("initial state %q", st.State)
	}
	if got := redact("rtsp://admin:secret@10.0.0.5/cam"); got != "rtsp://admin:xxxxx@10.0.0.5/cam" {
		t.Fatalf("redacted URL %q", got)
	}
}
