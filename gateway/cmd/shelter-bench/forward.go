package main

// "shelter-bench forward" measures the InfluxDB forwarder against a real
// influxd 1.8 (the one make test-deps builds into .tools/bin):
//
//   - replay: a backlog of 1,000,000 readings (100 devices, numbers and
//     booleans, some with battery) already in the store is sent from
//     scratch; points/s until InfluxDB has confirmed the last batch, and
//     the CPU time of the forwarding process and of influxd per 100k
//     points. InfluxDB's count is checked against the store afterwards.
//   - live: readings appended at a steady rate with the forwarder caught
//     up (default linger); the forwarder's CPU per 100k points is the
//     difference between the process's CPU with and without it.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

type influxd struct {
	cmd *exec.Cmd
	url string
	dir string
}

func startInfluxd(bin string) (*influxd, error) {
	dir, err := os.MkdirTemp("", "shelter-bench-influx-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	rpc, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(conf, []byte(testpeer.InfluxConfig(dir, port, rpc, testpeer.InfluxOptions{})), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start influxd: %w", err)
	}
	db := &influxd{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(db.url + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				break
			}
		}
		if time.Now().After(deadline) {
			db.stop()
			return nil, fmt.Errorf("influxd did not answer within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := db.query("CREATE DATABASE shelter"); err != nil {
		db.stop()
		return nil, err
	}
	return db, nil
}

func (db *influxd) stop() {
	_ = db.cmd.Process.Kill()
	_ = db.cmd.Wait()
	_ = os.RemoveAll(db.dir)
}

// query runs InfluxQL and returns the first value of every series' first row.
func (db *influxd) query(q string) ([]float64, error) {
	resp, err := http.PostForm(db.url+"/query", url.Values{"db": {"shelter"}, "q": {q}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("influxdb %q: %w", q, err)
	}
	var vals []float64
	for _, r := range out.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("influxdb %q: %s", q, r.Error)
		}
		for _, s := range r.Series {
			for _, v := range s.Values[0][1:] {
				if f, ok := v.(float64); ok {
					vals = append(vals, f)
				}
			}
		}
	}
	return vals, nil
}

// count is the number of points InfluxDB holds in the bench's measurements.
// (One statement per measurement: a regular expression FROM counts only the
// fields of one type when measurements differ.)
func (db *influxd) count() (int, error) {
	vals, err := db.query(`SELECT count("value") FROM "temperature"; SELECT count("value") FROM "smoke"`)
	total := 0
	for _, v := range vals {
		total += int(v)
	}
	return total, err
}

// benchReadings returns n readings of 100 devices: nine in ten
// temperatures (half with battery), one in ten a smoke boolean.
func benchReadings(from, n int, base time.Time) []reading.Reading {
	rs := make([]reading.Reading, n)
	now := time.Now()
	for i := range rs {
		k := from + i
		r := reading.Reading{Facility: "bench", Device: fmt.Sprintf("dev-%03d", k%100), Zone: fmt.Sprintf("zone-%d", k%10),
			Kind: reading.KindTemperature, Format: "native", Time: base.Add(time.Duration(k) * time.Millisecond), Received: now,
			Value: reading.Number(float64(k%400) / 10)}
		if k%10 == 9 {
			r.Kind, r.Value = reading.KindSmoke, reading.Bool(k%20 == 19)
		} else if k%2 == 0 {
			r.Battery = reading.Ptr(float64(k % 100))
		}
		rs[i] = r
	}
	return rs
}

type forwardRow struct {
	name            string
	points          int
	seconds         float64
	cpuPer100k      float64 // this process (forwarder; store reads)
	influxCPUPer100 float64
	exact           string
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var rows []forwardRow
	for _, gz := range []bool{false, true} {
		var rs []forwardRow
		for range *runs {
			r, err := replayScenario(ctx, *bin, *backlog, gz)
			if err != nil {
				fmt.Fprintln(stderr, "shelter-bench forward:", err)
				return 1
			}
			fmt.Fprintf(stderr, "%s: %.0f points/s\n", r.name, float64(r.points)/r.seconds)
			rs = append(rs, r)
		}
		rows = append(rows, medianRow(rs))
	}
	var rs []forwardRow
	for range *runs {
		r, err := liveScenario(ctx, *bin, *liveRate, *liveFor)
		if err != nil {
			fmt.Fprintln(stderr, "shelter-bench forward:", err)
			return 1
		}
		rs = append(rs, r)
	}
	rows = append(rows, medianRow(rs))

	fmt.Fprintf(stdout, "\n### InfluxDB forwarder (influxd 1.8.10 on the same machine, %d run(s), medians)\n\n", *runs)
	fmt.Fprintln(stdout, "| scenario | points | seconds | points/s | forwarder CPU-s /100k | influxd CPU-s /100k | InfluxDB exact |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		fmt.Fprintf(stdout, "| %s | %s | %.1f | %s | %.2f | %.2f | %s |\n", r.name, thousands(float64(r.points)), r.seconds,
			thousands(float64(r.points)/r.seconds), r.cpuPer100k, r.influxCPUPer100, r.exact)
	}
	goal := rows[0]
	fmt.Fprintf(stdout, "\nGoal: replay ≥ 100,000 points/s: %s (%s points/s without gzip).\n",
		passMiss(float64(goal.points)/goal.seconds >= 100_000), thousands(float64(goal.points)/goal.seconds))
	return 0
}

