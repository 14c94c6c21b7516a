package ingest

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// Goals the gateway is held to.
const (
	goalMsgsPerSec   = 50000
	goalRSSDevices   = 1000
	goalRSSBytes     = 60 << 20
	goalRSSMaxMsgsPS = 5000 // a row above this rate is a throughput row, not "idle-ish"
)

// summary is the median of a scenario's runs.
type summary struct {
	result
	Runs   int
	Spread string // min–max msgs/s when Runs > 1
}

// median summarises runs of one scenario: every figure is the median of
// that figure over the runs (so a row need not be one actual run).
func median(runs []result) summary {
	s := summary{result: runs[0], Runs: len(runs)}
	if len(runs) == 1 {
		return s
	}
	f := func(get func(r result) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = get(r)
		}
		return report.Median(xs)
	}
	d := func(get func(r result) time.Duration) time.Duration {
		return time.Duration(f(func(r result) float64 { return float64(get(r)) }))
	}
	s.Msgs = f(func(r result) float64 { return r.Msgs })
	s.MsgsPerSec = f(func(r result) float64 { return r.MsgsPerSec })
	s.ReadingsPerSec = f(func(r result) float64 { return r.ReadingsPerSec })
	s.Window = d(func(r result) time.Duration { return r.Window })
	s.P50ms = f(func(r result) float64 { return r.P50ms })
	s.P99ms = f(func(r result) float64 { return r.P99ms })
	s.BrokerAckP50ms = f(func(r result) float64 { return r.BrokerAckP50ms })
	s.GwP50ms = f(func(r result) float64 { return r.GwP50ms })
	s.GwP99ms = f(func(r result) float64 { return r.GwP99ms })
	s.PeakRSS = int64(f(func(r result) float64 { return float64(r.PeakRSS) }))
	s.EndRSS = int64(f(func(r result) float64 { return float64(r.EndRSS) }))
	s.EndAnon = int64(f(func(r result) float64 { return float64(r.EndAnon) }))
	s.EndFile = int64(f(func(r result) float64 { return float64(r.EndFile) }))
	s.HeapInuse = f(func(r result) float64 { return r.HeapInuse })
	s.ReadingsPerCommit = f(func(r result) float64 { return r.ReadingsPerCommit })
	s.FsyncMeanMs = f(func(r result) float64 { return r.FsyncMeanMs })
	s.FsyncP99ms = f(func(r result) float64 { return r.FsyncP99ms })
	s.GatewayCPUUtil = f(func(r result) float64 { return r.GatewayCPUUtil })
	s.OtherCPUUtil = f(func(r result) float64 { return r.OtherCPUUtil })
	// CPU per message is a ratio: take the median of the ratios, and keep
	// Msgs so that the per-100k helpers reproduce it.
	gw := f(func(r result) float64 { return r.gatewayCPUPer100k() })
	all := f(func(r result) float64 { return r.totalCPUPer100k() })
	pubShare := f(func(r result) float64 { return report.Per100k(r.PublisherCPU, r.Msgs) })
	s.GatewayCPU = time.Duration(gw * s.Msgs / 1e5 * float64(time.Second))
	s.PublisherCPU = time.Duration(pubShare * s.Msgs / 1e5 * float64(time.Second))
	s.BrokerCPU = time.Duration((all - gw - pubShare) * s.Msgs / 1e5 * float64(time.Second))
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range runs {
		lo, hi = math.Min(lo, r.MsgsPerSec), math.Max(hi, r.MsgsPerSec)
	}
	s.Spread = fmt.Sprintf("%s–%s", report.Thousands(lo), report.Thousands(hi))
	return s
}

// printReport writes the Markdown table, its legend, where the time went
// and the goals.
func printReport(w io.Writer, rows []summary, o Options) {
	fmt.Fprintf(w, "\nShelterWatch ingest bench: %s measured after %s warm-up, %d run(s) per scenario%s.\n\n",
		o.Duration, o.Warmup, o.Runs, map[bool]string{true: " (medians)", false: ""}[o.Runs > 1])
	fmt.Fprintln(w, "| scenario | msgs/s | CPU-s per 100k msgs | p50 ms | p99 ms | RSS MB (peak) | readings/s | CPU-s per 100k msgs, all processes | RSS MB (end) | anonymous / file-backed MB (end) | gateway CPU use |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		lat := "¹"
		if r.Mode == modeMosquitto {
			lat = "²"
		}
		name := r.Scenario
		if r.Runs > 1 {
			name += fmt.Sprintf(" (%d runs, %s msgs/s)", r.Runs, r.Spread)
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | %.1f%s | %.1f%s | %.1f | %s | %.2f | %.1f | %.1f / %.1f | %.0f%% |\n",
			name, report.Thousands(r.MsgsPerSec), r.gatewayCPUPer100k(), r.P50ms, lat, r.P99ms, lat,
			report.MB(r.PeakRSS), report.Thousands(r.ReadingsPerSec), r.totalCPUPer100k(), report.MB(r.EndRSS), report.MB(r.EndAnon), report.MB(r.EndFile), 100*r.GatewayCPUUtil)
	}
	fmt.Fprint(w, `
- msgs/s: MQTT messages durably stored per second (QoS 1; every message carries 1–4 readings).
- CPU-s per 100k msgs: the gateway process alone (embedded broker or MQTT client, pipeline, store);
  publishers run in a separate process. "All processes" adds the publishers and mosquitto (not the
  kernel's softirq time for loopback TCP, which no process is charged for).
- gateway CPU use: CPU-seconds per second of the gateway process (200% = both cores).
- ¹ embedded: publish→PUBACK at the publisher; the gateway sends PUBACK only after the fsync, so
  this is publish→on disk, including the wait behind earlier publishes of the same connection.
- ² mosquitto: the gateway's shelterwatch_ingest_receive_to_stored_seconds histogram (from taking
  the message off MQTT to fsynced; interpolated in its ×2 buckets). Time inside mosquitto is not included.
- RSS: the gateway process's VmHWM (peak since it started, including config load) and VmRSS at the end of the window,
  split into anonymous memory (what the gateway allocated) and file-backed pages (the executable's own: shared,
  reclaimable, and as many as the page cache holds: a freshly built binary is all in the cache and maps ~40 MB).
`)
	printWhereTimeGoes(w, rows, o)
	printGoals(w, rows)
}

