package main

// "shelter-bench video" measures the camera relay, RTSP camera → relay →
// WebRTC viewer, and runs the same load through go2rtc, a mature relay, for
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
// Cameras (camsim) and viewers (whepclient, over loopback UDP) run in this
// process; each load camera is a camsim server of its own, started a
// fraction of a GOP after the previous one, so that the cameras' keyframes
// do not all arrive in the same millisecond. The gateway runs as a child process, this binary re-executed as
// "shelter-bench gateway" as in the ingest bench, with a generated config;
// go2rtc (built into .tools/bin by scripts/bench-deps.sh) runs as its own
// process. Both pull the cameras over RTSP/TCP; their CPU and RSS are read
// the same way, from /proc. The first-frame joins and the load each get a
// gateway of their own. Without go2rtc the comparison cells say why.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/video/camsim"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// Goals the camera relay is held to.
const (
	goalFirstFrame = 300 * time.Millisecond // p99, at any keyframe interval
	goalAddedP99   = 5 * time.Millisecond
)

// videoOptions configure one video bench run.
type videoOptions struct {
	Exe string // this binary, re-executed as the gateway
	// FFmpeg makes the load clip.
	FFmpeg string
	// Go2RTC is the go2rtc binary; "" skips the comparison, and
	// Go2RTCMissing says why.
	Go2RTC, Go2RTCMissing string
	// GOPClips are the cameras new viewers join for the first-frame
	// figures.
	GOPClips []gopClip
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
	Clip                      clipSpec
	Warmup, Duration          time.Duration
	Log                       io.Writer
}

// gopClip is a committed camsim clip with its keyframe interval.
type gopClip struct {
	Name string        // camera id and RTSP path, e.g. "gop2s"
	File string        // relative to the repository root
	GOP  time.Duration // keyframe interval
}

// clipSpec is the load clip ffmpeg makes.
type clipSpec struct {
	Size    string // WxH
	FPS     int
	Seconds int
	GOP     int    // frames between keyframes
	Bitrate string // ffmpeg -b:v, e.g. "2M"
}

func defaultVideoOptions() videoOptions {
	return videoOptions{
		FFmpeg: "ffmpeg",
		GOPClips: []gopClip{
			{Name: "gop2s", File: "video/camsim/testdata/gop2s.h264", GOP: 2 * time.Second},
			{Name: "gop10s", File: "video/camsim/testdata/gop10s.h264", GOP: 10 * time.Second},
		},
		Joins: 40, Go2RTCJoins: 6, JoinSpan: 20 * time.Second, Hold: 2 * time.Second,
		Cameras: 8, ViewersPerCamera: 4,
		Clip:   clipSpec{Size: "1280x720", FPS: 15, Seconds: 10, GOP: 30, Bitrate: "2M"},
		Warmup: 5 * time.Second, Duration: 20 * time.Second,
	}
}

