// Package video measures the camera relay, RTSP camera → relay → WebRTC
// viewer, and runs the same load through go2rtc, a mature relay, for
// comparison:
//
//   - time to first frame: from a new viewer's WHEP POST to the first
//     complete keyframe (IDR with SPS and PPS) at the player, p50 and p99
//     over 40 joins per camera, for a 2 s and a 10 s keyframe interval.
//     Joins are spread evenly at random over whole GOPs, so their phase in
//     the GOP is uniform.
//   - added latency: for live frames (after the first second of a session,
//     which is the GOP-cache catch-up burst), arrival at the player minus
//     the send time camsim stamps into every access unit.
//   - load: 8 cameras × 4 viewers of a ≈ 2 Mbit/s 720p clip that ffmpeg
//     makes at bench time: the relay process's CPU (% of one core) and RSS
//     over a 20 s window after a 5 s warm-up, goroutines per viewer, and
//     frames per viewer so that the CPU figure is that of a working relay.
//
// Cameras (camsim) and viewers (whepclient, over loopback UDP) run in the
// bench process; each load camera is a camsim server of its own, started a
// fraction of a GOP after the previous one, so that the cameras' keyframes
// do not all arrive in the same millisecond. The gateway runs as a child
// process, the bench binary re-executed as "shelter-bench gateway" as in
// the ingest bench, with a generated config; go2rtc (built into .tools/bin
// by scripts/bench-deps.sh) runs as its own process. Both pull the cameras
// over RTSP/TCP; their CPU and RSS are read the same way, from /proc. The
// first-frame joins and the load each get a gateway of their own. Without
// go2rtc the comparison cells say why.
package video

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/video/camsim"
)

// Goals the camera relay is held to.
const (
	goalFirstFrame = 300 * time.Millisecond // p99, at any keyframe interval
	goalAddedP99   = 5 * time.Millisecond
)

// Options configure one video bench run.
type Options struct {
	Exe string // the bench binary, re-executed as the gateway
	// FFmpeg makes the load clip.
	FFmpeg string
	// Go2RTC is the go2rtc binary; "" skips the comparison, and
	// Go2RTCMissing says why.
	Go2RTC, Go2RTCMissing string
	// gopClips are the cameras new viewers join for the first-frame
	// figures.
	gopClips []gopClip
	// Joins per GOP clip through the gateway, and through go2rtc.
	Joins, Go2RTCJoins int
	// JoinSpan is at least how long the joins of one camera are spread
	// over (rounded up to whole GOPs).
	JoinSpan time.Duration
	// Hold is how long a first-frame viewer stays connected after its
	// POST; frames after its first second give the idle latency.
	Hold time.Duration
	// Load: cameras × viewers per camera, all looping Clip.
	Cameras, ViewersPerCamera int
	Clip                      ClipSpec
	Warmup, Duration          time.Duration
	Log                       io.Writer
}

// gopClip is a committed camsim clip with its keyframe interval.
type gopClip struct {
	Name string        // camera id and RTSP path, e.g. "gop2s"
	File string        // relative to the repository root
	GOP  time.Duration // keyframe interval
}

// DefaultOptions are the figures of `make bench`.
func DefaultOptions() Options {
	return Options{
		FFmpeg: "ffmpeg",
		gopClips: []gopClip{
			{Name: "gop2s", File: "video/camsim/testdata/gop2s.h264", GOP: 2 * time.Second},
			{Name: "gop10s", File: "video/camsim/testdata/gop10s.h264", GOP: 10 * time.Second},
		},
		Joins: 40, Go2RTCJoins: 6, JoinSpan: 20 * time.Second, Hold: 2 * time.Second,
		Cameras: 8, ViewersPerCamera: 4,
		Clip:   ClipSpec{Size: "1280x720", FPS: 15, Seconds: 10, GOP: 30, Bitrate: "2M"},
		Warmup: 5 * time.Second, Duration: 20 * time.Second,
	}
}

// result is everything the report prints.
type result struct {
	Cores int
	Clip  loadClip
	// FirstFrame has one row per GOP clip.
	FirstFrame []firstFrameRow
	// IdleLatency is the added latency of the first-frame sessions' live
	// frames (through the gateway).
	IdleLatency []time.Duration
	Gateway     loadResult
	Go2RTC      *loadResult // nil when go2rtc was not run; Go2RTCErr says why
	Go2RTCErr   string
	// Go2RTCVersion is what go2rtc -version says ("" when unknown).
	Go2RTCVersion string
}

type firstFrameRow struct {
	Clip   gopClip
	Joins  []time.Duration // POST → first complete keyframe, gateway
	Failed []string        // joins that did not get a keyframe
	// Go2RTC: the same through go2rtc, with fewer joins.
	Go2RTC       []time.Duration
	Go2RTCFailed []string
	// Go2RTCNoParams counts go2rtc keyframes without in-band SPS/PPS.
	Go2RTCNoParams int
}

