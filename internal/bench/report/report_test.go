package report

import (
	"math"
	"testing"
	"time"
)

func TestThousands(t *testing.T) {
	for x, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", -1234567: "-1,234,567", 52345.6: "52,346"} {
		if got := Thousands(x); got != want {
			t.Errorf("Thousands(%v) = %q, want %q", x, got, want)
		}
	}
	if got := Thousands(math.NaN()); got != "NaN" {
		t.Errorf("Thousands(NaN) = %q", got)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 10}, {0.9, 9}, {0, 1}, {1, 10}} {
		if got := Quantile(xs, tc.q); got != tc.want {
			t.Errorf("Quantile(1..10, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := Quantile(nil, 0.5); got != 0 {
		t.Errorf("Quantile(nil) = %v, want 0", got)
	}
}

func TestMedian(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("Median(3 1 2) = %v, want 2", got)
	}
	if got := Median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("Median(4 1 3 2) = %v, want 2.5", got)
	}
}

func TestPer100k(t *testing.T) {
	if got := Per100k(2*time.Second, 200000); got != 1 {
		t.Errorf("Per100k(2s, 200k) = %v, want 1", got)
	}
	if got := Per100k(time.Second, 0); !math.IsNaN(got) {
		t.Errorf("Per100k(1s, 0) = %v, want NaN", got)
	}
}
