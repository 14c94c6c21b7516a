// Command shelter-bench measures the gateway and prints Markdown tables.
// `make bench` runs every bench:
//
//	shelter-bench                      # ingest: MQTT in → decode → durable store → PUBACK;
//	                                   # then memory under a 200,000-message burst
//	shelter-bench forward -runs 3      # the InfluxDB forwarder against a real influxd
//	shelter-bench alarms               # smoke publish → signed webhook, under load
//	shelter-bench video                # the camera relay, and go2rtc for comparison
//	shelter-bench audit                # the newest 100 of a million audit entries while appends go on
//	shelter-bench networks             # remote viewing over emulated lan, office, 4g and poor4g links
//
// The ingest bench runs every scenario for 10s; for example:
//
//	shelter-bench -quick               # 3s each: a smoke run of about 30s
//	shelter-bench -scenarios 'mode=embedded' -runs 3 -cpuprofile prof/
//	shelter-bench -scenarios 'devices=10000/mode=embedded' -trace prof/
//	shelter-bench -scenarios '^burst' -runs 3   # the burst scenarios only
//	shelter-bench -scenarios 'format=zigbee2mqtt'   # the CPU goal's burst: Zigbee2MQTT, forwarding to InfluxDB
//
// What each bench measures, and how, is in the package documentation of
// internal/bench/ingest, forward, alarms and video; this command parses
// the flags and runs them. The same binary also plays the processes the
// benches start: "shelter-bench gateway" (internal/bench/gateway) and
// "shelter-bench publish" (internal/bench/ingest), driven over stdin and
// stdout (internal/bench/proc).
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

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/internal/bench/alarms"
	"github.com/shelterwatch/shelterwatch/internal/bench/forward"
	"github.com/shelterwatch/shelterwatch/internal/bench/gateway"
	"github.com/shelterwatch/shelterwatch/internal/bench/ingest"
	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/video"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

