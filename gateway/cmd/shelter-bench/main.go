// Command shelter-bench measures the gateway's whole ingest path — MQTT in,
// decode, durable group commit in the Pebble store, PUBACK — and prints a
// Markdown table. `make bench` runs it.
//
//	shelter-bench                      # every scenario, 10s each
//	shelter-bench -quick               # 3s each: a smoke run of about 30s
//	shelter-bench -scenarios 'mode=embedded' -runs 3 -cpuprofile prof/
//	shelter-bench -scenarios 'devices=10000/mode=embedded' -trace prof/
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
// publishes, which the latency columns would then mostly measure. -window
// and -conns change it.
//
// The gateway and the publishers run in separate processes — this binary
// re-executed as "shelter-bench gateway" and "shelter-bench publish", driven
// over stdin/stdout — so that the gateway's CPU time and peak RSS are its
// own. Figures cover a steady-state window after a warm-up. After each
// scenario the bench checks that every acknowledged publish is in the store.
//
// Every process and file a scenario starts is stopped and removed when it
// ends, on error, or on Ctrl-C; children also die with the bench (parent
// death signal). Ports are chosen by the kernel.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"
)

func main() {
	if code, ok := runRole(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runRole runs this process as a child role when args name one.
func runRole(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	var h handler
	switch args[0] {
	case "gateway":
		g := &gatewayRole{}
		h = g.handle
	case "publish":
		p := &publishRole{}
		h = p.handle
	case "forward":
		return forwardMain(args[1:], os.Stdout, os.Stderr), true
	case "alarms":
		return alarmsMain(args[1:], os.Stdout, os.Stderr), true
	case "video":
		return videoMain(args[1:], os.Stdout, os.Stderr), true
	default:
		return 0, false
	}
	if err := serve(os.Stdin, os.Stdout, h); err != nil {
		fmt.Fprintf(os.Stderr, "shelter-bench %s: %v\n", args[0], err)
		return 1, true
	}
	return 0, true
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelter-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		filter      = fs.String("scenarios", "", "run only scenarios whose name matches this regular expression (e.g. 'mode=embedded', 'devices=100/')")
		duration    = fs.Duration("duration", 10*time.Second, "measured steady-state window per scenario")
		warmup      = fs.Duration("warmup", time.Second, "warm-up discarded before the window")
		quick       = fs.Bool("quick", false, "smoke run: 3s windows (unless -duration is given)")
		runs        = fs.Int("runs", 1, "runs per scenario; the table shows medians")
		window      = fs.Int("window", 8, "QoS 1 publishes awaiting PUBACK per publisher connection")
		conns       = fs.Int("conns", 0, "publisher connections per scenario (0: min(devices, 200))")
		maxInFlight = fs.Int("max-in-flight", 2000, "mosquitto mode: the gateway's broker.external.max_in_flight and mosquitto's max_inflight_messages")
		mosqBin     = fs.String("mosquitto", "/usr/sbin/mosquitto", "mosquitto binary")
		profDir     = fs.String("cpuprofile", "", "write a CPU profile (of the window) and a heap profile (at its end) of the gateway process per scenario into this directory")
		traceDir    = fs.String("trace", "", "write an execution trace of the gateway process per scenario (its window only) into this directory")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "shelter-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if *quick && !durationSet {
		*duration = 3 * time.Second
	}
	if *runs < 1 || *window < 1 || *maxInFlight < 1 || *duration <= 0 || *warmup < 0 || *conns < 0 {
		fmt.Fprintln(stderr, "shelter-bench: -runs, -window and -max-in-flight must be ≥ 1, -duration > 0, -warmup and -conns ≥ 0")
		return 2
	}
	re, err := regexp.Compile(*filter)
	if err != nil {
		fmt.Fprintf(stderr, "shelter-bench: -scenarios: %v\n", err)
		return 2
	}
	var scs []scenario
	for _, sc := range defaultScenarios() {
		if *conns > 0 {
			sc.Conns = min(*conns, sc.Devices)
		}
		if re.MatchString(sc.Name()) {
			scs = append(scs, sc)
		}
	}
	if len(scs) == 0 {
		fmt.Fprintf(stderr, "shelter-bench: no scenario matches %q\n", *filter)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "shelter-bench: find own binary: %v\n", err)
		return 1
	}
	for _, d := range []string{*profDir, *traceDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			fmt.Fprintf(stderr, "shelter-bench: %v\n", err)
			return 1
		}
	}
	o := runOptions{Exe: exe, Mosquitto: *mosqBin, Warmup: *warmup, Duration: *duration,
		Window: *window, ProfDir: *profDir, TraceDir: *traceDir, Log: stderr, MaxInFlight: *maxInFlight}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var rows []summary
	failed := false
	for i, sc := range scs {
		var results []result
		for run := range *runs {
			fmt.Fprintf(stderr, "shelter-bench: [%d/%d] %s run %d/%d …\n", i+1, len(scs), sc.Name(), run+1, *runs)
			t0 := time.Now()
			r, err := runScenario(ctx, o, sc)
			if err != nil {
				if errors.Is(err, errNoMosquitto) {
					fmt.Fprintf(stderr, "shelter-bench: %s skipped: %v\n", sc.Name(), err)
					break
				}
				fmt.Fprintf(stderr, "shelter-bench: %s FAILED: %v\n", sc.Name(), err)
				failed = true
				if ctx.Err() != nil {
					return 130
				}
				continue
			}
			fmt.Fprintf(stderr, "shelter-bench: %s: %s msgs/s, p50 %.1f ms, p99 %.1f ms, peak RSS %.1f MB; %d acked, %d readings stored (%.1fs)\n",
				sc.Name(), thousands(r.MsgsPerSec), r.P50ms, r.P99ms, mb(r.PeakRSS), r.Acked, r.StoredReadings, time.Since(t0).Seconds())
			results = append(results, r)
		}
		if len(results) > 0 {
			rows = append(rows, median(results))
		}
	}
	printReport(stdout, rows, o, *runs)
	fmt.Fprintf(stdout, "\nTotal time %.1fs.\n", time.Since(start).Seconds())
	if failed {
		return 1
	}
	return 0
}
