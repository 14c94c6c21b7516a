package video

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/chromium"
	"github.com/shelterwatch/shelterwatch/internal/netsim"
)

// playerPage is the Chromium side of the networks bench: a WHEP player as
// small as a browser's can be (the console's camera page adds its own
// page load and login to the figures; its first picture is measured by
// the console bench). Served by the network path's proxy, so the POST is
// same-origin and crosses the emulated network.
//
// Each session logs every presented frame with requestVideoFrameCallback:
// its presentation time, its receive time and its RTP timestamp, from
// which the bench computes freezes, lag and the RTP clock's pace.
const playerPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>player</title></head>
<body><div id="videos"></div>
<script>
window.sessions = [];
window.join = async (camera, query, token) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true; video.width = 320;
  document.getElementById('videos').appendChild(video);
  const s = {pc, video, posted: 0, first: 0, frames: [], location: '', token};
  const onFrame = (now, meta) => {
    if (!s.first) s.first = now;
    s.frames.push([meta.presentationTime, meta.receiveTime || 0, meta.rtpTimestamp || 0, meta.width]);
    if (s.frames.length > 20000) s.frames.splice(0, 10000);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  pc.ontrack = (e) => {
    if (e.track.kind === 'video') video.srcObject = new MediaStream([e.track]);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    setTimeout(resolve, 1000);
  });
  s.posted = performance.now();
  const r = await fetch('/api/v1/cameras/' + camera + '/whep?' + query, {
    method: 'POST', headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token},
    body: pc.localDescription.sdp});
  const body = await r.text();
  if (r.status !== 201) { pc.close(); video.remove(); throw new Error('POST ' + r.status + ': ' + body); }
  s.location = r.headers.get('Location');
  await pc.setRemoteDescription({type: 'answer', sdp: body});
  window.sessions.push(s);
  return window.sessions.length - 1;
};
window.firstFrame = (i) => { const s = window.sessions[i]; return s.first ? s.first - s.posted : 0; };
window.stats = async (i) => {
  const st = await window.sessions[i].pc.getStats();
  let out = null;
  st.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') out = r; });
  return out ? {freezeCount: out.freezeCount || 0, totalFreezesDuration: out.totalFreezesDuration || 0,
    packetsLost: out.packetsLost || 0, packetsReceived: out.packetsReceived || 0, nackCount: out.nackCount || 0,
    retransmitted: out.retransmittedPacketsReceived || 0, bytesReceived: out.bytesReceived || 0,
    frameWidth: out.frameWidth || 0, framesDecoded: out.framesDecoded || 0} : null;
};
window.frames = (i, from) => window.sessions[i].frames.filter((f) => f[0] >= from);
window.now = () => performance.now();
window.leave = async (i) => {
  const s = window.sessions[i];
  try { await fetch(s.location, {method: 'DELETE', headers: {'Authorization': 'Bearer ' + s.token}}); } catch (e) {}
  s.pc.close(); s.video.remove(); s.frames = [];
};
</script></body></html>`

// netBrowser is Chromium with the player page of the current path open.
type netBrowser struct {
	ctx    context.Context
	cancel context.CancelFunc
	at     string // the page's origin
}

// startNetBrowser starts Chromium, trying three times: on a busy machine
// a start now and then fails before its DevTools answer.
func startNetBrowser(dir string) (*netBrowser, error) {
	var err error
	for attempt := range 3 {
		var ctx context.Context
		var cancel context.CancelFunc
		ctx, cancel, err = chromium.Launch(context.Background(), chromium.Options{ProfileDir: fmt.Sprintf("%s/chromium-%d", dir, attempt)})
		if err == nil {
			return &netBrowser{ctx: ctx, cancel: cancel}, nil
		}
	}
	return nil, err
}

func (b *netBrowser) close() { b.cancel() }

// open loads the player page of path unless it is open.
func (b *netBrowser) open(path *netPath) error {
	if b.at == path.http.URL {
		return nil
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(path.http.URL+"/bench/player.html")); err != nil {
		return err
	}
	b.at = path.http.URL
	return nil
}

func evalJS[T any](b *netBrowser, within time.Duration, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, within)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// start joins a session and waits for its first frame (POST → first
// presented frame).
func (b *netBrowser) start(path *netPath, camera, query, token string) (int, time.Duration, error) {
	if err := b.open(path); err != nil {
		return 0, 0, err
	}
	i, err := evalJS[int](b, 20*time.Second, fmt.Sprintf("join(%q, %q, %q)", camera, query, token))
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	ms, err := chromedp.Run(ctx, chromedp.Poll[float64](fmt.Sprintf("firstFrame(%d)", i),
		chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingInterval(5*time.Millisecond)))
	if err != nil {
		b.leave(i)
		return 0, 0, fmt.Errorf("no picture within 15 s: %w", err)
	}
	return i, time.Duration(ms * float64(time.Millisecond)), nil
}

func (b *netBrowser) leave(i int) {
	_, _ = evalJS[any](b, 10*time.Second, fmt.Sprintf("leave(%d)", i))
}

// join is one first-frame join.
func (b *netBrowser) join(path *netPath, camera, query, token string) (time.Duration, error) {
	i, d, err := b.start(path, camera, query, token)
	if err != nil {
		return 0, err
	}
	b.leave(i)
	return d, nil
}

// chromeStats is the part of inbound-rtp the bench reads.
type chromeStats struct {
	FreezeCount          int     `json:"freezeCount"`
	TotalFreezesDuration float64 `json:"totalFreezesDuration"`
	PacketsLost          int64   `json:"packetsLost"`
	PacketsReceived      int64   `json:"packetsReceived"`
	NackCount            int64   `json:"nackCount"`
	Retransmitted        int64   `json:"retransmitted"`
	BytesReceived        float64 `json:"bytesReceived"`
	FrameWidth           int     `json:"frameWidth"`
	FramesDecoded        int64   `json:"framesDecoded"`
}

func (b *netBrowser) stats(i int) (chromeStats, error) {
	return evalJS[chromeStats](b, 10*time.Second, fmt.Sprintf("stats(%d)", i))
}

// watch plays one session for d and measures it.
func (b *netBrowser) watch(ctx context.Context, gw *videoGateway, path *netPath, camera, query string, d time.Duration) (*watchResult, error) {
	i, _, err := b.start(path, camera, query, gw.token)
	if err != nil {
		return nil, err
	}
	defer b.leave(i)
	w, err := b.measure(ctx, gw, []int{i}, d)
	if err != nil {
		return nil, err
	}
	return w[0], nil
}

// measure watches sessions for d: Chromium's counters over the window,
// and the frames presented in it.
func (b *netBrowser) measure(ctx context.Context, gw *videoGateway, sessions []int, d time.Duration) ([]*watchResult, error) {
	s0 := make([]chromeStats, len(sessions))
	stop := make(chan struct{})
	samples := make([]chan []sessionSample, len(sessions))
	for k, i := range sessions {
		loc, err := evalJS[string](b, 10*time.Second, fmt.Sprintf("sessions[%d].location", i))
		if err != nil {
			close(stop)
			return nil, err
		}
		samples[k] = make(chan []sessionSample, 1)
		go func() { samples[k] <- gw.sampleSession(ctx, sessionID(loc), stop) }()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	for k, i := range sessions {
		var err error
		if s0[k], err = b.stats(i); err != nil {
			return nil, err
		}
	}
	from, err := evalJS[float64](b, 10*time.Second, "now()")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := proc.Sleep(ctx, d); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	close(stop)
	out := make([]*watchResult, len(sessions))
	for k, i := range sessions {
		s1, err := b.stats(i)
		if err != nil {
			return nil, err
		}
		frames, err := evalJS[[][4]float64](b, 10*time.Second, fmt.Sprintf("frames(%d, %f)", i, from))
		if err != nil {
			return nil, err
		}
		w := &watchResult{Duration: elapsed, Width: s1.FrameWidth, Frames: int64(len(frames)),
			Lost: s1.PacketsLost - s0[k].PacketsLost, Nacks: s1.NackCount - s0[k].NackCount,
			Recovered: s1.Retransmitted - s0[k].Retransmitted,
			Received:  (s1.BytesReceived - s0[k].BytesReceived) * 8 / elapsed.Seconds()}
		var gaps, lags []time.Duration
		for j, f := range frames {
			if j > 0 {
				gaps = append(gaps, ms(f[0]-frames[j-1][0]))
			}
			if f[1] > 0 && ms(f[0]-from) >= lagWarmup {
				lags = append(lags, ms(f[0]-f[1]))
			}
		}
		w.addSamples(<-samples[k])
		w.Freezes, w.LongFreezes, w.MaxFreeze = freezes(gaps)
		w.Settled = w.Freezes
		// Chromium's own count, when it saw more (it also sees frames
		// decoded but not presented).
		w.Freezes = max(w.Freezes, s1.FreezeCount-s0[k].FreezeCount)
		w.LagP50, w.LagP99 = quantileD(lags, 0.5), quantileD(lags, 0.99)
		if n := len(frames); n > 1 && frames[n-1][2] != 0 {
			rtp := float64(uint32(frames[n-1][2])-uint32(frames[0][2])) / 90000
			wall := (frames[n-1][0] - frames[0][0]) / 1000
			if wall > 0 {
				w.Pace = rtp / wall
			}
		}
		out[k] = w
	}
	return out, nil
}

func ms(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }

// runWall opens a camera wall of o.Wall sessions (tiles=o.Wall) over one
// shared 4g link and watches it for o.Watch.
func runWall(ctx context.Context, o NetOptions, gw *videoGateway, b *netBrowser) (*wallResult, error) {
	p, err := netsim.Lookup("4g")
	if err != nil {
		return nil, err
	}
	ice, err := gw.iceAddr(ctx)
	if err != nil {
		return nil, err
	}
	path, err := openPath(gw, ice, p, true, 99)
	if err != nil {
		return nil, err
	}
	defer path.close()
	res := &wallResult{LinkRate: p.Rate}
	var sessions []int
	defer func() {
		for _, i := range sessions {
			b.leave(i)
		}
	}()
	query := fmt.Sprintf("quality=auto&tiles=%d", o.Wall)
	for k := range o.Wall {
		i, d, err := b.start(path, wallCamera(k), query, gw.token)
		if err != nil {
			return nil, fmt.Errorf("tile %d: %w", k+1, err)
		}
		sessions = append(sessions, i)
		res.FirstFrame = append(res.FirstFrame, d)
	}
	ws, err := b.measure(ctx, gw, sessions, o.Watch)
	if err != nil {
		return nil, err
	}
	res.Sessions = len(ws)
	for _, w := range ws {
		res.Widths = append(res.Widths, w.Width)
		res.Freezes += w.Freezes
		res.Settled += w.Settled
		res.MaxFreeze = max(res.MaxFreeze, w.MaxFreeze)
		res.Received += w.Received
		res.Duration = w.Duration
	}
	slices.Sort(res.Widths)
	return res, nil
}