func videoMain(args []string, stdout, stderr io.Writer) int {
	o := defaultVideoOptions()
	fs := flag.NewFlagSet("shelter-bench video", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Joins, "joins", o.Joins, "viewer joins per camera for the first-frame figures")
	fs.IntVar(&o.Go2RTCJoins, "go2rtc-joins", o.Go2RTCJoins, "viewer joins per camera through go2rtc (each may wait a whole GOP)")
	fs.IntVar(&o.Cameras, "cameras", o.Cameras, "cameras in the load scenario")
	fs.IntVar(&o.ViewersPerCamera, "viewers", o.ViewersPerCamera, "viewers per camera in the load scenario")
	fs.StringVar(&o.Clip.Bitrate, "bitrate", o.Clip.Bitrate, "bit rate of the load clip (ffmpeg -b:v)")
	fs.StringVar(&o.Clip.Size, "size", o.Clip.Size, "picture size of the load clip")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "load: time after the viewers connect before the window")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "load: measured window")
	fs.StringVar(&o.FFmpeg, "ffmpeg", o.FFmpeg, "ffmpeg binary (makes the load clip)")
	go2rtc := fs.String("go2rtc", "", `go2rtc binary (default: the repository's .tools/bin/go2rtc, built by scripts/bench-deps.sh); "none" skips the comparison`)
	quick := fs.Bool("quick", false, "smoke run of about a minute: 8 joins per camera (3 through go2rtc) over 10 s, 2 s warm-up, 5 s window")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "shelter-bench video: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *quick {
		// Flags given explicitly win over -quick's values.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, q := range []struct {
			flag  string
			quick func()
		}{
			{"joins", func() { o.Joins = 8 }},
			{"go2rtc-joins", func() { o.Go2RTCJoins = 3 }},
			{"warmup", func() { o.Warmup = 2 * time.Second }},
			{"duration", func() { o.Duration = 5 * time.Second }},
		} {
			if !set[q.flag] {
				q.quick()
			}
		}
		o.JoinSpan = 10 * time.Second
	}
	if o.Joins < 1 || o.Go2RTCJoins < 0 || o.Cameras < 1 || o.ViewersPerCamera < 1 || o.Duration <= 0 || o.Warmup < 0 {
		fmt.Fprintln(stderr, "shelter-bench video: -joins, -cameras and -viewers must be ≥ 1, -go2rtc-joins and -warmup ≥ 0, -duration > 0")
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "shelter-bench video: find own binary: %v\n", err)
		return 1
	}
	o.Exe, o.Log = exe, stderr
	switch *go2rtc {
	case "none":
		o.Go2RTCMissing = "skipped (-go2rtc none)"
	case "":
		o.Go2RTC, o.Go2RTCMissing = go2rtcPath()
	default:
		o.Go2RTC = *go2rtc
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := runVideoBench(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "shelter-bench video:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	printVideoReport(stdout, o, res)
	fmt.Fprintf(stdout, "\nTotal time %.0fs.\n", time.Since(start).Seconds())
	return 0
}

// go2rtcPath finds the go2rtc that scripts/bench-deps.sh builds, or says
// why there is none.
func go2rtcPath() (path, missing string) {
	root, err := testpeer.RepoRoot()
	if err == nil {
		p := filepath.Join(root, ".tools", "bin", "go2rtc")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, ""
		}
	}
	if p, err := exec.LookPath("go2rtc"); err == nil {
		return p, ""
	}
	return "", "go2rtc not found: run scripts/bench-deps.sh (make bench does) to build it into .tools/bin"
}

