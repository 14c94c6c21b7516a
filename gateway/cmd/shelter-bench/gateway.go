package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
)

// gatewaySpec starts the gateway role.
type gatewaySpec struct {
	// ConfigFile is the generated YAML config, loaded with config.Load as
	// an operator's file is. (A path rather than the text, so that the
	// gateway process does not keep a megabyte of request buffer.)
	ConfigFile string `json:"config_file"`
}

type gatewayReady struct {
	Broker         string  `json:"broker"` // embedded broker address, "" in external mode
	StartupSeconds float64 `json:"startup_seconds"`
}

// gatewayStat is a snapshot of the gateway process. Counters are
// cumulative; the orchestrator takes differences.
type gatewayStat struct {
	Seq       uint64  `json:"seq"` // readings durably stored (store LastSeq)
	CPUNanos  int64   `json:"cpu_nanos"`
	PeakRSS   int64   `json:"peak_rss"` // VmHWM, bytes
	RSS       int64   `json:"rss"`      // VmRSS, bytes
	HeapInuse float64 `json:"heap_inuse"`
	// Latency is shelterwatch_ingest_receive_to_stored_seconds.
	Latency histogram `json:"latency"`
	Commits float64   `json:"commits"`
	// Fsync is shelterwatch_store_fsync_seconds (one group commit each).
	Fsync        histogram `json:"fsync"`
	DeadLettered float64   `json:"dead_lettered"`
	NotAcked     float64   `json:"not_acked"`
}

// histogram is a Prometheus histogram: cumulative counts per upper bound.
type histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

// gatewayRole runs the whole gateway (app.New, app.Run) in this process.
type gatewayRole struct {
	a       *app.App
	dir     string
	cancel  context.CancelFunc
	runDone chan error
	prof    *os.File
	trace   *os.File
	heap    string // heap profile written at "profile-stop"
}

func (g *gatewayRole) handle(_ context.Context, cmd string, args json.RawMessage) (any, bool, error) {
	switch cmd {
	case "init":
		var spec gatewaySpec
		if err := json.Unmarshal(args, &spec); err != nil {
			return nil, false, err
		}
		r, err := g.start(spec)
		return r, false, err
	case "seq":
		if g.a == nil {
			return nil, false, errors.New("not started")
		}
		return g.a.Store.LastSeq(), false, nil
	case "stat":
		if g.a == nil {
			return nil, false, errors.New("not started")
		}
		st, err := g.stat()
		return st, false, err
	case "profile":
		var spec profileSpec
		if err := json.Unmarshal(args, &spec); err != nil {
			return nil, false, err
		}
		return nil, false, g.startProfile(spec)
	case "profile-stop":
		return nil, false, g.stopProfile()
	case "stop":
		return nil, true, g.stop()
	}
	return nil, false, fmt.Errorf("%w %q", errUnknownCmd, cmd)
}

func (g *gatewayRole) start(spec gatewaySpec) (*gatewayReady, error) {
	if g.a != nil {
		return nil, errors.New("already started")
	}
	t0 := time.Now()
	app.TuneRuntime()
	cfg, err := config.Load(spec.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("generated config is invalid (a bench bug): %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}))
	a, err := app.New(cfg, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.a, g.dir, g.cancel, g.runDone = a, cfg.Store.Dir, cancel, make(chan error, 1)
	go func() { g.runDone <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-g.runDone:
		g.runDone <- err
		return nil, fmt.Errorf("gateway stopped while starting: %w", err)
	case <-time.After(time.Minute):
		return nil, errors.New("gateway not ready within 1m")
	}
	return &gatewayReady{Broker: a.BrokerAddr(), StartupSeconds: time.Since(t0).Seconds()}, nil
}

// profileSpec names the files a "profile" command writes ("" = none).
type profileSpec struct {
	CPU   string `json:"cpu,omitempty"`
	Trace string `json:"trace,omitempty"`
	Heap  string `json:"heap,omitempty"` // written when profiling stops
}

func (g *gatewayRole) startProfile(spec profileSpec) error {
	g.heap = spec.Heap
	if spec.CPU != "" {
		f, err := os.Create(spec.CPU)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		g.prof = f
	}
	if spec.Trace != "" {
		f, err := os.Create(spec.Trace)
		if err != nil {
			return errors.Join(err, g.stopProfile())
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return errors.Join(err, g.stopProfile())
		}
		g.trace = f
	}
	return nil
}

func (g *gatewayRole) stopProfile() error {
	var errs []error
	if g.prof != nil {
		pprof.StopCPUProfile()
		errs = append(errs, g.prof.Close())
		g.prof = nil
	}
	if g.trace != nil {
		trace.Stop()
		errs = append(errs, g.trace.Close())
		g.trace = nil
	}
	if g.heap != "" {
		f, err := os.Create(g.heap)
		if err == nil {
			err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
		}
		errs = append(errs, err)
		g.heap = ""
	}
	return errors.Join(errs...)
}

// stop shuts the gateway down (it writes every queued append first) and
// removes its store. Safe to call more than once.
func (g *gatewayRole) stop() error {
	perr := g.stopProfile()
	if g.a == nil {
		return perr
	}
	g.cancel()
	var err error
	select {
	case err = <-g.runDone:
	case <-time.After(30 * time.Second):
		err = errors.New("gateway did not stop within 30s")
	}
	g.a = nil
	if g.dir != "" {
		_ = os.RemoveAll(g.dir)
	}
	return errors.Join(perr, err)
}

func (g *gatewayRole) stat() (*gatewayStat, error) {
	st := &gatewayStat{Seq: g.a.Store.LastSeq(), CPUNanos: int64(selfCPU())}
	st.PeakRSS, st.RSS = memStatus()
	mfs, err := g.a.Registry().Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range mfs {
		sum := func() float64 {
			var s float64
			for _, m := range mf.GetMetric() {
				s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
			return s
		}
		switch mf.GetName() {
		case "shelterwatch_ingest_receive_to_stored_seconds":
			if ms := mf.GetMetric(); len(ms) == 1 {
				st.Latency = promHistogram(ms[0].GetHistogram())
			}
		case "shelterwatch_store_commits_total":
			st.Commits = sum()
		case "shelterwatch_store_fsync_seconds":
			if ms := mf.GetMetric(); len(ms) == 1 {
				st.Fsync = promHistogram(ms[0].GetHistogram())
			}
		case "shelterwatch_ingest_dead_lettered_total":
			st.DeadLettered = sum()
		case "shelterwatch_broker_publish_not_acked_total", "shelterwatch_mqttclient_not_acked_total":
			st.NotAcked += sum()
		case "go_memstats_heap_inuse_bytes":
			st.HeapInuse = sum()
		}
	}
	return st, nil
}

func promHistogram(h *dto.Histogram) histogram {
	var out histogram
	for _, b := range h.GetBucket() {
		out.Bounds = append(out.Bounds, b.GetUpperBound())
		out.Counts = append(out.Counts, b.GetCumulativeCount())
	}
	out.Count = h.GetSampleCount()
	out.Sum = h.GetSampleSum()
	return out
}
