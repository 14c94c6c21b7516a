package app

import (
	"math"
	"os"
	"runtime/debug"
)

// ApplyMemoryLimit sets the Go runtime's soft memory limit to limit bytes
// (the config's memory_limit; 0: none) unless the operator has set
// GOMEMLIMIT, which the runtime has already applied. It returns the limit
// in force and whether it came from GOMEMLIMIT. Commands that run the
// gateway call it once, after loading the config.
//
// The limit is soft: the collector runs more often as the heap nears it
// instead of letting a burst grow the process, and gives memory back to
// the OS sooner. It never fails an allocation, and the runtime caps the
// collector's share of CPU, so a limit below the live heap costs
// throughput, not a crash.
func ApplyMemoryLimit(limit int64) (inForce int64, fromEnv bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), true
	}
	if limit <= 0 {
		limit = math.MaxInt64
	}
	debug.SetMemoryLimit(limit)
	return limit, false
}
