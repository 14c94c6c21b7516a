package app

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/health"
	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/inspection/hazard"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
	"github.com/shelterwatch/shelterwatch/rules/notify"
)

// rulesConfig builds the engine's configuration from the gateway config
// and the rules file's current content.
func rulesConfig(cfg *config.Config, devices []facility.Device) (engine.Config, error) {
	var extra []engine.RuleConfig
	if cfg.RulesFile != "" {
		rs, err := config.LoadRulesFile(cfg.RulesFile)
		if err != nil {
			return engine.Config{}, err
		}
		extra = rs
	}
	return engine.Config{
		Facility:   cfg.Facility.ID,
		Location:   cfg.Facility.Location,
		Rules:      cfg.AllRules(extra),
		Escalation: engine.Escalation{Levels: cfg.Alarms.EscalationLevels(), Repeat: cfg.Alarms.Repeat.Std()},
		Zones:      cfg.ZoneModels(),
		Devices:    devices,
	}, nil
}

// deviceModels are the configured devices and then the gateway's own, as
// the facility model has them: built once and shared, read-only, by the
// pipeline, the rules and the API (at 10,000 devices each copy was 2 MB).
func (a *App) deviceModels() []facility.Device {
	if a.models == nil {
		gw := gatewayDevices(a.cfg)
		a.models = append(make([]facility.Device, 0, len(a.cfg.Devices)+len(gw)), a.cfg.DeviceModels()...)
		a.models = append(a.models, gw...)
	}
	return a.models
}

// configuredModels are the configured devices of deviceModels, without the
// gateway's own (capacity clipped: nobody may append into the shared copy).
func (a *App) configuredModels() []facility.Device {
	n := len(a.cfg.Devices)
	return a.deviceModels()[:n:n]
}

// gatewayDevices are the built-in devices through which the gateway's
// parts report their faults (ingest/health): one per always-on camera,
// two per InfluxDB target (delivery, credentials), the store, the audit
// log, and each watched certificate.
func gatewayDevices(cfg *config.Config) []facility.Device {
	dev := func(id, name, zone string) facility.Device {
		return facility.Device{ID: id, Name: name, Kind: reading.KindFault, Zone: zone, Builtin: true}
	}
	out := []facility.Device{
		dev(hazard.OverdueDevice(""), "hazard list", ""),
		dev(health.StoreDevice, "local store", ""),
		dev(health.AuditDevice, "audit log", ""),
		dev(health.StoreBudgetDevice, "store disk budget", ""),
		dev(health.DiskDevice, "gateway disk", ""),
		dev(health.ClockDevice, "system clock", ""),
	}
	if cfg.Backup.Dir != "" {
		out = append(out, dev(health.BackupDevice, "nightly backup", ""))
	}
	for _, z := range cfg.Zones {
		out = append(out, dev(hazard.OverdueDevice(z.ID), "hazard list "+z.ID, z.ID))
	}
	for _, c := range cfg.Cameras {
		if !c.OnDemand {
			m := c.Model()
			out = append(out, dev(health.CameraDevice(c.ID), m.DisplayName(), c.Zone))
		}
	}
	for _, t := range cfg.Influx {
		out = append(out, dev(health.ForwardDevice(t.ID), t.ID, ""), dev(health.ForwardAuthDevice(t.ID), t.ID, ""))
	}
	for _, w := range watchedCertificates(cfg) {
		out = append(out, dev(health.CertDevice(w.Name), w.Name, ""))
	}
	seen := map[string]bool{}
	for i := range cfg.Devices {
		if b := cfg.Devices[i].BridgeTopic(); b != "" && !seen[b] {
			seen[b] = true
			out = append(out, dev(pipeline.BridgeDevice(b), "Zigbee2MQTT "+b, ""))
		}
	}
	return out
}

func (a *App) newRules() error {
	ec, err := rulesConfig(a.cfg, a.deviceModels())
	if err != nil {
		return fmt.Errorf("app: rules: %w", err)
	}
	a.Rules, err = engine.New(engine.Options{Config: ec, Store: a.Store, Dir: a.cfg.Alarms.Dir, Audit: a.Audit,
		Notifier: alarmTap{a.Outbox, a.alarmsChanged, a.hazardEvent}, Logger: a.log})
	if err != nil {
		return fmt.Errorf("app: rules: %w", err)
	}
	return a.register("rules", a.Rules.Register)
}

// alarmTap passes the engine's alarm events to the outbox and tells the
// console's live stream that alarms changed. The signal never blocks the
// engine: one pending value stands for any number of changes.
type alarmTap struct {
	engine.Notifier
	changed chan<- struct{}
	// hazards sees every event too (it never blocks).
	hazards func(alarm.Event)
}

func (t alarmTap) Enqueue(ctx context.Context, ev alarm.Event) error {
	err := t.Notifier.Enqueue(ctx, ev)
	if err == nil {
		t.hazards(ev)
	}
	select {
	case t.changed <- struct{}{}:
	default:
	}
	return err
}

// newHazards loads the hazard list, which judges the engine's alarms
// and reports overdue items through the health reporter.
func (a *App) newHazards() error {
	hc, err := a.cfg.HazardConfig(a.configuredModels())
	if err != nil {
		return fmt.Errorf("app: hazards: %w", err)
	}
	a.Hazards, err = hazard.New(hazard.Options{Config: hc, Dir: a.cfg.Alarms.Dir, Audit: a.Audit, Alarms: a.Rules,
		Faults: a.Health, Logger: a.log})
	if err != nil {
		return fmt.Errorf("app: hazards: %w", err)
	}
	return a.register("hazards", a.Hazards.Register)
}

// hazardEvent hands an alarm event to the hazard list (built after the
// engine, before anything runs).
func (a *App) hazardEvent(ev alarm.Event) {
	if a.Hazards != nil {
		a.Hazards.AlarmEvent(ev)
	}
}

// newNotify opens the notification outbox with the configured channels.
// MQTT channels publish through the embedded broker, or through the
// gateway's connection to the external one.
func (a *App) newNotify() error {
	env := notify.Env{Dir: filepath.Join(a.cfg.Alarms.Dir, "outbox"), Location: a.cfg.Facility.Location, Logger: a.log}
	switch {
	case a.broker != nil:
		env.Publisher = a.broker
	case a.client != nil:
		env.Publisher = a.client
	}
	ob, err := notify.New(a.cfg.Notify, env)
	if err != nil {
		return fmt.Errorf("app: notifications: %w", err)
	}
	a.Outbox = ob
	return a.register("notification", ob.Register)
}

// ReloadRules re-reads the rules file and swaps the rules in when every
// rule checks out; on any error the running rules stay. Active alarms and
// pending timers are kept.
func (a *App) ReloadRules(ctx context.Context) error {
	ec, err := rulesConfig(a.cfg, a.deviceModels())
	if err != nil {
		return err
	}
	if err := a.Rules.Reload(ctx, ec); err != nil {
		return err
	}
	a.log.Info("rules: reloaded", "rules", len(ec.Rules))
	return nil
}
