package app

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApplyMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, tc := range []struct {
		name    string
		env     string
		limit   int64
		want    int64 // -1: unchanged
		fromEnv bool
	}{
		{name: "config", limit: 256 << 20, want: 256 << 20},
		{name: "zero disables", limit: 0, want: math.MaxInt64},
		// The runtime read GOMEMLIMIT at start; the config does not
		// override what the operator set.
		{name: "GOMEMLIMIT wins", env: "512MiB", limit: 256 << 20, want: -1, fromEnv: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env)
			if tc.want == -1 {
				tc.want = debug.SetMemoryLimit(-1) // left as it was
			}
			got, fromEnv := ApplyMemoryLimit(tc.limit)
			if got != tc.want || fromEnv != tc.fromEnv || debug.SetMemoryLimit(-1) != tc.want {
				t.Errorf("ApplyMemoryLimit(%d) with GOMEMLIMIT=%q = %d, %v (runtime %d); want %d, %v",
					tc.limit, tc.env, got, fromEnv, debug.SetMemoryLimit(-1), tc.want, tc.fromEnv)
			}
		})
	}
}