// printWhereTimeGoes breaks each row's CPU and latency down by process and
// stage, and warns when other programs competed for the CPU.
func printWhereTimeGoes(w io.Writer, rows []summary, o Options) {
	fmt.Fprintln(w, "\nWhere the time goes:")
	for _, r := range rows {
		fmt.Fprintf(w, "- %s: CPU-s per 100k msgs: gateway %.2f, publishers %.2f", r.Scenario, r.gatewayCPUPer100k(), report.Per100k(r.PublisherCPU, r.Msgs))
		if r.Mode == modeMosquitto {
			fmt.Fprintf(w, ", mosquitto %.2f", report.Per100k(r.BrokerCPU, r.Msgs))
		}
		fmt.Fprintf(w, "; outside them %.0f%% of a core (softirq, other programs)", 100*max(r.OtherCPUUtil, 0))
		fmt.Fprintf(w, "; gateway receive→fsynced p50 %.1f ms, p99 %.1f ms", r.GwP50ms, r.GwP99ms)
		fmt.Fprintf(w, "; group commit (write+fsync) mean %.2f ms, p99 %.1f ms, %.0f readings each; gateway heap in use %.1f MB",
			r.FsyncMeanMs, r.FsyncP99ms, r.ReadingsPerCommit, r.HeapInuse/(1<<20))
		if r.Mode == modeMosquitto {
			fmt.Fprintf(w, "; publish→mosquitto PUBACK p50 %.1f ms (publishers held ≤ %s readings ahead of the store)",
				r.BrokerAckP50ms, report.Thousands(float64(mosquittoBacklog(o.MaxInFlight))))
		}
		fmt.Fprintln(w, ".")
	}

	for _, r := range rows {
		if r.OtherCPUUtil > 0.3 {
			fmt.Fprintf(w, "\nWARNING: during %s the machine spent %.0f%% of a core outside the bench's processes: other programs were competing for the CPU; figures are low and noisy. Rerun on a quiet machine.\n", r.Scenario, 100*r.OtherCPUUtil)
			break
		}
	}
}

// printGoals holds the full-rate rows to the throughput goal and the
// 1,000-device rows to the memory goal.
func printGoals(w io.Writer, rows []summary) {
	fmt.Fprintln(w, "\nGoals:")
	var best *summary
	for i := range rows {
		r := &rows[i]
		if r.Rate > 0 && r.Rate < goalMsgsPerSec {
			continue
		}
		fmt.Fprintf(w, "- ≥ %s msgs/s sustained with durable group commit, %s: %s msgs/s — %s\n",
			report.Thousands(goalMsgsPerSec), r.Scenario, report.Thousands(r.MsgsPerSec), report.PassMiss(r.MsgsPerSec >= goalMsgsPerSec))
		if best == nil || r.MsgsPerSec > best.MsgsPerSec {
			best = r
		}
	}
	rssRow := false
	for _, r := range rows {
		if r.Devices == goalRSSDevices {
			rssRow = true
			fmt.Fprintf(w, "- RSS ≤ %d MB at %s devices, %s: peak %.1f MB (at the end %.1f MB anonymous, %.1f MB the executable's pages) — %s\n",
				goalRSSBytes>>20, report.Thousands(goalRSSDevices), r.Scenario, report.MB(r.PeakRSS), report.MB(r.EndAnon), report.MB(r.EndFile), report.PassMiss(r.PeakRSS <= goalRSSBytes))
		}
	}
	if best == nil {
		fmt.Fprintln(w, "- throughput: no full-rate scenario selected")
	}
	if !rssRow {
		fmt.Fprintf(w, "- RSS at %s devices: scenario not selected\n", report.Thousands(goalRSSDevices))
	}
}
