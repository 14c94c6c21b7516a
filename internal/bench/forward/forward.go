// Package forward measures the InfluxDB forwarder against a real influxd
// 1.8 (the one make test-deps builds into .tools/bin), each scenario with
// a fresh influxd and store:
//
//   - replay: a backlog of 1,000,000 readings (100 devices, numbers and
//     booleans, some with battery) already in the store is sent from
//     scratch, with and without gzip; points/s until InfluxDB has
//     confirmed the last batch, and the CPU time of the forwarding process
//     and of influxd per 100k points. InfluxDB's count is checked against
//     the store afterwards.
//   - live: readings appended at a steady rate with the forwarder caught
//     up (default linger); the forwarder's CPU per 100k points is the
//     difference between the process's CPU with and without it.
//
// The table shows the median run of each scenario, by time.
package forward

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"time"

	fwd "github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/bench/influxd"
	"github.com/shelterwatch/shelterwatch/internal/bench/procstat"
	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// Options configure a forwarder bench run.
type Options struct {
	Influxd  string        // influxd binary
	Backlog  int           // readings in the backlog to replay
	LiveRate int           // readings/s appended in the live scenario
	LiveFor  time.Duration // length of each live phase
	Runs     int           // per scenario; the table shows medians
	// Log gets progress and the forwarder's warnings (retries: a figure
	// measured across retries must be visible as such).
	Log io.Writer
}

type row struct {
	name            string
	points          int
	seconds         float64
	cpuPer100k      float64 // this process (forwarder; store reads)
	influxCPUPer100 float64
	exact           string
}

// Run measures the replay (without and with gzip) and live scenarios
// o.Runs times each and writes the table to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	log := slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var rows []row
	for _, gz := range []bool{false, true} {
		var rs []row
		for range o.Runs {
			r, err := replayScenario(ctx, o.Influxd, o.Backlog, gz, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Log, "%s: %.0f points/s\n", r.name, float64(r.points)/r.seconds)
			rs = append(rs, r)
		}
		rows = append(rows, medianRow(rs))
	}
	var rs []row
	for range o.Runs {
		r, err := liveScenario(ctx, o.Influxd, o.LiveRate, o.LiveFor, log)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	rows = append(rows, medianRow(rs))
	printReport(w, rows, o.Runs)
	return nil
}

func printReport(w io.Writer, rows []row, runs int) {
	fmt.Fprintf(w, "\n### InfluxDB forwarder (influxd 1.8.10 on the same machine, %d run(s), medians)\n\n", runs)
	fmt.Fprintln(w, "| scenario | points | seconds | points/s | forwarder CPU-s /100k | influxd CPU-s /100k | InfluxDB exact |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %.1f | %s | %.2f | %.2f | %s |\n", r.name, report.Thousands(float64(r.points)), r.seconds,
			report.Thousands(float64(r.points)/r.seconds), r.cpuPer100k, r.influxCPUPer100, r.exact)
	}
	goal := rows[0]
	fmt.Fprintf(w, "\nGoal: replay ≥ 100,000 points/s: %s (%s points/s without gzip).\n",
		report.PassMiss(float64(goal.points)/goal.seconds >= 100_000), report.Thousands(float64(goal.points)/goal.seconds))
}

// medianRow is the median run by time: a row is one actual run.
func medianRow(rs []row) row {
	sort.Slice(rs, func(i, j int) bool { return rs[i].seconds < rs[j].seconds })
	return rs[len(rs)/2]
}

// benchMeasurements are the measurements benchReadings' points go to.
var benchMeasurements = []string{string(reading.KindTemperature), string(reading.KindSmoke)}

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

// rig starts a fresh influxd and opens an empty store; cleanup stops and
// removes both.
func rig(ctx context.Context, bin string) (*influxd.Server, *store.Store, func(), error) {
	db, err := influxd.Start(ctx, bin)
	if err != nil {
		return nil, nil, nil, err
	}
	dir, err := os.MkdirTemp("", "shelter-bench-store-")
	if err != nil {
		db.Stop()
		return nil, nil, nil, err
	}
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		db.Stop()
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	return db, st, func() { st.Close(); os.RemoveAll(dir); db.Stop() }, nil
}

