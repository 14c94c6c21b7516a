package video

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// videoReport writes the table of one run: the gateway (g) and go2rtc (x,
// nil when not run) side by side.
type videoReport struct {
	w     io.Writer
	o     Options
	r     *result
	g, x  *loadResult
	rival string // "go2rtc 1.9.9"
	na    string // a go2rtc cell when it was not run
}

// printReport writes the video table, its legend and the goals.
func printReport(w io.Writer, o Options, r *result) {
	p := &videoReport{w: w, o: o, r: r, g: &r.Gateway, x: r.Go2RTC, rival: "go2rtc", na: "n/a¹"}
	if r.Go2RTCVersion != "" {
		p.rival += " " + r.Go2RTCVersion
	}
	fmt.Fprintf(w, "\n### Video relay: RTSP camera → relay → WebRTC viewer (%d cores, %s)\n\n", r.Cores, runtime.Version())
	fmt.Fprintf(w, "Load: %d cameras × %d viewers, each camera looping a %s %d fps H.264 clip made by ffmpeg (-b:v %s), keyframe every %s, %.2f Mbit/s measured; %s window after %s warm-up. First-frame cameras: the committed 320x240 15 fps clips.\n\n",
		o.Cameras, o.ViewersPerCamera, r.Clip.Size, r.Clip.FPS, r.Clip.Bitrate, seconds(r.Clip.GOPMeasured), r.Clip.BitsPerSec/1e6, seconds(p.g.Window.Round(100*time.Millisecond)), seconds(o.Warmup))
	fmt.Fprintf(w, "| measure | ShelterWatch gateway | %s | gateway / %s | goal; context |\n", p.rival, p.rival)
	fmt.Fprintln(w, "|---|---:|---:|---:|---|")
	p.firstFrameRows()
	p.latencyRows()
	p.resourceRows()
	p.deliveryRows()
	p.legend()
	p.goals()
}

// firstFrameRows: time to first frame per keyframe interval.
func (p *videoReport) firstFrameRows() {
	for _, f := range p.r.FirstFrame {
		gw := sortedMs(f.Joins)
		gp50, gp99 := report.Quantile(gw, 0.5), report.Quantile(gw, 0.99)
		rivalCell, ratio := p.na, ""
		if p.x != nil {
			xs := sortedMs(f.Go2RTC)
			rivalCell = fmt.Sprintf("%s / %s (%d joins)", ms0(report.Quantile(xs, 0.5)), ms0(report.Quantile(xs, 0.99)), len(xs))
			if len(xs) == 0 {
				rivalCell = "no join got a keyframe"
			}
			if n := len(f.Go2RTCFailed); n > 0 {
				rivalCell += fmt.Sprintf("; %d failed", n)
			}
			if f.Go2RTCNoParams > 0 {
				rivalCell += fmt.Sprintf("; %d keyframes without SPS/PPS", f.Go2RTCNoParams)
			}
			ratio = ratioCell(report.Quantile(gw, 0.5), report.Quantile(xs, 0.5))
		} else if p.r.Go2RTCErr == "" {
			rivalCell = "—"
		}
		gwCell := fmt.Sprintf("%s / %s (%d joins)", ms0(gp50), ms0(gp99), len(gw))
		if n := len(f.Failed); n > 0 {
			gwCell += fmt.Sprintf("; %d failed", n)
		}
		gop := f.Clip.GOP.Seconds() * 1000
		fmt.Fprintf(p.w, "| time to first frame, %s keyframe interval: p50 / p99 ms | %s | %s | %s | ≤ %d ms p99: %s; without a GOP cache ≈ %s / %s ms (computed, not measured: the wait for the next keyframe alone) |\n",
			seconds(f.Clip.GOP), gwCell, rivalCell, ratio, goalFirstFrame.Milliseconds(),
			report.PassMiss(len(gw) > 0 && len(f.Failed) == 0 && gp99 <= float64(goalFirstFrame.Milliseconds())), ms0(gop/2), ms0(gop*0.99))
	}
}

