package app

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"golang.org/x/net/netutil"
)

// newHTTP binds the HTTP listener and builds the API handler.
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
		OfflineAfter: func(id string) time.Duration {
			if d := cfg.DeviceByID(id); d != nil {
				return d.OfflineAfter.Std()
			}
			return 0
		},
		Forwarders: a.forwarderStatus,
		Alarms:     a.Rules,
		Audit:      a.Audit,
		Reload:     a.ReloadRules,
		Outbox:     a.Outbox,
		Video:      a.videoAPI(),
	}
	var err error
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("app: HTTP listen on %s: %w", cfg.HTTP.Listen, err)
	}
	// The LAN is hostile: a bounded number of connections, each of which
	// must send its request in time and may not sit idle for ever.
	a.httpLn = netutil.LimitListener(ln, cfg.HTTP.MaxConnections)
	a.httpSrv = &http.Server{
		Handler:           httpapi.Handler(opts),
		ReadHeaderTimeout: min(10*time.Second, cfg.HTTP.ReadTimeout.Std()),
		ReadTimeout:       cfg.HTTP.ReadTimeout.Std(),
		IdleTimeout:       cfg.HTTP.IdleTimeout.Std(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	return nil
}
