package gateway

import (
	"io"
	"math"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
)

// Process is a gateway role process, from the bench's side.
type Process struct {
	ch *proc.Child
	// Broker is the embedded broker's address, "" in external mode.
	Broker string
}

// Start starts the bench binary exe as the gateway with configFile and
// waits until it is ready. Its log goes to logTo, prefixed "[gateway] ".
func Start(exe, configFile string, logTo io.Writer) (*Process, error) {
	ch, err := Role.Start(exe, logTo)
	if err != nil {
		return nil, err
	}
	p := &Process{ch: ch}
	var r ready
	if err := ch.Call("init", spec{ConfigFile: configFile}, &r, 2*time.Minute); err != nil {
		_ = p.Stop()
		return nil, err
	}
	p.Broker = r.Broker
	return p, nil
}

// Pid is the gateway's process id.
func (p *Process) Pid() int { return p.ch.Pid() }

// Seq is the store's sequence number: how many readings it holds.
func (p *Process) Seq() (uint64, error) {
	var seq uint64
	err := p.ch.Call("seq", nil, &seq, 10*time.Second)
	return seq, err
}

// Stat samples the gateway process.
func (p *Process) Stat() (Stat, error) {
	var st Stat
	err := p.ch.Call("stat", nil, &st, 30*time.Second)
	return st, err
}

// Profile starts profiling the gateway into the files s names.
func (p *Process) Profile(s ProfileSpec) error {
	return p.ch.Call("profile", s, nil, 10*time.Second)
}

// StopProfile ends profiling and writes the heap profile.
func (p *Process) StopProfile() error {
	return p.ch.Call("profile-stop", nil, nil, 10*time.Second)
}

// Stop shuts the gateway down, removes its store and waits for the
// process.
func (p *Process) Stop() error {
	err := p.ch.Call("stop", nil, nil, 45*time.Second)
	p.ch.Close(5 * time.Second)
	return err
}

// Stat is a snapshot of the gateway process. Counters are cumulative; the
// bench takes differences.
type Stat struct {
	Seq      uint64 `json:"seq"` // readings durably stored (store LastSeq)
	CPUNanos int64  `json:"cpu_nanos"`
	PeakRSS  int64  `json:"peak_rss"` // VmHWM, bytes
	// RSSAnon and RSSFile split the current RSS: anonymous memory, and
	// file-backed pages (the executable's own).
	RSSAnon   int64   `json:"rss_anon"`
	RSSFile   int64   `json:"rss_file"`
	RSS       int64   `json:"rss"` // VmRSS, bytes
	HeapInuse float64 `json:"heap_inuse"`
	// Latency is shelterwatch_ingest_receive_to_stored_seconds.
	Latency Histogram `json:"latency"`
	Commits float64   `json:"commits"`
	// Fsync is shelterwatch_store_fsync_seconds (one group commit each).
	Fsync        Histogram `json:"fsync"`
	DeadLettered float64   `json:"dead_lettered"`
	NotAcked     float64   `json:"not_acked"`
	// Readings is shelterwatch_ingest_readings_total: sensor readings
	// stored durably (the store's Seq also counts the gateway's own).
	Readings   float64 `json:"readings"`
	Goroutines float64 `json:"goroutines"`
	// StackInuse and GoSys are go_memstats_stack_inuse_bytes and
	// go_memstats_sys_bytes (all the runtime got from the OS).
	StackInuse float64 `json:"stack_inuse"`
	// StackStart is the size the runtime gives a new goroutine's stack
	// (it follows the average stack in use), bytes.
	StackStart float64 `json:"stack_start"`
	GoSys      float64 `json:"go_sys"`
	// Forwarded is shelterwatch_forward_points_written_total over every
	// InfluxDB target: points InfluxDB confirmed (the gateway's own fault
	// readings included). ForwardBacklog is shelterwatch_forward_backlog_points:
	// readings stored but not yet confirmed.
	Forwarded      float64 `json:"forwarded"`
	ForwardBacklog float64 `json:"forward_backlog"`
	// MemoryLimit is the Go runtime's soft memory limit in force, bytes
	// (math.MaxInt64: none).
	MemoryLimit int64 `json:"memory_limit"`
}

// Histogram is a Prometheus histogram: cumulative counts per upper bound.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

// QuantileSince estimates the q-quantile of the observations added to h
// since the earlier snapshot h0, interpolating linearly inside the bucket
// as Prometheus's histogram_quantile does.
func (h Histogram) QuantileSince(h0 Histogram, q float64) float64 {
	if len(h.Bounds) == 0 || len(h0.Counts) != len(h.Counts) && len(h0.Counts) != 0 {
		return math.NaN()
	}
	counts := make([]float64, len(h.Counts))
	for i := range counts {
		counts[i] = float64(h.Counts[i])
		if len(h0.Counts) > 0 {
			counts[i] -= float64(h0.Counts[i])
		}
	}
	total := float64(h.Count - h0.Count)
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, prev := 0.0, 0.0
	for i, c := range counts {
		if c >= rank {
			if c == prev {
				return h.Bounds[i]
			}
			return lower + (h.Bounds[i]-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = h.Bounds[i], c
	}
	return math.Inf(1) // beyond the last finite bucket
}
