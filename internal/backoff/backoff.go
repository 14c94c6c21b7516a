// Package backoff computes retry delays shared by everything the gateway
// reconnects to or retries against (MQTT brokers, InfluxDB targets).
//
// Delays grow exponentially and are jittered over their whole range ("full
// jitter"), so a hundred gateways that lost the same server at the same
// moment do not come back in lockstep.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry number attempt (0 for the first
// retry): a random duration in [lo/2, lo/2 + min(hi, lo·2^attempt)).
func Delay(attempt int, lo, hi time.Duration) time.Duration {
	d := lo << min(max(attempt, 0), 20)
	if d <= 0 || d > hi {
		d = hi
	}
	if d <= 0 {
		return lo / 2
	}
	return lo/2 + time.Duration(rand.Int64N(int64(d)))
}
