package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// BenchmarkAppend measures durable appends: every Append returns only after
// its group commit is fsynced. writers is the number of concurrent appenders
// (MQTT clients waiting for their PUBACK), batch the readings per Append.
func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct{ writers, batch int }{{1, 1}, {64, 1}, {512, 1}, {1, 1000}} {
		b.Run(fmt.Sprintf("writers=%d/batch=%d", tc.writers, tc.batch), func(b *testing.B) {
			s := openTest(b, Options{})
			b.ReportAllocs()
			per := b.N/tc.writers + 1
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range tc.writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rs := make([]reading.Reading, tc.batch)
					for i := 0; i < per; i += tc.batch {
						for j := range rs {
							rs[j] = temp(fmt.Sprintf("device-%04d", (w*tc.batch+j)%10000), "dorm-1", t0.Add(time.Duration(i)*time.Second), 21.5)
						}
						if err := s.Append(context.Background(), rs); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			n := float64(s.LastSeq())
			b.ReportMetric(n/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkDownsample measures a history query: one device, 30 days of
// one-minute readings, hourly buckets.
func BenchmarkDownsample(b *testing.B) {
	s := openTest(b, Options{})
	const points = 30 * 24 * 60
	rs := make([]reading.Reading, 0, 4096)
	for i := range points {
		rs = append(rs, temp("dorm3-temp", "dorm-3", t0.Add(time.Duration(i)*time.Minute), float64(i%30)))
		if len(rs) == cap(rs) || i == points-1 {
			if err := s.Append(context.Background(), rs); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := s.Downsample(context.Background(), Query{Device: "dorm3-temp"}, time.Hour)
		if err != nil || len(got) != 1 || len(got[0].Buckets) != 30*24 {
			b.Fatalf("downsample: %v %d", err, len(got))
		}
	}
}
