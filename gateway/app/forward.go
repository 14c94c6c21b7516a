package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/selfalarm"
	"github.com/shelterwatch/shelterwatch/ingest/forward"
)

// Self-alarm ids raised by the gateway itself.
const (
	// AlarmDataLoss: the store deleted readings some InfluxDB target had
	// not received (disk budget or retention during a long outage).
	AlarmDataLoss = "store-data-loss"
	// AlarmForwardStalled (+ ":" + target): a target has not confirmed
	// readings for ForwardStalledAfter.
	AlarmForwardStalled = "forward-stalled"
	// AlarmForwardAuth (+ ":" + target): a target refuses the gateway's
	// credentials.
	AlarmForwardAuth = "forward-auth"
)

// ForwardStalledAfter is how old the oldest unforwarded reading may get
// before the pipeline-stalled self-alarm is raised. A 4G link dropping for
// a few minutes is normal; a quarter of an hour means someone should look.
const ForwardStalledAfter = 15 * time.Minute

// newForwarders builds one forwarder per configured InfluxDB target.
func (a *App) newForwarders() error {
	for _, t := range a.cfg.Influx {
		tok, err := t.Token()
		if err != nil {
			return fmt.Errorf("app: %w", err)
		}
		var tlsCfg *tls.Config
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return fmt.Errorf("app: influxdb %s: read CA: %w", t.ID, err)
			}
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()}
			if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("app: influxdb %s: CA %s holds no PEM certificate", t.ID, t.CAFile)
			}
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
			Logger: a.log,
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
		if err := a.reg.Register(forward.NewCollector(a.Forwarders...)); err != nil {
			return fmt.Errorf("app: register forwarder metrics: %w", err)
		}
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

// runForwarders starts every forwarder and the watcher that turns their
// status into self-alarms. Each forwarder's exit is sent on the returned
// channel (nil when ctx ended).
func (a *App) runForwarders(ctx context.Context) <-chan error {
	done := make(chan error, len(a.Forwarders))
	for _, f := range a.Forwarders {
		go func() { done <- f.Run(ctx) }()
	}
	if len(a.Forwarders) > 0 {
		go a.watchForwarders(ctx, 5*time.Second)
	}
	return done
}

// watchForwarders raises and clears the forwarding self-alarms.
func (a *App) watchForwarders(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, f := range a.Forwarders {
			a.checkForwarder(f.Status(), ForwardStalledAfter)
		}
	}
}

func (a *App) checkForwarder(s forward.Status, stalledAfter time.Duration) {
	stalled := AlarmForwardStalled + ":" + s.Target
	if s.BacklogAge >= stalledAfter {
		age := s.BacklogAge.Round(time.Second)
		a.Alarms.Raise(stalled, selfalarm.Warning, false,
			fmt.Sprintf("InfluxDB target %s has confirmed nothing for %v (%d readings waiting; last error: %s). The readings are safe in the local store and will be sent when it is back.",
				s.Target, age, s.BacklogPoints, s.LastError),
			fmt.Sprintf("InfluxDB 目标 %s 已 %v 未确认任何数据（%d 条读数等待中；最近错误：%s）。读数已安全保存在本地存储中，恢复后会自动补发。",
				s.Target, age, s.BacklogPoints, s.LastError))
	} else {
		a.Alarms.Clear(stalled)
	}
	auth := AlarmForwardAuth + ":" + s.Target
	if s.AuthFailing {
		a.Alarms.Raise(auth, selfalarm.Critical, false,
			fmt.Sprintf("InfluxDB target %s refuses the gateway's credentials (%s). Nothing is dropped; fix the token or password in the configuration.", s.Target, s.LastError),
			fmt.Sprintf("InfluxDB 目标 %s 拒绝了网关的凭据（%s）。数据不会丢弃；请在配置中更正令牌或密码。", s.Target, s.LastError))
	} else {
		a.Alarms.Clear(auth)
	}
}
