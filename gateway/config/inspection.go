package config

import (
	"fmt"
	"net/mail"
	"strings"

	"github.com/shelterwatch/shelterwatch/inspection/hazard"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// Hazards configures the hazard list (inspection/hazard): who
// rule-raised items are assigned to, the campaign seasons, and the
// rules' thresholds.
type Hazards struct {
	// Responsible is the person (or post) rule-raised items are assigned
	// to until someone changes it. Default "facility manager / 机构负责人".
	Responsible string `yaml:"responsible"`
	// ColdSeason and HotSeason ("MM-DD..MM-DD" in the facility's time
	// zone) are the campaign periods of the dorm-temperature rule and
	// the summary report's temperature exposure. Default 11-01..03-31 and
	// 06-01..09-30.
	ColdSeason string `yaml:"cold_season"`
	HotSeason  string `yaml:"hot_season"`
	// Rules overrides the built-in hazard rules' thresholds by id (the
	// README's hazard table); keys left out keep their defaults.
	Rules []HazardRule `yaml:"rules"`
}

// HazardRule is one hazard rule's thresholds.
type HazardRule struct {
	// ID is the hazard rule's id. Required.
	ID       string   `yaml:"id"`
	After    Duration `yaml:"after"`
	Count    int      `yaml:"count"`
	Window   Duration `yaml:"window"`
	Deadline Duration `yaml:"deadline"`
	ClearFor Duration `yaml:"clear_for"`
	Disabled bool     `yaml:"disabled"`
}

// DefaultHazardResponsible is hazards.responsible's default.
const DefaultHazardResponsible = "facility manager / 机构负责人"

func (c *Config) hazardDefaults() {
	h := &c.Hazards
	if h.Responsible == "" {
		h.Responsible = DefaultHazardResponsible
	}
	if h.ColdSeason == "" {
		h.ColdSeason = facility.DefaultColdSeason.String()
	}
	if h.HotSeason == "" {
		h.HotSeason = facility.DefaultHotSeason.String()
	}
}

func (v *validator) hazards() {
	h := &v.c.Hazards
	for key, s := range map[string]string{"hazards.cold_season": h.ColdSeason, "hazards.hot_season": h.HotSeason} {
		if _, err := facility.ParseSeason(s); err != nil {
			v.errorf(key, "%v", err)
		}
	}
	seen := map[string]int{}
	for i, r := range h.Rules {
		key := idx("hazards.rules", i)
		if first, dup := seen[r.ID]; dup {
			v.errorf(key+".id", "duplicate hazard rule %s (first at %s)", quote(r.ID), v.where(idx("hazards.rules", first)+".id"))
			continue
		}
		seen[r.ID] = i
		for _, p := range hazard.CheckRules(map[string]hazard.Thresholds{r.ID: r.thresholds()}) {
			_, msg, _ := strings.Cut(p, ": ")
			v.errorf(key, "%s", msg)
		}
	}
}

func (r HazardRule) thresholds() hazard.Thresholds {
	return hazard.Thresholds{After: r.After.Std(), Count: r.Count, Window: r.Window.Std(), Deadline: r.Deadline.Std(),
		ClearFor: r.ClearFor.Std(), Disabled: r.Disabled}
}

// HazardConfig is the hazard list's configuration. devices are the
// configured devices' models (DeviceModels); the caller passes the copy it
// shares, so that the hazard list and the reports keep no copy of their
// own (2–4 MB each at 10,000 devices).
func (c *Config) HazardConfig(devices []facility.Device) (hazard.Config, error) {
	cold, err := facility.ParseSeason(c.Hazards.ColdSeason)
	if err != nil {
		return hazard.Config{}, fmt.Errorf("hazards.cold_season: %w", err)
	}
	hot, err := facility.ParseSeason(c.Hazards.HotSeason)
	if err != nil {
		return hazard.Config{}, fmt.Errorf("hazards.hot_season: %w", err)
	}
	rules := map[string]hazard.Thresholds{}
	for _, r := range c.Hazards.Rules {
		rules[r.ID] = r.thresholds()
	}
	cams := make([]facility.Camera, len(c.Cameras))
	for i := range c.Cameras {
		cams[i] = c.Cameras[i].Model()
	}
	return hazard.Config{Location: c.Facility.Location, Zones: c.ZoneModels(), Devices: devices, Cameras: cams,
		Rules: rules, Responsible: c.Hazards.Responsible, ColdSeason: cold, HotSeason: hot}, nil
}

// Reports configures the summary reports (inspection/report,
// inspection/filing).
type Reports struct {
	// Schedule lists the period kinds (month, quarter, notice) whose
	// report is generated when a period completes. Default [notice]: the
	// civil-affairs notice's four-month periods ending in April, August
	// and December.
	Schedule []string `yaml:"schedule"`
	// MailChannel names the notify channel (type email) whose server
	// sends reports to MailTo. Optional.
	MailChannel string   `yaml:"mail_channel"`
	MailTo      []string `yaml:"mail_to"`
	// Keep is how many reports the gateway keeps, newest first.
	// Default 60.
	Keep int `yaml:"keep"`
	// SupervisedTag marks the zones that are foster placements: the
	// report counts the remote supervision of their cameras. Default
	// "foster".
	SupervisedTag string `yaml:"supervised_tag"`
	// DepartmentLevel is the escalation level at which the civil-affairs
	// department is told (alarms.escalation: level i after its i-th
	// duration). Default: the last level.
	DepartmentLevel int `yaml:"department_level"`
}

// Defaults of the reports section.
const (
	DefaultReportKeep    = 60
	DefaultSupervisedTag = "foster"
)

func (c *Config) reportDefaults() {
	r := &c.Reports
	if !c.src.isSet("reports.schedule") {
		r.Schedule = []string{"notice"}
	}
	if r.Keep == 0 {
		r.Keep = DefaultReportKeep
	}
	if r.SupervisedTag == "" {
		r.SupervisedTag = DefaultSupervisedTag
	}
	if !c.src.isSet("reports.department_level") {
		r.DepartmentLevel = len(c.Alarms.Escalation)
	}
}

func (v *validator) reports() {
	r := &v.c.Reports
	for i, k := range r.Schedule {
		if k != "month" && k != "quarter" && k != "notice" {
			v.errorf(idx("reports.schedule", i), "want month, quarter or notice, got %s", quote(k))
		}
	}
	if r.Keep < 1 {
		v.errorf("reports.keep", "must be at least 1")
	}
	if r.DepartmentLevel < 0 || r.DepartmentLevel > len(v.c.Alarms.Escalation) {
		v.errorf("reports.department_level", "must be an escalation level, 0 to %d (alarms.escalation has %d)",
			len(v.c.Alarms.Escalation), len(v.c.Alarms.Escalation))
	}
	for i, a := range r.MailTo {
		if _, err := mail.ParseAddress(a); err != nil {
			v.errorf(idx("reports.mail_to", i), "not an e-mail address: %s", quote(a))
		}
	}
	switch {
	case len(r.MailTo) > 0 && r.MailChannel == "":
		v.errorf("reports.mail_channel", "required with mail_to: the name of a notify channel of type email")
	case r.MailChannel != "":
		found := false
		for _, ch := range v.c.Notify.Channels {
			if ch.Name == r.MailChannel {
				found = true
				if ch.Type != "email" {
					v.errorf("reports.mail_channel", "channel %s is of type %s, not email", quote(r.MailChannel), ch.Type)
				}
			}
		}
		if !found {
			v.errorf("reports.mail_channel", "no notify channel %s", quote(r.MailChannel))
		}
		if len(r.MailTo) == 0 {
			v.errorf("reports.mail_to", "required with mail_channel: who receives the reports")
		}
	}
}
