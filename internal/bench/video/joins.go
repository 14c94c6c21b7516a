package video

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// joinSchedule returns n join times, spread over whole GOPs covering at
// least span: one at a random moment in each of n equal slices, so that
// their phase within the GOP is uniform and no two bunch up.
func joinSchedule(n int, gop, span time.Duration, rng *rand.Rand) []time.Duration {
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
func gatewayFirstFrames(ctx context.Context, o Options, dir string, urls map[string]string, res *result) error {
	var cams []string
	for _, g := range o.gopClips {
		cams = append(cams, g.Name)
	}
	gw, err := startVideoGateway(o, dir, cams, urls, o.Joins)
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
	return runJoins(ctx, o.gopClips, o.Joins, span, 1, func(i int, g gopClip, at time.Duration) {
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
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), seed))
	t0 := time.Now()
	for i, g := range clips {
		for _, at := range joinSchedule(n, g.GOP, span(g), rng) {
			wg.Go(func() {
				if proc.Sleep(ctx, time.Until(t0.Add(at))) != nil {
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
	v := &viewer{c: c}
	defer v.close(hangUp)
	kctx, kcancel := context.WithTimeout(ctx, keyWait)
	defer kcancel()
	kf, err := c.Keyframe(kctx)
	if err != nil && kf.At.IsZero() {
		return j, err
	}
	j.FirstFrame, j.NoParams = kf.At.Sub(c.Posted), err != nil
	v.start(c.Posted.Add(time.Second))
	if err := proc.Sleep(ctx, time.Until(c.Posted.Add(hold))); err != nil {
		return j, err
	}
	v.stopWindow(time.Now())
	v.close(hangUp)
	j.Latency = v.latency
	return j, nil
}
