package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Broker modes of a scenario.
const (
	modeEmbedded  = "embedded"
	modeMosquitto = "mosquitto"
)

// scenario is one configuration measured.
type scenario struct {
	Devices int
	Mode    string
	// Rate caps the total publish rate (messages/s); 0 = as fast as the
	// publishers' windows allow.
	Rate float64
	// Conns overrides the number of publisher connections (default
	// min(Devices, 200)).
	Conns int
}

// Name is the scenario's row label, in benchstat's key=value style.
func (s scenario) Name() string {
	n := fmt.Sprintf("devices=%d/mode=%s", s.Devices, s.Mode)
	if s.Rate > 0 {
		n += "/rate=" + strconv.FormatFloat(s.Rate, 'f', -1, 64)
	}
	if s.Conns > 0 && s.Conns != min(s.Devices, 200) {
		n += "/conns=" + strconv.Itoa(s.Conns)
	}
	return n
}

func (s scenario) conns() int {
	if s.Conns > 0 {
		return s.Conns
	}
	return min(s.Devices, 200)
}

// defaultScenarios are the rows of `make bench`: throughput at a small and
// a large installation with each broker, and the memory footprint of a
// 1,000-device site at a realistic (modest) rate.
func defaultScenarios() []scenario {
	return []scenario{
		{Devices: 100, Mode: modeEmbedded},
		{Devices: 100, Mode: modeMosquitto},
		{Devices: 10000, Mode: modeEmbedded},
		{Devices: 10000, Mode: modeMosquitto},
		{Devices: 1000, Mode: modeEmbedded, Rate: 1000},
	}
}

// runOptions apply to every scenario.
type runOptions struct {
	Exe       string // this binary, re-executed for the gateway and publisher roles
	Mosquitto string // path of the mosquitto binary
	Warmup    time.Duration
	Duration  time.Duration
	Window    int    // publishes awaiting PUBACK per connection
	ProfDir   string // if set, write CPU and heap profiles of the gateway per scenario
	TraceDir  string // if set, write an execution trace of the gateway per scenario
	Log       io.Writer
	// MaxInFlight is the gateway's broker.external.max_in_flight and
	// mosquitto's max_inflight_messages.
	MaxInFlight int
}

// result is one scenario run, measured over the steady-state window.
type result struct {
	Scenario string
	Mode     string
	Devices  int
	Rate     float64
	Window   time.Duration

	Msgs           float64 // stored in the window
	MsgsPerSec     float64
	ReadingsPerSec float64
	ReadingsPerMsg float64

	GatewayCPU   time.Duration
	PublisherCPU time.Duration
	BrokerCPU    time.Duration // mosquitto; 0 in embedded mode

	P50ms, P99ms float64
	Latency      string // what P50/P99 measure
	// GwP50ms and GwP99ms are the gateway's own receive→fsynced latency
	// (its histogram), in both modes.
	GwP50ms, GwP99ms float64
	// BrokerAckP50ms is publish→mosquitto PUBACK (mosquitto mode).
	BrokerAckP50ms float64

	PeakRSS, EndRSS int64 // gateway, bytes
	HeapInuse       float64

	ReadingsPerCommit float64
	FsyncMeanMs       float64 // one group commit: write + fsync
	FsyncP99ms        float64
	GatewayCPUUtil    float64 // CPU-seconds per second of the gateway
	// OtherCPUUtil is the machine's busy CPU-seconds per second not spent
	// by the gateway, publishers or mosquitto: kernel softirq for loopback
	// TCP, kernel threads, and any other program running meanwhile.
	OtherCPUUtil float64

	// Verification, over the whole run.
	Acked, AckedReadings, StoredReadings, Failed uint64
	DeadLettered, NotAcked                       float64
}

// gatewayCPUPer100k is gateway CPU-seconds per 100,000 stored messages.
func (r result) gatewayCPUPer100k() float64 {
	return per100k(r.GatewayCPU, r.Msgs)
}

// totalCPUPer100k adds the publishers and mosquitto.
func (r result) totalCPUPer100k() float64 {
	return per100k(r.GatewayCPU+r.PublisherCPU+r.BrokerCPU, r.Msgs)
}

func per100k(d time.Duration, msgs float64) float64 {
	if msgs <= 0 {
		return math.NaN()
	}
	return d.Seconds() / msgs * 1e5
}