// latencyRows: added latency with one viewer per session, and under the
// load.
func (p *videoReport) latencyRows() {
	idle := sortedMs(p.r.IdleLatency)
	fmt.Fprintf(p.w, "| added latency, live frames, one viewer per session (the first-frame sessions): p50 / p99 ms | %s / %s (%s frames) | — | | ≤ %d ms p99: %s |\n",
		ms1(report.Quantile(idle, 0.5)), ms1(report.Quantile(idle, 0.99)), report.Thousands(float64(len(idle))), goalAddedP99.Milliseconds(),
		report.PassMiss(len(idle) > 0 && report.Quantile(idle, 0.99) <= float64(goalAddedP99.Milliseconds())))

	// go2rtc drops an SEI NAL unit that starts an access unit, so only its
	// keyframes (SPS, PPS, then the SEI) keep the stamp: compare keyframes.
	for _, row := range []struct {
		label     string
		keyframes bool
	}{
		{"added latency under the load, all live frames: p50 / p99 ms", false},
		{"added latency under the load, keyframes only: p50 / p99 ms", true},
	} {
		gl := sortedMs(latencyOf(p.g, row.keyframes))
		rivalCell, ratio := p.na, ""
		if p.x != nil {
			xl := sortedMs(latencyOf(p.x, row.keyframes))
			rivalCell = fmt.Sprintf("%s / %s (%s frames)", ms1(report.Quantile(xl, 0.5)), ms1(report.Quantile(xl, 0.99)), report.Thousands(float64(len(xl))))
			ratio = ratioCell(report.Quantile(gl, 0.99), report.Quantile(xl, 0.99)) + " (p99)"
			if len(xl) == 0 || p.stripped() && !row.keyframes {
				rivalCell, ratio = "—²", ""
			}
		}
		fmt.Fprintf(p.w, "| %s | %s / %s (%s frames) | %s | %s | ≤ %d ms p99: %s |\n",
			row.label, ms1(report.Quantile(gl, 0.5)), ms1(report.Quantile(gl, 0.99)), report.Thousands(float64(len(gl))), rivalCell, ratio, goalAddedP99.Milliseconds(),
			report.PassMiss(len(gl) > 0 && report.Quantile(gl, 0.99) <= float64(goalAddedP99.Milliseconds())))
	}
}

// stripped reports whether go2rtc removed camsim's stamp from frames.
func (p *videoReport) stripped() bool { return p.x != nil && p.x.Unstamped > 0 }

// resourceRows: CPU, RSS and goroutines.
func (p *videoReport) resourceRows() {
	g, x, w := p.g, p.x, p.w
	rivalCell, ratio := p.na, ""
	goal := "no higher than " + p.rival + ": not measured"
	if x != nil {
		rivalCell = pct(x.CPU, x.Window)
		ratio = ratioCell(g.CPU.Seconds()/g.Window.Seconds(), x.CPU.Seconds()/x.Window.Seconds())
		goal = "no higher than " + p.rival + ": " + report.PassMiss(g.CPU.Seconds()/g.Window.Seconds() <= x.CPU.Seconds()/x.Window.Seconds())
	}
	fmt.Fprintf(w, "| CPU under the load, %% of one core | %s | %s | %s | %s |\n", pct(g.CPU, g.Window), rivalCell, ratio, goal)
	perViewer := (g.CPU.Seconds()/g.Window.Seconds() - g.IdleCPU.Seconds()/g.IdleWindow.Seconds()) / float64(max(g.Viewers, 1))
	fmt.Fprintf(w, "| CPU with the cameras pulled and no viewer, %% of one core | %s | — | | %s pulls a camera only while someone watches; the gateway adds ≈ %.2f%% per viewer |\n",
		pct(g.IdleCPU, g.IdleWindow), p.rival, 100*perViewer)

	rivalCell, ratio = p.na, ""
	if x != nil {
		rivalCell = fmt.Sprintf("%.1f (%.1f)", report.MB(x.RSSEnd), report.MB(x.RSSPeak))
		ratio = ratioCell(float64(g.RSSEnd), float64(x.RSSEnd))
	}
	fmt.Fprintf(w, "| RSS MB at the end of the window (peak since start) | %.1f (%.1f) | %s | %s | gateway with no viewer: %.1f MB (it also holds the store, rules and broker), ≈ %.1f MB more per viewer |\n",
		report.MB(g.RSSEnd), report.MB(g.RSSPeak), rivalCell, ratio, report.MB(g.IdleRSS), report.MB(g.RSSEnd-g.IdleRSS)/float64(max(g.Viewers, 1)))
	fmt.Fprintf(w, "| goroutines per viewer | %.1f (%.0f with no viewer, %.0f with %d) | — | | |\n",
		(g.Goroutines-g.Goroutines0)/float64(max(g.Viewers, 1)), g.Goroutines0, g.Goroutines, g.Viewers)
}