func medianRow(rs []forwardRow) forwardRow {
	sort.Slice(rs, func(i, j int) bool { return rs[i].seconds < rs[j].seconds })
	return rs[len(rs)/2]
}

// forwardRig starts a fresh influxd and opens an empty store; cleanup
// stops and removes both.
func forwardRig(bin string) (*influxd, *store.Store, func(), error) {
	db, err := startInfluxd(bin)
	if err != nil {
		return nil, nil, nil, err
	}
	dir, err := os.MkdirTemp("", "shelter-bench-store-")
	if err != nil {
		db.stop()
		return nil, nil, nil, err
	}
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		db.stop()
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	return db, st, func() { st.Close(); os.RemoveAll(dir); db.stop() }, nil
}

func replayScenario(ctx context.Context, bin string, n int, gz bool) (forwardRow, error) {
	row := forwardRow{name: fmt.Sprintf("replay backlog, gzip=%t", gz), points: n}
	db, st, cleanup, err := forwardRig(bin)
	if err != nil {
		return row, err
	}
	defer cleanup()
	base := time.Now().Add(-30 * 24 * time.Hour)
	for i := 0; i < n; i += 10000 {
		if err := st.Append(ctx, benchReadings(i, min(10000, n-i), base)); err != nil {
			return row, fmt.Errorf("fill store: %w", err)
		}
	}
	fw, err := forward.New(forward.Options{Store: st, Target: forward.Target{Name: "bench", URL: db.url, Bucket: "shelter", GZip: gz}, Logger: benchLog})
	if err != nil {
		return row, err
	}
	cpu0, icpu0 := selfCPU(), procCPUOr0(db.cmd.Process.Pid)
	start := time.Now()
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fw.Run(fctx) }()
	for fw.Status().Cursor < st.LastSeq() {
		select {
		case <-ctx.Done():
			cancel()
			return row, ctx.Err()
		case err := <-done:
			cancel()
			return row, fmt.Errorf("forwarder stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	row.seconds = time.Since(start).Seconds()
	cancel()
	<-done
	row.cpuPer100k = (selfCPU() - cpu0).Seconds() / (float64(n) / 1e5)
	row.influxCPUPer100 = (procCPUOr0(db.cmd.Process.Pid) - icpu0).Seconds() / (float64(n) / 1e5)
	got, err := db.count()
	row.exact = checkCount(got, n, err)
	return row, nil
}

func liveScenario(ctx context.Context, bin string, rate int, d time.Duration) (forwardRow, error) {
	row := forwardRow{name: fmt.Sprintf("live %s readings/s, linger 1s, gzip=true", thousands(float64(rate)))}
	db, st, cleanup, err := forwardRig(bin)
	if err != nil {
		return row, err
	}
	defer cleanup()
	base := time.Now()
	next := 0
	// appendFor appends at rate for d, in 100 slices a second.
	appendFor := func() (time.Duration, error) {
		per := max(rate/100, 1)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		cpu0 := selfCPU()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-tick.C:
			}
			if err := st.Append(ctx, benchReadings(next, per, base)); err != nil {
				return 0, err
			}
			next += per
		}
		return selfCPU() - cpu0, nil
	}
	without, err := appendFor()
	if err != nil {
		return row, err
	}
	// The forwarder starts caught up: what the first phase wrote is not
	// part of the live measurement.
	if err := st.SetCursor(forward.CursorName("bench"), st.LastSeq()); err != nil {
		return row, err
	}
	skipped := next
	fw, err := forward.New(forward.Options{Store: st, Target: forward.Target{Name: "bench", URL: db.url, Bucket: "shelter", GZip: true}, Logger: benchLog})
	if err != nil {
		return row, err
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fw.Run(fctx) }()
	icpu0 := procCPUOr0(db.cmd.Process.Pid)
	start := time.Now()
	with, err := appendFor()
	if err != nil {
		cancel()
		return row, err
	}
	for fw.Status().Cursor < st.LastSeq() {
		select {
		case err := <-done:
			cancel()
			return row, fmt.Errorf("forwarder stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	row.seconds = time.Since(start).Seconds()
	cancel()
	<-done
	row.points = next - skipped
	per := float64(row.points) / 1e5
	row.cpuPer100k = max(with-without, 0).Seconds() / per
	row.influxCPUPer100 = (procCPUOr0(db.cmd.Process.Pid) - icpu0).Seconds() / per
	got, err := db.count()
	row.exact = checkCount(got, row.points, err)
	return row, nil
}

// benchLog shows the forwarder's warnings (retries) on stderr: a figure
// measured across retries must be visible as such.
var benchLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func checkCount(got, want int, err error) string {
	switch {
	case err != nil:
		return "query failed: " + err.Error()
	case got == want:
		return "yes"
	}
	return fmt.Sprintf("NO: %d of %d", got, want)
}

func procCPUOr0(pid int) time.Duration {
	d, err := procCPU(pid)
	if err != nil {
		return 0
	}
	return d
}
