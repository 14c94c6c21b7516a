package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// printVideoReport writes the video table, its legend and the goals.
func printVideoReport(w io.Writer, o videoOptions, r *videoResult) {
	g, x := &r.Gateway, r.Go2RTC
	rival := "go2rtc"
	if r.Go2RTCVersion != "" {
		rival += " " + r.Go2RTCVersion
	}
	na := "n/a¹"
	fmt.Fprintf(w, "\n### Video relay: RTSP camera → relay → WebRTC viewer (%d cores, %s)\n\n", r.Cores, runtime.Version())
	fmt.Fprintf(w, "Load: %d cameras × %d viewers, each camera looping a %s %d fps H.264 clip made by ffmpeg (-b:v %s), keyframe every %s, %.2f Mbit/s measured; %s window after %s warm-up. First-frame cameras: the committed 320x240 15 fps clips.\n\n",
		o.Cameras, o.ViewersPerCamera, r.Clip.Size, r.Clip.FPS, r.Clip.Bitrate, seconds(r.Clip.GOPMeasured), r.Clip.BitsPerSec/1e6, seconds(g.Window.Round(100*time.Millisecond)), seconds(o.Warmup))
	fmt.Fprintf(w, "| measure | ShelterWatch gateway | %s | gateway / %s | goal; context |\n", rival, rival)
	fmt.Fprintln(w, "|---|---:|---:|---:|---|")

	for _, f := range r.FirstFrame {
		gw := sortedMs(f.Joins)
		gp50, gp99 := quantileSorted(gw, 0.5), quantileSorted(gw, 0.99)
		rivalCell, ratio := na, ""
		if x != nil {
			xs := sortedMs(f.Go2RTC)
			rivalCell = fmt.Sprintf("%s / %s (%d joins)", ms0(quantileSorted(xs, 0.5)), ms0(quantileSorted(xs, 0.99)), len(xs))
			if len(xs) == 0 {
				rivalCell = "no join got a keyframe"
			}
			if n := len(f.Go2RTCFailed); n > 0 {
				rivalCell += fmt.Sprintf("; %d failed", n)
			}
			if f.Go2RTCNoParams > 0 {
				rivalCell += fmt.Sprintf("; %d keyframes without SPS/PPS", f.Go2RTCNoParams)
			}
			ratio = ratioCell(quantileSorted(gw, 0.5), quantileSorted(xs, 0.5))
		} else if r.Go2RTCErr == "" {
			rivalCell = "—"
		}
		gwCell := fmt.Sprintf("%s / %s (%d joins)", ms0(gp50), ms0(gp99), len(gw))
		if n := len(f.Failed); n > 0 {
			gwCell += fmt.Sprintf("; %d failed", n)
		}
		gop := f.Clip.GOP.Seconds() * 1000
		fmt.Fprintf(w, "| time to first frame, %s keyframe interval: p50 / p99 ms | %s | %s | %s | ≤ %d ms p99: %s; without a GOP cache ≈ %s / %s ms (computed, not measured: the wait for the next keyframe alone) |\n",
			seconds(f.Clip.GOP), gwCell, rivalCell, ratio, goalFirstFrame.Milliseconds(),
			passMiss(len(gw) > 0 && len(f.Failed) == 0 && gp99 <= float64(goalFirstFrame.Milliseconds())), ms0(gop/2), ms0(gop*0.99))
	}

	idle := sortedMs(r.IdleLatency)
	fmt.Fprintf(w, "| added latency, live frames, one viewer per session (the first-frame sessions): p50 / p99 ms | %s / %s (%s frames) | — | | ≤ %d ms p99: %s |\n",
		ms1(quantileSorted(idle, 0.5)), ms1(quantileSorted(idle, 0.99)), thousands(float64(len(idle))), goalAddedP99.Milliseconds(),
		passMiss(len(idle) > 0 && quantileSorted(idle, 0.99) <= float64(goalAddedP99.Milliseconds())))

	// go2rtc drops an SEI NAL unit that starts an access unit, so only its
	// keyframes (SPS, PPS, then the SEI) keep the stamp: compare keyframes.
	stripped := x != nil && x.Unstamped > 0
	for _, row := range []struct {
		label     string
		keyframes bool
	}{
		{"added latency under the load, all live frames: p50 / p99 ms", false},
		{"added latency under the load, keyframes only: p50 / p99 ms", true},
	} {
		gl := sortedMs(latencyOf(g, row.keyframes))
		rivalCell, ratio := na, ""
		if x != nil {
			xl := sortedMs(latencyOf(x, row.keyframes))
			rivalCell = fmt.Sprintf("%s / %s (%s frames)", ms1(quantileSorted(xl, 0.5)), ms1(quantileSorted(xl, 0.99)), thousands(float64(len(xl))))
			ratio = ratioCell(quantileSorted(gl, 0.99), quantileSorted(xl, 0.99)) + " (p99)"
			if len(xl) == 0 || stripped && !row.keyframes {
				rivalCell, ratio = "—²", ""
			}
		}
		fmt.Fprintf(w, "| %s | %s / %s (%s frames) | %s | %s | ≤ %d ms p99: %s |\n",
			row.label, ms1(quantileSorted(gl, 0.5)), ms1(quantileSorted(gl, 0.99)), thousands(float64(len(gl))), rivalCell, ratio, goalAddedP99.Milliseconds(),
			passMiss(len(gl) > 0 && quantileSorted(gl, 0.99) <= float64(goalAddedP99.Milliseconds())))
	}

	rivalCell, ratio := na, ""
	goal := "no higher than " + rival + ": not measured"
	if x != nil {
		rivalCell = pct(x.CPU, x.Window)
		ratio = ratioCell(g.CPU.Seconds()/g.Window.Seconds(), x.CPU.Seconds()/x.Window.Seconds())
		goal = "no higher than " + rival + ": " + passMiss(g.CPU.Seconds()/g.Window.Seconds() <= x.CPU.Seconds()/x.Window.Seconds())
	}
	fmt.Fprintf(w, "| CPU under the load, %% of one core | %s | %s | %s | %s |\n", pct(g.CPU, g.Window), rivalCell, ratio, goal)
	perViewer := (g.CPU.Seconds()/g.Window.Seconds() - g.IdleCPU.Seconds()/g.IdleWindow.Seconds()) / float64(max(g.Viewers, 1))
	fmt.Fprintf(w, "| CPU with the cameras pulled and no viewer, %% of one core | %s | — | | %s pulls a camera only while someone watches; the gateway adds ≈ %.2f%% per viewer |\n",
		pct(g.IdleCPU, g.IdleWindow), rival, 100*perViewer)

	rivalCell, ratio = na, ""
	if x != nil {
		rivalCell = fmt.Sprintf("%.1f (%.1f)", mb(x.RSSEnd), mb(x.RSSPeak))
		ratio = ratioCell(float64(g.RSSEnd), float64(x.RSSEnd))
	}
	fmt.Fprintf(w, "| RSS MB at the end of the window (peak since start) | %.1f (%.1f) | %s | %s | gateway with no viewer: %.1f MB (it also holds the store, rules and broker), ≈ %.1f MB more per viewer |\n",
		mb(g.RSSEnd), mb(g.RSSPeak), rivalCell, ratio, mb(g.IdleRSS), mb(g.RSSEnd-g.IdleRSS)/float64(max(g.Viewers, 1)))
	fmt.Fprintf(w, "| goroutines per viewer | %.1f (%.0f with no viewer, %.0f with %d) | — | | |\n",
		(g.Goroutines-g.Goroutines0)/float64(max(g.Viewers, 1)), g.Goroutines0, g.Goroutines, g.Viewers)

	expect := g.Window.Seconds() * float64(r.Clip.FPS)
	served := func(l *loadResult) bool {
		if len(l.Frames) == 0 {
			return false
		}
		return float64(slices.Min(l.Frames)) >= 0.9*l.Window.Seconds()*float64(r.Clip.FPS)
	}
	rivalCell = na
	if x != nil {
		rivalCell = framesCell(x)
	}
	fmt.Fprintf(w, "| frames per viewer in the window: min / median (the camera sent ≈ %.0f) | %s | %s | | every viewer served: %s |\n",
		expect, framesCell(g), rivalCell, yesNo(served(g)))
	rivalCell = na
	if x != nil {
		rivalCell = ms0(float64(x.MaxGap) / float64(time.Millisecond))
	}
	fmt.Fprintf(w, "| longest gap between two frames of one viewer, ms | %s | %s | | %s between frames at %d fps |\n",
		ms0(float64(g.MaxGap)/float64(time.Millisecond)), rivalCell, (time.Second / time.Duration(r.Clip.FPS)).Round(100*time.Microsecond), r.Clip.FPS)
	fmt.Fprintf(w, "| slow-viewer resyncs / keyframe requests in the window | %.0f / %.0f | — | | |\n", g.Resyncs, g.KeyRequests)
	fmt.Fprintf(w, "| cameras at the relay: lowest frame rate at the end of the window, reconnects | %.1f fps, %.0f | — | | the cameras send %d fps |\n",
		g.CameraFPS, g.Reconnects, r.Clip.FPS)

	fmt.Fprintf(w, `
- Time to first frame: from the viewer's WHEP POST to its first complete keyframe (IDR with SPS and PPS),
  including ICE and DTLS over loopback. Joins are spread at random over whole GOPs. Through %s, one more
  viewer stays on each camera during the joins (it pulls a camera only while someone watches), so that a
  join measures the relay and not the camera connect.
- Added latency: arrival of a frame at the player minus the send time camsim stamps into it (same clock),
  after the first second of each session (the GOP-cache catch-up burst); it includes RTSP in, the relay,
  WebRTC out and the player's depacketiser, all over loopback.
- CPU and RSS: the relay process alone, from /proc; cameras and players run in the bench process.
`, rival)
	if r.Go2RTCErr != "" {
		fmt.Fprintf(w, "- ¹ %s not available: %s\n", rival, r.Go2RTCErr)
	}
	if stripped {
		fmt.Fprintf(w, "- ² %s removes an SEI NAL unit that starts an access unit, so of its frames only keyframes (SPS, PPS, then the SEI)\n  keep camsim's send-time stamp (%s of %s frames had none): compare the keyframes row.\n",
			rival, thousands(float64(x.Unstamped)), thousands(float64(x.Unstamped+int64(len(x.Latency)))))
	}
	loads := []*loadResult{g}
	names := []string{"gateway"}
	if x != nil {
		loads, names = append(loads, x), append(names, rival)
	}
	var parts []string
	noisy := false
	for i, l := range loads {
		parts = append(parts, fmt.Sprintf("%s run: cameras and players %s of one core, outside the processes (kernel, other programs) %s",
			names[i], pct(l.BenchCPU, l.Window), pct(max(l.OtherCPU, 0), l.Window)))
		noisy = noisy || l.OtherCPU.Seconds()/l.Window.Seconds() > 0.5
	}
	fmt.Fprintf(w, "- Rest of the machine during the window: %s.\n", strings.Join(parts, "; "))
	if noisy {
		fmt.Fprintln(w, "\nWARNING: more than half a core went to neither the relay nor the bench: other programs were probably competing for the CPU; figures are noisy.")
	}

	fmt.Fprintln(w, "\nGoals:")
	worst, worstGOP, ok := 0.0, time.Duration(0), len(r.FirstFrame) > 0
	for _, f := range r.FirstFrame {
		p99 := quantileSorted(sortedMs(f.Joins), 0.99)
		ok = ok && len(f.Joins) > 0 && len(f.Failed) == 0
		if p99 >= worst {
			worst, worstGOP = p99, f.Clip.GOP
		}
	}
	fmt.Fprintf(w, "- time to first frame ≤ %d ms p99 at any keyframe interval: %s (worst p99 %s ms, %s keyframe interval)\n",
		goalFirstFrame.Milliseconds(), passMiss(ok && worst <= float64(goalFirstFrame.Milliseconds())), ms0(worst), seconds(worstGOP))
	lat := quantileSorted(sortedMs(g.Latency), 0.99)
	fmt.Fprintf(w, "- added latency ≤ %d ms p99 (live frames under the load): %s (%s ms)\n",
		goalAddedP99.Milliseconds(), passMiss(len(g.Latency) > 0 && lat <= float64(goalAddedP99.Milliseconds())), ms1(lat))
	if x != nil {
		fmt.Fprintf(w, "- CPU no higher than %s for the same load: %s (%s vs %s of one core)\n", rival,
			passMiss(g.CPU.Seconds()/g.Window.Seconds() <= x.CPU.Seconds()/x.Window.Seconds()), pct(g.CPU, g.Window), pct(x.CPU, x.Window))
	} else {
		fmt.Fprintf(w, "- CPU no higher than %s for the same load: not measured (%s)\n", rival, r.Go2RTCErr)
	}
}

