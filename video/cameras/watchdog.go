package cameras

import (
	"fmt"
	"time"

	healthdev "github.com/shelterwatch/shelterwatch/ingest/health"
	"github.com/shelterwatch/shelterwatch/video/source"
)

// Health receives the condition of the gateway's parts (the gateway's
// fault reporter, ingest/health).
type Health interface {
	Set(device, condition string)
}

// watchdog decides whether always-on cameras are down. It is a pure step
// function of statuses and time, owned by Run's goroutine.
type watchdog struct {
	start time.Time
	// lastLive is when each camera was last seen live (start counts: a
	// camera gets its DownAfter to come up). A failing camera cycles
	// through connecting and failed, so its state's own Since is no guide.
	lastLive map[string]time.Time
}

func newWatchdog(start time.Time) *watchdog {
	return &watchdog{start: start, lastLive: map[string]time.Time{}}
}

// condition returns the camera's condition to report at now: health.OK
// while live, a fault once it has not been live for downAfter, "" while
// undecided (starting, or dark for less than downAfter).
func (w *watchdog) condition(st Status, downAfter time.Duration, now time.Time) string {
	if st.State == source.StateLive {
		w.lastLive[st.ID] = now
		return healthdev.OK
	}
	since, ok := w.lastLive[st.ID]
	if !ok {
		since = w.start
	}
	if now.Sub(since) < downAfter {
		return ""
	}
	reason := st.Reason
	if reason == "" {
		reason = st.State
	}
	return fmt.Sprintf("no video for %s: %s", downAfter, reason)
}
