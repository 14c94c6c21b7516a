package app

import (
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/broker"
	"github.com/shelterwatch/shelterwatch/ingest/discover"
	"github.com/shelterwatch/shelterwatch/ingest/mqttclient"
	"github.com/shelterwatch/shelterwatch/internal/tlsfiles"
)

// newIntake builds where readings come in: the embedded broker or the
// client of an external one.
func (a *App) newIntake() error {
	if a.cfg.Broker.Mode == config.ModeExternal {
		return a.newClient()
	}
	return a.newBroker()
}

func (a *App) newBroker() error {
	e := a.cfg.Broker.Embedded
	var accounts []broker.Account
	var anon, anonRetain []string
	for _, d := range a.cfg.Devices {
		filters := broker.PrefixFilters(a.Pipeline.Prefixes(d.ID))
		retain := broker.RetainFilters(d.Format, d.Topic)
		if d.StatusTopic != "" {
			// An ESPHome node's birth and will on a custom topic are its
			// availability: kept for later subscribers like the default.
			retain = append(retain, d.StatusTopic)
		}
		if d.PasswordHash == "" {
			// Only a device without a password may be spoken for by an
			// anonymous client; one with a password speaks for itself.
			anon = append(anon, filters...)
			anonRetain = append(anonRetain, retain...)
			continue
		}
		accounts = append(accounts, broker.Account{Username: d.ID, PasswordHash: d.PasswordHash.Reveal(),
			Publish: filters, Subscribe: filters, Retain: retain})
	}
	for _, u := range e.Users {
		accounts = append(accounts, broker.Account{Username: u.Username, PasswordHash: u.PasswordHash.Reveal(),
			Publish: u.Publish, Subscribe: u.Subscribe, Retain: u.Retain, MaxPacketBytes: uint32(u.MaxPacketBytes),
			ClientIDs: u.ClientIDs})
	}
	opts := broker.Options{
		Listen: e.Listen, TLSListen: e.TLSListen,
		AllowAnonymous: e.AllowAnonymous, AnonymousPublish: anon, AnonymousRetain: anonRetain,
		MaxPacketBytes:   uint32(e.MaxPacketBytes),
		Limits:           broker.ConnLimits{MaxClients: e.MaxClients, MaxPerAddress: e.MaxClientsPerAddress, ConnectTimeout: e.ConnectTimeout.Std()},
		MaxSessionExpiry: e.MaxSessionExpiry.Std(), MaxSessionsPerUser: e.MaxSessionsPerUser,
		Login:    broker.LoginLimits{MaxConcurrentChecks: e.MaxPasswordChecks},
		Accounts: accounts, Handle: a.Pipeline.Handle, HandleAsync: a.Pipeline.HandleAsync, Logger: a.log,
	}
	if e.TLSListen != "" {
		var err error
		if opts.TLSConfig, err = tlsfiles.Server(e.TLSCertFile, e.TLSKeyFile, a.log); err != nil {
			return fmt.Errorf("app: broker: %w", err)
		}
	}
	b, err := broker.New(opts)
	if err != nil {
		return err
	}
	a.broker = b
	return a.register("broker", b.Register)
}

func (a *App) newClient() error {
	x := a.cfg.Broker.External
	pw, err := x.Password()
	if err != nil {
		return fmt.Errorf("app: external broker password: %w", err)
	}
	tlsCfg, err := tlsfiles.Client(x.CAFile, x.CertFile, x.KeyFile)
	if err != nil {
		return fmt.Errorf("app: external broker: %w", err)
	}
	opts := mqttclient.Options{
		URL: x.URL, ClientID: x.ClientID, Username: x.Username, Password: pw.Reveal(), TLSConfig: tlsCfg,
		Subscriptions: a.Pipeline.Subscriptions(), MaxInFlight: x.MaxInFlight,
		ReconnectMax: x.ReconnectMax.Std(), KeepAlive: x.KeepAlive.Std(),
		Handle: a.Pipeline.Handle, HandleAsync: a.Pipeline.HandleAsync, Logger: a.log,
	}
	// Safety devices get a connection of their own: on a full disk the
	// other devices' messages wait unacknowledged and fill their
	// connection's in-flight window at the broker, which then sends that
	// connection nothing more; a smoke detector's message must not queue
	// behind them.
	safety, other, split := a.Pipeline.SafetySplit()
	if split {
		so := opts
		so.ClientID, so.Subscriptions = x.ClientID+"-safety", safety
		// Safety devices report on change: an eighth of the window is
		// plenty for them and keeps what the gateway holds near one
		// window (max_in_flight+1 plus this).
		so.MaxInFlight = max(16, x.MaxInFlight/8)
		if a.safetyClient, err = mqttclient.New(so); err != nil {
			return err
		}
		opts.Subscriptions = other
	}
	// Device announcements come on the main connection (the pipeline
	// hands them to the onboarding list, not to the store).
	opts.Subscriptions = append(slices.Clone(opts.Subscriptions), discover.Filters()...)
	if a.client, err = mqttclient.New(opts); err != nil {
		return err
	}
	if err := a.register("MQTT client", func(reg prometheus.Registerer) error {
		return a.client.Register(prometheus.WrapRegistererWith(prometheus.Labels{"connection": "main"}, reg))
	}); err != nil {
		return err
	}
	if a.safetyClient == nil {
		return nil
	}
	return a.register("MQTT client (safety devices)", func(reg prometheus.Registerer) error {
		return a.safetyClient.Register(prometheus.WrapRegistererWith(prometheus.Labels{"connection": "safety"}, reg))
	})
}

// watchedCertificates lists the certificate files whose expiry the
// gateway watches.
func watchedCertificates(cfg *config.Config) []tlsfiles.Watched {
	var out []tlsfiles.Watched
	if cfg.Broker.Mode == config.ModeExternal {
		if f := cfg.Broker.External.CertFile; f != "" {
			out = append(out, tlsfiles.Watched{Name: "mqtt-client", File: f})
		}
	} else if e := cfg.Broker.Embedded; e.TLSListen != "" {
		out = append(out, tlsfiles.Watched{Name: "broker", File: e.TLSCertFile})
	}
	if f := cfg.HTTP.TLSCertFile; f != "" {
		out = append(out, tlsfiles.Watched{Name: "http", File: f})
	}
	return out
}