// newForwarder is the forwarder under test, sending st's log to db.
func newForwarder(db *influxd.Server, st *store.Store, gz bool, log *slog.Logger) (*fwd.Forwarder, error) {
	return fwd.New(fwd.Options{Store: st, Target: fwd.Target{Name: "bench", URL: db.URL, Bucket: influxd.Database, GZip: gz}, Logger: log})
}

// running is a forwarder sending until stop.
type running struct {
	fw     *fwd.Forwarder
	cancel context.CancelFunc
	done   chan error
}

func run(ctx context.Context, fw *fwd.Forwarder) *running {
	fctx, cancel := context.WithCancel(ctx)
	r := &running{fw: fw, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- fw.Run(fctx) }()
	return r
}

// caughtUp waits until the forwarder has sent everything in st and
// InfluxDB confirmed it. When it fails, the forwarder has stopped.
func (r *running) caughtUp(ctx context.Context, st *store.Store) error {
	for r.fw.Status().Cursor < st.LastSeq() {
		select {
		case <-ctx.Done():
			r.stop()
			return ctx.Err()
		case err := <-r.done:
			r.cancel()
			return fmt.Errorf("forwarder stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// stop stops the forwarder and waits for it.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

func replayScenario(ctx context.Context, bin string, n int, gz bool, log *slog.Logger) (row, error) {
	r := row{name: fmt.Sprintf("replay backlog, gzip=%t", gz), points: n}
	db, st, cleanup, err := rig(ctx, bin)
	if err != nil {
		return r, err
	}
	defer cleanup()
	base := time.Now().Add(-30 * 24 * time.Hour)
	for i := 0; i < n; i += 10000 {
		if err := st.Append(ctx, benchReadings(i, min(10000, n-i), base)); err != nil {
			return r, fmt.Errorf("fill store: %w", err)
		}
	}
	fw, err := newForwarder(db, st, gz, log)
	if err != nil {
		return r, err
	}
	cpu0, icpu0 := procstat.SelfCPU(), db.CPU()
	start := time.Now()
	fr := run(ctx, fw)
	if err := fr.caughtUp(ctx, st); err != nil {
		return r, err
	}
	r.seconds = time.Since(start).Seconds()
	fr.stop()
	r.cpuPer100k = report.Per100k(procstat.SelfCPU()-cpu0, float64(n))
	r.influxCPUPer100 = report.Per100k(db.CPU()-icpu0, float64(n))
	got, err := db.Count(benchMeasurements...)
	r.exact = checkCount(got, n, err)
	return r, nil
}

func liveScenario(ctx context.Context, bin string, rate int, d time.Duration, log *slog.Logger) (row, error) {
	r := row{name: fmt.Sprintf("live %s readings/s, linger 1s, gzip=true", report.Thousands(float64(rate)))}
	db, st, cleanup, err := rig(ctx, bin)
	if err != nil {
		return r, err
	}
	defer cleanup()
	base := time.Now()
	next := 0
	// appendFor appends at rate for d, in 100 slices a second, and returns
	// this process's CPU time meanwhile.
	appendFor := func() (time.Duration, error) {
		per := max(rate/100, 1)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		cpu0 := procstat.SelfCPU()
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
		return procstat.SelfCPU() - cpu0, nil
	}
	without, err := appendFor()
	if err != nil {
		return r, err
	}
	// The forwarder starts caught up: what the first phase wrote is not
	// part of the live measurement.
	if err := st.SetCursor(fwd.CursorName("bench"), st.LastSeq()); err != nil {
		return r, err
	}
	skipped := next
	fw, err := newForwarder(db, st, true, log)
	if err != nil {
		return r, err
	}
	fr := run(ctx, fw)
	icpu0 := db.CPU()
	start := time.Now()
	with, err := appendFor()
	if err != nil {
		fr.stop()
		return r, err
	}
	if err := fr.caughtUp(ctx, st); err != nil {
		return r, err
	}
	r.seconds = time.Since(start).Seconds()
	fr.stop()
	r.points = next - skipped
	r.cpuPer100k = report.Per100k(max(with-without, 0), float64(r.points))
	r.influxCPUPer100 = report.Per100k(db.CPU()-icpu0, float64(r.points))
	got, err := db.Count(benchMeasurements...)
	r.exact = checkCount(got, r.points, err)
	return r, nil
}

func checkCount(got, want int, err error) string {
	switch {
	case err != nil:
		return "query failed: " + err.Error()
	case got == want:
		return "yes"
	}
	return fmt.Sprintf("NO: %d of %d", got, want)
}
