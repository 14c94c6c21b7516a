package notify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// BenchmarkEnqueueDeliver measures one fire alarm from Enqueue (fsync
// included) to its signed webhook arriving at a receiver over loopback.
func BenchmarkEnqueueDeliver(b *testing.B) {
	got := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		got <- struct{}{}
	}))
	defer srv.Close()
	ch := testWebhook("hook", srv.URL)
	ch.secret = []byte("bench-secret")
	o, err := Open(b.TempDir(), Options{Channels: []Channel{ch}})
	if err != nil {
		b.Fatal(err)
	}
	run(b, o)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := event(fmt.Sprintf("kitchen-smoke/%d", i), alarm.SeverityFire, alarm.EventFiring)
		start := time.Now()
		if err := o.Enqueue(ctx, ev); err != nil {
			b.Fatal(err)
		}
		<-got
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}
