package video

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/netsim"
	"github.com/shelterwatch/shelterwatch/video/camsim"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// The networks bench: remote supervision as a supervisor meets it, over
// the emulated networks of internal/netsim (lan, office, 4g, poor4g).
// Every camera has a 2 Mbit/s 720p main stream and a 300 kbit/s 360p sub
// stream (ffmpeg, at bench time), at a 2 s and a 10 s keyframe interval.
// Per profile and camera, viewers join in the pion player and in Debian's
// Chromium (first frame from the POST, p50/p99), then one viewer of each
// watches for a minute with quality=auto (freezes, live lag, packets lost
// and recovered, the stream it settles on). Finally a 3×3 camera wall in
// Chromium shares one 4g link (every session through one bottleneck).
//
// Each viewer reaches the gateway's WebRTC port through a UDP relay that
// applies the profile, and its WHEP POST through a proxy that delays it by
// the round trip, strips the player's candidates from the offer and points
// the answer's at the relay: no packet can take a direct loopback path.

// NetOptions configure the networks bench.
type NetOptions struct {
	Exe, FFmpeg string
	// Chromium, when false, measures the pion player alone (no browser:
	// the cells say so).
	Chromium bool
	Profiles []string
	// GOPs are the keyframe intervals of the cameras, in seconds.
	GOPs      []int
	Main, Sub ClipSpec // GOP and Seconds are set per camera
	// Joins per profile, camera and player; Watch how long the sustained
	// viewers watch; Wall the cameras of the camera wall.
	Joins int
	Watch time.Duration
	Wall  int
	Log   io.Writer
}

// DefaultNetOptions are the figures of `make bench`.
func DefaultNetOptions() NetOptions {
	return NetOptions{
		FFmpeg: "ffmpeg", Chromium: true,
		Profiles: netsim.Names(), GOPs: []int{2, 10},
		Main:  ClipSpec{Size: "1280x720", FPS: 15, Bitrate: "2M"},
		Sub:   ClipSpec{Size: "640x360", FPS: 15, Bitrate: "300k"},
		Joins: 20, Watch: time.Minute, Wall: 9,
	}
}

// netCamera is one camera of the bench: its id and keyframe interval.
type netCamera struct {
	ID  string
	GOP time.Duration
}

// netResult is what the networks report prints.
type netResult struct {
	Main, Sub []loadClip // per GOP
	Cameras   []netCamera
	Rows      []netRow
	Wall      *wallResult
	WallErr   string
	NoBrowser string
}

// netRow is one profile × camera.
type netRow struct {
	Profile string
	Camera  netCamera
	Pion    joinStats
	Chrome  joinStats
	// Sustained viewing, quality=auto.
	PionWatch   *watchResult
	ChromeWatch *watchResult
	Errors      []string
}

type joinStats struct {
	First  []time.Duration
	Failed []string
}

// watchResult is one viewer's minute.
type watchResult struct {
	Duration time.Duration
	// Freezes as Chromium counts them (a frame later than max(3×, +150 ms)
	// the mean frame interval); LongFreezes over 1 s; MaxFreeze the
	// longest gap between frames.
	Freezes, LongFreezes int
	MaxFreeze            time.Duration
	// Settled are the freezes in the frames presented after the first 30
	// (2 s at 15 fps): those of a running picture, not of its start
	// (the GOP cache's catch-up, a first move to the main stream).
	Settled int
	// Lag: pion, arrival minus the camera's send stamp (p50, p99);
	// Chromium, presentation minus receive time (p50, p99), and the RTP
	// clock's pace against the wall clock over the window (1 = live).
	LagP50, LagP99         time.Duration
	Pace                   float64
	Lost, Recovered, Nacks int64
	// Probe is the padding packets received (the gateway probing; pion).
	Probe int64
	// Width of the last picture: 1280 main, 640 sub.
	Width    int
	Received float64 // bit/s
	Frames   int64
	// The gateway's estimate of the link over the window (bit/s), and
	// how often the session changed streams.
	EstMin, EstP50 float64
	Switches       int
	// RTT (ms) and loss from the player's receiver reports, as the
	// gateway saw them: p50 and max.
	RTTP50, RTTMax, LossMax float64
}

// lagWarmup: lag is measured from this long after the first frame on,
// when the GOP cache has been caught up.
const lagWarmup = 3 * time.Second

