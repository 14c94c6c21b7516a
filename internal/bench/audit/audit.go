// Package audit measures the audit log as the API and the rules engine
// use it: a log of one million entries (about 300 MB, rotated into 64 MiB
// segments as the gateway does), the newest 100 entries read again and
// again by concurrent readers while one writer appends entry after entry
// at full speed, each fsynced as the rules engine's are. Three phases:
// appends alone; beside readers that each read every Pace (a console
// polling); beside readers reading back to back. It reports the read
// latency (median, p99, max) and the append rate of each phase, and holds
// the p99 of a paced read of the newest 100 to ≤ 10 ms. A read of the
// newest 100 of one camera (one entry in 20 in this log) is shown as well:
// it has to decode only the lines that name the camera.
//
// Everything runs in the bench process on a real file system (the
// directory given, or a temporary one); the log is built with large
// batched appends first, which is not measured.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// Options configure an audit bench run.
type Options struct {
	Entries int // entries in the log before the measurement
	Readers int // concurrent readers in the read phases
	// Pace is the wait between one reader's reads in the paced phase (a
	// console that polls); the last phase reads back to back.
	Pace     time.Duration
	Limit    int           // entries per read (the newest)
	Duration time.Duration // each phase
	Dir      string        // where the log goes ("" a temporary directory, removed after)
	Log      io.Writer     // progress
}

// DefaultOptions are the figures of `make bench`.
func DefaultOptions() Options {
	return Options{Entries: 1_000_000, Readers: 2, Limit: 100, Duration: 10 * time.Second, Pace: 50 * time.Millisecond}
}

// GoalP99 is the p99 a read of the newest 100 entries must stay under.
const GoalP99 = 10 * time.Millisecond

// Result is what one run measured.
type Result struct {
	Entries, Segments    int
	Bytes                int64
	AppendAlone          float64         // appends/s without readers
	AppendPaced          float64         // appends/s while the readers read every Pace
	AppendWithReaders    float64         // appends/s while the readers read back to back
	Newest, NewestCamera []time.Duration // back to back
	Paced                []time.Duration // newest Limit, paced
}

// Run builds the log, measures and writes the table to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	res, err := Measure(ctx, o)
	if err != nil {
		return err
	}
	Print(w, o, res)
	return nil
}

