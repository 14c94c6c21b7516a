package app

import (
	"testing"
	"time"
)

func TestClockCondition(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		now        time.Time
		wall, mono time.Duration
		want       string
		jumped     bool
	}{
		{"steady", now, 10 * time.Second, 10 * time.Second, "ok", false},
		{"NTP slewing", now, 10*time.Second + 200*time.Millisecond, 10 * time.Second, "ok", false},
		{"set forward an hour", now, time.Hour + 10*time.Second, 10 * time.Second, "the system clock jumped by 1h0m0s", true},
		{"set back two minutes", now, -110 * time.Second, 10 * time.Second, "the system clock jumped by -2m0s", true},
		{"never set", time.Date(1970, 1, 1, 0, 0, 20, 0, time.UTC), 10 * time.Second, 10 * time.Second,
			"the system clock reads 1970-01-01T00:00:20Z: it was never set", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, jumped := clockCondition(tc.now, tc.wall, tc.mono)
			if got != tc.want || jumped != tc.jumped {
				t.Errorf("clockCondition = %q, %v; want %q, %v", got, jumped, tc.want, tc.jumped)
			}
		})
	}
}