// videoResult is everything the report prints.
type videoResult struct {
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

// loadClip is the generated load clip, as camsim loops it.
type loadClip struct {
	clipSpec
	Clip        *camsim.Clip
	BitsPerSec  float64 // file size over the clip's duration
	GOPMeasured time.Duration
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

func runVideoBench(ctx context.Context, o videoOptions) (*videoResult, error) {
	res := &videoResult{Cores: runtime.NumCPU()}
	root, err := testpeer.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "shelter-bench-video-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// The cameras: the committed GOP clips for the first-frame joins, the
	// generated clip for the load. urls maps camera names to RTSP URLs.
	urls := map[string]string{}
	var gopCams []camsim.Camera
	for _, g := range o.GOPClips {
		clip, err := camsim.LoadClip(filepath.Join(root, g.File))
		if err != nil {
			return nil, err
		}
		gopCams = append(gopCams, camsim.Camera{Path: "/" + g.Name, Clip: clip})
		res.FirstFrame = append(res.FirstFrame, firstFrameRow{Clip: g})
	}
	sim, err := startSim(ctx, gopCams)
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	for _, g := range o.GOPClips {
		urls[g.Name] = "rtsp://" + sim.Addr().String() + "/" + g.Name
	}
	fmt.Fprintf(o.Log, "shelter-bench video: making the %s %s load clip with %s …\n", o.Clip.Size, o.Clip.Bitrate, o.FFmpeg)
	if res.Clip, err = makeLoadClip(ctx, o.FFmpeg, dir, o.Clip); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "shelter-bench video: load clip %.2f Mbit/s, keyframe every %s\n", res.Clip.BitsPerSec/1e6, res.Clip.GOPMeasured)
	// One server per load camera, started a fraction of a GOP apart: real
	// cameras do not send their keyframes in the same millisecond.
	var sims []*camsim.Server
	defer func() {
		for _, s := range sims {
			s.Close()
		}
	}()
	for i := range o.Cameras {
		if i > 0 {
			if err := sleepCtx(ctx, res.Clip.GOPMeasured/time.Duration(o.Cameras)); err != nil {
				return nil, err
			}
		}
		name := fmt.Sprintf("cam%d", i+1)
		sim, err := startSim(ctx, []camsim.Camera{{Path: "/" + name, Clip: res.Clip.Clip}})
		if err != nil {
			return nil, err
		}
		sims = append(sims, sim)
		urls[name] = "rtsp://" + sim.Addr().String() + "/" + name
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

// makeLoadClip encodes the load clip with ffmpeg into dir and loads it.
func makeLoadClip(ctx context.Context, ffmpeg, dir string, s clipSpec) (loadClip, error) {
	out := filepath.Join(dir, "load.h264")
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d", s.Size, s.FPS), "-t", strconv.Itoa(s.Seconds),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0",
		"-g", strconv.Itoa(s.GOP), "-x264-params", fmt.Sprintf("keyint=%d:min-keyint=%d:scenecut=0", s.GOP, s.GOP),
		"-b:v", s.Bitrate, "-maxrate", s.Bitrate, "-bufsize", halfRate(s.Bitrate), "-f", "h264", out}
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return loadClip{}, fmt.Errorf("make the load clip: %s %s: %w: %s", ffmpeg, strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	st, err := os.Stat(out)
	if err != nil {
		return loadClip{}, err
	}
	clip, err := camsim.LoadClip(out)
	if err != nil {
		return loadClip{}, err
	}
	lc := loadClip{clipSpec: s, Clip: clip}
	dur := time.Duration(len(clip.AccessUnits)) * clip.FrameDuration
	lc.BitsPerSec = float64(st.Size()) * 8 / dur.Seconds()
	idr := 0
	for _, au := range clip.AccessUnits {
		if au.IDR {
			idr++
		}
	}
	lc.GOPMeasured = (dur / time.Duration(max(idr, 1))).Round(time.Millisecond)
	return lc, nil
}

// halfRate is the VBV buffer for a bit rate like "2M": half a second of it.
func halfRate(rate string) string {
	n, unit := rate, ""
	if i := strings.IndexAny(rate, "kKmM"); i > 0 {
		n, unit = rate[:i], rate[i:]
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return rate
	}
	return strconv.FormatFloat(f/2, 'f', -1, 64) + unit
}

// joinSchedule returns n join times, spread over whole GOPs covering at
// least span: one at a random moment in each of n equal slices, so that
// their phase within the GOP is uniform and no two bunch up.
func joinSchedule(n int, gop, span time.Duration, rng *mrand.Rand) []time.Duration {
	gops := max(1, int(math.Ceil(float64(span)/float64(gop))))
	total := time.Duration(gops) * gop
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration((float64(i) + rng.Float64()) * float64(total) / float64(n))
	}
	return out
}

// gatewayFirstFrames runs a gateway with one camera per GOP clip and lets
// new viewers join each at scheduled moments.
func gatewayFirstFrames(ctx context.Context, o videoOptions, dir string, urls map[string]string, res *videoResult) error {
	var cams []string
	for _, g := range o.GOPClips {
		cams = append(cams, g.Name)
	}
	gw, err := startVideoGateway(ctx, o, dir, cams, urls, o.Joins)
	if err != nil {
		return err
	}
	defer gw.stop()
	// Every camera's GOP cache holds a keyframe before the first join
	// (the 10 s GOP camera may need that long).
	if err := gw.waitLive(ctx, cams, 30*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "shelter-bench video: gateway: %d joins per camera …\n", o.Joins)
	var mu sync.Mutex
	span := func(gopClip) time.Duration { return o.JoinSpan }
	return runJoins(ctx, o.GOPClips, o.Joins, span, 1, func(i int, g gopClip, at time.Duration) {
		j, err := joinOnce(ctx, gw.whepURL(g.Name), gw.token, true, o.Hold, 5*time.Second)
		mu.Lock()
		defer mu.Unlock()
		row := &res.FirstFrame[i]
		if err != nil {
			fmt.Fprintf(o.Log, "shelter-bench video: gateway: join %s at +%s: %v\n", g.Name, at.Round(time.Millisecond), err)
			row.Failed = append(row.Failed, err.Error())
			return
		}
		if j.FirstFrame > goalFirstFrame {
			fmt.Fprintf(o.Log, "shelter-bench video: gateway: join %s at +%s: answer after %s, first keyframe after %s\n",
				g.Name, at.Round(time.Millisecond), j.Answer.Round(time.Millisecond), j.FirstFrame.Round(time.Millisecond))
		}
		row.Joins = append(row.Joins, j.FirstFrame)
		res.IdleLatency = append(res.IdleLatency, j.Latency...)
	})
}

// runJoins calls join for n viewers per camera, each at its moment in the
// camera's schedule (spread over span(camera) from now), and waits for all.
// join runs on its own goroutine.
func runJoins(ctx context.Context, clips []gopClip, n int, span func(gopClip) time.Duration, seed uint64,
	join func(i int, g gopClip, at time.Duration)) error {
	var wg sync.WaitGroup
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), seed))
	t0 := time.Now()
	for i, g := range clips {
		for _, at := range joinSchedule(n, g.GOP, span(g), rng) {
			wg.Go(func() {
				if sleepCtx(ctx, time.Until(t0.Add(at))) != nil {
					return
				}
				join(i, g, at)
			})
		}
	}
	wg.Wait()
	return ctx.Err()
}

