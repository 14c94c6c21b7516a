// Package app is the gateway's composition root: it turns a validated
// config into components — durable store, audit log, fault reporter,
// InfluxDB forwarders, notification outbox, rules engine, cameras and
// WHEP, HTTP server, and the MQTT intake (embedded broker or external
// client) — and runs them as one ordered group (internal/lifecycle).
//
// The order is the lifecycle: stages start in the order of Stages and stop
// in reverse, each after the one after it has fully stopped. Intake starts
// last and stops first, so no message is acknowledged after the stages
// that make it durable have begun to stop; the store starts first and
// closes last, after every append already queued is written. The package
// holds wiring only: what each component does lives in its own package.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/broker"
	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/health"
	"github.com/shelterwatch/shelterwatch/ingest/mqttclient"
	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/inspection/filing"
	"github.com/shelterwatch/shelterwatch/inspection/hazard"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/internal/lifecycle"
	"github.com/shelterwatch/shelterwatch/internal/tlsfiles"
	"github.com/shelterwatch/shelterwatch/rules/engine"
	"github.com/shelterwatch/shelterwatch/rules/notify"
	"github.com/shelterwatch/shelterwatch/video/cameras"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

// Version is set at build time (-ldflags "-X ...app.Version=...").
var Version = "dev"

// ignoredTopics are infrastructure chatter that shares the broker with
// device data: counted and dropped, never dead-lettered.
var ignoredTopics = []string{"zigbee2mqtt/bridge", "homeassistant", "tasmota/discovery", "$SYS"}

// App is a gateway, built and ready to Run.
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	Store    *store.Store
	Pipeline *pipeline.Pipeline
	State    *devstate.Tracker
	// discovered is what devices announce about themselves, for the
	// console's onboarding list.
	discovered *discovered
	// Audit is the audit log: alarm actions, video views, rule reloads.
	Audit *audit.Log
	// Health writes the gateway's faults about itself as readings of its
	// built-in devices; the rules turn them into alarms.
	Health *health.Reporter
	// Forwarders send the store's log to the configured InfluxDB targets.
	Forwarders []*forward.Forwarder
	// Rules evaluates the safety rules and keeps every alarm, the
	// gateway's own faults included.
	Rules *engine.Engine
	// Hazards keeps the hazard list: items raised from the alarms or by
	// inspectors, their deadlines and rectification.
	Hazards *hazard.Service
	// Reports files the summary reports (schedule, on demand, mail).
	Reports *filing.Service
	// Outbox delivers alarm notifications durably.
	Outbox *notify.Outbox
	// models is deviceModels' (built once).
	models []facility.Device
	// alarmsChanged gets a value (without blocking) whenever the rules
	// hand an alarm event to the outbox: the console's live stream looks
	// at once instead of at its next tick.
	alarmsChanged chan struct{}
	// Cameras and WHEP relay the cameras to viewers (nil without cameras).
	Cameras *cameras.Set
	WHEP    *whep.Server
	broker  *broker.Broker
	client  *mqttclient.Client
	// safetyClient carries the safety devices' messages (newClient); nil
	// when there are none or the embedded broker runs.
	safetyClient *mqttclient.Client
	httpSrv      *http.Server
	httpLn       net.Listener
	// httpTLS serves HTTPS's certificate (nil for plain HTTP).
	httpTLS *tlsfiles.Reloader
	// metricsSrv serves /metrics on metricsLn (nil: on the API's).
	metricsSrv *http.Server
	metricsLn  net.Listener
	ready      atomic.Bool
	readyCh    chan struct{}
	// control serves the control socket (backups); backupMu lets one
	// backup run at a time.
	controlSrv *http.Server
	controlLn  net.Listener
	backupMu   sync.Mutex
	stages     lifecycle.Group
}

// New builds every component from cfg and binds the listeners, so that
// configuration and port problems surface before Run.
func New(cfg *config.Config, log *slog.Logger) (a *App, err error) {
	a = &App{cfg: cfg, log: log, reg: prometheus.NewRegistry(), readyCh: make(chan struct{}), alarmsChanged: make(chan struct{}, 1)}
	// Error returns set a to nil; the deferred cleanup needs what was built.
	built := a
	defer func() {
		if err != nil {
			built.closePartial()
		}
	}()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, build := range []func() error{
		a.refuseNewerState, a.newHealth, a.newStore, a.newAudit, a.newPipeline, a.newForwarders, a.newIntake,
		a.newNotify, a.newRules, a.newHazards, a.newReports, a.newVideo, a.newHTTP, a.newControl,
	} {
		if err = build(); err != nil {
			return nil, err
		}
	}
	a.stages = lifecycle.Group{Logger: log, OnStarted: a.started, OnStopping: a.stopping}
	a.stages.Add(a.Stages()...)
	return a, nil
}

