package video

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/procstat"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

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

// gatewayLoad runs a gateway with the load cameras and measures it.
func gatewayLoad(ctx context.Context, o Options, dir string, urls map[string]string, res *loadResult) error {
	var cams []string
	for i := range o.Cameras {
		cams = append(cams, loadCamera(i))
	}
	gw, err := startVideoGateway(o, dir, cams, urls, o.ViewersPerCamera)
	if err != nil {
		return err
	}
	defer gw.stop()
	if err := gw.waitLive(ctx, cams, 30*time.Second); err != nil {
		return err
	}
	return runLoad(ctx, o, relayUnderLoad{name: "gateway", pid: gw.pid(), url: gw.whepURL, token: gw.token, hangUp: true,
		metrics: "http://" + gw.metrics + "/metrics", cameras: gw.cameras}, res)
}

// runLoad connects Cameras × ViewersPerCamera viewers to r, warms up and
// measures the window.
func runLoad(ctx context.Context, o Options, r relayUnderLoad, res *loadResult) error {
	res.Goroutines0, res.Goroutines, res.Resyncs, res.KeyRequests = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	res.CameraFPS, res.Reconnects = math.NaN(), math.NaN()
	if r.metrics != "" {
		if err := measureIdle(ctx, r, res); err != nil {
			return err
		}
	}

	fmt.Fprintf(o.Log, "shelter-bench video: %s: %d cameras × %d viewers, %s warm-up, %s window …\n",
		r.name, o.Cameras, o.ViewersPerCamera, o.Warmup, o.Duration)
	var viewers []*viewer
	defer func() { closeViewers(viewers, r.hangUp) }()
	for i := range o.Cameras {
		cam := loadCamera(i)
		for j := range o.ViewersPerCamera {
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			c, err := whepclient.Dial(dctx, whepclient.Options{URL: r.url(cam), Token: r.token, Loopback: true})
			cancel()
			if err != nil {
				return fmt.Errorf("viewer %d of %s: %w", j+1, cam, err)
			}
			v := &viewer{c: c}
			v.start(time.Now())
			viewers = append(viewers, v)
		}
	}
	res.Viewers = len(viewers)
	if err := proc.Sleep(ctx, o.Warmup); err != nil {
		return err
	}
	if err := measureWindow(ctx, o, r, viewers, res); err != nil {
		return err
	}

	closeViewers(viewers, r.hangUp)
	for _, v := range viewers {
		res.Frames = append(res.Frames, v.frames)
		res.MaxGap = max(res.MaxGap, v.maxGap)
		res.Latency = append(res.Latency, v.latency...)
		res.KeyLatency = append(res.KeyLatency, v.keyLat...)
		res.Unstamped += v.unstamped
	}
	return nil
}

// measureIdle measures the relay with the cameras pulled already and
// nobody watching: CPU over 3 s, RSS and goroutines.
func measureIdle(ctx context.Context, r relayUnderLoad, res *loadResult) error {
	if err := proc.Sleep(ctx, time.Second); err != nil {
		return err
	}
	idle := 3 * time.Second
	c0, err := procstat.CPU(r.pid)
	if err != nil {
		return err
	}
	if err := proc.Sleep(ctx, idle); err != nil {
		return err
	}
	c1, err := procstat.CPU(r.pid)
	if err != nil {
		return err
	}
	res.IdleCPU, res.IdleWindow = c1-c0, idle
	if _, res.IdleRSS, err = procstat.Mem(r.pid); err != nil {
		return err
	}
	m, err := scrapeMetrics(ctx, r.metrics)
	if err != nil {
		return err
	}
	res.Goroutines0 = m["go_goroutines"]
	return nil
}

// measureWindow measures the relay, this process and the machine over the
// window, with the viewers counting frames from its start to its end.
func measureWindow(ctx context.Context, o Options, r relayUnderLoad, viewers []*viewer, res *loadResult) error {
	var m0 map[string]float64
	if r.metrics != "" {
		var err error
		if m0, err = scrapeMetrics(ctx, r.metrics); err != nil {
			return err
		}
	}
	busy0, err := procstat.MachineBusy()
	if err != nil {
		return err
	}
	cpu0, err := procstat.CPU(r.pid)
	if err != nil {
		return err
	}
	self0, t0 := procstat.SelfCPU(), time.Now()
	for _, v := range viewers {
		v.setWindow(t0)
	}
	// Goroutines are read halfway through the window.
	if err := proc.Sleep(ctx, o.Duration/2); err != nil {
		return err
	}
	if r.metrics != "" {
		m, err := scrapeMetrics(ctx, r.metrics)
		if err != nil {
			return err
		}
		res.Goroutines = m["go_goroutines"]
	}
	if err := proc.Sleep(ctx, time.Until(t0.Add(o.Duration))); err != nil {
		return err
	}
	t1 := time.Now()
	cpu1, err := procstat.CPU(r.pid)
	if err != nil {
		return err
	}
	self1 := procstat.SelfCPU()
	busy1, err := procstat.MachineBusy()
	if err != nil {
		return err
	}
	for _, v := range viewers {
		v.stopWindow(t1)
	}
	if err := relayCounters(ctx, r, m0, res); err != nil {
		return err
	}
	res.RSSPeak, res.RSSEnd, err = procstat.Mem(r.pid)
	if err != nil {
		return err
	}
	res.Window, res.CPU, res.BenchCPU = t1.Sub(t0), cpu1-cpu0, self1-self0
	res.OtherCPU = busy1 - busy0 - res.CPU - res.BenchCPU
	return nil
}

// relayCounters reads what the gateway reports of itself at the end of the
// window: resyncs and keyframe requests since m0, and its cameras' frame
// rates and reconnects. go2rtc reports none of them.
func relayCounters(ctx context.Context, r relayUnderLoad, m0 map[string]float64, res *loadResult) error {
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
	return nil
}