// joined is one first-frame join.
type joined struct {
	Answer     time.Duration // POST → answer applied
	FirstFrame time.Duration
	NoParams   bool            // the keyframe came without SPS/PPS
	Latency    []time.Duration // live frames, after the first second
}

// joinOnce connects a viewer, waits for its first complete keyframe, keeps
// it until hold after the POST (to sample live frames) and leaves.
func joinOnce(ctx context.Context, url, token string, hangUp bool, hold, keyWait time.Duration) (joined, error) {
	var j joined
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := whepclient.Dial(dctx, whepclient.Options{URL: url, Token: token, Loopback: true})
	if err != nil {
		return j, fmt.Errorf("dial: %w", err)
	}
	j.Answer = time.Since(c.Posted)
	v := &benchViewer{c: c}
	defer v.close(hangUp)
	kctx, kcancel := context.WithTimeout(ctx, keyWait)
	defer kcancel()
	kf, err := c.Keyframe(kctx)
	if err != nil && kf.At.IsZero() {
		return j, err
	}
	j.FirstFrame, j.NoParams = kf.At.Sub(c.Posted), err != nil
	v.start(c.Posted.Add(time.Second))
	if err := sleepCtx(ctx, time.Until(c.Posted.Add(hold))); err != nil {
		return j, err
	}
	v.stopWindow(time.Now())
	v.close(hangUp)
	j.Latency = v.latency
	return j, nil
}

// benchViewer counts the frames of one player and measures their latency
// between from and to.
type benchViewer struct {
	c        *whepclient.Client
	stopCh   chan struct{}
	done     chan struct{}
	closeOne sync.Once

	mu        sync.Mutex
	from, to  time.Time // to zero: open
	frames    int64
	last      time.Time
	maxGap    time.Duration
	latency   []time.Duration
	keyLat    []time.Duration // keyframes only
	unstamped int64
}

// start reads the player's access units until close; those that arrive
// from from on are measured.
func (v *benchViewer) start(from time.Time) {
	v.stopCh, v.done = make(chan struct{}), make(chan struct{})
	v.from = from
	go func() {
		defer close(v.done)
		for {
			select {
			case au, ok := <-v.c.AccessUnits():
				if !ok {
					return
				}
				v.note(au)
			case <-v.stopCh:
				return
			}
		}
	}()
}

