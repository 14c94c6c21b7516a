package cameras

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/video/camsim"
	"github.com/shelterwatch/shelterwatch/video/hub"
	"github.com/shelterwatch/shelterwatch/video/source"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

func startSim(t *testing.T) string {
	t.Helper()
	clip, err := camsim.LoadClip("../camsim/testdata/gop2s.h264")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := camsim.New(camsim.Options{Address: "127.0.0.1:0", Cameras: []camsim.Camera{{Path: "/cam", Clip: clip}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return "rtsp://" + sim.Addr().String() + "/cam"
}

func status(t *testing.T, s *Set, id string) Status {
	t.Helper()
	for _, st := range s.Statuses() {
		if st.ID == id {
			return st
		}
	}
	t.Fatalf("no camera %q", id)
	return Status{}
}

// TestOnDemandStartsOnFirstViewerAndStopsAfterGrace: nothing is pulled
// until a viewer acquires the camera; the pull survives a viewer leaving
// and another arriving within the grace period, and stops (forgetting the
// cached picture) once the grace period passes with nobody watching.
func TestOnDemandStartsOnFirstViewerAndStopsAfterGrace(t *testing.T) {
	url := startSim(t)
	s, err := New([]Camera{
		{ID: "hall", URL: url, Transport: source.TransportTCP, OnDemand: true, Grace: 400 * time.Millisecond},
		{ID: "door", URL: url, Transport: source.TransportTCP},
	}, hub.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	if st := status(t, s, "hall"); st.Pulling || st.State != "idle" {
		t.Fatalf("on-demand camera pulling before anyone watches: %+v", st)
	}
	testpeer.WaitFor(t, "the always-on camera to go live", 10*time.Second, func() bool { return status(t, s, "door").State == source.StateLive })
	time.Sleep(300 * time.Millisecond)
	if st := status(t, s, "hall"); st.Pulling || st.Frames != 0 {
		t.Fatalf("on-demand camera pulled with nobody watching: %+v", st)
	}

	h, release, err := s.Acquire(ctx, "hall", whep.StreamMain)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.MediaKnown():
	case <-time.After(10 * time.Second):
		t.Fatalf("on-demand camera did not start: %+v", status(t, s, "hall"))
	}
	testpeer.WaitFor(t, "frames", 10*time.Second, func() bool { return status(t, s, "hall").Frames > 0 })

	// Leave and come back within the grace period: the same pull.
	release()
	release() // a second call is harmless
	time.Sleep(150 * time.Millisecond)
	_, release2, err := s.Acquire(ctx, "hall", whep.StreamMain)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if st := status(t, s, "hall"); !st.Pulling || st.Reconnects != 0 {
		t.Fatalf("pull interrupted by a viewer who came back: %+v", st)
	}
	release2()
	testpeer.WaitFor(t, "the pull to stop after the grace period", 5*time.Second, func() bool { return !status(t, s, "hall").Pulling })
	if _, ok := h.Media(); ok || h.Stats().CachedFrames != 0 {
		t.Fatal("a stopped on-demand camera still offers its old picture")
	}
	if st := status(t, s, "door"); !st.Pulling || st.State != source.StateLive {
		t.Fatalf("always-on camera affected: %+v", st)
	}
	if _, _, err := s.Acquire(ctx, "yard", whep.StreamMain); err != whep.ErrUnknownCamera {
		t.Fatalf("unknown camera: %v", err)
	}
}

func TestNewRejectsDuplicatesAndBadURLs(t *testing.T) {
	if _, err := New([]Camera{{ID: "a", URL: "rtsp://x/a"}, {ID: "a", URL: "rtsp://x/b"}}, hub.Options{}, nil); err == nil {
		t.Fatal("duplicate id accepted")
	}
	if _, err := New([]Camera{{ID: "a", URL: "http://x/a"}}, hub.Options{}, nil); err == nil {
		t.Fatal("non-RTSP URL accepted")
	}
}

// TestFailedCameraRefusesViewersAtOnce: a new viewer of a camera that is
// down hears so at once, with the reason, instead of waiting for a
// stream that is not coming; an on-demand camera does not count as down
// before it was started.
func TestFailedCameraRefusesViewersAtOnce(t *testing.T) {
	// A port nothing listens on: the camera is switched off.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	off := "rtsp://" + ln.Addr().String() + "/cam"
	ln.Close()
	s, err := New([]Camera{{ID: "yard", URL: off, Transport: source.TransportTCP}}, hub.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testpeer.WaitFor(t, "the camera to fail", 10*time.Second, func() bool { return status(t, s, "yard").State == source.StateFailed })
	start := time.Now()
	_, _, err = s.Acquire(ctx, "yard", whep.StreamMain)
	took := time.Since(start)
	if !errors.Is(err, whep.ErrCameraDown) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("Acquire of a failed camera: %v, want ErrCameraDown with the reason", err)
	}
	if took > 100*time.Millisecond {
		t.Errorf("refusal took %v", took)
	}
	if r := s.Reason("yard"); !strings.HasPrefix(r, "failed: ") {
		t.Errorf("Reason %q", r)
	}
}

// A sub stream is pulled only while someone holds it (unless always
// on), is reported beside the main one, and is refused for a camera
// without one.
func TestSubStreamOnDemand(t *testing.T) {
	url := startSim(t)
	s, err := New([]Camera{
		{ID: "hall", URL: url, SubURL: url, Transport: source.TransportTCP, Grace: 300 * time.Millisecond},
		{ID: "yard", URL: url, SubURL: url, SubAlwaysOn: true, Transport: source.TransportTCP},
		{ID: "door", URL: url, Transport: source.TransportTCP},
	}, hub.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, nil) }()
	defer func() {
		cancel()
		<-ran
	}()
	testpeer.WaitFor(t, "the always-on sub stream to go live", 10*time.Second, func() bool {
		st := status(t, s, "yard")
		return st.Sub != nil && st.Sub.State == source.StateLive
	})
	if st := status(t, s, "hall"); st.Sub == nil || st.Sub.Pulling || st.Sub.State != "idle" {
		t.Fatalf("on-demand sub stream before anyone watches: %+v", st.Sub)
	}
	if st := status(t, s, "door"); st.Sub != nil {
		t.Fatalf("camera without a sub stream reports one: %+v", st.Sub)
	}
	if _, _, err := s.Acquire(ctx, "door", whep.StreamSub); !errors.Is(err, whep.ErrNoSubStream) {
		t.Fatalf("sub stream of a camera without one: %v", err)
	}
	h, release, err := s.Acquire(ctx, "hall", whep.StreamSub)
	if err != nil {
		t.Fatal(err)
	}
	if h == s.Hub("hall") {
		t.Fatal("the sub stream shares the main stream's hub")
	}
	select {
	case <-h.MediaKnown():
	case <-time.After(10 * time.Second):
		t.Fatal("the sub stream did not start")
	}
	release()
	testpeer.WaitFor(t, "the sub stream to stop after its grace", 5*time.Second, func() bool {
		st := status(t, s, "hall")
		return !st.Sub.Pulling
	})
	if st := status(t, s, "hall"); !st.Pulling {
		t.Fatalf("the always-on main stream stopped with its sub stream: %+v", st)
	}
}