func main() {
	args := os.Args[1:]
	if code, ok := proc.RunRole(args, gateway.Role, ingest.PublishRole); ok {
		os.Exit(code)
	}
	if len(args) > 0 {
		switch args[0] {
		case "forward":
			os.Exit(forwardMain(args[1:], os.Stdout, os.Stderr))
		case "alarms":
			os.Exit(alarmsMain(args[1:], os.Stdout, os.Stderr))
		case "video":
			os.Exit(videoMain(args[1:], os.Stdout, os.Stderr))
		case "audit":
			os.Exit(auditMain(args[1:], os.Stdout, os.Stderr))
		case "console":
			os.Exit(consoleMain(args[1:], os.Stdout, os.Stderr))
		case "networks":
			os.Exit(networksMain(args[1:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(ingestMain(args, os.Stdout, os.Stderr))
}

// interruptible is the context of a bench run: Ctrl-C or SIGTERM ends it,
// and the bench stops everything it started.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func ingestMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelter-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		filter      = fs.String("scenarios", "", "run only scenarios whose name matches this regular expression (e.g. 'mode=embedded', 'devices=100/')")
		duration    = fs.Duration("duration", 10*time.Second, "measured steady-state window per scenario")
		warmup      = fs.Duration("warmup", time.Second, "warm-up discarded before the window")
		quick       = fs.Bool("quick", false, "smoke run: 3s windows (unless -duration is given), bursts of 20 messages per device")
		runs        = fs.Int("runs", 1, "runs per scenario; the table shows medians")
		window      = fs.Int("window", 8, "QoS 1 publishes awaiting PUBACK per publisher connection")
		conns       = fs.Int("conns", 0, "publisher connections per scenario (0: min(devices, 200))")
		maxInFlight = fs.Int("max-in-flight", 2000, "mosquitto mode: the gateway's broker.external.max_in_flight and mosquitto's max_inflight_messages (not the burst scenarios: they run the gateway's default and mosquitto without a limit)")
		mosqBin     = fs.String("mosquitto", "/usr/sbin/mosquitto", "mosquitto binary")
		influxdBin  = fs.String("influxd", defaultInfluxd(), "influxd 1.8 binary, for the burst scenario forwarding to InfluxDB (by default the one in .tools/bin, else in PATH)")
		profDir     = fs.String("cpuprofile", "", "write a CPU profile (of the window) and a heap profile (at its end) of the gateway process per scenario into this directory")
		traceDir    = fs.String("trace", "", "write an execution trace of the gateway process per scenario (its window only) into this directory")
	)
	if !parseFlags(fs, args, stderr) {
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
	var scs []ingest.Scenario
	for _, sc := range ingest.DefaultScenarios() {
		if *conns > 0 {
			sc.Conns = min(*conns, sc.Devices)
		}
		if *quick && sc.Burst > 0 {
			sc.Burst = 20
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
	if *profDir != "" {
		// The gateway processes sample allocations only when asked
		// (app.TuneRuntime), and the heap profile must see their start.
		_ = os.Setenv(app.MemProfileEnv, "1")
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
	o := ingest.Options{Scenarios: scs, Runs: *runs, Exe: exe, Mosquitto: *mosqBin, Influxd: *influxdBin, Warmup: *warmup, Duration: *duration,
		Window: *window, ProfDir: *profDir, TraceDir: *traceDir, Log: stderr, MaxInFlight: *maxInFlight}

	ctx, stop := interruptible()
	defer stop()
	switch err := ingest.Run(ctx, o, stdout); {
	case errors.Is(err, ingest.ErrFailed):
		return 1 // the table has the scenarios that worked; the log says what failed
	case err != nil:
		return 130
	}
	return 0
}

// defaultInfluxd is the ingest bench's influxd: "" when there is none, so
// that the scenario needing it fails saying so (and the others run).
func defaultInfluxd() string {
	p, err := testpeer.InfluxdPath()
	if err != nil {
		return ""
	}
	return p
}

func forwardMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelter-bench forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		backlog  = fs.Int("backlog", 1_000_000, "readings in the backlog to replay")
		liveRate = fs.Int("live-rate", 5000, "readings/s appended in the live scenario")
		liveFor  = fs.Duration("live-duration", 10*time.Second, "length of each live phase")
		runs     = fs.Int("runs", 1, "runs per scenario; the table shows medians")
		quick    = fs.Bool("quick", false, "smoke run: 100,000-reading backlog, 3s live phases")
		bin      = fs.String("influxd", "", "influxd binary (default: .tools/bin/influxd, then PATH)")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *quick {
		*backlog, *liveFor = 100_000, 3*time.Second
	}
	if *bin == "" {
		p, err := testpeer.InfluxdPath()
		if err != nil {
			fmt.Fprintln(stderr, "shelter-bench forward:", err)
			return 1
		}
		*bin = p
	}
	ctx, stop := interruptible()
	defer stop()
	o := forward.Options{Influxd: *bin, Backlog: *backlog, LiveRate: *liveRate, LiveFor: *liveFor, Runs: *runs, Log: stderr}
	if err := forward.Run(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "shelter-bench forward:", err)
		return 1
	}
	return 0
}

func alarmsMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelter-bench alarms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		n       = fs.Int("alarms", 1000, "smoke alarms to raise")
		load    = fs.Int("load", 5000, "other readings/s during the run")
		devices = fs.Int("devices", 50, "devices sending the other readings")
		quick   = fs.Bool("quick", false, "smoke run: 100 alarms")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *quick {
		*n = 100
	}
	ctx, stop := interruptible()
	defer stop()
	if err := alarms.Run(ctx, alarms.Options{Alarms: *n, Load: *load, Devices: *devices, Log: stderr}, stdout); err != nil {
		fmt.Fprintln(stderr, "shelter-bench alarms:", err)
		return 1
	}
	return 0
}

func videoMain(args []string, stdout, stderr io.Writer) int {
	o := video.DefaultOptions()
	fs := flag.NewFlagSet("shelter-bench video", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Joins, "joins", o.Joins, "viewer joins per camera for the first-frame figures")
	fs.IntVar(&o.Go2RTCJoins, "go2rtc-joins", o.Go2RTCJoins, "viewer joins per camera through go2rtc (each may wait a whole GOP)")
	fs.IntVar(&o.Cameras, "cameras", o.Cameras, "cameras in the load scenario")
	fs.IntVar(&o.ViewersPerCamera, "viewers", o.ViewersPerCamera, "viewers per camera in the load scenario")
	fs.StringVar(&o.Clip.Bitrate, "bitrate", o.Clip.Bitrate, "bit rate of the load clip (ffmpeg -b:v)")
	fs.StringVar(&o.Clip.Size, "size", o.Clip.Size, "picture size of the load clip")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "load: time after the viewers connect before the window")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "load: measured window")
	fs.StringVar(&o.FFmpeg, "ffmpeg", o.FFmpeg, "ffmpeg binary (makes the load clip)")
	go2rtc := fs.String("go2rtc", "", `go2rtc binary (default: the repository's .tools/bin/go2rtc, built by scripts/bench-deps.sh); "none" skips the comparison`)
	quick := fs.Bool("quick", false, "smoke run of about a minute: 8 joins per camera (3 through go2rtc) over 10 s, 2 s warm-up, 5 s window")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *quick {
		// Flags given explicitly win over -quick's values.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, q := range []struct {
			flag  string
			quick func()
		}{
			{"joins", func() { o.Joins = 8 }},
			{"go2rtc-joins", func() { o.Go2RTCJoins = 3 }},
			{"warmup", func() { o.Warmup = 2 * time.Second }},
			{"duration", func() { o.Duration = 5 * time.Second }},
		} {
			if !set[q.flag] {
				q.quick()
			}
		}
		o.JoinSpan = 10 * time.Second
	}
	if o.Joins < 1 || o.Go2RTCJoins < 0 || o.Cameras < 1 || o.ViewersPerCamera < 1 || o.Duration <= 0 || o.Warmup < 0 {
		fmt.Fprintln(stderr, "shelter-bench video: -joins, -cameras and -viewers must be ≥ 1, -go2rtc-joins and -warmup ≥ 0, -duration > 0")
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "shelter-bench video: find own binary: %v\n", err)
		return 1
	}
	o.Exe, o.Log = exe, stderr
	switch *go2rtc {
	case "none":
		o.Go2RTCMissing = "skipped (-go2rtc none)"
	case "":
		o.Go2RTC, o.Go2RTCMissing = video.Go2RTCPath()
	default:
		o.Go2RTC = *go2rtc
	}

	ctx, stop := interruptible()
	defer stop()
	if err := video.Run(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "shelter-bench video:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	return 0
}

// parseFlags parses a command's flags and refuses arguments after them,
// saying so on stderr under the flag set's name.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return false
	}
	return true
}
