package backoff

import (
	"testing"
	"time"
)

func TestDelayGrowsAndIsCapped(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 2 * time.Second
	for _, tc := range []struct {
		attempt int
		ceiling time.Duration // exclusive upper bound
	}{
		{0, lo/2 + lo},
		{1, lo/2 + 2*lo},
		{3, lo/2 + 8*lo},
		{10, lo/2 + hi},
		{1000, lo/2 + hi},
		{-1, lo/2 + lo},
	} {
		var seenHigh bool
		for range 2000 {
			d := Delay(tc.attempt, lo, hi)
			if d < lo/2 || d >= tc.ceiling {
				t.Fatalf("attempt %d: delay %v outside [%v, %v)", tc.attempt, d, lo/2, tc.ceiling)
			}
			if d > tc.ceiling-(tc.ceiling-lo/2)/4 {
				seenHigh = true
			}
		}
		if !seenHigh {
			t.Errorf("attempt %d: 2000 delays never reached the top quarter of the range: not jittered over it", tc.attempt)
		}
	}
}