func (v *benchViewer) note(au whepclient.AccessUnit) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if au.At.Before(v.from) || !v.to.IsZero() && !au.At.Before(v.to) {
		return
	}
	v.frames++
	if !v.last.IsZero() {
		v.maxGap = max(v.maxGap, au.At.Sub(v.last))
	}
	v.last = au.At
	if sent, ok := camsim.ParseStamp(au.NALUs); ok {
		v.latency = append(v.latency, au.At.Sub(sent))
		if isKeyframe(au.NALUs) {
			v.keyLat = append(v.keyLat, au.At.Sub(sent))
		}
	} else {
		v.unstamped++
	}
}

// setWindow measures from from on (dropping what came before).
func (v *benchViewer) setWindow(from time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.from, v.frames, v.last, v.maxGap, v.latency, v.keyLat, v.unstamped = from, 0, time.Time{}, 0, nil, nil, 0
}

func (v *benchViewer) stopWindow(to time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.to = to
}

// close leaves (DELETE first when hangUp), ends the peer connection and
// waits for the reader. The figures are stable afterwards.
func (v *benchViewer) close(hangUp bool) {
	v.closeOne.Do(func() {
		if hangUp && v.c.Location != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = v.c.HangUp(ctx)
			cancel()
		}
		_ = v.c.Close()
		if v.stopCh != nil {
			close(v.stopCh)
			<-v.done
		}
	})
}

// relayUnderLoad is what runLoad needs of a relay.
type relayUnderLoad struct {
	name    string
	pid     int
	url     func(camera string) string
	token   string
	hangUp  bool
	metrics string // the gateway's /metrics URL; "" for go2rtc
	// cameras returns the cameras' status (nil for go2rtc).
	cameras func(context.Context) ([]cameraStatus, error)
}

