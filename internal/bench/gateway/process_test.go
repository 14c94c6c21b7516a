package gateway

import "testing"

func TestQuantileSince(t *testing.T) {
	bounds := []float64{0.001, 0.002, 0.004, 0.008}
	h0 := Histogram{Bounds: bounds, Counts: []uint64{5, 5, 5, 5}, Count: 5}
	for _, tc := range []struct {
		name   string
		counts []uint64 // cumulative, after h0
		q      float64
		want   float64
	}{
		{"all in first bucket", []uint64{15, 15, 15, 15}, 0.5, 0.0005},
		{"median in second bucket", []uint64{5, 15, 15, 15}, 0.5, 0.0015},
		{"p99 at top of third", []uint64{5, 5, 105, 105}, 0.99, 0.00398},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h1 := Histogram{Bounds: bounds, Counts: tc.counts, Count: tc.counts[len(tc.counts)-1]}
			if got := h1.QuantileSince(h0, tc.q); got < tc.want*0.999 || got > tc.want*1.001 {
				t.Errorf("QuantileSince = %v, want %v", got, tc.want)
			}
		})
	}
}
