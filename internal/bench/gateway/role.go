// Package gateway runs the gateway under test in a process of its own —
// the bench binary re-executed as "shelter-bench gateway", which builds the
// whole gateway with app.New from a generated config file, loaded by
// config.Load as an operator's is — and reads it from the bench: the
// store's sequence number (readings durably stored), the process's CPU
// time and RSS, and the ingest and store metrics of its Prometheus
// registry, with histograms kept whole so that quantiles can be taken over
// a window. On request it writes CPU and heap profiles and an execution
// trace of that window.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/procstat"
)

// Role is the gateway role: the whole gateway (app.New, App.Run) in the
// child process.
var Role = proc.Role{Name: "gateway", New: func() proc.Handler { return (&role{}).handle }}

// spec starts the gateway role.
type spec struct {
	// ConfigFile is the generated YAML config, loaded with config.Load as
	// an operator's file is. (A path rather than the text, so that the
	// gateway process does not keep a megabyte of request buffer.)
	ConfigFile string `json:"config_file"`
}

type ready struct {
	Broker         string  `json:"broker"` // embedded broker address, "" in external mode
	StartupSeconds float64 `json:"startup_seconds"`
}

// ProfileSpec names the files a profiled window writes ("" = none).
type ProfileSpec struct {
	CPU   string `json:"cpu,omitempty"`
	Trace string `json:"trace,omitempty"`
	Heap  string `json:"heap,omitempty"` // written when profiling stops
	// Goroutine is a goroutine profile, written when profiling stops.
	Goroutine string `json:"goroutine,omitempty"`
}

// role is the gateway, from inside its process.
type role struct {
	a       *app.App
	dir     string
	cancel  context.CancelFunc
	runDone chan error
	prof    *os.File
	trace   *os.File
	heap    string // heap profile written at "profile-stop"
	gor     string // goroutine profile written at "profile-stop"
}

func (g *role) handle(_ context.Context, cmd string, args json.RawMessage) (any, bool, error) {
	switch cmd {
	case "init":
		var s spec
		if err := json.Unmarshal(args, &s); err != nil {
			return nil, false, err
		}
		r, err := g.start(s)
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
		var s ProfileSpec
		if err := json.Unmarshal(args, &s); err != nil {
			return nil, false, err
		}
		return nil, false, g.startProfile(s)
	case "profile-stop":
		return nil, false, g.stopProfile()
	case "stop":
		return nil, true, g.stop()
	}
	return nil, false, fmt.Errorf("%w %q", proc.ErrUnknownCmd, cmd)
}

func (g *role) start(s spec) (*ready, error) {
	if g.a != nil {
		return nil, errors.New("already started")
	}
	t0 := time.Now()
	app.TuneRuntime()
	cfg, err := config.Load(s.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("generated config is invalid (a bench bug): %w", err)
	}
	app.ApplyMemoryLimit(int64(cfg.MemoryLimit))
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
	return &ready{Broker: a.BrokerAddr(), StartupSeconds: time.Since(t0).Seconds()}, nil
}

func (g *role) startProfile(s ProfileSpec) error {
	g.heap, g.gor = s.Heap, s.Goroutine
	if s.CPU != "" {
		f, err := os.Create(s.CPU)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		g.prof = f
	}
	if s.Trace != "" {
		f, err := os.Create(s.Trace)
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

func (g *role) stopProfile() error {
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
	if g.gor != "" {
		f, err := os.Create(g.gor)
		if err == nil {
			err = errors.Join(pprof.Lookup("goroutine").WriteTo(f, 0), f.Close())
		}
		errs = append(errs, err)
		g.gor = ""
	}
	return errors.Join(errs...)
}

// stop shuts the gateway down (it writes every queued append first) and
// removes its store. Safe to call more than once.
func (g *role) stop() error {
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

func (g *role) stat() (*Stat, error) {
	st := &Stat{Seq: g.a.Store.LastSeq(), CPUNanos: int64(procstat.SelfCPU()), MemoryLimit: debug.SetMemoryLimit(-1)}
	st.PeakRSS, st.RSS, _ = procstat.Mem(os.Getpid())
	st.RSSAnon, st.RSSFile, _ = procstat.MemParts(os.Getpid())
	ms := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(ms)
	if ms[0].Value.Kind() == metrics.KindUint64 {
		st.StackStart = float64(ms[0].Value.Uint64())
	}
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
		case "shelterwatch_ingest_readings_total":
			st.Readings = sum()
		case "go_goroutines":
			st.Goroutines = sum()
		case "go_memstats_stack_inuse_bytes":
			st.StackInuse = sum()
		case "go_memstats_sys_bytes":
			st.GoSys = sum()
		case "shelterwatch_forward_points_written_total":
			st.Forwarded = sum()
		case "shelterwatch_forward_backlog_points":
			st.ForwardBacklog = sum()
		}
	}
	return st, nil
}

func promHistogram(h *dto.Histogram) Histogram {
	var out Histogram
	for _, b := range h.GetBucket() {
		out.Bounds = append(out.Bounds, b.GetUpperBound())
		out.Counts = append(out.Counts, b.GetCumulativeCount())
	}
	out.Count = h.GetSampleCount()
	out.Sum = h.GetSampleSum()
	return out
}
