package video

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/report"
	"github.com/shelterwatch/shelterwatch/internal/netsim"
)

func printNetReport(w io.Writer, o NetOptions, r *netResult) {
	fmt.Fprintln(w, "\n### Remote viewing over emulated networks (quality=auto)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| profile | RTT | jitter | loss | rate |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, name := range o.Profiles {
		p, _ := netsim.Lookup(name)
		rate := "unlimited"
		if p.Rate > 0 {
			rate = fmt.Sprintf("%.0f Mbit/s", float64(p.Rate)/1e6)
		}
		fmt.Fprintf(w, "| %s | %s | ±%s | %.1f %% | %s |\n", p.Name, p.RTT, p.Jitter, 100*p.Loss, rate)
	}
	for i := range r.Main {
		fmt.Fprintf(w, "\nCamera %s: main %s %.2f Mbit/s, sub %s %.2f Mbit/s, keyframe every %s.\n", r.Cameras[i].ID,
			r.Main[i].Size, r.Main[i].BitsPerSec/1e6, r.Sub[i].Size, r.Sub[i].BitsPerSec/1e6, r.Main[i].GOPMeasured)
	}
	if r.NoBrowser != "" {
		fmt.Fprintf(w, "\nChromium not measured: %s.\n", r.NoBrowser)
	}

	fmt.Fprintf(w, "\n#### First frame: POST → first complete keyframe (pion) / first presented frame (Chromium), %d joins each\n\n", o.Joins)
	fmt.Fprintln(w, "| profile | camera | pion p50 ms | pion p99 ms | Chromium p50 ms | Chromium p99 ms | failed | goal |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---|")
	goal4g := true
	for _, row := range r.Rows {
		pp50, pp99 := msQ(row.Pion.First, 0.5), msQ(row.Pion.First, 0.99)
		cp50, cp99 := msQ(row.Chrome.First, 0.5), msQ(row.Chrome.First, 0.99)
		goal := ""
		if row.Profile == "4g" {
			ok := len(row.Pion.Failed)+len(row.Chrome.Failed) == 0 && maxQ(row.Pion.First, row.Chrome.First) <= time.Second
			goal4g = goal4g && ok
			goal = "p99 ≤ 1 s: " + report.PassMiss(ok)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d | %s |\n", row.Profile, row.Camera.ID, pp50, pp99, cp50, cp99,
			len(row.Pion.Failed)+len(row.Chrome.Failed), goal)
	}

	fmt.Fprintf(w, "\n#### One viewer per player watching for %s\n\n", o.Watch)
	fmt.Fprintln(w, "| profile | camera | player | ends on | switches | estimate min / p50 Mbit/s | reported RTT p50 / max ms, loss max | freezes | after 2 s | > 1 s | longest gap ms | lag p50 ms | lag p99 ms | RTP pace | lost | recovered | NACKs | probe pkts | received Mbit/s |")
	fmt.Fprintln(w, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	noFreeze4g, noSettled4g, sub4gPoor, noLongPoor := true, true, true, true
	for _, row := range r.Rows {
		for _, pw := range []struct {
			name string
			w    *watchResult
		}{{"pion", row.PionWatch}, {"Chromium", row.ChromeWatch}} {
			if pw.w == nil {
				if pw.name == "Chromium" && r.NoBrowser != "" {
					continue
				}
				fmt.Fprintf(w, "| %s | %s | %s | failed: %s |||||||||||||||\n", row.Profile, row.Camera.ID, pw.name, strings.Join(row.Errors, "; "))
				if row.Profile == "4g" {
					noFreeze4g, noSettled4g = false, false
				}
				if row.Profile == "poor4g" {
					sub4gPoor, noLongPoor = false, false
				}
				continue
			}
			x := pw.w
			pace := "–"
			if x.Pace > 0 {
				pace = fmt.Sprintf("%.3f", x.Pace)
			}
			nacks := "–"
			if pw.name == "Chromium" {
				nacks = fmt.Sprint(x.Nacks)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %d | %.2f / %.2f | %.0f / %.0f, %.0f %% | %d | %d | %d | %d | %d | %d | %s | %d | %d | %s | %s | %.2f |\n",
				row.Profile, row.Camera.ID, pw.name, streamOf(x.Width), x.Switches, x.EstMin/1e6, x.EstP50/1e6, x.RTTP50, x.RTTMax, 100*x.LossMax,
				x.Freezes, x.Settled, x.LongFreezes, x.MaxFreeze.Milliseconds(),
				x.LagP50.Milliseconds(), x.LagP99.Milliseconds(), pace, x.Lost, x.Recovered, nacks, probeCell(pw.name, x.Probe), x.Received/1e6)
			switch row.Profile {
			case "4g":
				noFreeze4g = noFreeze4g && x.Freezes == 0
				noSettled4g = noSettled4g && x.Settled == 0
			case "poor4g":
				sub4gPoor = sub4gPoor && streamOf(x.Width) == "sub"
				noLongPoor = noLongPoor && x.LongFreezes == 0
			}
		}
	}

	if r.Wall != nil {
		wl := r.Wall
		fmt.Fprintf(w, "\n#### A %d-camera wall in Chromium over one shared 4g link, %s\n\n", wl.Sessions, wl.Duration.Round(time.Second))
		fmt.Fprintln(w, "| measure | value |")
		fmt.Fprintln(w, "|---|---:|")
		fmt.Fprintf(w, "| picture widths | %s |\n", widths(wl.Widths))
		fmt.Fprintf(w, "| first frame p50 / max ms | %s / %s |\n", msQ(wl.FirstFrame, 0.5), msQ(wl.FirstFrame, 1))
		fmt.Fprintf(w, "| received, all tiles | %.2f Mbit/s (link %.0f Mbit/s) |\n", wl.Received/1e6, float64(wl.LinkRate)/1e6)
		fmt.Fprintf(w, "| freezes, all tiles (after the first 2 s) | %d (%d) |\n", wl.Freezes, wl.Settled)
		fmt.Fprintf(w, "| longest gap between frames | %d ms |\n", wl.MaxFreeze.Milliseconds())
	} else if r.WallErr != "" {
		fmt.Fprintf(w, "\nCamera wall: failed: %s.\n", r.WallErr)
	}

	fmt.Fprintln(w, "\nGoals:")
	ran := map[string]bool{}
	for _, row := range r.Rows {
		ran[row.Profile] = true
	}
	if ran["4g"] {
		fmt.Fprintf(w, "- 4g: first frame p99 ≤ 1 s: %s; no freeze in %s: %s (after the first 2 s: %s).\n", report.PassMiss(goal4g), o.Watch, report.PassMiss(noFreeze4g), report.PassMiss(noSettled4g))
	}
	if ran["poor4g"] {
		fmt.Fprintf(w, "- poor4g: auto settles on the sub stream: %s; no freeze longer than 1 s: %s.\n", report.PassMiss(sub4gPoor), report.PassMiss(noLongPoor))
	}
	if r.Wall != nil {
		allSub := len(r.Wall.Widths) > 0 && streamOf(r.Wall.Widths[len(r.Wall.Widths)-1]) == "sub"
		fmt.Fprintf(w, "- 3×3 wall over 4g: every tile on its sub stream: %s; received under the link's rate: %s; no freezes: %s.\n",
			report.PassMiss(allSub), report.PassMiss(r.Wall.Received < float64(r.Wall.LinkRate)), report.PassMiss(r.Wall.Freezes == 0))
	}
	fmt.Fprintln(w, "\nFreezes are counted as Chromium counts them (a frame later than max(3×, +150 ms) the mean interval of the 30 before it),")
	fmt.Fprintln(w, "and again in the presented frames after the first 30 (2 s), which leaves out the start (the GOP cache's catch-up, a first move to main);")
	fmt.Fprintln(w, "lag is arrival minus the camera's send stamp (pion) or presentation minus receive time (Chromium);")
	fmt.Fprintln(w, "RTP pace is the video clock's advance over the wall clock's between the window's first and last presented frames (1.000: live);")
	fmt.Fprintln(w, "recovered are packets that arrived after a later one (pion) or retransmissions received (Chromium);")
	fmt.Fprintln(w, "probe packets are the RTP padding the player received: the gateway probing the link before it moves a viewer up.")
}

func probeCell(player string, n int64) string {
	if player != "pion" {
		return "–"
	}
	return fmt.Sprint(n)
}

func streamOf(width int) string {
	switch {
	case width == 0:
		return "–"
	case width >= 1000:
		return "main"
	default:
		return "sub"
	}
}

func widths(ws []int) string {
	var b strings.Builder
	for i, x := range ws {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, x)
	}
	return b.String()
}

func msQ(ds []time.Duration, q float64) string {
	if len(ds) == 0 {
		return "–"
	}
	s := make([]float64, len(ds))
	for i, d := range ds {
		s[i] = float64(d.Microseconds()) / 1000
	}
	slices.Sort(s)
	return fmt.Sprintf("%.0f", report.Quantile(s, q))
}

// maxQ is the larger p99 of a and b.
func maxQ(a, b []time.Duration) time.Duration {
	var m float64
	for _, s := range [][]time.Duration{a, b} {
		if len(s) == 0 {
			continue
		}
		f := make([]float64, len(s))
		for i, d := range s {
			f[i] = float64(d)
		}
		slices.Sort(f)
		m = max(m, report.Quantile(f, 0.99))
	}
	return time.Duration(m)
}
