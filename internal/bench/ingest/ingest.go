// Package ingest measures the gateway's whole ingest path — MQTT in,
// decode, durable group commit in the Pebble store, PUBACK — and prints a
// Markdown table: messages per second, gateway CPU per 100,000 messages,
// publish latency, peak RSS, and against the goals (≥ 50,000 msgs/s, RSS ≤
// 60 MB at 1,000 devices).
//
// Each scenario starts from nothing: a generated config (YAML text in a file
// loaded by config.Load, like an operator's) with N devices of the real payload
// formats, a new store in a temporary directory, the gateway, and K = min(N,
// 200) paho publishers sending QoS 1 on behalf of the devices round-robin,
// each with a window of publishes awaiting PUBACK. In mosquitto mode a
// mosquitto broker is started too and the gateway consumes from it as an
// external-broker client.
//
// The default window is 8: the embedded broker handles one publish per
// connection at a time (PUBACK after fsync), so a deeper window adds no
// throughput, only time spent queued behind the connection's earlier
// publishes, which the latency columns would then mostly measure.
//
// The gateway and the publishers run in separate processes — the bench
// binary re-executed as "shelter-bench gateway" (package gateway) and
// "shelter-bench publish" (PublishRole), driven over stdin/stdout — so
// that the gateway's CPU time and peak RSS are its own. Figures cover a
// steady-state window after a warm-up. After each scenario the bench checks
// that every acknowledged publish is in the store.
//
// The burst scenarios (Scenario.Burst, see runBurst) measure memory, not
// throughput: 1,000 devices publish 200 messages each at once, either into
// Mosquitto while the gateway is away (a backlog waiting in its persistent
// session) or straight into the embedded broker, and the table gives the
// gateway's peak RSS, the time to store the burst, and whether every
// acknowledged reading is in the store (goal: peak RSS ≤ 100 MB, nothing
// lost).
//
// One more burst row measures the CPU goal's configuration exactly: the
// Mosquitto backlog of 200,000 messages from 1,000 Zigbee2MQTT devices
// (Scenario.Format), with the built-in rules, the store's rollups and
// forwarding to a real influxd 1.8 (Scenario.InfluxDB). Its drain ends once
// InfluxDB has confirmed every reading; the table adds the gateway's CPU
// per 100,000 messages with and without its start-up (the CPU of the
// burst's first gateway process, which starts with no backlog), and the
// bench checks afterwards that InfluxDB holds every acknowledged reading
// exactly once (goal: ≤ 2.0 CPU-s per 100k messages, start-up excluded).
//
// Every process and file a scenario starts is stopped and removed when it
// ends, on error, or on Ctrl-C; children also die with the bench (parent
// death signal). Ports are chosen by the kernel.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// Broker modes of a scenario.
const (
	modeEmbedded  = "embedded"
	modeMosquitto = "mosquitto"
)

// Scenario is one configuration measured.
type Scenario struct {
	Devices int
	Mode    string // "embedded" or "mosquitto"
	// Rate caps the total publish rate (messages/s); 0 = as fast as the
	// publishers' windows allow.
	Rate float64
	// Conns overrides the number of publisher connections (default
	// min(Devices, 200); a burst scenario's default is one per device).
	Conns int
	// Burst, when > 0, makes this a burst scenario (see runBurst): every
	// device publishes Burst messages at once, and the figures are the
	// gateway's peak memory and the time to store them all.
	Burst int
	// Format, when set, keeps only the devices of that payload format in
	// the device mix (deviceMix): "zigbee2mqtt" is temperature, smoke and
	// door sensors in the mix's proportions. "" is the whole mix.
	Format string
	// InfluxDB forwards every reading to a real influxd 1.8
	// (Options.Influxd), and the burst counts as drained only once InfluxDB
	// has confirmed every reading. Mosquitto bursts only.
	InfluxDB bool
}