// refuseNewerState looks at the alarm state's and the hazard list's
// formats before the store opens: opening the store upgrades an older one,
// so a refusal after it would leave the data changed.
func (a *App) refuseNewerState() error {
	if err := engine.CheckStateVersion(a.cfg.Alarms.Dir); err != nil {
		return err
	}
	return hazard.CheckStateVersion(a.cfg.Alarms.Dir)
}

func (a *App) newStore() (err error) {
	a.Store, err = store.Open(store.Options{
		Dir:            a.cfg.Store.Dir,
		Retention:      a.cfg.Store.Retention.Std(),
		DiskBudget:     int64(a.cfg.Store.DiskBudget),
		CommitMaxBatch: a.cfg.Store.CommitMaxBatch,
		DeadLetterMax:  a.cfg.Ingest.DeadLetterMax,
		Logger:         a.log,
		OnUnforwardedDrop: func(reason string, n uint64) {
			// The consumer still behind is in practice an InfluxDB target
			// that has been away; the rules engine is never far behind.
			a.Health.Event(health.StoreDevice,
				fmt.Sprintf("the local store deleted %d readings (%s) before every consumer (InfluxDB targets) had them", n, reason))
		},
		OnBudget:     func(condition string) { a.Health.Set(health.StoreBudgetDevice, condition) },
		Reserve:      int64(a.cfg.Store.DiskReserve),
		BallastBytes: int64(a.cfg.Store.BallastBytes),
		OnSpace:      func(condition string) { a.Health.Set(health.DiskDevice, condition) },
	})
	if err != nil {
		return err
	}
	a.removeStaleScratch()
	return a.register("store", a.Store.Register)
}

func (a *App) newAudit() (err error) {
	ac := a.cfg.Alarms.Audit
	a.Audit, err = audit.Open(a.cfg.Alarms.AuditPath(), audit.Options{
		RotateBytes: int64(ac.RotateBytes), RotateEvery: ac.RotateEvery.Std(), Keep: ac.Keep, MaxAge: ac.MaxAge.Std(),
		Logger: a.log,
		OnWrite: func(err error) {
			// Called after New: Health is set. A write that fails is a
			// fault until one succeeds again.
			if err != nil {
				a.Health.Set(health.AuditDevice, "writing the audit log failed: "+err.Error())
			} else {
				a.Health.Set(health.AuditDevice, health.OK)
			}
		},
	})
	return err
}

func (a *App) newHealth() error {
	zones := map[string]string{}
	for _, c := range a.cfg.Cameras {
		zones[health.CameraDevice(c.ID)] = c.Zone
	}
	for _, z := range a.cfg.Zones {
		zones[hazard.OverdueDevice(z.ID)] = z.ID
	}
	// Built before the store, which reports data loss to it; it reaches the
	// store only from Run, once New has opened it.
	a.Health = health.New(health.Options{Facility: a.cfg.Facility.ID, Zones: zones, Logger: a.log,
		Store:    appendFunc(func(ctx context.Context, rs []reading.Reading) error { return a.Store.Append(ctx, rs) }),
		Unstored: a.unstored})
	return a.register("health", a.Health.Register)
}

func (a *App) newPipeline() (err error) {
	devs := a.deviceModels()[:len(a.cfg.Devices):len(a.cfg.Devices)]
	a.State = devstate.New(devs, nil)
	a.discovered = newDiscovered(a.cfg)
	if err := a.register("discovery", func(reg prometheus.Registerer) error { return reg.Register(a.discovered.bad) }); err != nil {
		return err
	}
	if err = a.restoreState(); err != nil {
		return err
	}
	a.Pipeline, err = pipeline.New(pipeline.Options{
		Facility:     a.cfg.Facility.ID,
		Location:     a.cfg.Facility.Location,
		Devices:      devs,
		Decoders:     decode.All(),
		Store:        a.Store,
		State:        a.State,
		MaxPayload:   int(a.cfg.Ingest.MaxPayloadBytes),
		MaxClockSkew: a.cfg.Ingest.MaxClockSkew.Std(),
		Ignore:       ignoredTopics,
		Unstored:     a.unstored,
		Unrouted:     a.discovered.offer,
		Logger:       a.log,
	})
	if err != nil {
		return err
	}
	return a.register("pipeline", a.Pipeline.Register)
}

// unstored hands readings the store refused (a full disk) to the rules
// engine, which evaluates them in memory: the safety rules do not wait for
// disk space. The engine is built after the pipeline, which calls this
// only once the broker runs.
func (a *App) unstored(ctx context.Context, rs []reading.Reading) {
	if a.Rules != nil {
		a.Rules.Unstored(ctx, rs)
	}
}

