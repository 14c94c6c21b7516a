package whep

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/video/hub"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// twoStreams is a camera with a main and a sub stream.
type twoStreams struct{ main, sub *hub.Hub }

func (c twoStreams) Acquire(_ context.Context, name string, s Stream) (*hub.Hub, func(), error) {
	if name != "hall" {
		return nil, nil, ErrUnknownCamera
	}
	if s == StreamSub {
		return c.sub, func() {}, nil
	}
	return c.main, func() {}, nil
}

// subCamera is a 160×120 camera with a keyframe every second, encoded by
// ffmpeg for the test: the sub stream beside a 320×240 main one.
func subCamera(t *testing.T) *camera {
	t.Helper()
	ffmpeg := testpeer.Require(t, "ffmpeg", "ffmpeg")
	out := filepath.Join(t.TempDir(), "sub.h264")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=15",
		"-t", "6", "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0",
		"-x264-params", "keyint=15:min-keyint=15:scenecut=0", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return startCamera(t, out)
}

// width is the picture width in the SPS of a keyframe access unit.
func width(t *testing.T, au whepclient.AccessUnit) int {
	t.Helper()
	for _, n := range au.NALUs {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			var sps h264.SPS
			if err := sps.Unmarshal(n); err != nil {
				t.Fatalf("SPS: %v", err)
			}
			return sps.Width()
		}
	}
	t.Fatal("keyframe without SPS")
	return 0
}

func (g *gateway) dialQuery(t *testing.T, query string) *viewer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, whepclient.Options{URL: g.http.URL + "/api/v1/cameras/hall/whep?" + query,
		Token: token, Loopback: true})
	if err != nil {
		t.Fatalf("POST ?%s: %v", query, err)
	}
	t.Cleanup(func() { c.Close() })
	return &viewer{Client: c, resp: c.Response, aus: c.AccessUnits()}
}

// A viewer picks its stream with ?quality=; a camera wall (?tiles=9)
// gets sub streams; a camera without a sub stream plays its main one
// whatever is asked; an unknown quality is refused.
func TestQualityPicksTheStream(t *testing.T) {
	main := startCamera(t, "../camsim/testdata/gop2s.h264")
	sub := subCamera(t)
	g := startGateway(t, twoStreams{main: main.hub, sub: sub.hub}, Config{})
	for _, tc := range []struct {
		query string
		width int
	}{
		{"quality=sub", 160},
		{"quality=main", 320},
		{"quality=auto&tiles=9", 160},
		{"quality=auto&tiles=1", 320},
		{"", 320},
	} {
		v := g.dialQuery(t, tc.query)
		if w := width(t, v.keyframe(t, 5*time.Second)); w != tc.width {
			t.Errorf("?%s: first picture %d wide, want %d", tc.query, w, tc.width)
		}
		v.Close()
	}

	only := startGateway(t, testCameras{"hall": main.hub}, Config{})
	if w := width(t, only.dialQuery(t, "quality=sub").keyframe(t, 5*time.Second)); w != 320 {
		t.Errorf("camera without a sub stream, ?quality=sub: %d wide, want its main stream", w)
	}
	for _, q := range []string{"quality=best", "tiles=0", "tiles=many"} {
		if code := g.postOffer(t, "?"+q); code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, code)
		}
	}
}

// With quality=auto a session on the gateway's network starts on the main
// stream, moves to the sub stream when the receiver reports congestion,
// and back after a probe when the link recovers: each time at a keyframe
// of the new stream, in the same session and track, with the sequence
// numbers and timestamps running on, so the player only sees the picture
// size change.
func TestAutoMovesBetweenStreamsWithoutRenegotiation(t *testing.T) {
	main := startCamera(t, "../camsim/testdata/gop2s.h264")
	sub := subCamera(t)
	g := startGateway(t, twoStreams{main: main.hub, sub: sub.hub}, Config{})
	v := g.dialQuery(t, "quality=auto")
	if w := width(t, v.keyframe(t, 5*time.Second)); w != 320 {
		t.Fatalf("auto on a fast link started %d wide, want the main stream", w)
	}
	var last uint32
	var steps []uint32
	// waitWidth reads access units until a keyframe w wide, checking the
	// timestamps run on.
	waitWidth := func(w int, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case au, ok := <-v.aus:
				if !ok {
					t.Fatal("the session ended")
				}
				if last != 0 {
					steps = append(steps, au.RTPTime-last)
				}
				last = au.RTPTime
				if whepclient.IsKeyframe(au.NALUs) && width(t, au) == w {
					return
				}
			case <-deadline:
				t.Fatalf("no keyframe %d wide within %s", w, within)
			}
		}
	}
	waitWidth(320, 3*time.Second)

	// The link gives way: the receiver reports heavy loss.
	g.srv.linkOverride.Store(1)
	waitWidth(160, 6*time.Second)
	// It recovers: a probe, then main again at its next keyframe.
	g.srv.linkOverride.Store(2)
	waitWidth(320, 40*time.Second) // the move down backs the first probe off to 20 s

	for i, s := range steps {
		// Wrapping subtraction: a step "backwards" is a huge number.
		if s == 0 || s > 90000 {
			t.Fatalf("RTP timestamp step %d of %d is %d ticks: not a continuing clock", i, len(steps), s)
		}
	}
	seq := v.Seq()
	if seq.Padding == 0 {
		t.Error("no probe padding reached the player before the move up")
	}
	if seq.Lost() > 2 {
		t.Errorf("%d packets lost across the switches (%+v): the sequence numbers did not run on", seq.Lost(), seq)
	}
	if n := v.TrackCount(); n != 1 {
		t.Errorf("%d tracks: the switches renegotiated", n)
	}
	if n := testutil.ToFloat64(g.srv.metrics.switches.WithLabelValues("sub", "done")); n != 1 {
		t.Errorf("switches to sub: %v, want 1", n)
	}
	if n := testutil.ToFloat64(g.srv.metrics.switches.WithLabelValues("main", "done")); n != 1 {
		t.Errorf("switches to main: %v, want 1", n)
	}
}
