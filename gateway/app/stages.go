package app

import (
	"context"
	"fmt"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/ingest/health"
	"github.com/shelterwatch/shelterwatch/internal/lifecycle"
	"github.com/shelterwatch/shelterwatch/internal/tlsfiles"
)

// Stages lists the gateway's components in start order; they stop in
// reverse. Why this order:
//
//   - store first, closed last: every other stage reads or writes it, and
//     it writes every append already queued before it closes;
//   - audit log and fault reporter next: every later stage may record an
//     action or report a fault until it has stopped; the accounts watch
//     between them writes changes to the console's accounts to the audit
//     log;
//   - forwarders: they only read the store; a write in flight when they
//     stop is sent again after restart;
//   - outbox before rules: the engine hands alarm events to it; pending
//     deliveries stay in it for the next start;
//   - rules: evaluates until intake has stopped, so every acknowledged
//     reading is seen;
//   - clock and certificate watches, cameras, then WHEP: viewers end before the
//     cameras (their sessions' ends are audited);
//   - HTTP: the API and WHEP signalling (the /metrics listener, when
//     configured, just before it), then the control socket (backups read
//     every stage before it);
//   - intake last (the embedded broker or the external client): first to
//     stop, so nothing is acknowledged once shutdown begins.
func (a *App) Stages() []lifecycle.Stage {
	stages := []lifecycle.Stage{
		{Name: "store", Stop: a.Store.Close},
		{Name: "audit", Stop: a.Audit.Close},
		{Name: "accounts", Run: func(ctx context.Context) error {
			return watchAccounts(ctx, users.Open(a.cfg.UsersPath()), a.Audit.Append, a.log, accountsCheckEvery)
		}},
		{Name: "health", Run: a.Health.Run},
	}
	for _, f := range a.Forwarders {
		stages = append(stages, lifecycle.Stage{Name: "forward:" + f.Name(), Run: f.Run})
	}
	stages = append(stages,
		lifecycle.Stage{Name: "outbox", Run: a.Outbox.Run},
		lifecycle.Stage{Name: "rules", Run: a.Rules.Run},
		lifecycle.Stage{Name: "hazards", Run: a.Hazards.Run},
		lifecycle.Stage{Name: "reports", Run: a.Reports.Run},
	)
	stages = append(stages, lifecycle.Stage{Name: "clock", Run: func(ctx context.Context) error { return watchClock(ctx, a.Health) }})
	if certs := a.servedCertificates(); len(certs) > 0 {
		stages = append(stages, lifecycle.Stage{Name: "certificates", Run: func(ctx context.Context) error {
			return watchCertificates(ctx, certs, a.Health, certCheckEvery)
		}})
	}
	if a.Cameras != nil {
		stages = append(stages,
			lifecycle.Stage{Name: "cameras", Run: func(ctx context.Context) error { return a.Cameras.Run(ctx, a.Health) }},
			lifecycle.Stage{Name: "whep", Stop: a.WHEP.Close},
		)
	}
	if a.metricsSrv != nil {
		stages = append(stages, lifecycle.Stage{Name: "metrics", Run: a.serveMetrics})
	}
	stages = append(stages, lifecycle.Stage{Name: "http", Run: a.serveHTTP})
	if a.controlSrv != nil {
		stages = append(stages, lifecycle.Stage{Name: "control", Run: a.serveControl})
	}
	if a.cfg.Backup.Dir != "" {
		stages = append(stages, lifecycle.Stage{Name: "nightly-backup", Run: a.nightlyBackups})
	}
	if a.broker != nil {
		stages = append(stages, lifecycle.Stage{Name: "broker", Start: func(context.Context) error { return a.broker.Start() }, Stop: a.closeBroker})
	} else {
		stages = append(stages, lifecycle.Stage{Name: "mqtt-client", Run: a.client.Run})
		if a.safetyClient != nil {
			stages = append(stages, lifecycle.Stage{Name: "mqtt-client-safety", Run: a.safetyClient.Run})
		}
	}
	return stages
}

// serveHTTP serves the API until ctx ends, then gives requests in flight
// 5 s to finish.
func (a *App) serveHTTP(ctx context.Context) error { return serve(ctx, a.httpSrv, a.httpLn) }

// closeBroker stops the embedded broker. mochi's Close can hang when a
// client is being removed at the same moment; it must never keep the
// store from closing. A publish still in its hook then fails to append and
// is not acknowledged, so its sender sends it again.
func (a *App) closeBroker() error {
	closed := make(chan error, 1)
	go func() { closed <- a.broker.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(5 * time.Second):
		a.log.Error("gateway: broker did not close within 5s; stopping the rest anyway")
		return nil
	}
}

// certCheckEvery is how often the certificate watch looks: reading a
// certificate is cheap, and a certificate replaced on disk clears its
// alarm (or shows that it was refused) within this time.
const certCheckEvery = time.Minute

// watchCertificates reports each certificate's condition at start and
// every interval until ctx ends.
func watchCertificates(ctx context.Context, certs []tlsfiles.Watched, h *health.Reporter, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		now := time.Now()
		for _, c := range certs {
			h.Set(health.CertDevice(c.Name), c.Condition(now))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// clockCheckEvery is how often the clock watch compares the wall clock
// with the monotonic one.
const clockCheckEvery = 10 * time.Second

// watchClock reports the system clock's condition every clockCheckEvery
// until ctx ends: a clock before minClockYear is not set; a jump of the
// wall clock against the monotonic one is an event (a jump is over once it
// happened; the alarm shows it until it resolves).
func watchClock(ctx context.Context, h *health.Reporter) error {
	t := time.NewTicker(clockCheckEvery)
	defer t.Stop()
	prev := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// time.Now carries both clocks: Sub uses the monotonic one,
			// Round(0) strips it to compare the wall clocks.
			now := time.Now()
			cond, jumped := clockCondition(now, now.Round(0).Sub(prev.Round(0)), now.Sub(prev))
			if jumped {
				h.Event(health.ClockDevice, cond)
			} else {
				h.Set(health.ClockDevice, cond)
			}
			prev = now
		}
	}
}

// minClockYear: a wall clock before it was never set (a board without a
// battery-backed clock boots in 1970 or at its build date).
const minClockYear = 2025

// maxClockJump is how far the wall clock may move against the monotonic
// clock between two looks before it counts as a jump (NTP slews by far
// less).
const maxClockJump = time.Minute

// clockCondition judges the wall clock at now, given the time elapsed
// since the last look on the wall clock and on the monotonic clock. It
// returns the condition and whether it is a jump.
func clockCondition(now time.Time, wallElapsed, monoElapsed time.Duration) (string, bool) {
	if now.Year() < minClockYear {
		return fmt.Sprintf("the system clock reads %s: it was never set", now.UTC().Format(time.RFC3339)), false
	}
	jump := wallElapsed - monoElapsed
	if jump > maxClockJump || jump < -maxClockJump {
		return fmt.Sprintf("the system clock jumped by %s", jump.Round(time.Second)), true
	}
	return health.OK, false
}
