package app

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/internal/tlsfiles"
)

// newForwarders builds one forwarder per configured InfluxDB target; each
// watches its own delivery and reports faults to Health.
func (a *App) newForwarders() error {
	for _, t := range a.cfg.Influx {
		tok, err := t.Token()
		if err != nil {
			return fmt.Errorf("app: %w", err)
		}
		tlsCfg, err := tlsfiles.Client(t.CAFile, "", "")
		if err != nil {
			return fmt.Errorf("app: influxdb %s: %w", t.ID, err)
		}
		linger := t.Linger.Std()
		if linger == 0 {
			linger = -1 // forward.Target: negative means none, zero the default
		}
		f, err := forward.New(forward.Options{
			Store: a.Store,
			Target: forward.Target{
				Name: t.ID, URL: t.URL, Org: t.Org, Bucket: t.BucketName(), Token: tok.Reveal(),
				MeasurementPrefix: t.MeasurementPrefix, BatchSize: t.BatchSize, Linger: linger,
				Timeout: t.Timeout.Std(), GZip: t.GZip, BackoffMax: t.BackoffMax.Std(), TLS: tlsCfg,
			},
			Health:       a.Health,
			StalledAfter: t.StalledAfter.Std(),
			Logger:       a.log,
		})
		if err != nil {
			return fmt.Errorf("app: influxdb %s: %w", t.ID, err)
		}
		a.Forwarders = append(a.Forwarders, f)
	}
	// A target removed from the config would otherwise hold its cursor
	// for ever, and the disk budget would treat everything after it as
	// unforwarded.
	configured := map[string]bool{}
	for _, t := range a.cfg.Influx {
		configured[forward.CursorName(t.ID)] = true
	}
	for name, seq := range a.Store.Cursors() {
		if strings.HasPrefix(name, forward.CursorName("")) && !configured[name] {
			a.log.Warn("forward: InfluxDB target no longer configured; forgetting its position in the store",
				"cursor", name, "seq", seq, "store_last_seq", a.Store.LastSeq())
			if err := a.Store.DeleteCursor(name); err != nil {
				return fmt.Errorf("app: %w", err)
			}
		}
	}
	if len(a.Forwarders) > 0 {
		return a.register("forwarder", func(r prometheus.Registerer) error { return r.Register(forward.NewCollector(a.Forwarders...)) })
	}
	return nil
}

// forwarderStatus reports every forwarder's status, in config order.
func (a *App) forwarderStatus() []forward.Status {
	out := make([]forward.Status, 0, len(a.Forwarders))
	for _, f := range a.Forwarders {
		out = append(out, f.Status())
	}
	return out
}
