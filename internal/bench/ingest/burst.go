package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/bench/gateway"
	"github.com/shelterwatch/shelterwatch/internal/bench/influxd"
	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/procstat"
	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// Goals of the burst scenarios: memory, and (with InfluxDB) the gateway's
// CPU per 100,000 messages, its start-up left out.
const (
	goalBurstRSSBytes    = 100 << 20
	goalBurstCPUPer100kS = 2.0
)

var errNoInfluxd = errors.New("influxd not found (make test-deps builds it into .tools/bin; or pass -influxd)")

// burstResult is one burst run.
type burstResult struct {
	Scenario string
	Mode     string
	Msgs     uint64 // acknowledged to the publishers

	AckedReadings  uint64
	StoredReadings uint64 // shelterwatch_ingest_readings_total at the end
	Drain          time.Duration
	GatewayCPU     time.Duration

	PeakRSS       int64   // gateway VmHWM, bytes
	MaxRSSAnon    int64   // highest sample of its anonymous memory, bytes
	MaxRSSFile    int64   // highest sample of its file-backed pages, bytes
	MaxHeapInuse  float64 // highest sample, bytes
	MaxGoroutines float64 // highest sample
	MaxStack      float64 // highest sample of goroutine stacks, bytes
	MaxStackStart float64 // highest size the runtime gave new goroutine stacks, bytes
	GoSys         float64 // memory the Go runtime got from the OS by the end, bytes
	MemoryLimit   int64   // the gateway's soft memory limit, bytes
	BrokerPeakRSS int64   // mosquitto VmHWM, bytes (mosquitto mode)

	NotAcked, DeadLettered float64

	// StartupCPU is the CPU time of a Mosquitto burst's first gateway
	// process up to consuming: a start with no backlog (0 in embedded
	// mode).
	StartupCPU time.Duration

	// With InfluxDB (Scenario.InfluxDB): ForwardDrain runs from starting
	// the gateway process to InfluxDB having confirmed every reading;
	// CPUStored and CPUForwarded are the process's CPU time when the store
	// held every acknowledged reading and when InfluxDB had confirmed them
	// all; InfluxPoints is how many of the devices' readings InfluxDB
	// holds after the drain.
	InfluxDB                bool
	ForwardDrain            time.Duration
	CPUStored, CPUForwarded time.Duration
	InfluxPoints            uint64
}

// influxWrong is how many readings InfluxDB is missing, or has beyond the
// acknowledged ones (0 without InfluxDB).
func (r burstResult) influxWrong() uint64 {
	if !r.InfluxDB {
		return 0
	}
	return max(r.InfluxPoints, r.AckedReadings) - min(r.InfluxPoints, r.AckedReadings)
}

// forwardCPUPer100k is the gateway process's CPU per 100,000 messages up
// to InfluxDB confirming the last reading; exStartup leaves out the CPU
// of a start (measured on the first gateway process).
func (r burstResult) forwardCPUPer100k(exStartup bool) float64 {
	cpu := r.CPUForwarded
	if exStartup {
		cpu -= r.StartupCPU
	}
	return report.Per100k(cpu, float64(r.Msgs))
}

// lost is how many acknowledged readings the store does not have.
func (r burstResult) lost() uint64 {
	if r.StoredReadings >= r.AckedReadings {
		return 0
	}
	return r.AckedReadings - r.StoredReadings
}

