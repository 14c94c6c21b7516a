package forward

import (
	"context"
	"fmt"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/health"
)

// DefaultStalledAfter is Options.StalledAfter when unset: a 4G link
// dropping for a few minutes is normal; a quarter of an hour means someone
// should look.
const DefaultStalledAfter = 15 * time.Minute

// watchEvery is how often the watchdog looks at the forwarder's status.
const watchEvery = 5 * time.Second

// watch reports the target's condition to Options.Health every interval
// until ctx ends: delivery (stalled or ok) and credentials (refused or
// ok), each as its own built-in device so each alarm has its own
// severity and lifecycle.
func (f *Forwarder) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		f.report(f.Status())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// report sends one status's conditions. The texts stay the same while the
// condition lasts (no counts or ages in them), so a steady fault writes one
// reading, not one per look.
func (f *Forwarder) report(s Status) {
	after := f.opts.StalledAfter
	if after <= 0 {
		after = DefaultStalledAfter
	}
	delivery := health.OK
	if s.BacklogAge >= after {
		delivery = fmt.Sprintf("InfluxDB has confirmed nothing for more than %s; the forwarders API shows the last error", after)
	}
	f.opts.Health.Set(health.ForwardDevice(s.Target), delivery)
	auth := health.OK
	if s.AuthFailing {
		auth = "InfluxDB refuses the gateway's credentials (401 or 403); the forwarders API shows its answer"
	}
	f.opts.Health.Set(health.ForwardAuthDevice(s.Target), auth)
}