// addSamples sets the estimate figures and switches from the gateway's
// view of the session.
func (w *watchResult) addSamples(ss []sessionSample) {
	var est, rtt []float64
	for i, s := range ss {
		est = append(est, s.Estimate)
		if s.RTT > 0 {
			rtt = append(rtt, s.RTT)
		}
		w.LossMax = max(w.LossMax, s.Loss)
		if i > 0 && s.Stream != ss[i-1].Stream {
			w.Switches++
		}
	}
	if len(est) > 0 {
		slices.Sort(est)
		w.EstMin, w.EstP50 = est[0], est[len(est)/2]
	}
	if len(rtt) > 0 {
		slices.Sort(rtt)
		w.RTTP50, w.RTTMax = rtt[len(rtt)/2], rtt[len(rtt)-1]
	}
}

// sessionID is the last element of a WHEP session's Location.
func sessionID(location string) string {
	if i := strings.LastIndexByte(location, '/'); i >= 0 {
		return location[i+1:]
	}
	return location
}

// wallResult is the camera wall over one shared 4g link.
type wallResult struct {
	Sessions   int
	Widths     []int
	Freezes    int
	Settled    int // freezes after each tile's first 2 s
	MaxFreeze  time.Duration
	Received   float64 // bit/s, all sessions
	LinkRate   int
	Duration   time.Duration
	FirstFrame []time.Duration
}

// RunNetworks measures and writes the tables to w.
func RunNetworks(ctx context.Context, o NetOptions, w io.Writer) error {
	start := time.Now()
	res, err := runNetworks(ctx, o)
	if err != nil {
		return err
	}
	printNetReport(w, o, res)
	fmt.Fprintf(w, "\nTotal time %.0fs.\n", time.Since(start).Seconds())
	return nil
}

func runNetworks(ctx context.Context, o NetOptions) (*netResult, error) {
	res := &netResult{}
	dir, err := os.MkdirTemp("", "shelter-bench-networks-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	cams, urls, subs, stop, err := startNetCameras(ctx, o, dir, res)
	defer stop()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(urls))
	for id := range urls {
		ids = append(ids, id)
	}
	gw, err := startGatewayWith(o.Exe, o.Log, dir, ids, urls, subs, 2*o.Joins)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	if err := gw.waitLive(ctx, ids, 60*time.Second); err != nil {
		return nil, err
	}
	res.Cameras = cams

	var br *netBrowser
	if o.Chromium {
		if br, err = startNetBrowser(dir); err != nil {
			res.NoBrowser = err.Error()
		} else {
			defer br.close()
		}
	} else {
		res.NoBrowser = "not asked (-chromium=false)"
	}
	for _, name := range o.Profiles {
		p, err := netsim.Lookup(name)
		if err != nil {
			return nil, err
		}
		for _, c := range cams {
			fmt.Fprintf(o.Log, "shelter-bench networks: %s, %s keyframes …\n", name, c.GOP)
			row, err := profileRow(ctx, o, gw, br, p, c)
			if err != nil {
				return nil, fmt.Errorf("%s, camera %s: %w", name, c.ID, err)
			}
			res.Rows = append(res.Rows, row)
		}
	}
	if br != nil && o.Wall > 0 {
		fmt.Fprintf(o.Log, "shelter-bench networks: a %d-camera wall over one 4g link …\n", o.Wall)
		res.Wall, err = runWall(ctx, o, gw, br)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			res.WallErr = err.Error()
		}
	}
	return res, nil
}

