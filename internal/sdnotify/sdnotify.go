// Package sdnotify tells systemd how the gateway is, over the sd_notify
// protocol (a datagram to $NOTIFY_SOCKET, github.com/coreos/go-systemd):
// ready once it takes readings, reloading while it reloads its rules,
// stopping when it shuts down, and a watchdog ping while its core answers.
// Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
//
// The watchdog does not ping from a timer alone: each ping follows a
// probe of the gateway's core (the rules engine answering, intake
// running), so a gateway that is alive but stuck is restarted by systemd
// (WatchdogSec=) rather than left running deaf.
package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready says the service is up; status is shown by systemctl status.
func Ready(status string) {
	notify(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// Reloading says a reload began; Ready must follow when it is done.
func Reloading() {
	notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping says the service is shutting down.
func Stopping() {
	notify(daemon.SdNotifyStopping + "\nSTATUS=stopping")
}

func notify(state string) {
	// Errors are not the gateway's to act on: systemd is gone or this is
	// not a systemd service.
	_, _ = daemon.SdNotify(false, state)
}

// Probe checks that the gateway's core answers; it must return within
// its context's deadline.
type Probe func(ctx context.Context) error

// Watchdog pings systemd's watchdog at half its interval ($WATCHDOG_USEC)
// while probe succeeds, until ctx ends. A failed probe skips the ping and
// says why in the service's status; systemd restarts the service once a
// whole interval passes without one. Without a watchdog it returns at
// once.
func Watchdog(ctx context.Context, probe Probe, log *slog.Logger) error {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("sdnotify: watchdog: %w", err)
	}
	if every <= 0 {
		return nil
	}
	every /= 2
	log.Info("sdnotify: watchdog on", "ping_every", every)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, every)
		err := probe(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error("sdnotify: the gateway's core does not answer: no watchdog ping", "err", err)
			notify("STATUS=not answering: " + err.Error())
		default:
			notify(daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
