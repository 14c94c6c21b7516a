package config

import (
	"fmt"
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

// HazardConfig is the hazard list's configuration.
func (c *Config) HazardConfig() (hazard.Config, error) {
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
	return hazard.Config{Location: c.Facility.Location, Zones: c.ZoneModels(), Devices: c.DeviceModels(), Cameras: cams,
		Rules: rules, Responsible: c.Hazards.Responsible, ColdSeason: cold, HotSeason: hot}, nil
}
