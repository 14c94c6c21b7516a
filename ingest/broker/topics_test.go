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

// Every payload format has its availability topic among the topics a
// device may retain, and that topic is one the device may publish to.
func TestRetainFiltersWithinTheDevicesTopics(t *testing.T) {
	for _, tc := range []struct{ format, base, availability string }{
		{"native", "sw/dorm1-temp", "sw/dorm1-temp/status"},
		{"esphome", "livingroom", "livingroom/status"},
		{"zigbee2mqtt", "zigbee2mqtt/hall-smoke", "zigbee2mqtt/hall-smoke/availability"},
		{"tasmota", "tasmota_0A1B2C", "tele/tasmota_0A1B2C/LWT"},
		{"shelly", "shellyplusht-b8d6", "shellyplusht-b8d6/online"},
		{"homie", "homie/5/boiler", "homie/5/boiler/$state"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			if !anyCovers(RetainFilters(tc.format, tc.base), tc.availability) {
				t.Fatalf("%s may not retain on %s", tc.format, tc.availability)
			}
			if anyCovers(RetainFilters(tc.format, tc.base), "other/"+tc.availability) {
				t.Fatalf("%s may retain outside its topics", tc.format)
			}
		})
	}
}
