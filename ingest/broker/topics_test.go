package broker

import "testing"

func TestFilterCovers(t *testing.T) {
	cases := []struct {
		allowed, requested string
		want               bool
	}{
		{"zigbee2mqtt/kitchen/smoke", "zigbee2mqtt/kitchen/smoke", true},
		{"zigbee2mqtt/kitchen/smoke", "zigbee2mqtt/kitchen/smoke/availability", false},
		{"zigbee2mqtt/kitchen/smoke/#", "zigbee2mqtt/kitchen/smoke/availability", true},
		{"zigbee2mqtt/kitchen/smoke/#", "zigbee2mqtt/kitchen/smoke", true}, // # matches the parent level too
		{"zigbee2mqtt/kitchen/smoke/#", "zigbee2mqtt/kitchen/smokey", false},
		{"zigbee2mqtt/kitchen/smoke/#", "zigbee2mqtt/kitchen/#", false}, // wider than allowed
		{"zigbee2mqtt/#", "zigbee2mqtt/+/smoke", true},
		{"tele/+/SENSOR", "tele/tasmota_A/SENSOR", true},
		{"tele/+/SENSOR", "tele/+/SENSOR", true},
		{"tele/+/SENSOR", "tele/a/b/SENSOR", false},
		{"tele/tasmota_A/SENSOR", "tele/+/SENSOR", false}, // a wildcard subscription is wider
		{"#", "anything/at/all", true},
		{"a/b", "a", false},
	}
	for _, c := range cases {
		t.Run(c.allowed+" ⊇ "+c.requested, func(t *testing.T) {
			if got := filterCovers(c.allowed, c.requested); got != c.want {
				t.Fatalf("filterCovers(%q, %q) = %v, want %v", c.allowed, c.requested, got, c.want)
			}
		})
	}
}
