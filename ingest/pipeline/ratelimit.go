package pipeline

import (
	"sync"
	"time"
)

// rateLimiter lets one log line per key through per period and counts what
// it held back, so a device spamming garbage cannot flood the log.
type rateLimiter struct {
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
	held   map[string]int
}

func newRateLimiter(period time.Duration) *rateLimiter {
	return &rateLimiter{period: period, last: make(map[string]time.Time), held: make(map[string]int)}
}

func (l *rateLimiter) allow(key string) bool {
	_, ok := l.allowCount(key)
	return ok
}

// allowCount reports whether a line for key may be logged now, and how many
// were suppressed since the last one.
func (l *rateLimiter) allowCount(key string) (int, bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.period {
		l.held[key]++
		return 0, false
	}
	if len(l.last) > 10000 {
		// Keys include device ids; bound the map against topic floods.
		clear(l.last)
		clear(l.held)
	}
	n := l.held[key]
	l.last[key] = now
	l.held[key] = 0
	return n, true
}