// runScenario measures one scenario from a clean start: a new store, a new
// gateway process, a new broker, new publishers. Everything it starts is
// stopped and removed before it returns.
func runScenario(ctx context.Context, o runOptions, sc scenario) (res result, err error) {
	res = result{Scenario: sc.Name(), Mode: sc.Mode, Devices: sc.Devices, Rate: sc.Rate}
	dir, err := os.MkdirTemp("", "shelter-bench-")
	if err != nil {
		return res, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	devs := benchDevices(sc.Devices)
	gcfg := gatewayConfig{storeDir: filepath.Join(dir, "store"), maxInFlight: o.MaxInFlight}
	if gcfg.httpListen, err = freeLoopback(); err != nil {
		return res, err
	}
	pspec := publishSpec{Devices: sc.Devices, Conns: sc.conns(), Window: o.Window, Rate: sc.Rate}

	var mq *mosquitto
	switch sc.Mode {
	case modeMosquitto:
		if _, err := os.Stat(o.Mosquitto); err != nil {
			return res, fmt.Errorf("%w at %s: %v", errNoMosquitto, o.Mosquitto, err)
		}
		mq, err = startMosquitto(ctx, o.Mosquitto, dir, o.MaxInFlight, o.Log)
		if err != nil {
			return res, err
		}
		defer mq.stop()
		gcfg.externalURL = "tcp://" + mq.addr
		pspec.Broker = gcfg.externalURL
		pspec.MaxBacklog = mosquittoBacklog(o.MaxInFlight)
	case modeEmbedded:
		pw := make([]byte, 16)
		_, _ = rand.Read(pw)
		pspec.Username, pspec.Password = "bench-publisher", hex.EncodeToString(pw)
		// MinCost: the gateway checks it once per user, then caches.
		h, err := bcrypt.GenerateFromPassword([]byte(pspec.Password), bcrypt.MinCost)
		if err != nil {
			return res, err
		}
		gcfg.username, gcfg.passwordHash = pspec.Username, string(h)
	default:
		return res, fmt.Errorf("unknown mode %q", sc.Mode)
	}

	// The gateway.
	gw, err := startChild(o.Exe, "gateway", o.Log)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := gw.call("stop", nil, nil, 45*time.Second); cerr != nil && err == nil {
			err = cerr
		}
		gw.close(5 * time.Second)
	}()
	cfgPath := filepath.Join(dir, "shelterwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(devs, gcfg)), 0o600); err != nil {
		return res, fmt.Errorf("write config: %w", err)
	}
	var ready gatewayReady
	if err := gw.call("init", gatewaySpec{ConfigFile: cfgPath}, &ready, 2*time.Minute); err != nil {
		return res, err
	}
	if sc.Mode == modeEmbedded {
		pspec.Broker = "tcp://" + ready.Broker
	}

	// The publishers.
	pub, err := startChild(o.Exe, "publish", o.Log)
	if err != nil {
		return res, err
	}
	defer func() {
		_ = pub.call("stop", nil, nil, 45*time.Second)
		pub.close(5 * time.Second)
	}()
	var pready publishReady
	if err := pub.call("init", pspec, &pready, 2*time.Minute); err != nil {
		return res, err
	}
	res.ReadingsPerMsg = pready.ReadingsPerMsg

	// Wait until a message goes all the way into the store: with an
	// external broker the gateway may still be subscribing.
	base, err := waitConsuming(ctx, gw, pub)
	if err != nil {
		return res, err
	}

	// In mosquitto mode, tell the publishers what the gateway has stored so
	// that they stay at most MaxBacklog ahead.
	fbCtx, stopFeedback := context.WithCancel(ctx)
	fbDone := make(chan error, 1)
	if pspec.MaxBacklog > 0 {
		go func() { fbDone <- feedback(fbCtx, gw, pub, base) }()
	} else {
		fbDone <- nil
	}
	defer func() {
		stopFeedback()
		if ferr := <-fbDone; ferr != nil && err == nil {
			err = ferr
		}
	}()

	if err := pub.call("start", nil, nil, 10*time.Second); err != nil {
		return res, err
	}
	if err := sleepCtx(ctx, o.Warmup); err != nil {
		return res, err
	}
	profiling := o.ProfDir != "" || o.TraceDir != ""
	if profiling {
		var spec profileSpec
		stem := strings.ReplaceAll(sc.Name(), "/", "_") + ".gateway"
		if o.ProfDir != "" {
			spec.CPU, _ = filepath.Abs(filepath.Join(o.ProfDir, stem+".pprof"))
			spec.Heap, _ = filepath.Abs(filepath.Join(o.ProfDir, stem+".heap.pprof"))
		}
		if o.TraceDir != "" {
			spec.Trace, _ = filepath.Abs(filepath.Join(o.TraceDir, stem+".trace"))
		}
		if err := gw.call("profile", spec, nil, 10*time.Second); err != nil {
			return res, err
		}
	}
	g0, p0, m0, b0, t0, err := snapshot(gw, pub, mq)
	if err != nil {
		return res, err
	}
	if err := sleepCtx(ctx, o.Duration); err != nil {
		return res, err
	}
	g1, p1, m1, b1, t1, err := snapshot(gw, pub, mq)
	if err != nil {
		return res, err
	}
	if profiling {
		if err := gw.call("profile-stop", nil, nil, 10*time.Second); err != nil {
			return res, err
		}
	}

	window := t1.Sub(t0)
	res.Window = window
	storedReadings := float64(g1.Seq - g0.Seq)
	ackedMsgs := float64(p1.Acked - p0.Acked)
	switch sc.Mode {
	case modeEmbedded:
		// PUBACK is sent only after the readings are fsynced: an acked
		// message is a stored message.
		res.Msgs = ackedMsgs
		res.P50ms, res.P99ms = p1.LatP50ms, p1.LatP99ms
		res.Latency = "publish→PUBACK (fsynced)"
	case modeMosquitto:
		// A PUBACK from mosquitto says nothing about the store: count what
		// the store gained, in messages of this publisher mix.
		rpm := res.ReadingsPerMsg
		if a := float64(p1.AckedReadings - p0.AckedReadings); ackedMsgs > 0 {
			rpm = a / ackedMsgs
		}
		res.Msgs = storedReadings / rpm
		res.P50ms = 1e3 * histQuantile(g0.Latency, g1.Latency, 0.50)
		res.P99ms = 1e3 * histQuantile(g0.Latency, g1.Latency, 0.99)
		res.Latency = "gateway receive→fsynced (histogram)"
		res.BrokerAckP50ms = p1.LatP50ms
		res.BrokerCPU = m1 - m0
	}
	res.MsgsPerSec = res.Msgs / window.Seconds()
	res.ReadingsPerSec = storedReadings / window.Seconds()
	res.GatewayCPU = time.Duration(g1.CPUNanos - g0.CPUNanos)
	res.PublisherCPU = time.Duration(p1.CPUNanos - p0.CPUNanos)
	res.GatewayCPUUtil = res.GatewayCPU.Seconds() / window.Seconds()
	res.OtherCPUUtil = (b1 - b0 - res.GatewayCPU - res.PublisherCPU - res.BrokerCPU).Seconds() / window.Seconds()
	res.PeakRSS, res.EndRSS, res.HeapInuse = g1.PeakRSS, g1.RSS, g1.HeapInuse
	res.GwP50ms = 1e3 * histQuantile(g0.Latency, g1.Latency, 0.50)
	res.GwP99ms = 1e3 * histQuantile(g0.Latency, g1.Latency, 0.99)
	if c := g1.Commits - g0.Commits; c > 0 {
		res.ReadingsPerCommit = storedReadings / c
		res.FsyncMeanMs = 1e3 * (g1.Fsync.Sum - g0.Fsync.Sum) / c
		res.FsyncP99ms = 1e3 * histQuantile(g0.Fsync, g1.Fsync, 0.99)
	}

	// Stop publishing, wait for every publish in flight, then check that
	// everything acknowledged reached the store.
	stopFeedback()
	var pfin publishStat
	if err := pub.call("stop", nil, &pfin, 45*time.Second); err != nil {
		return res, err
	}
	res.Acked, res.AckedReadings, res.Failed = pfin.Acked, pfin.AckedReadings, pfin.Failed
	if pfin.Failed > 0 || pfin.FirstError != "" {
		return res, fmt.Errorf("%d of %d publishes failed; first error: %s", pfin.Failed, pfin.Published, pfin.FirstError)
	}
	want := base + pfin.AckedReadings
	seq, err := waitStored(ctx, gw, want, 60*time.Second)
	res.StoredReadings = seq - base
	if err != nil {
		return res, err
	}
	var gfin gatewayStat
	if err := gw.call("stat", nil, &gfin, 30*time.Second); err != nil {
		return res, err
	}
	res.PeakRSS = gfin.PeakRSS
	res.DeadLettered, res.NotAcked = gfin.DeadLettered, gfin.NotAcked
	if res.StoredReadings < res.AckedReadings || res.StoredReadings < res.Acked {
		return res, fmt.Errorf("%s: store holds %d readings but publishers had %d messages (%d readings) acknowledged", sc.Name(), res.StoredReadings, res.Acked, res.AckedReadings)
	}
	if gfin.DeadLettered > 0 {
		fmt.Fprintf(o.Log, "%s: the gateway dead-lettered %.0f messages (a bench payload bug?)\n", sc.Name(), gfin.DeadLettered)
	}
	return res, nil
}