// runLoad connects Cameras × ViewersPerCamera viewers to r, warms up and
// measures the window.
func runLoad(ctx context.Context, o videoOptions, r relayUnderLoad, res *loadResult) error {
	res.Goroutines0, res.Goroutines, res.Resyncs, res.KeyRequests = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	res.CameraFPS, res.Reconnects = math.NaN(), math.NaN()
	if r.metrics != "" {
		// The cameras are pulled already; the relay with nobody watching.
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
		idle := 3 * time.Second
		c0, err := procCPU(r.pid)
		if err != nil {
			return err
		}
		if err := sleepCtx(ctx, idle); err != nil {
			return err
		}
		c1, err := procCPU(r.pid)
		if err != nil {
			return err
		}
		res.IdleCPU, res.IdleWindow = c1-c0, idle
		if _, res.IdleRSS, err = procMem(r.pid); err != nil {
			return err
		}
		m, err := scrapeMetrics(ctx, r.metrics)
		if err != nil {
			return err
		}
		res.Goroutines0 = m["go_goroutines"]
	}

	fmt.Fprintf(o.Log, "shelter-bench video: %s: %d cameras × %d viewers, %s warm-up, %s window …\n",
		r.name, o.Cameras, o.ViewersPerCamera, o.Warmup, o.Duration)
	var viewers []*benchViewer
	defer func() {
		var wg sync.WaitGroup
		for _, v := range viewers {
			wg.Go(func() { v.close(r.hangUp) })
		}
		wg.Wait()
	}()
	for i := range o.Cameras {
		cam := fmt.Sprintf("cam%d", i+1)
		for j := range o.ViewersPerCamera {
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			c, err := whepclient.Dial(dctx, whepclient.Options{URL: r.url(cam), Token: r.token, Loopback: true})
			cancel()
			if err != nil {
				return fmt.Errorf("viewer %d of %s: %w", j+1, cam, err)
			}
			v := &benchViewer{c: c}
			v.start(time.Now())
			viewers = append(viewers, v)
		}
	}
	res.Viewers = len(viewers)
	if err := sleepCtx(ctx, o.Warmup); err != nil {
		return err
	}

	var m0 map[string]float64
	if r.metrics != "" {
		var err error
		if m0, err = scrapeMetrics(ctx, r.metrics); err != nil {
			return err
		}
	}
	busy0, err := machineBusy()
	if err != nil {
		return err
	}
	cpu0, err := procCPU(r.pid)
	if err != nil {
		return err
	}
	self0, t0 := selfCPU(), time.Now()
	for _, v := range viewers {
		v.setWindow(t0)
	}
	// Goroutines are read halfway through the window.
	if err := sleepCtx(ctx, o.Duration/2); err != nil {
		return err
	}
	if r.metrics != "" {
		m, err := scrapeMetrics(ctx, r.metrics)
		if err != nil {
			return err
		}
		res.Goroutines = m["go_goroutines"]
	}
	if err := sleepCtx(ctx, time.Until(t0.Add(o.Duration))); err != nil {
		return err
	}
	t1 := time.Now()
	cpu1, err := procCPU(r.pid)
	if err != nil {
		return err
	}
	self1 := selfCPU()
	busy1, err := machineBusy()
	if err != nil {
		return err
	}
	for _, v := range viewers {
		v.stopWindow(t1)
	}
	if r.metrics != "" {
		m1, err := scrapeMetrics(ctx, r.metrics)
		if err != nil {
			return err
		}
		res.Resyncs = m1["shelterwatch_video_resyncs_total"] - m0["shelterwatch_video_resyncs_total"]
		res.KeyRequests = m1["shelterwatch_video_keyframe_requests_total"] - m0["shelterwatch_video_keyframe_requests_total"]
	}
	if r.cameras != nil {
		sts, err := r.cameras(ctx)
		if err != nil {
			return err
		}
		res.CameraFPS, res.Reconnects = math.Inf(1), 0
		for _, st := range sts {
			res.CameraFPS = min(res.CameraFPS, st.FPS)
			res.Reconnects += float64(st.Reconnects)
		}
	}
	res.RSSPeak, res.RSSEnd, err = procMem(r.pid)
	if err != nil {
		return err
	}
	res.Window, res.CPU, res.BenchCPU = t1.Sub(t0), cpu1-cpu0, self1-self0
	res.OtherCPU = busy1 - busy0 - res.CPU - res.BenchCPU

	var wg sync.WaitGroup
	for _, v := range viewers {
		wg.Go(func() { v.close(r.hangUp) })
	}
	wg.Wait()
	for _, v := range viewers {
		res.Frames = append(res.Frames, v.frames)
		res.MaxGap = max(res.MaxGap, v.maxGap)
		res.Latency = append(res.Latency, v.latency...)
		res.KeyLatency = append(res.KeyLatency, v.keyLat...)
		res.Unstamped += v.unstamped
	}
	return nil
}

// gatewayLoad runs a gateway with the load cameras and measures it.
func gatewayLoad(ctx context.Context, o videoOptions, dir string, urls map[string]string, res *loadResult) error {
	var cams []string
	for i := range o.Cameras {
		cams = append(cams, fmt.Sprintf("cam%d", i+1))
	}
	gw, err := startVideoGateway(ctx, o, dir, cams, urls, o.ViewersPerCamera)
	if err != nil {
		return err
	}
	defer gw.stop()
	if err := gw.waitLive(ctx, cams, 30*time.Second); err != nil {
		return err
	}
	return runLoad(ctx, o, relayUnderLoad{name: "gateway", pid: gw.pid(), url: gw.whepURL, token: gw.token, hangUp: true,
		metrics: "http://" + gw.http + "/metrics", cameras: gw.cameras}, res)
}

// videoGateway is a gateway child process with cameras.
type videoGateway struct {
	ch    *child
	http  string // listen address of the API
	token string
}

func (g *videoGateway) pid() int { return g.ch.cmd.Process.Pid }

func (g *videoGateway) whepURL(camera string) string {
	return "http://" + g.http + "/api/v1/cameras/" + camera + "/whep"
}

