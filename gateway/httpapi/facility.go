package httpapi

import (
	"net/http"
	"strings"

	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// Facility is the place the gateway serves, as the config describes it:
// what the console shows (names, the zones, the time zone its dates are
// in) and what reports need (each device's zone).
type Facility struct {
	ID, Name, NameZH string
	// Timezone is an IANA time zone name ("Asia/Shanghai").
	Timezone string
	Zones    []facility.Zone
	// Devices are the configured devices and the gateway's built-in
	// ones: the alarm report takes an alarm's zone from its device.
	Devices []facility.Device
}

// zone returns the zone with id, or nil.
func (f *Facility) zone(id string) *facility.Zone {
	for i := range f.Zones {
		if f.Zones[i].ID == id {
			return &f.Zones[i]
		}
	}
	return nil
}

// alarmZone is the zone of the alarm with id (<rule>@dev:<device>,
// <rule>@zone:<zone> or <rule>@gateway): "" for a gateway-wide alarm and
// for a device the config no longer has.
func (f *Facility) alarmZone(id string) string {
	_, subject, _ := strings.Cut(id, "@")
	if z, ok := strings.CutPrefix(subject, "zone:"); ok {
		return z
	}
	if d, ok := strings.CutPrefix(subject, "dev:"); ok {
		for i := range f.Devices {
			if f.Devices[i].ID == d {
				return f.Devices[i].Zone
			}
		}
	}
	return ""
}

type facilityJSON struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	NameZH   string     `json:"name_zh"`
	Timezone string     `json:"timezone"`
	Zones    []zoneJSON `json:"zones"`
	Version  string     `json:"version"`
}

type zoneJSON struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	NameZH string   `json:"name_zh"`
	Tags   []string `json:"tags"`
}

// facility describes the facility to any caller: the console needs its
// time zone and zone names before it shows anything.
func (a *api) facility(w http.ResponseWriter, r *http.Request) {
	f := a.opts.Facility
	out := facilityJSON{ID: f.ID, Name: f.Name, NameZH: f.NameZH, Timezone: f.Timezone, Zones: []zoneJSON{}, Version: a.opts.Version}
	for _, z := range f.Zones {
		tags := z.Tags
		if tags == nil {
			tags = []string{}
		}
		out.Zones = append(out.Zones, zoneJSON{ID: z.ID, Name: z.Name, NameZH: z.NameZH, Tags: tags})
	}
	writeJSON(w, out)
}
