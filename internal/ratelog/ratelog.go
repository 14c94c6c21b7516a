// Package ratelog limits repetitive log lines: one line per key per period,
// with a count of what was held back, so that a device spamming garbage or a
// client guessing passwords cannot flood the log.
package ratelog

import (
	"sync"
	"time"
)

// Limiter lets one log line per key through per period. Safe for
// concurrent use.
type Limiter struct {
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
	held   map[string]int
}

// New returns a limiter allowing one line per key per period.
func New(period time.Duration) *Limiter {
	return &Limiter{period: period, last: make(map[string]time.Time), held: make(map[string]int)}
}

// Allow reports whether a line for key may be logged now.
func (l *Limiter) Allow(key string) bool {
	_, ok := l.AllowCount(key)
	return ok
}

// AllowCount reports whether a line for key may be logged now, and how many
// were suppressed since the last one.
func (l *Limiter) AllowCount(key string) (int, bool) {
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