func (g *videoGateway) stop() {
	_ = g.ch.call("stop", nil, nil, 45*time.Second)
	g.ch.close(5 * time.Second)
}

// startVideoGateway starts the gateway with the given cameras (pulled
// always, over RTSP/TCP) and a viewer token for all of them.
func startVideoGateway(ctx context.Context, o videoOptions, dir string, cams []string, urls map[string]string, perCamera int) (*videoGateway, error) {
	gdir, err := os.MkdirTemp(dir, "gateway-")
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeLoopback()
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	var b strings.Builder
	fmt.Fprintf(&b, `facility: {id: bench, name: Bench facility, timezone: UTC}
zones: [{id: hall, tags: [corridor]}]
broker: {mode: embedded, embedded: {listen: "127.0.0.1:0"}}
store: {dir: %q}
http:
  listen: %q
  tokens:
    - {name: bench-viewer, role: viewer, sha256: %s, cameras: ["*"]}
video: {webrtc_udp: "127.0.0.1:0", max_viewers: %d, max_viewers_per_camera: %d}
log: {level: warn}
cameras:
`, filepath.Join(gdir, "store"), httpAddr, hex.EncodeToString(sum[:]), max(64, 2*len(cams)*perCamera), max(64, 2*perCamera))
	for _, id := range cams {
		fmt.Fprintf(&b, "  - {id: %s, zone: hall, url: %q, transport: tcp}\n", id, urls[id])
	}
	cfgPath := filepath.Join(gdir, "shelterwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	ch, err := startChild(o.Exe, "gateway", o.Log)
	if err != nil {
		return nil, err
	}
	g := &videoGateway{ch: ch, http: httpAddr, token: token}
	var ready gatewayReady
	if err := ch.call("init", gatewaySpec{ConfigFile: cfgPath}, &ready, 2*time.Minute); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

// cameraStatus is the part of GET /api/v1/cameras the bench reads.
type cameraStatus struct {
	ID           string    `json:"id"`
	State        string    `json:"state"`
	Reason       string    `json:"reason"`
	LastKeyframe time.Time `json:"last_keyframe"`
	FPS          float64   `json:"fps"`
	Reconnects   uint64    `json:"reconnects"`
}

func (g *videoGateway) cameras(ctx context.Context) ([]cameraStatus, error) {
	var sts []cameraStatus
	err := getJSON(ctx, "http://"+g.http+"/api/v1/cameras", g.token, &sts)
	return sts, err
}

// waitLive waits until every camera is live with a keyframe in its GOP
// cache, as GET /api/v1/cameras reports.
func (g *videoGateway) waitLive(ctx context.Context, cams []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for {
		sts, err := g.cameras(ctx)
		if err == nil {
			live := map[string]bool{}
			var waiting []string
			for _, s := range sts {
				if s.State == "live" && !s.LastKeyframe.IsZero() {
					live[s.ID] = true
				} else {
					waiting = append(waiting, fmt.Sprintf("%s %s %s", s.ID, s.State, s.Reason))
				}
			}
			n := 0
			for _, id := range cams {
				if live[id] {
					n++
				}
			}
			if n == len(cams) {
				return nil
			}
			last = strings.Join(waiting, "; ")
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cameras not live with a keyframe within %s: %s", limit, last)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func getJSON(ctx context.Context, url, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// scrapeMetrics reads the gauges and counters without labels from a
// Prometheus text page (labelled series are summed).
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			// The value follows the closing brace.
			j := strings.LastIndexByte(line, '}')
			name, rest = line[:i], strings.TrimSpace(line[j+1:])
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if x, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] += x
		}
	}
	return out, sc.Err()
}

// isKeyframe reports whether an access unit holds an IDR picture.
func isKeyframe(au [][]byte) bool {
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR {
			return true
		}
	}
	return false
}

// sortedMs returns ds in milliseconds, sorted, for quantileSorted.
func sortedMs(ds []time.Duration) []float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d) / float64(time.Millisecond)
	}
	slices.Sort(xs)
	return xs
}