// restoreState seeds device state from the newest stored value of every
// series, so a restart keeps last values and last-seen times.
func (a *App) restoreState() error {
	for _, sr := range a.Store.Series(store.Query{}) {
		p, ok, err := a.Store.Last(sr)
		if err != nil {
			return fmt.Errorf("app: restore device state: %w", err)
		}
		if ok {
			a.State.Restore(sr.Device, sr.Kind, devstate.LastValue{Value: p.Value, Time: p.Time})
		}
	}
	return nil
}

// appendFunc adapts a function to health.Appender.
type appendFunc func(ctx context.Context, rs []reading.Reading) error

func (f appendFunc) Append(ctx context.Context, rs []reading.Reading) error { return f(ctx, rs) }

func (a *App) register(what string, reg func(prometheus.Registerer) error) error {
	if err := reg(a.reg); err != nil {
		return fmt.Errorf("app: register %s metrics: %w", what, err)
	}
	return nil
}

// BrokerAddr is the embedded broker's bound TCP address ("" in external mode).
func (a *App) BrokerAddr() string {
	if a.broker == nil {
		return ""
	}
	return a.broker.Addr()
}

// BrokerTLSAddr is the embedded broker's bound TLS address ("" when off).
func (a *App) BrokerTLSAddr() string {
	if a.broker == nil {
		return ""
	}
	return a.broker.TLSAddr()
}

// HTTPAddr is the bound HTTP address.
func (a *App) HTTPAddr() string { return a.httpLn.Addr().String() }

// Ready is closed once Run has started every component.
func (a *App) Ready() <-chan struct{} { return a.readyCh }

// Registry is the Prometheus registry (for components added by the caller).
func (a *App) Registry() *prometheus.Registry { return a.reg }

func (a *App) notReady() string {
	if !a.ready.Load() {
		return "starting or stopping"
	}
	if a.client != nil && !a.client.Connected() {
		return "not connected to the external MQTT broker"
	}
	if a.safetyClient != nil && !a.safetyClient.Connected() {
		return "the safety devices' connection to the external MQTT broker is down"
	}
	return ""
}

func (a *App) started() {
	a.ready.Store(true)
	close(a.readyCh)
	a.log.Info("gateway: ready", "facility", a.cfg.Facility.ID, "version", Version,
		"broker", a.BrokerAddr(), "http", a.HTTPAddr(), "devices", len(a.cfg.Devices), "mode", string(a.cfg.Broker.Mode))
}

func (a *App) stopping() {
	a.ready.Store(false)
	a.log.Info("gateway: shutting down")
}

// Run serves until ctx is done or a stage fails, then stops every stage in
// reverse order and returns.
func (a *App) Run(ctx context.Context) error {
	err := a.stages.Run(ctx)
	a.log.Info("gateway: stopped")
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
}

// StageNames lists the stages in start order (they stop in reverse).
func (a *App) StageNames() []string { return a.stages.Names() }

// closePartial releases what New built before it failed.
func (a *App) closePartial() {
	if a.broker != nil {
		_ = a.broker.Close()
	}
	if a.httpLn != nil {
		_ = a.httpLn.Close()
	}
	if a.metricsLn != nil {
		_ = a.metricsLn.Close()
	}
	if a.controlLn != nil {
		_ = a.controlLn.Close()
	}
	if a.WHEP != nil {
		_ = a.WHEP.Close()
	}
	if a.Cameras != nil {
		a.Cameras.Close()
	}
	if a.Outbox != nil {
		_ = a.Outbox.Close()
	}
	if a.Audit != nil {
		_ = a.Audit.Close()
	}
	if a.Store != nil {
		_ = a.Store.Close()
	}
}

// DefaultGCPercent is the garbage collector's target the gateway runs with
// unless GOGC is set: a little more GC work than Go's default (100) for a
// smaller peak heap, which matters on Raspberry Pi class gateways (measured:
// 64 → 59 MB RSS at 1,000 devices, about 4 % less peak throughput).
const DefaultGCPercent = 75

// MemProfileEnv names the environment variable that keeps the runtime's
// sampling of allocations on (any value), for heap profiles of a gateway
// process (the bench's).
const MemProfileEnv = "SHELTERWATCH_MEMPROFILE"

// TuneRuntime applies DefaultGCPercent when the operator has not set GOGC,
// and turns off the runtime's sampling of allocations: the gateway serves
// no profiles, and the samples' records took 1.4 MB at 1,000 devices.
// Commands that run the gateway call it once at start.
func TuneRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if os.Getenv(MemProfileEnv) == "" {
		runtime.MemProfileRate = 0
	}
}

// Alive reports whether the gateway's core answers: the rules engine,
// which every alarm goes through, takes a request within ctx. The
// systemd watchdog pings only while it does.
func (a *App) Alive(ctx context.Context) error {
	if _, err := a.Rules.Active(ctx); err != nil {
		return fmt.Errorf("rules engine: %w", err)
	}
	return nil
}