// mosquittoBacklog is how many readings publishers may be ahead of the
// store in mosquitto mode: a few gateway windows (of ~3 readings per
// message), so that the gateway always has max_in_flight messages to work
// on while mosquitto's queue stays bounded.
func mosquittoBacklog(maxInFlight int) int64 { return int64(4 * maxInFlight * 3) }

// snapshot samples the gateway, the publishers and mosquitto (if any)
// back to back, and the whole machine's busy CPU time.
func snapshot(gw, pub *child, mq *mosquitto) (g gatewayStat, p publishStat, mcpu, busy time.Duration, at time.Time, err error) {
	at = time.Now()
	if busy, err = machineBusy(); err != nil {
		return
	}
	if err = pub.call("mark", nil, &p, 30*time.Second); err != nil {
		return
	}
	if err = gw.call("stat", nil, &g, 30*time.Second); err != nil {
		return
	}
	if mq != nil {
		mcpu, err = mq.cpu()
	}
	return
}

// waitConsuming probes until a published message is in the store and
// returns the store's sequence number then (probes are not counted).
func waitConsuming(ctx context.Context, gw, pub *child) (uint64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var before uint64
		if err := gw.call("seq", nil, &before, 10*time.Second); err != nil {
			return 0, err
		}
		var n uint64
		if err := pub.call("probe", nil, &n, 15*time.Second); err != nil {
			return 0, err
		}
		seq, err := waitStored(ctx, gw, before+n, 500*time.Millisecond)
		if err == nil {
			// A probe lost before the gateway subscribed never arrives;
			// give a late one a moment to land so it does not count later.
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return 0, err
			}
			if err := gw.call("seq", nil, &seq, 10*time.Second); err != nil {
				return 0, err
			}
			return seq, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Now().After(deadline) {
			return 0, errors.New("no probe message reached the store within 30s: the gateway is not consuming")
		}
	}
}