// runBurst measures one burst scenario: sc.Burst messages from each of
// sc.Devices devices, one connection each, as fast as the broker takes
// them.
//
// Mosquitto mode is a gateway coming back to a backlog: the gateway
// connects once so that its persistent session and subscriptions exist,
// stops, the devices publish (mosquitto queues every message for the
// session: max_queued_messages is far above the burst), and a new gateway
// process with a new store connects to the same session. Mosquitto runs
// with max_inflight_messages 0 (no limit), so nothing but the gateway
// bounds what it takes. The drain time runs from starting that process to
// the last reading stored.
//
// Embedded mode is the same burst published straight into the running
// gateway's broker; the drain time runs from the first publish to the
// last PUBACK (sent after the fsync).
//
// Either way the peak RSS is the gateway process's VmHWM, and every
// reading the publishers had acknowledged must be in the store.
//
// With InfluxDB (Mosquitto only) the gateway forwards to a real influxd,
// each device's messages are successive reports stamped a minute apart
// (buildPlan), and the drain continues until InfluxDB has confirmed every
// reading; then InfluxDB must hold each acknowledged reading exactly once.
// The first gateway process, which only creates the session, gives the
// CPU time of a start with no backlog, so that the second one's CPU can be
// told with and without its start-up.
func runBurst(ctx context.Context, o Options, sc Scenario) (res burstResult, err error) {
	res = burstResult{Scenario: sc.Name(), Mode: sc.Mode, InfluxDB: sc.InfluxDB}
	if err := sc.validate(); err != nil {
		return res, err
	}
	devs, err := benchDevices(sc.Devices, sc.Format)
	if err != nil {
		return res, err
	}
	if sc.Mode == modeMosquitto {
		if _, err := os.Stat(o.Mosquitto); err != nil {
			return res, fmt.Errorf("%w at %s: %v", errNoMosquitto, o.Mosquitto, err)
		}
	}
	if sc.InfluxDB {
		if o.Influxd == "" {
			return res, errNoInfluxd
		}
		if _, err := os.Stat(o.Influxd); err != nil {
			return res, fmt.Errorf("%w: %v", errNoInfluxd, err)
		}
	}
	dir, err := os.MkdirTemp("", "shelter-bench-burst-")
	if err != nil {
		return res, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	// The gateway's default max_in_flight: the bound under test is the
	// shipped one.
	gcfg := gatewayConfig{storeDir: filepath.Join(dir, "store")}
	if gcfg.httpListen, err = proc.FreeLoopback(); err != nil {
		return res, err
	}
	pspec := publishSpec{Devices: sc.Devices, Format: sc.Format, Conns: sc.conns(), Window: o.Window, PerDevice: sc.Burst}
	var db *influxd.Server
	if sc.InfluxDB {
		// Every message once, each a distinct point in InfluxDB.
		pspec.Variants = sc.Burst
		if db, err = influxd.Start(ctx, o.Influxd); err != nil {
			return res, err
		}
		defer db.Stop()
		gcfg.influxURL = db.URL
	}
	var mq *mosquitto
	switch sc.Mode {
	case modeMosquitto:
		if mq, err = startMosquitto(ctx, o.Mosquitto, dir, 0, o.Log); err != nil {
			return res, err
		}
		defer mq.Stop()
		gcfg.externalURL = "tcp://" + mq.addr
		pspec.Broker = gcfg.externalURL
	default:
		if _, err := prepareBroker(ctx, o, sc, dir, &gcfg, &pspec); err != nil {
			return res, err
		}
	}
	cfgPath := filepath.Join(dir, "shelterwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(devs, gcfg)), 0o600); err != nil {
		return res, fmt.Errorf("write config: %w", err)
	}

	gw, err := gateway.Start(o.Exe, cfgPath, o.Log)
	if err != nil {
		return res, err
	}
	stopGateway := func() error {
		if gw == nil {
			return nil
		}
		g := gw
		gw = nil
		return g.Stop()
	}
	defer func() {
		if cerr := stopGateway(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if sc.Mode == modeEmbedded {
		pspec.Broker = "tcp://" + gw.Broker
	}
	pub, _, stopPub, err := startPublishers(o, pspec, 5*time.Minute)
	if err != nil {
		return res, err
	}
	defer stopPub()
	// The gateway consumes (in mosquitto mode: its session subscribes).
	if _, err := waitConsuming(ctx, gw, pub); err != nil {
		return res, err
	}
	if sc.Mode == modeMosquitto {
		// This process only started and connected: its CPU is a start's.
		st, err := gw.Stat()
		if err != nil {
			return res, err
		}
		res.StartupCPU = time.Duration(st.CPUNanos)
	}
	want := uint64(sc.Devices * sc.Burst)

	if sc.Mode == modeEmbedded {
		g0, err := gw.Stat()
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		if err := pub.Call("start", nil, nil, 10*time.Second); err != nil {
			return res, err
		}
		var maxs gateway.Stat
		profiling := o.ProfDir != ""
		if profiling {
			if err := gw.Profile(burstProfileSpec(o, sc)); err != nil {
				return res, err
			}
		}
		pfin, err := awaitPublished(ctx, pub, want, func() error {
			if _, err := sampleMax(gw, &maxs); err != nil {
				return err
			}
			// The heap and goroutine profiles are of the burst in full
			// swing, 8 s in (the whole burst takes 15–30 s), with every
			// connection's publish waiting for a group commit.
			if profiling && time.Since(t0) > 8*time.Second {
				profiling = false
				return gw.StopProfile()
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		if profiling { // a burst shorter than 8 s (-quick)
			if err := gw.StopProfile(); err != nil {
				return res, err
			}
		}
		res.Drain = time.Since(t0)
		res.Msgs, res.AckedReadings = pfin.Acked, pfin.AckedReadings
		return res, finishBurst(ctx, gw, g0, maxs, &res)
	}

	// Mosquitto: the gateway goes away, the devices publish, and a new
	// gateway process comes back to the backlog.
	if err := stopGateway(); err != nil {
		return res, err
	}
	if err := pub.Call("start", nil, nil, 10*time.Second); err != nil {
		return res, err
	}
	pfin, err := awaitPublished(ctx, pub, want, func() error { return nil })
	if err != nil {
		return res, err
	}
	res.Msgs, res.AckedReadings = pfin.Acked, pfin.AckedReadings
	t0 := time.Now()
	if gw, err = gateway.Start(o.Exe, cfgPath, o.Log); err != nil {
		return res, err
	}
	var maxs gateway.Stat
	profiling := o.ProfDir != ""
	if profiling {
		// The profile starts once the gateway is ready: its subscription
		// has begun to drain, so it misses the start-up and the first
		// moments of the backlog.
		if err := gw.Profile(burstProfileSpec(o, sc)); err != nil {
			return res, err
		}
	}
	stored := false
	for {
		st, err := sampleMax(gw, &maxs)
		if err != nil {
			return res, err
		}
		if !stored && uint64(st.Readings) >= res.AckedReadings {
			stored = true
			res.Drain, res.CPUStored = time.Since(t0), time.Duration(st.CPUNanos)
		}
		// Confirmed: InfluxDB has as many points as were acknowledged
		// (a few of them may be the gateway's own fault readings) and
		// nothing stored waits for it.
		forwarded := st.Forwarded >= float64(res.AckedReadings) && st.ForwardBacklog == 0
		if stored && (!sc.InfluxDB || forwarded) {
			if sc.InfluxDB {
				res.ForwardDrain, res.CPUForwarded = time.Since(t0), time.Duration(st.CPUNanos)
			}
			if profiling {
				if err := gw.StopProfile(); err != nil {
					return res, err
				}
			}
			break
		}
		if time.Since(t0) > 10*time.Minute {
			if stored {
				return res, fmt.Errorf("InfluxDB did not confirm the backlog within 10m: %.0f of %d readings written, %.0f waiting", st.Forwarded, res.AckedReadings, st.ForwardBacklog)
			}
			return res, fmt.Errorf("backlog not drained within 10m: %.0f of %d readings stored", st.Readings, res.AckedReadings)
		}
		if err := proc.Sleep(ctx, 20*time.Millisecond); err != nil {
			return res, err
		}
	}
	if res.BrokerPeakRSS, _, err = procstat.Mem(mq.Pid()); err != nil {
		return res, err
	}
	if err := finishBurst(ctx, gw, gateway.Stat{}, maxs, &res); err != nil || db == nil {
		return res, err
	}
	return res, checkInflux(db, &res)
}

// checkInflux counts the devices' readings in InfluxDB into res and fails
// unless each acknowledged reading is there exactly once. InfluxDB keys a
// point by series and timestamp, so a reading the store holds twice (a
// QoS 1 redelivery) is one point: the count is held to the acknowledged
// readings, which finishBurst found all in the store.
func checkInflux(db *influxd.Server, res *burstResult) error {
	ms, err := db.Measurements()
	if err != nil {
		return err
	}
	// Measurements are named by kind (no measurement_prefix). The
	// gateway's own kinds (its faults) came from no message; the first
	// gateway process wrote some too.
	var devices []string
	for _, m := range ms {
		if !reading.Kind(m).Internal() {
			devices = append(devices, m)
		}
	}
	n, err := db.Count(devices...)
	if err != nil {
		return err
	}
	res.InfluxPoints = uint64(n)
	if res.InfluxPoints != res.AckedReadings {
		return fmt.Errorf("%s: InfluxDB holds %d of the devices' readings (measurements %v), the publishers had %d acknowledged and the store holds %d: each must be in InfluxDB exactly once",
			res.Scenario, res.InfluxPoints, devices, res.AckedReadings, res.StoredReadings)
	}
	return nil
}

// burstProfileSpec names a burst scenario's profiles in o.ProfDir.
func burstProfileSpec(o Options, sc Scenario) gateway.ProfileSpec {
	stem := filepath.Join(o.ProfDir, strings.ReplaceAll(sc.Name(), "/", "_")+".gateway")
	return gateway.ProfileSpec{CPU: stem + ".pprof", Heap: stem + ".heap.pprof", Goroutine: stem + ".goroutine.pprof"}
}

// awaitPublished waits until the publishers have had every one of want
// messages acknowledged (or failed), calling sample between polls, then
// stops them and returns their final figures.
func awaitPublished(ctx context.Context, pub *proc.Child, want uint64, sample func() error) (publishStat, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var st publishStat
		if err := pub.Call("mark", nil, &st, 30*time.Second); err != nil {
			return st, err
		}
		if st.Acked+st.Failed >= want {
			break
		}
		if st.FirstError != "" {
			return st, fmt.Errorf("publishing failed after %d of %d acknowledged: %s", st.Acked, want, st.FirstError)
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("only %d of %d publishes acknowledged within 10m", st.Acked, want)
		}
		if err := sample(); err != nil {
			return st, err
		}
		if err := proc.Sleep(ctx, 20*time.Millisecond); err != nil {
			return st, err
		}
	}
	var fin publishStat
	if err := pub.Call("stop", nil, &fin, 45*time.Second); err != nil {
		return fin, err
	}
	if fin.Failed > 0 || fin.FirstError != "" {
		return fin, fmt.Errorf("%d of %d publishes failed; first error: %s", fin.Failed, fin.Published, fin.FirstError)
	}
	return fin, nil
}

// sampleMax folds a sample of the gateway into the highest values seen,
// and returns the sample.
func sampleMax(gw *gateway.Process, m *gateway.Stat) (gateway.Stat, error) {
	st, err := gw.Stat()
	if err != nil {
		return st, err
	}
	m.Readings = st.Readings
	m.HeapInuse = math.Max(m.HeapInuse, st.HeapInuse)
	m.Goroutines = math.Max(m.Goroutines, st.Goroutines)
	m.StackInuse = math.Max(m.StackInuse, st.StackInuse)
	m.StackStart = math.Max(m.StackStart, st.StackStart)
	m.RSSAnon, m.RSSFile = max(m.RSSAnon, st.RSSAnon), max(m.RSSFile, st.RSSFile)
	return st, nil
}

// finishBurst waits for the store to hold every acknowledged reading and
// takes the gateway's final figures (g0 is its state before the burst).
func finishBurst(ctx context.Context, gw *gateway.Process, g0, maxs gateway.Stat, res *burstResult) error {
	deadline := time.Now().Add(time.Minute)
	var st gateway.Stat
	for {
		var err error
		if st, err = gw.Stat(); err != nil {
			return err
		}
		if uint64(st.Readings-g0.Readings) >= res.AckedReadings || time.Now().After(deadline) {
			break
		}
		if err := proc.Sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	res.StoredReadings = uint64(st.Readings - g0.Readings)
	res.GatewayCPU = time.Duration(st.CPUNanos - g0.CPUNanos)
	res.PeakRSS, res.MemoryLimit = st.PeakRSS, st.MemoryLimit
	res.MaxHeapInuse = math.Max(maxs.HeapInuse, st.HeapInuse)
	res.MaxGoroutines = math.Max(maxs.Goroutines, st.Goroutines)
	res.MaxStack = math.Max(maxs.StackInuse, st.StackInuse)
	res.MaxStackStart = math.Max(maxs.StackStart, st.StackStart)
	res.GoSys = st.GoSys
	res.MaxRSSAnon, res.MaxRSSFile = max(maxs.RSSAnon, st.RSSAnon), max(maxs.RSSFile, st.RSSFile)
	res.NotAcked, res.DeadLettered = st.NotAcked-g0.NotAcked, st.DeadLettered-g0.DeadLettered
	if res.lost() > 0 {
		return fmt.Errorf("%s: the store holds %d readings but the publishers had %d acknowledged: %d lost", res.Scenario, res.StoredReadings, res.AckedReadings, res.lost())
	}
	return nil
}

// burstSummary is the median of a burst scenario's runs.
type burstSummary struct {
	burstResult
	Runs int
	// LostMax is the most readings lost in any run (0 is the goal).
	LostMax uint64
	// RSSSpread is min–max peak RSS over the runs, MB.
	RSSSpread string
	// With InfluxDB: the gateway's CPU-s per 100k messages up to InfluxDB
	// confirming the last reading, whole process and start-up excluded
	// (medians of the runs' ratios), and the most readings any run had
	// missing from InfluxDB or there more than once (0 is the goal).
	CPUPer100k, CPUPer100kExStartup float64
	InfluxWrongMax                  uint64
}

func medianBurst(runs []burstResult) burstSummary {
	s := burstSummary{burstResult: runs[0], Runs: len(runs)}
	f := func(get func(r burstResult) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = get(r)
		}
		return report.Median(xs)
	}
	d := func(get func(r burstResult) time.Duration) time.Duration {
		return time.Duration(f(func(r burstResult) float64 { return float64(get(r)) }))
	}
	s.Drain = d(func(r burstResult) time.Duration { return r.Drain })
	s.GatewayCPU = d(func(r burstResult) time.Duration { return r.GatewayCPU })
	s.PeakRSS = int64(f(func(r burstResult) float64 { return float64(r.PeakRSS) }))
	s.MaxRSSAnon = int64(f(func(r burstResult) float64 { return float64(r.MaxRSSAnon) }))
	s.MaxRSSFile = int64(f(func(r burstResult) float64 { return float64(r.MaxRSSFile) }))
	s.MaxHeapInuse = f(func(r burstResult) float64 { return r.MaxHeapInuse })
	s.MaxGoroutines = f(func(r burstResult) float64 { return r.MaxGoroutines })
	s.BrokerPeakRSS = int64(f(func(r burstResult) float64 { return float64(r.BrokerPeakRSS) }))
	s.StartupCPU = d(func(r burstResult) time.Duration { return r.StartupCPU })
	s.ForwardDrain = d(func(r burstResult) time.Duration { return r.ForwardDrain })
	s.CPUStored = d(func(r burstResult) time.Duration { return r.CPUStored })
	s.CPUForwarded = d(func(r burstResult) time.Duration { return r.CPUForwarded })
	s.CPUPer100k = f(func(r burstResult) float64 { return r.forwardCPUPer100k(false) })
	s.CPUPer100kExStartup = f(func(r burstResult) float64 { return r.forwardCPUPer100k(true) })
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, r := range runs {
		s.LostMax = max(s.LostMax, r.lost())
		lo, hi = min(lo, r.PeakRSS), max(hi, r.PeakRSS)
		s.InfluxWrongMax = max(s.InfluxWrongMax, r.influxWrong())
	}
	s.RSSSpread = fmt.Sprintf("%.1f–%.1f", report.MB(lo), report.MB(hi))
	return s
}

// printBurstReport writes the burst table and its goals.
func printBurstReport(w io.Writer, rows []burstSummary) {
	fmt.Fprintf(w, "\nShelterWatch burst bench: every device publishes its burst at once (QoS 1, one connection each).\n\n")
	fmt.Fprintln(w, "| scenario | messages | readings acked / stored | drain s | msgs/s | gateway peak RSS MB | runs: peak RSS MB | anonymous / file-backed MB | max heap in use MB | max goroutines | gateway CPU-s | mosquitto peak RSS MB | InfluxDB confirmed s | gateway CPU-s stored / confirmed | start-up CPU-s | gateway CPU-s per 100k msgs: whole process / start-up excluded | readings in InfluxDB |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		broker := "—"
		if r.Mode == modeMosquitto {
			broker = fmt.Sprintf("%.1f", report.MB(r.BrokerPeakRSS))
		}
		confirmed, cpu, startup, per100k, inInflux := "—", "—", "—", "—", "—"
		if r.InfluxDB {
			confirmed = fmt.Sprintf("%.1f", r.ForwardDrain.Seconds())
			cpu = fmt.Sprintf("%.2f / %.2f", r.CPUStored.Seconds(), r.CPUForwarded.Seconds())
			startup = fmt.Sprintf("%.2f", r.StartupCPU.Seconds())
			per100k = fmt.Sprintf("%.2f / %.2f", r.CPUPer100k, r.CPUPer100kExStartup)
			inInflux = report.Thousands(float64(r.InfluxPoints))
		}
		fmt.Fprintf(w, "| %s | %s | %s / %s | %.1f | %s | %.1f | %s | %.1f / %.1f | %.1f | %.0f | %.1f | %s | %s | %s | %s | %s | %s |\n",
			r.Scenario, report.Thousands(float64(r.Msgs)), report.Thousands(float64(r.AckedReadings)), report.Thousands(float64(r.StoredReadings)),
			r.Drain.Seconds(), report.Thousands(float64(r.Msgs)/r.Drain.Seconds()), report.MB(r.PeakRSS), r.RSSSpread,
			report.MB(r.MaxRSSAnon), report.MB(r.MaxRSSFile), r.MaxHeapInuse/(1<<20), r.MaxGoroutines, r.GatewayCPU.Seconds(), broker,
			confirmed, cpu, startup, per100k, inInflux)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Drain: mosquitto, from starting the gateway process to the last reading stored (the backlog was queued while it was away); embedded, from the first publish to the last PUBACK. Heap, goroutines and the anonymous / file-backed split of RSS (the latter mostly the executable's own pages, shared and reclaimable) are sampled every 20 ms.")
	for _, r := range rows {
		if r.InfluxDB {
			fmt.Fprintln(w, "InfluxDB (rows with /influxdb): the gateway forwards every reading to influxd 1.8 on the same machine with the shipped defaults; each device's messages are successive reports a minute apart. Confirmed: from starting the gateway process until InfluxDB has confirmed every reading. Gateway CPU-s: the process's whole CPU time when the store held every reading and when InfluxDB had confirmed them; start-up: the CPU time of the burst's first gateway process, which only started and connected with no backlog, left out of the second figure per 100k. Readings in InfluxDB: the devices' points counted there afterwards, each acknowledged reading exactly once.")
			break
		}
	}
	if len(rows) > 0 && rows[0].MemoryLimit > 0 && rows[0].MemoryLimit < math.MaxInt64 {
		fmt.Fprintf(w, "The gateway ran with a soft memory limit of %.0f MB.\n", report.MB(rows[0].MemoryLimit))
	}
	for _, r := range rows {
		verdict := "met"
		if r.PeakRSS > goalBurstRSSBytes || r.LostMax > 0 {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "Goal for %s: peak RSS ≤ %d MB and nothing lost: %s (%.1f MB, %d lost).\n",
			r.Scenario, goalBurstRSSBytes>>20, verdict, report.MB(r.PeakRSS), r.LostMax)
		if r.InfluxDB {
			verdict := "met"
			if r.CPUPer100kExStartup > goalBurstCPUPer100kS || r.InfluxWrongMax > 0 || r.LostMax > 0 {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "Goal for %s: ≤ %.1f CPU-s per 100k msgs (start-up excluded), every reading in InfluxDB exactly once: %s (%.2f CPU-s per 100k msgs start-up excluded, %.2f whole process; %s of %s acknowledged readings in InfluxDB).\n",
				r.Scenario, goalBurstCPUPer100kS, verdict, r.CPUPer100kExStartup, r.CPUPer100k,
				report.Thousands(float64(r.InfluxPoints)), report.Thousands(float64(r.AckedReadings)))
		}
	}
}
