package cameras

import (
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/video/source"
)

func TestWatchdogTimeline(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	st := func(state, reason string) Status {
		return Status{ID: "ward", Status: source.Status{State: state, Reason: reason}}
	}
	w := newWatchdog(t0)
	for _, step := range []struct {
		at     time.Duration
		status Status
		want   string
	}{
		{1 * time.Second, st(source.StateConnecting, ""), ""},
		{59 * time.Second, st("failed", "401 Unauthorized"), ""},
		{60 * time.Second, st("failed", "401 Unauthorized"), "no video for 1m0s: 401 Unauthorized"},
		{61 * time.Second, st(source.StateConnecting, ""), "no video for 1m0s: connecting"},
		{62 * time.Second, st(source.StateLive, ""), "ok"},
		// Dark again: it gets a whole DownAfter from when it was last live.
		{63 * time.Second, st("failed", "EOF"), ""},
		{121 * time.Second, st("failed", "EOF"), ""},
		{122 * time.Second, st("failed", "EOF"), "no video for 1m0s: EOF"},
	} {
		if got := w.condition(step.status, time.Minute, t0.Add(step.at)); got != step.want {
			t.Fatalf("at t0+%v with %s/%s: condition %q, want %q", step.at, step.status.State, step.status.Reason, got, step.want)
		}
	}
}
