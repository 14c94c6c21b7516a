// Package report holds what the bench tables share: the formatting of their
// figures (thousands separators, megabytes, PASS/MISS against a goal) and
// the statistics behind them — nearest-rank quantiles of latency samples,
// medians over repeated runs, CPU time per 100,000 messages.
//
// Each bench (ingest, forward, alarms, video) prints its own Markdown table
// on stdout with these helpers, so that a figure reads the same in every
// table.
package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Thousands formats x rounded, with thousands separators.
func Thousands(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Sprint(x)
	}
	s := fmt.Sprintf("%.0f", math.Abs(x))
	var b strings.Builder
	if x < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// MB is b bytes in MiB.
func MB(b int64) float64 { return float64(b) / (1 << 20) }

// PassMiss is a goal's verdict.
func PassMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// Quantile returns the q-quantile of sorted xs (nearest rank), 0 when xs
// is empty.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Median returns the median of xs (the mean of the middle two when their
// number is even), sorting xs.
func Median(xs []float64) float64 {
	slices.Sort(xs)
	if n := len(xs); n%2 == 1 {
		return xs[n/2]
	} else {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
}

// Per100k is CPU time d in seconds per 100,000 of n messages or points;
// NaN when there were none.
func Per100k(d time.Duration, n float64) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return d.Seconds() / n * 1e5
}
