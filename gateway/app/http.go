package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
	"golang.org/x/sys/unix"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/console"
	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/ingest/broker"
	"github.com/shelterwatch/shelterwatch/internal/tlsfiles"
)

// newHTTP binds the HTTP listener (HTTPS with certificate files) and, when
// configured, the separate /metrics listener, and builds their handlers.
func (a *App) newHTTP() error {
	cfg := a.cfg
	tokens := make([]httpapi.Token, 0, len(cfg.HTTP.Tokens))
	for _, t := range cfg.HTTP.Tokens {
		tok, err := httpapi.ParseToken(t.Name, string(t.Role), t.SHA256.Reveal())
		if err != nil {
			return err
		}
		tok.Cameras = t.Cameras
		tokens = append(tokens, tok)
	}
	opts := httpapi.Options{
		Store: a.Store, State: a.State, Gatherer: a.reg, Tokens: tokens, Ready: a.notReady, Logger: a.log,
		MetricsElsewhere: cfg.HTTP.MetricsListen != "",
		OfflineAfter: func(id string) time.Duration {
			if d := cfg.DeviceByID(id); d != nil {
				return d.OfflineAfter.Std()
			}
			return 0
		},
		Forwarders:    a.forwarderStatus,
		Alarms:        a.Rules,
		WalkTests:     a.Rules,
		Hazards:       a.Hazards,
		Reports:       a.Reports,
		Discovered:    a.discovered,
		Rules:         a.Rules,
		Audit:         a.Audit,
		Reload:        a.ReloadRules,
		Outbox:        a.Outbox,
		Video:         a.videoAPI(),
		Users:         users.Open(cfg.UsersPath()),
		SessionIdle:   cfg.HTTP.SessionIdle.Std(),
		SessionMax:    cfg.HTTP.SessionMax.Std(),
		Console:       console.Handler(console.Files()),
		AlarmsChanged: a.alarmsChanged,
		Facility: httpapi.Facility{ID: cfg.Facility.ID, Name: cfg.Facility.Name, NameZH: cfg.Facility.NameZH,
			Timezone: cfg.Facility.Timezone, Zones: cfg.ZoneModels(), Devices: a.deviceModels()},
		Version: Version,
		// The health summary.
		Started:         time.Now(),
		BrokerClients:   brokerClients(a.broker),
		StoreDisk:       a.storeDisk,
		DeadLetterCount: a.deadLetterCount,
	}
	if a.Audit != nil {
		opts.AuditAppend = a.Audit.Append
	}
	var tlsCfg *tls.Config
	if cfg.HTTP.TLSCertFile != "" {
		r, err := tlsfiles.NewReloader(cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile, tlsfiles.ReloaderOptions{Logger: a.log})
		if err != nil {
			return fmt.Errorf("app: HTTPS: %w", err)
		}
		a.httpTLS, tlsCfg = r, r.TLSConfig()
		// HTTP/1.1 only: one request at a time per connection keeps
		// max_connections a bound on the requests in progress.
		tlsCfg.NextProtos = []string{"http/1.1"}
	}
	ln, err := listen("HTTP", cfg.HTTP.Listen, cfg.HTTP.MaxConnections, tlsCfg)
	if err != nil {
		return err
	}
	a.httpLn = ln
	a.httpSrv = newServer(cfg.HTTP, httpapi.Handler(opts), a.log)

	if cfg.HTTP.MetricsListen != "" {
		// A scraper holds one connection or two: a small cap is plenty.
		if a.metricsLn, err = listen("metrics", cfg.HTTP.MetricsListen, 16, nil); err != nil {
			return err
		}
		a.metricsSrv = newServer(cfg.HTTP, httpapi.MetricsHandler(opts, cfg.HTTP.MetricsAuth == config.MetricsNone), a.log)
	}
	return nil
}

// brokerClients reads the embedded broker's connected clients from its
// metrics, where the broker keeps the count; nil without an embedded
// broker. The broker's collectors go into a registry of their own as well,
// so a look gathers them alone.
func brokerClients(b *broker.Broker) func() int {
	if b == nil {
		return nil
	}
	reg := prometheus.NewRegistry()
	if err := b.Register(reg); err != nil {
		return nil
	}
	return func() int {
		mfs, err := reg.Gather()
		if err != nil {
			return -1
		}
		for _, mf := range mfs {
			if mf.GetName() == "shelterwatch_broker_clients_connected" && len(mf.GetMetric()) == 1 {
				return int(mf.GetMetric()[0].GetGauge().GetValue())
			}
		}
		return -1
	}
}

// storeDisk is the store's disk space for the health summary.
func (a *App) storeDisk() (httpapi.StoreDisk, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(a.cfg.Store.Dir, &st); err != nil {
		return httpapi.StoreDisk{}, fmt.Errorf("app: free space of %s: %w", a.cfg.Store.Dir, err)
	}
	return httpapi.StoreDisk{UsedBytes: a.Store.DiskUsage(), FreeBytes: uint64(st.Bavail) * uint64(st.Bsize),
		BudgetBytes: uint64(a.cfg.Store.DiskBudget), ReserveBytes: uint64(a.cfg.Store.DiskReserve)}, nil
}

// deadLetterCount is how many dead letters the store keeps. The store
// numbers them from 1 and deletes the oldest beyond ingest.dead_letter_max,
// so the newest one's number, capped at that bound, is the count: one
// entry read where counting would read them all.
func (a *App) deadLetterCount() (int, error) {
	dls, err := a.Store.DeadLetters(1)
	if err != nil || len(dls) == 0 {
		return 0, err
	}
	return int(min(dls[0].Seq, uint64(a.cfg.Ingest.DeadLetterMax))), nil
}

// listen binds addr with at most maxConns connections open, each a TLS
// connection when tlsCfg is set.
func listen(what, addr string, maxConns int, tlsCfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("app: %s listen on %s: %w", what, addr, err)
	}
	// The LAN is hostile: a bounded number of connections, each of which
	// must send its request in time and may not sit idle for ever.
	ln = netutil.LimitListener(ln, maxConns)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return ln, nil
}

// newServer is an HTTP server with the configured timeouts. The read
// timeout covers the TLS handshake too.
func newServer(h config.HTTP, handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: min(10*time.Second, h.ReadTimeout.Std()),
		ReadTimeout:       h.ReadTimeout.Std(),
		WriteTimeout:      h.WriteTimeout.Std(),
		IdleTimeout:       h.IdleTimeout.Std(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serve serves srv on ln until ctx ends, then gives requests in flight 5 s
// to finish.
func serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveMetrics serves the separate /metrics listener until ctx ends.
func (a *App) serveMetrics(ctx context.Context) error { return serve(ctx, a.metricsSrv, a.metricsLn) }

// servedCertificates is watchedCertificates with the HTTPS certificate
// watched as served: a replacement on disk that was refused shows.
func (a *App) servedCertificates() []tlsfiles.Watched {
	certs := watchedCertificates(a.cfg)
	for i := range certs {
		if certs[i].Name == "http" {
			certs[i].Served = a.httpTLS
		}
	}
	return certs
}

// MetricsAddr is the bound address of the separate /metrics listener (""
// without one).
func (a *App) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}