// Measure builds the log and runs the two phases.
func Measure(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "shelter-bench-audit-")
		if err != nil {
			return nil, fmt.Errorf("bench audit: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	path := filepath.Join(dir, audit.FileName)
	l, err := audit.Open(path, audit.Options{RotateBytes: audit.DefaultRotateBytes})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	fmt.Fprintf(o.Log, "audit: writing %d entries…\n", o.Entries)
	start := time.Now()
	if err := Fill(ctx, l, 0, o.Entries); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "audit: %d entries written in %s\n", o.Entries, time.Since(start).Round(time.Millisecond))
	res := &Result{Entries: o.Entries}
	if res.Segments, res.Bytes, err = size(path); err != nil {
		return nil, err
	}

	seq := atomic.Int64{}
	seq.Store(int64(o.Entries))
	fmt.Fprintln(o.Log, "audit: appends alone…")
	if res.AppendAlone, err = appendFor(ctx, l, &seq, o.Duration, nil); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	reads := func(pace time.Duration, newest, newestCam *[]time.Duration) func(stop <-chan struct{}) error {
		return func(stop <-chan struct{}) error {
			var wg sync.WaitGroup
			errs := make(chan error, o.Readers)
			for r := range o.Readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var mine, mineCam []time.Duration
					defer func() {
						mu.Lock()
						*newest = append(*newest, mine...)
						if newestCam != nil {
							*newestCam = append(*newestCam, mineCam...)
						}
						mu.Unlock()
					}()
					tick := time.NewTicker(max(pace, time.Microsecond))
					defer tick.Stop()
					for i := 0; ; i++ {
						if pace > 0 {
							select {
							case <-stop:
								return
							case <-tick.C:
							}
						} else {
							select {
							case <-stop:
								return
							default:
							}
						}
						f := audit.Filter{}
						// Back to back, every fourth read of each reader is
						// one camera's.
						cam := newestCam != nil && (i+r)%4 == 3
						if cam {
							f.Camera = "ward-cam"
						}
						t0 := time.Now()
						es, err := l.Read(f, o.Limit)
						d := time.Since(t0)
						if err == nil && len(es) != o.Limit {
							err = fmt.Errorf("bench audit: read %d entries, want %d", len(es), o.Limit)
						}
						if err != nil {
							errs <- err
							return
						}
						if cam {
							mineCam = append(mineCam, d)
						} else {
							mine = append(mine, d)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			return <-errs
		}
	}
	fmt.Fprintf(o.Log, "audit: appends with %d readers, one read each per %s…\n", o.Readers, o.Pace)
	if res.AppendPaced, err = appendFor(ctx, l, &seq, o.Duration, reads(o.Pace, &res.Paced, nil)); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "audit: appends with %d readers reading back to back…\n", o.Readers)
	if res.AppendWithReaders, err = appendFor(ctx, l, &seq, o.Duration, reads(0, &res.Newest, &res.NewestCamera)); err != nil {
		return nil, err
	}
	return res, nil
}

// appendFor appends one entry at a time (each fsynced) for d and returns
// the rate; alongside, when given, runs beside until the appends end.
func appendFor(ctx context.Context, l *audit.Log, seq *atomic.Int64, d time.Duration, alongside func(stop <-chan struct{}) error) (float64, error) {
	stop := make(chan struct{})
	done := make(chan error, 1)
	if alongside != nil {
		go func() { done <- alongside(stop) }()
	}
	start := time.Now()
	n := 0
	var err error
	for time.Since(start) < d && ctx.Err() == nil {
		i := int(seq.Add(1))
		if err = l.Append(entry(i)); err != nil {
			break
		}
		n++
	}
	elapsed := time.Since(start)
	close(stop)
	if alongside != nil {
		err = errors.Join(err, <-done)
	}
	if err == nil {
		err = ctx.Err()
	}
	return float64(n) / elapsed.Seconds(), err
}

// Fill appends entries from+1 … from+n in batches of 10,000 (one fsync
// each), to build a large log quickly.
func Fill(ctx context.Context, l *audit.Log, from, n int) error {
	const batch = 10_000
	buf := make([]audit.Entry, 0, batch)
	for i := from + 1; i <= from+n; i++ {
		buf = append(buf, entry(i))
		if len(buf) == batch || i == from+n {
			if err := l.Append(buf...); err != nil {
				return err
			}
			buf = buf[:0]
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// entry i of the bench log: mostly alarm actions, one in ten a viewing
// session (one in twenty of the ward camera).
func entry(i int) audit.Entry {
	at := t0.Add(time.Duration(i) * time.Second)
	switch i % 10 {
	case 3:
		cam := "ward-cam"
		if i%20 == 13 {
			cam = "door-cam"
		}
		return audit.Entry{Time: at, Action: audit.ActionVideoViewEnded, By: "supervisor-li", Detail: "the viewer hung up",
			Video: &audit.Video{Camera: cam, Session: fmt.Sprintf("%032x", i), Remote: "10.20.0.17:51234", Started: at.Add(-5 * time.Minute), Bytes: 48_000_000}}
	case 5:
		return audit.Entry{Time: at, Action: "acknowledged", By: "shift-lead-zhang", Comment: "checked, burnt toast",
			Alarm: &audit.Alarm{AlarmID: fmt.Sprintf("smoke@dev:kitchen-smoke-%d", i%7), Seq: uint64(i), Rule: "smoke"}}
	default:
		return audit.Entry{Time: at, Action: "fired", Detail: "Smoke detected in Kitchen (kitchen-smoke)",
			Alarm: &audit.Alarm{AlarmID: fmt.Sprintf("smoke@dev:kitchen-smoke-%d", i%7), Seq: uint64(i), Rule: "smoke", Severity: "critical"}}
	}
}

// size counts the log's files and bytes.
func size(path string) (int, int64, error) {
	r, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return 0, 0, err
	}
	n, total := 0, int64(0)
	for _, de := range r {
		if info, err := de.Info(); err == nil && info.Mode().IsRegular() {
			n++
			total += info.Size()
		}
	}
	return n, total, nil
}

// Print writes the table.
func Print(w io.Writer, o Options, res *Result) {
	ms := func(ds []time.Duration, q float64) float64 {
		xs := make([]float64, len(ds))
		for i, d := range ds {
			xs[i] = float64(d.Microseconds()) / 1000
		}
		slices.Sort(xs)
		return report.Quantile(xs, q)
	}
	fmt.Fprintf(w, "\n### Audit log: the newest %d entries of %s (%d files, %.0f MB) while appends go on\n\n",
		o.Limit, report.Thousands(float64(res.Entries)), res.Segments, report.MB(res.Bytes))
	fmt.Fprintln(w, "| readers | read | reads | p50 ms | p99 ms | max ms | appends/s meanwhile |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| none | – | – | – | – | – | %s |\n", report.Thousands(res.AppendAlone))
	for _, row := range []struct {
		readers, name string
		ds            []time.Duration
		appends       string
	}{
		{fmt.Sprintf("%d, one read each per %s", o.Readers, o.Pace), fmt.Sprintf("newest %d", o.Limit), res.Paced, report.Thousands(res.AppendPaced)},
		{fmt.Sprintf("%d, back to back", o.Readers), fmt.Sprintf("newest %d", o.Limit), res.Newest, report.Thousands(res.AppendWithReaders)},
		{fmt.Sprintf("%d, back to back", o.Readers), fmt.Sprintf("newest %d of one camera", o.Limit), res.NewestCamera, "(same run)"},
	} {
		fmt.Fprintf(w, "| %s | %s | %s | %.2f | %.2f | %.2f | %s |\n", row.readers, row.name, report.Thousands(float64(len(row.ds))),
			ms(row.ds, 0.5), ms(row.ds, 0.99), ms(row.ds, 1), row.appends)
	}
	fmt.Fprintln(w, "\nAppends are one entry each, fsynced, as the rules engine writes them.")
	// The goal is for reads as the API makes them, beside the appends;
	// readers back to back show what saturating every core costs.
	p99 := ms(res.Paced, 0.99)
	fmt.Fprintf(w, "\nGoal: p99 of a read of the newest %d, paced readers, ≤ %d ms: %s.\n", o.Limit, GoalP99.Milliseconds(),
		report.PassMiss(len(res.Paced) > 0 && p99 <= float64(GoalP99.Milliseconds())))
}
