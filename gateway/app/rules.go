package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/selfalarm"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
	"github.com/shelterwatch/shelterwatch/rules/notify"
)

// rulesConfig builds the engine's configuration from the gateway config
// and the rules file's current content.
func rulesConfig(cfg *config.Config) (engine.Config, error) {
	var extra []engine.RuleConfig
	if cfg.RulesFile != "" {
		rs, err := config.LoadRulesFile(cfg.RulesFile)
		if err != nil {
			return engine.Config{}, err
		}
		extra = rs
	}
	ec := engine.Config{
		Facility:   cfg.Facility.ID,
		Location:   cfg.Facility.Location,
		Rules:      cfg.AllRules(extra),
		Escalation: engine.Escalation{Levels: cfg.Alarms.EscalationLevels(), Repeat: cfg.Alarms.Repeat.Std()},
	}
	for _, z := range cfg.Zones {
		ec.Zones = append(ec.Zones, engine.Zone{ID: z.ID, Name: z.Name, NameZH: z.NameZH, Tags: z.Tags})
	}
	for _, d := range cfg.Devices {
		ec.Devices = append(ec.Devices, engine.Device{ID: d.ID, Name: d.Name, Kind: d.Kind, Zone: d.Zone, OfflineAfter: d.OfflineAfter.Std()})
	}
	return ec, nil
}

func (a *App) newRules() error {
	ec, err := rulesConfig(a.cfg)
	if err != nil {
		return fmt.Errorf("app: rules: %w", err)
	}
	a.Rules, err = engine.New(engine.Options{Config: ec, Store: a.Store, Dir: a.cfg.Alarms.Dir, Notifier: a.Outbox, Logger: a.log})
	if err != nil {
		return fmt.Errorf("app: rules: %w", err)
	}
	return a.Rules.Register(a.reg)
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
	a.Alarms.OnChange = a.notifySelfAlarm
	return ob.Register(a.reg)
}

// notifySelfAlarm tells people about the gateway's own faults (data lost
// to the disk budget, InfluxDB unreachable for long, credentials refused)
// through the same channels as sensor alarms.
func (a *App) notifySelfAlarm(c selfalarm.Change) {
	sev := alarm.SeverityTrouble
	if c.Alarm.Severity == selfalarm.Critical {
		sev = alarm.SeverityCritical
	}
	now := time.Now()
	al := alarm.Alarm{
		ID: "gateway@self:" + c.Alarm.ID, Seq: uint64(c.Alarm.Since.UnixNano()), Rule: "gateway-self", Severity: sev,
		Facility: a.cfg.Facility.ID,
		Title:    alarm.Text{EN: "Gateway fault: " + c.Alarm.ID, ZH: "网关故障：" + c.Alarm.ID},
		Body:     alarm.Text{EN: c.Alarm.Message, ZH: c.Alarm.MessageZH},
		State:    alarm.StateFiring, Since: c.Alarm.Since, Updated: now,
	}
	kind := alarm.EventFiring
	if !c.Raised {
		al.State, al.ResolvedAt, kind = alarm.StateResolved, now, alarm.EventResolved
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Outbox.Enqueue(ctx, alarm.Event{Kind: kind, At: now, Alarm: al}); err != nil {
		a.log.Error("self-alarm: notification not queued", "alarm", c.Alarm.ID, "err", err)
	}
}

// ReloadRules re-reads the rules file and swaps the rules in when every
// rule checks out; on any error the running rules stay. Active alarms and
// pending timers are kept.
func (a *App) ReloadRules(ctx context.Context) error {
	ec, err := rulesConfig(a.cfg)
	if err != nil {
		return err
	}
	if err := a.Rules.Reload(ctx, ec); err != nil {
		return err
	}
	a.log.Info("rules: reloaded", "rules", len(ec.Rules))
	return nil
}