// Name is the scenario's row label, in benchstat's key=value style.
func (s Scenario) Name() string {
	n := fmt.Sprintf("devices=%d/mode=%s", s.Devices, s.Mode)
	if s.Burst > 0 {
		n = fmt.Sprintf("burst=%d/", s.Burst*s.Devices) + n
	}
	if s.Format != "" {
		n += "/format=" + s.Format
	}
	if s.InfluxDB {
		n += "/influxdb"
	}
	if s.Rate > 0 {
		n += "/rate=" + strconv.FormatFloat(s.Rate, 'f', -1, 64)
	}
	if s.Conns > 0 && s.Conns != s.defaultConns() {
		n += "/conns=" + strconv.Itoa(s.Conns)
	}
	return n
}

// validate refuses what the bench does not measure, rather than measuring
// something else under the scenario's name.
func (s Scenario) validate() error {
	if _, err := mixOf(s.Format); err != nil {
		return err
	}
	if s.InfluxDB && (s.Burst == 0 || s.Mode != modeMosquitto) {
		return fmt.Errorf("%s: InfluxDB forwarding is measured in Mosquitto burst scenarios only", s.Name())
	}
	return nil
}

func (s Scenario) conns() int {
	if s.Conns > 0 {
		return s.Conns
	}
	return s.defaultConns()
}

func (s Scenario) defaultConns() int {
	if s.Burst > 0 {
		return s.Devices
	}
	return min(s.Devices, 200)
}

// DefaultScenarios are the rows of `make bench`: throughput at a small and
// a large installation with each broker, the memory footprint of a
// 1,000-device site at a realistic (modest) rate, and the same site's
// memory under a burst of 200,000 messages with each broker (a gateway
// back to a broker's backlog; every device at once). The burst through
// Mosquitto is run a second time as the CPU goal states it: Zigbee2MQTT
// devices only, forwarding to InfluxDB, drained once InfluxDB has every
// reading.
func DefaultScenarios() []Scenario {
	return []Scenario{
		{Devices: 100, Mode: modeEmbedded},
		{Devices: 100, Mode: modeMosquitto},
		{Devices: 10000, Mode: modeEmbedded},
		{Devices: 10000, Mode: modeMosquitto},
		{Devices: 1000, Mode: modeEmbedded, Rate: 1000},
		{Devices: 1000, Mode: modeMosquitto, Burst: 200},
		{Devices: 1000, Mode: modeMosquitto, Burst: 200, Format: formatZigbee2MQTT, InfluxDB: true},
		{Devices: 1000, Mode: modeEmbedded, Burst: 200},
	}
}

// Options configure an ingest bench run.
type Options struct {
	Scenarios []Scenario
	Runs      int // per scenario; the table shows medians

	Exe       string // the bench binary, re-executed for the gateway and publisher roles
	Mosquitto string // path of the mosquitto binary
	Influxd   string // path of influxd 1.8, for the scenarios with InfluxDB
	Warmup    time.Duration
	Duration  time.Duration
	Window    int    // publishes awaiting PUBACK per connection
	ProfDir   string // if set, write CPU and heap profiles of the gateway per scenario (bursts: also a goroutine profile, 8 s in)
	TraceDir  string // if set, write an execution trace of the gateway per scenario
	Log       io.Writer
	// MaxInFlight is the gateway's broker.external.max_in_flight and
	// mosquitto's max_inflight_messages.
	MaxInFlight int
}

// ErrFailed is Run's error when a scenario failed but the others made the
// table.
var ErrFailed = errors.New("a scenario failed")