// loadResult is one relay under the load.
type loadResult struct {
	Viewers int
	Window  time.Duration
	CPU     time.Duration // the relay process, in the window
	RSSEnd  int64         // VmRSS at the end of the window
	RSSPeak int64         // VmHWM, since the process started
	// IdleCPU is the relay's CPU over IdleWindow with the cameras pulled
	// and no viewer (gateway only: go2rtc pulls only while watched).
	IdleCPU    time.Duration
	IdleWindow time.Duration
	IdleRSS    int64 // VmRSS then
	// Goroutines with no viewer and in the window (gateway's /metrics;
	// NaN when not available).
	Goroutines0, Goroutines float64
	// Resyncs and KeyRequests are shelterwatch_video_resyncs_total and
	// shelterwatch_video_keyframe_requests_total gained in the window
	// (NaN for go2rtc).
	Resyncs, KeyRequests float64
	// CameraFPS is the lowest frame rate a camera had at the gateway at
	// the end of the window (its status); Reconnects their reconnections
	// (NaN for go2rtc).
	CameraFPS, Reconnects float64
	Frames                []int64 // per viewer, in the window
	MaxGap                time.Duration
	Latency               []time.Duration // live frames in the window, all viewers
	KeyLatency            []time.Duration // the keyframes among them
	Unstamped             int64
	// BenchCPU is this process's CPU in the window (cameras and players),
	// OtherCPU the rest of the machine's busy time (kernel, other programs).
	BenchCPU, OtherCPU time.Duration
}

// Run measures the gateway, then go2rtc, and writes the table to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	start := time.Now()
	res, err := run(ctx, o)
	if err != nil {
		return err
	}
	printReport(w, o, res)
	fmt.Fprintf(w, "\nTotal time %.0fs.\n", time.Since(start).Seconds())
	return nil
}

func run(ctx context.Context, o Options) (*result, error) {
	res := &result{Cores: runtime.NumCPU()}
	dir, err := os.MkdirTemp("", "shelter-bench-video-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	urls, stopCameras, err := startCameras(ctx, o, dir, res)
	defer stopCameras()
	if err != nil {
		return nil, err
	}

	// The gateway: first-frame joins, then the load, each with a gateway
	// of its own so that one does not weigh on the other.
	if err := gatewayFirstFrames(ctx, o, dir, urls, res); err != nil {
		return nil, fmt.Errorf("gateway, first frame: %w", err)
	}
	if err := gatewayLoad(ctx, o, dir, urls, &res.Gateway); err != nil {
		return nil, fmt.Errorf("gateway, load: %w", err)
	}

	// go2rtc: the same load, then a few joins per GOP clip.
	if o.Go2RTC == "" {
		res.Go2RTCErr = o.Go2RTCMissing
		return res, nil
	}
	if err := go2rtcRuns(ctx, o, dir, urls, res); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "shelter-bench video: go2rtc: %v\n", err)
		res.Go2RTC, res.Go2RTCErr = nil, err.Error()
	}
	return res, nil
}

// startCameras starts the cameras: the committed GOP clips for the
// first-frame joins (one server), the generated clip for the load (one
// server per camera). It returns their RTSP URLs by camera name, and stop
// for whatever it started, even on error.
func startCameras(ctx context.Context, o Options, dir string, res *result) (urls map[string]string, stop func(), err error) {
	var sims []*camsim.Server
	stop = func() {
		for _, s := range sims {
			s.Close()
		}
	}
	root, err := testpeer.RepoRoot()
	if err != nil {
		return nil, stop, err
	}
	urls = map[string]string{}
	var gopCams []camsim.Camera
	for _, g := range o.gopClips {
		clip, err := camsim.LoadClip(filepath.Join(root, g.File))
		if err != nil {
			return nil, stop, err
		}
		gopCams = append(gopCams, camsim.Camera{Path: "/" + g.Name, Clip: clip})
		res.FirstFrame = append(res.FirstFrame, firstFrameRow{Clip: g})
	}
	sim, err := startSim(ctx, gopCams)
	if err != nil {
		return nil, stop, err
	}
	sims = append(sims, sim)
	for _, g := range o.gopClips {
		urls[g.Name] = "rtsp://" + sim.Addr().String() + "/" + g.Name
	}
	fmt.Fprintf(o.Log, "shelter-bench video: making the %s %s load clip with %s …\n", o.Clip.Size, o.Clip.Bitrate, o.FFmpeg)
	if res.Clip, err = makeLoadClip(ctx, o.FFmpeg, dir, o.Clip); err != nil {
		return nil, stop, err
	}
	fmt.Fprintf(o.Log, "shelter-bench video: load clip %.2f Mbit/s, keyframe every %s\n", res.Clip.BitsPerSec/1e6, res.Clip.GOPMeasured)
	// One server per load camera, started a fraction of a GOP apart: real
	// cameras do not send their keyframes in the same millisecond.
	for i := range o.Cameras {
		if i > 0 {
			if err := proc.Sleep(ctx, res.Clip.GOPMeasured/time.Duration(o.Cameras)); err != nil {
				return nil, stop, err
			}
		}
		name := loadCamera(i)
		sim, err := startSim(ctx, []camsim.Camera{{Path: "/" + name, Clip: res.Clip.Clip}})
		if err != nil {
			return nil, stop, err
		}
		sims = append(sims, sim)
		urls[name] = "rtsp://" + sim.Addr().String() + "/" + name
	}
	return urls, stop, nil
}

// loadCamera is the name of load camera i: cam1, cam2, …
func loadCamera(i int) string { return fmt.Sprintf("cam%d", i+1) }

// startSim starts a camsim server on a free loopback port.
func startSim(ctx context.Context, cams []camsim.Camera) (*camsim.Server, error) {
	sim, err := camsim.New(camsim.Options{Address: "127.0.0.1:0", Cameras: cams})
	if err != nil {
		return nil, err
	}
	if err := sim.Start(ctx); err != nil {
		sim.Close()
		return nil, err
	}
	return sim, nil
}