// deliveryRows: frames per viewer, gaps, resyncs and the cameras' side.
func (p *videoReport) deliveryRows() {
	g, x, w, fps := p.g, p.x, p.w, p.r.Clip.FPS
	expect := g.Window.Seconds() * float64(fps)
	served := func(l *loadResult) bool {
		if len(l.Frames) == 0 {
			return false
		}
		return float64(slices.Min(l.Frames)) >= 0.9*l.Window.Seconds()*float64(fps)
	}
	rivalCell := p.na
	if x != nil {
		rivalCell = framesCell(x)
	}
	fmt.Fprintf(w, "| frames per viewer in the window: min / median (the camera sent ≈ %.0f) | %s | %s | | every viewer served: %s |\n",
		expect, framesCell(g), rivalCell, yesNo(served(g)))
	rivalCell = p.na
	if x != nil {
		rivalCell = ms0(float64(x.MaxGap) / float64(time.Millisecond))
	}
	fmt.Fprintf(w, "| longest gap between two frames of one viewer, ms | %s | %s | | %s between frames at %d fps |\n",
		ms0(float64(g.MaxGap)/float64(time.Millisecond)), rivalCell, (time.Second / time.Duration(fps)).Round(100*time.Microsecond), fps)
	fmt.Fprintf(w, "| slow-viewer resyncs / keyframe requests in the window | %.0f / %.0f | — | | |\n", g.Resyncs, g.KeyRequests)
	fmt.Fprintf(w, "| cameras at the relay: lowest frame rate at the end of the window, reconnects | %.1f fps, %.0f | — | | the cameras send %d fps |\n",
		g.CameraFPS, g.Reconnects, fps)
}

// legend explains the measures, the footnotes and the rest of the
// machine's load.
func (p *videoReport) legend() {
	w, x := p.w, p.x
	fmt.Fprintf(w, `
- Time to first frame: from the viewer's WHEP POST to its first complete keyframe (IDR with SPS and PPS),
  including ICE and DTLS over loopback. Joins are spread at random over whole GOPs. Through %s, one more
  viewer stays on each camera during the joins (it pulls a camera only while someone watches), so that a
  join measures the relay and not the camera connect.
- Added latency: arrival of a frame at the player minus the send time camsim stamps into it (same clock),
  after the first second of each session (the GOP-cache catch-up burst); it includes RTSP in, the relay,
  WebRTC out and the player's depacketiser, all over loopback.
- CPU and RSS: the relay process alone, from /proc; cameras and players run in the bench process.
`, p.rival)
	if p.r.Go2RTCErr != "" {
		fmt.Fprintf(w, "- ¹ %s not available: %s\n", p.rival, p.r.Go2RTCErr)
	}
	if p.stripped() {
		fmt.Fprintf(w, "- ² %s removes an SEI NAL unit that starts an access unit, so of its frames only keyframes (SPS, PPS, then the SEI)\n  keep camsim's send-time stamp (%s of %s frames had none): compare the keyframes row.\n",
			p.rival, report.Thousands(float64(x.Unstamped)), report.Thousands(float64(x.Unstamped+int64(len(x.Latency)))))
	}
	loads := []*loadResult{p.g}
	names := []string{"gateway"}
	if x != nil {
		loads, names = append(loads, x), append(names, p.rival)
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
}

func (p *videoReport) goals() {
	w, g, x := p.w, p.g, p.x
	fmt.Fprintln(w, "\nGoals:")
	worst, worstGOP, ok := 0.0, time.Duration(0), len(p.r.FirstFrame) > 0
	for _, f := range p.r.FirstFrame {
		p99 := report.Quantile(sortedMs(f.Joins), 0.99)
		ok = ok && len(f.Joins) > 0 && len(f.Failed) == 0
		if p99 >= worst {
			worst, worstGOP = p99, f.Clip.GOP
		}
	}
	fmt.Fprintf(w, "- time to first frame ≤ %d ms p99 at any keyframe interval: %s (worst p99 %s ms, %s keyframe interval)\n",
		goalFirstFrame.Milliseconds(), report.PassMiss(ok && worst <= float64(goalFirstFrame.Milliseconds())), ms0(worst), seconds(worstGOP))
	lat := report.Quantile(sortedMs(g.Latency), 0.99)
	fmt.Fprintf(w, "- added latency ≤ %d ms p99 (live frames under the load): %s (%s ms)\n",
		goalAddedP99.Milliseconds(), report.PassMiss(len(g.Latency) > 0 && lat <= float64(goalAddedP99.Milliseconds())), ms1(lat))
	if x != nil {
		fmt.Fprintf(w, "- CPU no higher than %s for the same load: %s (%s vs %s of one core)\n", p.rival,
			report.PassMiss(g.CPU.Seconds()/g.Window.Seconds() <= x.CPU.Seconds()/x.Window.Seconds()), pct(g.CPU, g.Window), pct(x.CPU, x.Window))
	} else {
		fmt.Fprintf(w, "- CPU no higher than %s for the same load: not measured (%s)\n", p.rival, p.r.Go2RTCErr)
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

// sortedMs returns ds in milliseconds, sorted, for report.Quantile.
func sortedMs(ds []time.Duration) []float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d) / float64(time.Millisecond)
	}
	slices.Sort(xs)
	return xs
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

func ms0(x float64) string { return report.Thousands(x) }

func ms1(x float64) string {
	if x >= 100 {
		return report.Thousands(x)
	}
	return fmt.Sprintf("%.1f", x)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
