package httpapi

import (
	"testing"

	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// An alarm's zone comes from its id: the zone of a zone-wide alarm, the
// device's zone for a device's, none for a gateway-wide one.
func TestAlarmZone(t *testing.T) {
	f := Facility{Zones: []facility.Zone{{ID: "kitchen"}, {ID: "hall"}},
		Devices: []facility.Device{{ID: "kitchen-smoke", Zone: "kitchen"}, {ID: "gateway.camera.ward-cam", Zone: "hall"}, {ID: "gateway.store"}}}
	for id, want := range map[string]string{
		"smoke@dev:kitchen-smoke":                 "kitchen",
		"camera-down@dev:gateway.camera.ward-cam": "hall",
		"store-data-loss@dev:gateway.store":       "",
		"heat@zone:kitchen":                       "kitchen",
		"no-readings@gateway":                     "",
		"door@dev:removed-door":                   "",
		"not an alarm id":                         "",
	} {
		if got := f.alarmZone(id); got != want {
			t.Errorf("alarmZone(%q) = %q, want %q", id, got, want)
		}
	}
}