// latencyOf returns the latency samples of l (nil when l is).
func latencyOf(l *loadResult, keyframes bool) []time.Duration {
	switch {
	case l == nil:
		return nil
	case keyframes:
		return l.KeyLatency
	}
	return l.Latency
}

// framesCell is min / median frames per viewer, with the viewers count.
func framesCell(l *loadResult) string {
	if len(l.Frames) == 0 {
		return "no viewer"
	}
	fs := slices.Clone(l.Frames)
	slices.Sort(fs)
	return fmt.Sprintf("%d / %d (%d viewers)", fs[0], fs[len(fs)/2], len(fs))
}

func ratioCell(a, b float64) string {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return ""
	}
	if a/b < 0.1 {
		return fmt.Sprintf("%.3f", a/b)
	}
	return fmt.Sprintf("%.2f", a/b)
}

// seconds writes d as "2 s", "0.5 s".
func seconds(d time.Duration) string {
	return strings.TrimSuffix(fmt.Sprintf("%.3f", d.Seconds()), ".000") + " s"
}

func pct(d, window time.Duration) string {
	if window <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100*d.Seconds()/window.Seconds())
}

func ms0(x float64) string { return thousands(x) }

func ms1(x float64) string {
	if x >= 100 {
		return thousands(x)
	}
	return fmt.Sprintf("%.1f", x)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