// Run measures every scenario o.Runs times, logging progress to o.Log,
// and writes the table to w. A scenario that needs mosquitto is skipped
// when there is none; one that needs influxd fails without it (its row
// is a goal's only measurement, which must not vanish from the table
// unnoticed). When ctx is done while a scenario runs, Run returns ctx's
// error and writes nothing.
func Run(ctx context.Context, o Options, w io.Writer) error {
	start := time.Now()
	var rows []summary
	var bursts []burstSummary
	failed := false
	for i, sc := range o.Scenarios {
		if sc.Burst > 0 {
			b, err := runBursts(ctx, o, sc, i)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				failed = true
			}
			if b != nil {
				bursts = append(bursts, *b)
			}
			continue
		}
		var results []result
		for run := range o.Runs {
			fmt.Fprintf(o.Log, "shelter-bench: [%d/%d] %s run %d/%d …\n", i+1, len(o.Scenarios), sc.Name(), run+1, o.Runs)
			t0 := time.Now()
			r, err := runScenario(ctx, o, sc)
			if err != nil {
				if errors.Is(err, errNoMosquitto) {
					fmt.Fprintf(o.Log, "shelter-bench: %s skipped: %v\n", sc.Name(), err)
					break
				}
				fmt.Fprintf(o.Log, "shelter-bench: %s FAILED: %v\n", sc.Name(), err)
				failed = true
				if ctx.Err() != nil {
					return ctx.Err()
				}
				continue
			}
			fmt.Fprintf(o.Log, "shelter-bench: %s: %s msgs/s, p50 %.1f ms, p99 %.1f ms, peak RSS %.1f MB; %d acked, %d readings stored (%.1fs)\n",
				sc.Name(), report.Thousands(r.MsgsPerSec), r.P50ms, r.P99ms, report.MB(r.PeakRSS), r.Acked, r.StoredReadings, time.Since(t0).Seconds())
			results = append(results, r)
		}
		if len(results) > 0 {
			rows = append(rows, median(results))
		}
	}
	if len(rows) > 0 {
		printReport(w, rows, o)
	}
	if len(bursts) > 0 {
		printBurstReport(w, bursts)
	}
	fmt.Fprintf(w, "\nTotal time %.1fs.\n", time.Since(start).Seconds())
	if failed {
		return ErrFailed
	}
	return nil
}

// runBursts runs a burst scenario o.Runs times and returns the median, or
// nil when no run succeeded. Its error says that a run failed (logged).
func runBursts(ctx context.Context, o Options, sc Scenario, i int) (*burstSummary, error) {
	var results []burstResult
	var failed error
	for run := range o.Runs {
		fmt.Fprintf(o.Log, "shelter-bench: [%d/%d] %s run %d/%d …\n", i+1, len(o.Scenarios), sc.Name(), run+1, o.Runs)
		r, err := runBurst(ctx, o, sc)
		if err != nil {
			if errors.Is(err, errNoMosquitto) {
				fmt.Fprintf(o.Log, "shelter-bench: %s skipped: %v\n", sc.Name(), err)
				return nil, nil
			}
			fmt.Fprintf(o.Log, "shelter-bench: %s FAILED: %v\n", sc.Name(), err)
			failed = ErrFailed
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, errNoInfluxd) {
				break // the next run would not find it either
			}
			continue
		}
		fmt.Fprintf(o.Log, "shelter-bench: %s: %d msgs drained in %.1fs, gateway peak RSS %.1f MB (sampled: anonymous %.1f MB, file-backed %.1f MB; max heap in use %.1f MB, max stacks %.1f MB, new stacks up to %.0f KiB, Go runtime's total %.1f MB), max %.0f goroutines; %d readings acked, %d stored\n",
			sc.Name(), r.Msgs, r.Drain.Seconds(), report.MB(r.PeakRSS), report.MB(r.MaxRSSAnon), report.MB(r.MaxRSSFile), r.MaxHeapInuse/(1<<20), r.MaxStack/(1<<20), r.MaxStackStart/(1<<10), r.GoSys/(1<<20), r.MaxGoroutines, r.AckedReadings, r.StoredReadings)
		if r.InfluxDB {
			fmt.Fprintf(o.Log, "shelter-bench: %s: InfluxDB confirmed every reading after %.1fs; gateway CPU %.2fs at stored, %.2fs at confirmed, start-up %.2fs: %.2f CPU-s per 100k msgs (%.2f start-up excluded); %d readings in InfluxDB\n",
				sc.Name(), r.ForwardDrain.Seconds(), r.CPUStored.Seconds(), r.CPUForwarded.Seconds(), r.StartupCPU.Seconds(), r.forwardCPUPer100k(false), r.forwardCPUPer100k(true), r.InfluxPoints)
		}
		results = append(results, r)
	}
	if len(results) == 0 {
		return nil, failed
	}
	m := medianBurst(results)
	return &m, failed
}
