package audit

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchLog is a log of n entries (mostly alarm actions, one in ten a
// viewing session, one in twenty of ward-cam) in 64 MiB segments, built
// with batched appends.
func benchLog(b *testing.B, n int) *Log {
	b.Helper()
	l, err := Open(filepath.Join(b.TempDir(), FileName), Options{RotateBytes: DefaultRotateBytes})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	batch := make([]Entry, 0, 10_000)
	for i := 1; i <= n; i++ {
		batch = append(batch, benchEntry(i))
		if len(batch) == cap(batch) || i == n {
			if err := l.Append(batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return l
}

var benchT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func benchEntry(i int) Entry {
	at := benchT0.Add(time.Duration(i) * time.Second)
	if i%10 == 3 {
		cam := "ward-cam"
		if i%20 == 13 {
			cam = "door-cam"
		}
		return Entry{Time: at, Action: ActionVideoViewEnded, By: "supervisor-li", Detail: "the viewer hung up",
			Video: &Video{Camera: cam, Session: fmt.Sprintf("%032x", i), Remote: "10.20.0.17:51234", Started: at.Add(-5 * time.Minute), Bytes: 48_000_000}}
	}
	return Entry{Time: at, Action: "fired", Detail: "Smoke detected in Kitchen (kitchen-smoke)",
		Alarm: &Alarm{AlarmID: fmt.Sprintf("smoke@dev:kitchen-smoke-%d", i%7), Seq: uint64(i), Rule: "smoke", Severity: "critical"}}
}

// BenchmarkReadNewest reads the newest 100 entries of a log of a million
// while one goroutine appends entry after entry (each fsynced) at full
// speed. It reports the read latency's median and p99 and the rate the
// appends kept meanwhile; BenchmarkAppend has the rate without readers.
func BenchmarkReadNewest(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 300 MB log")
	}
	l := benchLog(b, 1_000_000)
	for _, f := range []struct {
		name string
		f    Filter
	}{{"filter=none", Filter{}}, {"filter=camera", Filter{Camera: "ward-cam"}}} {
		b.Run("entries=1000000/"+f.name, func(b *testing.B) {
			b.ReportAllocs()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var appended int
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 1_000_001; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := l.Append(benchEntry(i)); err != nil {
						b.Error(err)
						return
					}
					appended++
				}
			}()
			lat := make([]float64, 0, b.N)
			start := time.Now()
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				es, err := l.Read(f.f, 100)
				lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
				if err != nil || len(es) != 100 {
					b.Fatalf("read %d entries: %v", len(es), err)
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2], "ms-p50/read")
			b.ReportMetric(lat[min(len(lat)-1, len(lat)*99/100)], "ms-p99/read")
			b.ReportMetric(float64(appended)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

// BenchmarkAppend is one entry per Append, fsynced, as the rules engine
// writes; readers=2 has two goroutines reading the newest 100 meanwhile.
func BenchmarkAppend(b *testing.B) {
	for _, readers := range []int{0, 2} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			l := benchLog(b, 10_000)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := l.Read(Filter{}, 100); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			b.ReportAllocs()
			i := 10_000
			start := time.Now()
			for b.Loop() {
				i++
				if err := l.Append(benchEntry(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
			close(stop)
			wg.Wait()
		})
	}
}