// waitStored waits until the store's sequence number reaches want.
func waitStored(ctx context.Context, gw *child, want uint64, limit time.Duration) (uint64, error) {
	deadline := time.Now().Add(limit)
	for {
		var seq uint64
		if err := gw.call("seq", nil, &seq, 10*time.Second); err != nil {
			return 0, err
		}
		if seq >= want {
			return seq, nil
		}
		if time.Now().After(deadline) {
			return seq, fmt.Errorf("store has %d readings, want %d, after waiting %s", seq, want, limit)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return seq, err
		}
	}
}

// feedback forwards the gateway's stored count to the publishers every
// 10ms until ctx is done.
func feedback(ctx context.Context, gw, pub *child, base uint64) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var seq uint64
		if err := gw.call("seq", nil, &seq, 10*time.Second); err != nil {
			return err
		}
		if err := pub.call("stored", int64(seq-base), nil, 10*time.Second); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freeLoopback returns a loopback address with a port free right now.
// The HTTP server cannot use port 0 in embedded mode: config validation
// rejects http.listen equal to broker.embedded.listen, and both would be
// "127.0.0.1:0".
func freeLoopback() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", fmt.Errorf("pick an HTTP port: %w", err)
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// histQuantile estimates the q-quantile of the observations added between
// two snapshots of a Prometheus histogram, interpolating linearly inside
// the bucket as Prometheus's histogram_quantile does.
func histQuantile(h0, h1 histogram, q float64) float64 {
	if len(h1.Bounds) == 0 || len(h0.Counts) != len(h1.Counts) && len(h0.Counts) != 0 {
		return math.NaN()
	}
	counts := make([]float64, len(h1.Counts))
	for i := range counts {
		counts[i] = float64(h1.Counts[i])
		if len(h0.Counts) > 0 {
			counts[i] -= float64(h0.Counts[i])
		}
	}
	total := float64(h1.Count - h0.Count)
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, prev := 0.0, 0.0
	for i, c := range counts {
		if c >= rank {
			if c == prev {
				return h1.Bounds[i]
			}
			return lower + (h1.Bounds[i]-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = h1.Bounds[i], c
	}
	return math.Inf(1) // beyond the last finite bucket
}