// startNetCameras makes the clips and starts the cameras: one per GOP for
// the joins, and o.Wall more (2 s GOP) for the wall, each camsim server
// started a fraction of a GOP after the previous one.
func startNetCameras(ctx context.Context, o NetOptions, dir string, res *netResult) (cams []netCamera, urls, subs map[string]string, stop func(), err error) {
	var sims []*camsim.Server
	stop = func() {
		for _, s := range sims {
			s.Close()
		}
	}
	urls, subs = map[string]string{}, map[string]string{}
	start := func(id string, main, sub *camsim.Clip) error {
		sim, err := startSim(ctx, []camsim.Camera{{Path: "/" + id, Clip: main}, {Path: "/" + id + "-sub", Clip: sub}})
		if err != nil {
			return err
		}
		sims = append(sims, sim)
		urls[id] = "rtsp://" + sim.Addr().String() + "/" + id
		subs[id] = "rtsp://" + sim.Addr().String() + "/" + id + "-sub"
		return nil
	}
	for _, g := range o.GOPs {
		seconds := max(20, 2*g)
		m, s := o.Main, o.Sub
		m.GOP, s.GOP = g*m.FPS, g*s.FPS
		m.Seconds, s.Seconds = seconds, seconds
		fmt.Fprintf(o.Log, "shelter-bench networks: making the %s %s and %s %s clips (%d s GOP) …\n", m.Size, m.Bitrate, s.Size, s.Bitrate, g)
		mc, err := makeClip(ctx, o.FFmpeg, filepath.Join(dir, fmt.Sprintf("main-%d.h264", g)), m)
		if err != nil {
			return nil, nil, nil, stop, err
		}
		sc, err := makeClip(ctx, o.FFmpeg, filepath.Join(dir, fmt.Sprintf("sub-%d.h264", g)), s)
		if err != nil {
			return nil, nil, nil, stop, err
		}
		res.Main, res.Sub = append(res.Main, mc), append(res.Sub, sc)
		c := netCamera{ID: fmt.Sprintf("gop%ds", g), GOP: time.Duration(g) * time.Second}
		if err := start(c.ID, mc.Clip, sc.Clip); err != nil {
			return nil, nil, nil, stop, err
		}
		cams = append(cams, c)
	}
	if o.Wall > 0 && len(res.Main) > 0 {
		for i := range o.Wall {
			if err := proc.Sleep(ctx, res.Main[0].GOPMeasured/time.Duration(o.Wall)); err != nil {
				return nil, nil, nil, stop, err
			}
			if err := start(wallCamera(i), res.Main[0].Clip, res.Sub[0].Clip); err != nil {
				return nil, nil, nil, stop, err
			}
		}
	}
	return cams, urls, subs, stop, nil
}

func wallCamera(i int) string { return fmt.Sprintf("wall%d", i+1) }

// netPath is one emulated network in front of the gateway: a UDP relay
// and a WHEP proxy (which also serves the Chromium player page).
type netPath struct {
	relay *netsim.UDPRelay
	http  *httptest.Server
}

func (n *netPath) close() {
	n.http.Close()
	_ = n.relay.Close()
}

func (n *netPath) whepURL(camera, query string) string {
	return n.http.URL + "/api/v1/cameras/" + camera + "/whep?" + query
}

// openPath puts profile p between players and the gateway.
func openPath(gw *videoGateway, ice *net.UDPAddr, p netsim.Profile, shared bool, seed uint64) (*netPath, error) {
	relay, err := netsim.NewUDP(ice, p, netsim.Options{Seed: seed, SharedLink: shared})
	if err != nil {
		return nil, err
	}
	target, _ := url.Parse("http://" + gw.http)
	from, to := ice.AddrPort(), relay.Addr().AddrPort()
	proxy := netsim.NewWHEPProxyWith(target, netsim.ProxyOptions{
		Answer: func(sdp string) string { return netsim.RewriteCandidates(sdp, from, to) },
		Offer:  netsim.StripCandidates,
		Delay:  p.RTT,
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bench/player.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, playerPage)
	})
	mux.Handle("/", proxy)
	return &netPath{relay: relay, http: httptest.NewServer(mux)}, nil
}

// profileRow measures one profile and camera.
func profileRow(ctx context.Context, o NetOptions, gw *videoGateway, br *netBrowser, p netsim.Profile, c netCamera) (netRow, error) {
	row := netRow{Profile: p.Name, Camera: c}
	ice, err := gw.iceAddr(ctx)
	if err != nil {
		return row, err
	}
	path, err := openPath(gw, ice, p, false, uint64(len(p.Name))*7+uint64(c.GOP/time.Second))
	if err != nil {
		return row, err
	}
	defer path.close()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	span := max(c.GOP, 10*time.Second)
	// pion joins, spread over whole GOPs, some at once.
	var mu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, at := range joinSchedule(o.Joins, c.GOP, span, rng) {
		wg.Go(func() {
			if proc.Sleep(ctx, time.Until(t0.Add(at))) != nil {
				return
			}
			d, err := pionJoin(ctx, path.whepURL(c.ID, "quality=auto"), gw.token)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				row.Pion.Failed = append(row.Pion.Failed, err.Error())
				return
			}
			row.Pion.First = append(row.Pion.First, d)
		})
	}
	wg.Wait()
	if br != nil {
		t0 := time.Now()
		for _, at := range joinSchedule(o.Joins, c.GOP, span, rng) {
			if err := proc.Sleep(ctx, time.Until(t0.Add(at))); err != nil {
				return row, err
			}
			d, err := br.join(path, c.ID, "quality=auto", gw.token)
			if err != nil {
				row.Chrome.Failed = append(row.Chrome.Failed, err.Error())
				continue
			}
			row.Chrome.First = append(row.Chrome.First, d)
		}
	}
	// One viewer of each kind watches for o.Watch, at once.
	var werr error
	wg.Go(func() {
		w, err := pionWatch(ctx, gw, path.whepURL(c.ID, "quality=auto"), o.Watch)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			werr = fmt.Errorf("pion watch: %w", err)
			return
		}
		row.PionWatch = w
	})
	if br != nil {
		w, err := br.watch(ctx, gw, path, c.ID, "quality=auto", o.Watch)
		if err != nil {
			row.Errors = append(row.Errors, "chromium watch: "+err.Error())
		} else {
			row.ChromeWatch = w
		}
	}
	wg.Wait()
	if werr != nil {
		row.Errors = append(row.Errors, werr.Error())
	}
	return row, ctx.Err()
}

