package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/internal/bench/gateway"
	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/procstat"
	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

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
	// EndAnon and EndFile split EndRSS: anonymous memory (what the
	// gateway allocated) and file-backed pages (the executable's own,
	// shared and reclaimable; how many are mapped follows the page cache).
	EndAnon, EndFile int64
	HeapInuse        float64

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
	return report.Per100k(r.GatewayCPU, r.Msgs)
}

// totalCPUPer100k adds the publishers and mosquitto.
func (r result) totalCPUPer100k() float64 {
	return report.Per100k(r.GatewayCPU+r.PublisherCPU+r.BrokerCPU, r.Msgs)
}

// runScenario measures one scenario from a clean start: a new store, a new
// gateway process, a new broker, new publishers. Everything it starts is
// stopped and removed before it returns.
func runScenario(ctx context.Context, o Options, sc Scenario) (res result, err error) {
	res = result{Scenario: sc.Name(), Mode: sc.Mode, Devices: sc.Devices, Rate: sc.Rate}
	if err := sc.validate(); err != nil {
		return res, err
	}
	devs, err := benchDevices(sc.Devices, sc.Format)
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "shelter-bench-")
	if err != nil {
		return res, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	gcfg := gatewayConfig{storeDir: filepath.Join(dir, "store"), maxInFlight: o.MaxInFlight}
	if gcfg.httpListen, err = proc.FreeLoopback(); err != nil {
		return res, err
	}
	pspec := publishSpec{Devices: sc.Devices, Format: sc.Format, Conns: sc.conns(), Window: o.Window, Rate: sc.Rate}
	mq, err := prepareBroker(ctx, o, sc, dir, &gcfg, &pspec)
	if err != nil {
		return res, err
	}
	if mq != nil {
		defer mq.Stop()
	}

	// The gateway.
	cfgPath := filepath.Join(dir, "shelterwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(devs, gcfg)), 0o600); err != nil {
		return res, fmt.Errorf("write config: %w", err)
	}
	gw, err := gateway.Start(o.Exe, cfgPath, o.Log)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := gw.Stop(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if sc.Mode == modeEmbedded {
		pspec.Broker = "tcp://" + gw.Broker
	}

	// The publishers.
	pub, pready, stopPub, err := startPublishers(o, pspec, 2*time.Minute)
	if err != nil {
		return res, err
	}
	defer stopPub()
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

	s0, s1, err := measureWindow(ctx, o, sc, gw, pub, mq)
	if err != nil {
		return res, err
	}
	res.figures(s0, s1)

	// Stop publishing, wait for every publish in flight, then check that
	// everything acknowledged reached the store.
	stopFeedback()
	err = verify(ctx, o, gw, pub, base, &res)
	return res, err
}

// prepareBroker sets up the scenario's broker: mosquitto started for the
// gateway to consume from, or the embedded broker's account for the
// publishers. It returns mosquitto, if started.
func prepareBroker(ctx context.Context, o Options, sc Scenario, dir string, gcfg *gatewayConfig, pspec *publishSpec) (*mosquitto, error) {
	switch sc.Mode {
	case modeMosquitto:
		if _, err := os.Stat(o.Mosquitto); err != nil {
			return nil, fmt.Errorf("%w at %s: %v", errNoMosquitto, o.Mosquitto, err)
		}
		mq, err := startMosquitto(ctx, o.Mosquitto, dir, o.MaxInFlight, o.Log)
		if err != nil {
			return nil, err
		}
		gcfg.externalURL = "tcp://" + mq.addr
		pspec.Broker = gcfg.externalURL
		pspec.MaxBacklog = mosquittoBacklog(o.MaxInFlight)
		return mq, nil
	case modeEmbedded:
		pw := make([]byte, 16)
		_, _ = rand.Read(pw)
		pspec.Username, pspec.Password = "bench-publisher", hex.EncodeToString(pw)
		// MinCost: the gateway checks it once per user, then caches.
		h, err := bcrypt.GenerateFromPassword([]byte(pspec.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		gcfg.username, gcfg.passwordHash, gcfg.users = pspec.Username, string(h), pspec.Conns
		return nil, nil
	default:
		return nil, fmt.Errorf("unknown mode %q", sc.Mode)
	}
}

// sample is the gateway, the publishers and mosquitto (if any) sampled
// back to back, with the whole machine's busy CPU time.
type sample struct {
	g    gateway.Stat
	p    publishStat
	mcpu time.Duration // mosquitto
	busy time.Duration
	at   time.Time
}

func takeSample(gw *gateway.Process, pub *proc.Child, mq *mosquitto) (s sample, err error) {
	s.at = time.Now()
	if s.busy, err = procstat.MachineBusy(); err != nil {
		return s, err
	}
	if err = pub.Call("mark", nil, &s.p, 30*time.Second); err != nil {
		return s, err
	}
	if s.g, err = gw.Stat(); err != nil {
		return s, err
	}
	if mq != nil {
		s.mcpu, err = mq.cpu()
	}
	return s, err
}

// measureWindow starts publishing, lets it warm up and samples everything
// at both ends of the window, profiling the gateway over it if asked.
func measureWindow(ctx context.Context, o Options, sc Scenario, gw *gateway.Process, pub *proc.Child, mq *mosquitto) (s0, s1 sample, err error) {
	if err := pub.Call("start", nil, nil, 10*time.Second); err != nil {
		return s0, s1, err
	}
	if err := proc.Sleep(ctx, o.Warmup); err != nil {
		return s0, s1, err
	}
	profiling := o.ProfDir != "" || o.TraceDir != ""
	if profiling {
		var spec gateway.ProfileSpec
		stem := strings.ReplaceAll(sc.Name(), "/", "_") + ".gateway"
		if o.ProfDir != "" {
			spec.CPU, _ = filepath.Abs(filepath.Join(o.ProfDir, stem+".pprof"))
			spec.Heap, _ = filepath.Abs(filepath.Join(o.ProfDir, stem+".heap.pprof"))
		}
		if o.TraceDir != "" {
			spec.Trace, _ = filepath.Abs(filepath.Join(o.TraceDir, stem+".trace"))
		}
		if err := gw.Profile(spec); err != nil {
			return s0, s1, err
		}
	}
	if s0, err = takeSample(gw, pub, mq); err != nil {
		return s0, s1, err
	}
	if err := proc.Sleep(ctx, o.Duration); err != nil {
		return s0, s1, err
	}
	if s1, err = takeSample(gw, pub, mq); err != nil {
		return s0, s1, err
	}
	if profiling {
		if err := gw.StopProfile(); err != nil {
			return s0, s1, err
		}
	}
	return s0, s1, nil
}

// figures fills in the window's figures from its two samples.
func (res *result) figures(s0, s1 sample) {
	g0, g1, p0, p1 := s0.g, s1.g, s0.p, s1.p
	window := s1.at.Sub(s0.at)
	res.Window = window
	storedReadings := float64(g1.Seq - g0.Seq)
	ackedMsgs := float64(p1.Acked - p0.Acked)
	switch res.Mode {
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
		res.P50ms = 1e3 * g1.Latency.QuantileSince(g0.Latency, 0.50)
		res.P99ms = 1e3 * g1.Latency.QuantileSince(g0.Latency, 0.99)
		res.Latency = "gateway receive→fsynced (histogram)"
		res.BrokerAckP50ms = p1.LatP50ms
		res.BrokerCPU = s1.mcpu - s0.mcpu
	}
	res.MsgsPerSec = res.Msgs / window.Seconds()
	res.ReadingsPerSec = storedReadings / window.Seconds()
	res.GatewayCPU = time.Duration(g1.CPUNanos - g0.CPUNanos)
	res.PublisherCPU = time.Duration(p1.CPUNanos - p0.CPUNanos)
	res.GatewayCPUUtil = res.GatewayCPU.Seconds() / window.Seconds()
	res.OtherCPUUtil = (s1.busy - s0.busy - res.GatewayCPU - res.PublisherCPU - res.BrokerCPU).Seconds() / window.Seconds()
	res.PeakRSS, res.EndRSS, res.HeapInuse = g1.PeakRSS, g1.RSS, g1.HeapInuse
	res.EndAnon, res.EndFile = g1.RSSAnon, g1.RSSFile
	res.GwP50ms = 1e3 * g1.Latency.QuantileSince(g0.Latency, 0.50)
	res.GwP99ms = 1e3 * g1.Latency.QuantileSince(g0.Latency, 0.99)
	if c := g1.Commits - g0.Commits; c > 0 {
		res.ReadingsPerCommit = storedReadings / c
		res.FsyncMeanMs = 1e3 * (g1.Fsync.Sum - g0.Fsync.Sum) / c
		res.FsyncP99ms = 1e3 * g1.Fsync.QuantileSince(g0.Fsync, 0.99)
	}
}

// verify stops the publishers, waits for every publish in flight and
// checks that everything acknowledged reached the store (base is the
// store's sequence number before the scenario's publishes).
func verify(ctx context.Context, o Options, gw *gateway.Process, pub *proc.Child, base uint64, res *result) error {
	var pfin publishStat
	if err := pub.Call("stop", nil, &pfin, 45*time.Second); err != nil {
		return err
	}
	res.Acked, res.AckedReadings, res.Failed = pfin.Acked, pfin.AckedReadings, pfin.Failed
	if pfin.Failed > 0 || pfin.FirstError != "" {
		return fmt.Errorf("%d of %d publishes failed; first error: %s", pfin.Failed, pfin.Published, pfin.FirstError)
	}
	want := base + pfin.AckedReadings
	seq, err := waitStored(ctx, gw, want, 60*time.Second)
	res.StoredReadings = seq - base
	if err != nil {
		return err
	}
	gfin, err := gw.Stat()
	if err != nil {
		return err
	}
	res.PeakRSS = gfin.PeakRSS
	res.DeadLettered, res.NotAcked = gfin.DeadLettered, gfin.NotAcked
	if res.StoredReadings < res.AckedReadings || res.StoredReadings < res.Acked {
		return fmt.Errorf("%s: store holds %d readings but publishers had %d messages (%d readings) acknowledged", res.Scenario, res.StoredReadings, res.Acked, res.AckedReadings)
	}
	if gfin.DeadLettered > 0 {
		fmt.Fprintf(o.Log, "%s: the gateway dead-lettered %.0f messages (a bench payload bug?)\n", res.Scenario, gfin.DeadLettered)
	}
	return nil
}

// mosquittoBacklog is how many readings publishers may be ahead of the
// store in mosquitto mode: a few gateway windows (of ~3 readings per
// message), so that the gateway always has max_in_flight messages to work
// on while mosquitto's queue stays bounded.
func mosquittoBacklog(maxInFlight int) int64 { return int64(4 * maxInFlight * 3) }

// waitConsuming probes until a published message is in the store and
// returns the store's sequence number then (probes are not counted).
func waitConsuming(ctx context.Context, gw *gateway.Process, pub *proc.Child) (uint64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		before, err := gw.Seq()
		if err != nil {
			return 0, err
		}
		var n uint64
		if err := pub.Call("probe", nil, &n, 15*time.Second); err != nil {
			return 0, err
		}
		if _, err := waitStored(ctx, gw, before+n, 500*time.Millisecond); err == nil {
			// A probe lost before the gateway subscribed never arrives;
			// give a late one a moment to land so it does not count later.
			if err := proc.Sleep(ctx, 100*time.Millisecond); err != nil {
				return 0, err
			}
			return gw.Seq()
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
func waitStored(ctx context.Context, gw *gateway.Process, want uint64, limit time.Duration) (uint64, error) {
	deadline := time.Now().Add(limit)
	for {
		seq, err := gw.Seq()
		if err != nil {
			return 0, err
		}
		if seq >= want {
			return seq, nil
		}
		if time.Now().After(deadline) {
			return seq, fmt.Errorf("store has %d readings, want %d, after waiting %s", seq, want, limit)
		}
		if err := proc.Sleep(ctx, 5*time.Millisecond); err != nil {
			return seq, err
		}
	}
}

// feedback forwards the gateway's stored count to the publishers every
// 10ms until ctx is done.
func feedback(ctx context.Context, gw *gateway.Process, pub *proc.Child, base uint64) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		seq, err := gw.Seq()
		if err != nil {
			return err
		}
		if err := pub.Call("stored", int64(seq-base), nil, 10*time.Second); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// startPublishers starts the publisher process and has it connect its
// clients (within initWithin); stop stops and closes it.
func startPublishers(o Options, spec publishSpec, initWithin time.Duration) (pub *proc.Child, ready publishReady, stop func(), err error) {
	pub, err = PublishRole.Start(o.Exe, o.Log)
	if err != nil {
		return nil, ready, nil, err
	}
	stop = func() {
		_ = pub.Call("stop", nil, nil, 45*time.Second)
		pub.Close(5 * time.Second)
	}
	if err := pub.Call("init", spec, &ready, initWithin); err != nil {
		stop()
		return nil, ready, nil, err
	}
	return pub, ready, stop, nil
}
