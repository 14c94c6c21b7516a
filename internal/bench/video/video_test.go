package video

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/gateway"
	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"go.uber.org/goleak"
)

// TestMain lets the test binary play the gateway: the bench re-executes
// its own binary, which in a test is this one.
func TestMain(m *testing.M) {
	if code, ok := proc.RunRole(os.Args[1:], gateway.Role); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// TestVideoBenchMeasuresWorkingRelay runs a tiny video bench end to end
// (one 2 s GOP camera for the joins, one camera with two viewers for the
// load, no go2rtc) and checks that its figures come from video that
// reached the players: every join got a complete keyframe, every load
// viewer received frames carrying camsim's stamp, and the table shows
// them with the missing comparison explained.
func TestVideoBenchMeasuresWorkingRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway process, cameras and WebRTC players: not a -short test")
	}
	o := DefaultOptions()
	o.FFmpeg = testpeer.Require(t, "ffmpeg", "ffmpeg")
	exe, err := os.Executable() // the test binary plays the gateway
	if err != nil {
		t.Fatal(err)
	}
	o.Exe, o.Log = exe, t.Output()
	o.Go2RTCMissing = "not run by the test"
	o.gopClips = o.gopClips[:1] // 2 s GOP: the 10 s one may take 10 s to be cached
	o.Joins, o.JoinSpan, o.Hold = 3, 2*time.Second, 1500*time.Millisecond
	o.Cameras, o.ViewersPerCamera = 1, 2
	o.Clip = ClipSpec{Size: "320x240", FPS: 15, Seconds: 4, GOP: 15, Bitrate: "300k"}
	o.Warmup, o.Duration = time.Second, 2*time.Second

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	ff := res.FirstFrame[0]
	if len(ff.Joins) != o.Joins || len(ff.Failed) > 0 {
		t.Errorf("%d of %d joins got a complete keyframe; failures: %q", len(ff.Joins), o.Joins, ff.Failed)
	}
	for _, d := range ff.Joins {
		if d <= 0 {
			t.Errorf("time to first frame %v: want > 0 (POST before the keyframe)", d)
		}
	}
	if len(res.IdleLatency) == 0 {
		t.Error("no live frame with a send-time stamp reached the first-frame viewers")
	}
	if res.Clip.BitsPerSec <= 0 || res.Clip.GOPMeasured != time.Second {
		t.Errorf("load clip: %.0f bit/s, keyframe every %v; want > 0 and 1s", res.Clip.BitsPerSec, res.Clip.GOPMeasured)
	}

	g := res.Gateway
	if g.Viewers != 2 || len(g.Frames) != 2 {
		t.Fatalf("load: %d viewers, %d frame counts; want 2", g.Viewers, len(g.Frames))
	}
	for i, n := range g.Frames {
		if n == 0 {
			t.Errorf("load viewer %d received no frame in the window", i)
		}
	}
	if len(g.Latency) == 0 || g.Unstamped > 0 {
		t.Errorf("load: %d frames with the send-time stamp, %d without; want some, and none without", len(g.Latency), g.Unstamped)
	}
	if g.CPU <= 0 || g.RSSEnd <= 0 || g.RSSPeak < g.RSSEnd {
		t.Errorf("gateway process figures missing: CPU %v, RSS %d, peak %d", g.CPU, g.RSSEnd, g.RSSPeak)
	}
	if math.IsNaN(g.Goroutines0) || g.Goroutines <= g.Goroutines0 {
		t.Errorf("goroutines: %v with no viewer, %v with 2: want more with viewers", g.Goroutines0, g.Goroutines)
	}
	if res.Go2RTC != nil {
		t.Error("go2rtc figures without go2rtc")
	}

	var out bytes.Buffer
	printReport(&out, o, res)
	for _, want := range []string{
		"| time to first frame, 2 s keyframe interval: p50 / p99 ms | ",
		"| added latency under the load, all live frames: p50 / p99 ms | ",
		"| CPU under the load, % of one core | ",
		"¹ go2rtc not available: not run by the test",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}

func TestJoinSchedule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name      string
		n         int
		gop, span time.Duration
		total     time.Duration // whole GOPs covering span
	}{
		{"span is whole GOPs", 40, 2 * time.Second, 20 * time.Second, 20 * time.Second},
		{"span rounded up to a GOP", 40, 10 * time.Second, 15 * time.Second, 20 * time.Second},
		{"span shorter than a GOP", 6, 10 * time.Second, time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := joinSchedule(tc.n, tc.gop, tc.span, rng)
			if len(at) != tc.n {
				t.Fatalf("%d joins, want %d", len(at), tc.n)
			}
			slice := tc.total / time.Duration(tc.n)
			for i, d := range at {
				if d < time.Duration(i)*slice || d >= time.Duration(i+1)*slice {
					t.Errorf("join %d at %v: want within [%v, %v)", i, d, time.Duration(i)*slice, time.Duration(i+1)*slice)
				}
			}
		})
	}
}

func TestHalfRate(t *testing.T) {
	for in, want := range map[string]string{"2M": "1M", "300k": "150k", "1.5M": "0.75M", "800000": "400000", "x": "x"} {
		if got := halfRate(in); got != want {
			t.Errorf("halfRate(%q) = %q, want %q", in, got, want)
		}
	}
}