// pionJoin is one pion viewer: POST → first complete keyframe.
func pionJoin(ctx context.Context, url, token string) (time.Duration, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := whepclient.Dial(dctx, whepclient.Options{URL: url, Token: token, Loopback: true})
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer func() {
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = c.HangUp(hctx)
		hcancel()
		_ = c.Close()
	}()
	kf, err := completeKeyframe(dctx, c)
	if err != nil {
		return 0, err
	}
	return kf.At.Sub(c.Posted), nil
}

// completeKeyframe waits for the first keyframe a decoder can start from:
// over a lossy link the packet with a keyframe's parameter sets may be
// lost while its picture arrives; the player then asks for a keyframe
// (PLI), as a browser does, and waits for it.
func completeKeyframe(ctx context.Context, c *whepclient.Client) (whepclient.AccessUnit, error) {
	for {
		kf, err := c.Keyframe(ctx)
		if err == nil || ctx.Err() != nil || kf.At.IsZero() {
			return kf, err
		}
		_ = c.RequestKeyframe()
	}
}

// pionWatch is one pion viewer for d: freezes, lag from the camera's
// stamps, sequence numbers, the stream at the end.
func pionWatch(ctx context.Context, gw *videoGateway, url string, d time.Duration) (*watchResult, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := whepclient.Dial(dctx, whepclient.Options{URL: url, Token: gw.token, Loopback: true})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if _, err := completeKeyframe(dctx, c); err != nil {
		return nil, err
	}
	w := &watchResult{}
	from := time.Now()
	stopSampling := make(chan struct{})
	sampled := make(chan []sessionSample, 1)
	go func() { sampled <- gw.sampleSession(ctx, sessionID(c.Location), stopSampling) }()
	end := time.NewTimer(d)
	defer end.Stop()
	var gaps []time.Duration
	var lags []time.Duration
	var last time.Time
	var bytes int64
loop:
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-end.C:
			break loop
		case au, ok := <-c.AccessUnits():
			if !ok {
				return nil, fmt.Errorf("the session ended after %s", time.Since(from).Round(time.Millisecond))
			}
			w.Frames++
			for _, n := range au.NALUs {
				bytes += int64(len(n))
				if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
					var sps h264.SPS
					if sps.Unmarshal(n) == nil {
						w.Width = sps.Width()
					}
				}
			}
			if !last.IsZero() {
				gaps = append(gaps, au.At.Sub(last))
			}
			last = au.At
			if sent, ok := camsim.ParseStamp(au.NALUs); ok && au.At.Sub(from) >= lagWarmup {
				lags = append(lags, au.At.Sub(sent))
			}
		}
	}
	w.Duration = time.Since(from)
	close(stopSampling)
	w.addSamples(<-sampled)
	w.Freezes, w.LongFreezes, w.MaxFreeze = freezes(gaps)
	w.Settled = w.Freezes
	w.LagP50, w.LagP99 = quantileD(lags, 0.5), quantileD(lags, 0.99)
	seq := c.Seq()
	w.Lost, w.Recovered, w.Probe = seq.Lost(), seq.Late, seq.Padding
	w.Received = float64(bytes*8) / w.Duration.Seconds()
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, _ = c.HangUp(hctx)
	hcancel()
	return w, nil
}

// freezes counts frame gaps as Chromium's freezeCount does: longer than
// max(3 × the mean frame interval, mean + 150 ms), the mean taken over the
// preceding 30 frames; and those over a second.
func freezes(gaps []time.Duration) (n, long int, longest time.Duration) {
	var sum time.Duration
	for i, g := range gaps {
		longest = max(longest, g)
		if i >= 30 {
			mean := sum / 30
			if g > max(3*mean, mean+150*time.Millisecond) {
				n++
				if g > time.Second {
					long++
				}
			}
			sum -= gaps[i-30]
		}
		sum += g
	}
	return n, long, longest
}

func quantileD(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
