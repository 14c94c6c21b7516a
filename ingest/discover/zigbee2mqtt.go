package discover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Zigbee2MQTT's <base>/bridge/devices is the retained list of every paired
// device (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html#zigbee2mqtt-bridge-devices):
// ieee_address, friendly_name, type (Coordinator, Router, EndDevice),
// supported, disabled and the definition with its exposes
// (https://www.zigbee2mqtt.io/guide/usage/exposes.html). A device's state is
// published on <base>/<friendly_name>.

type z2mBridge struct {
	devices  []z2mDevice
	retained bool
}

type z2mDevice struct {
	IEEE         string         `json:"ieee_address"`
	FriendlyName string         `json:"friendly_name"`
	Type         string         `json:"type"`
	Supported    *bool          `json:"supported"`
	Disabled     bool           `json:"disabled"`
	Definition   *z2mDefinition `json:"definition"`
}

type z2mDefinition struct {
	Model       string      `json:"model"`
	Vendor      string      `json:"vendor"`
	Description string      `json:"description"`
	Exposes     []z2mExpose `json:"exposes"`
}

type z2mExpose struct {
	Type     string      `json:"type"`
	Name     string      `json:"name"`
	Property string      `json:"property"`
	Access   *int        `json:"access"`
	Values   []any       `json:"values"`
	Features []z2mExpose `json:"features"`
}

// z2mProperties are the state fields the zigbee2mqtt decoder reads and
// the kinds they become.
var z2mProperties = map[string]reading.Kind{
	"smoke":       reading.KindSmoke,
	"contact":     reading.KindDoor, // true = closed; the decoder turns it into door open
	"occupancy":   reading.KindMotion,
	"water_leak":  reading.KindWaterLeak,
	"tamper":      reading.KindTamper,
	"battery_low": reading.KindBatteryLow,
	"temperature": reading.KindTemperature,
	"humidity":    reading.KindHumidity,
	"pressure":    reading.KindPressure,
	"co":          reading.KindCO,
	"sos":         reading.KindPanic,
	"battery":     reading.KindBattery,
}

// panicActions are the values of an "action" that the decoder reads as a
// panic button press.
var panicActions = []string{"emergency", "panic", "sos"}

func (c *Collector) addZ2M(base string, m Message) error {
	delete(c.bridges, base)
	if len(bytes.TrimSpace(m.Payload)) == 0 {
		return nil
	}
	var devs []z2mDevice
	if err := json.Unmarshal(m.Payload, &devs); err != nil {
		return fmt.Errorf("discover: zigbee2mqtt device list on %q: %w", m.Topic, err)
	}
	c.bridges[base] = z2mBridge{devices: devs, retained: m.Retained}
	return nil
}

func (c *Collector) z2mCandidates() []candidate {
	var out []candidate
	for base, bridge := range c.bridges {
		source := base + "/bridge/devices"
		for _, d := range bridge.devices {
			if d.Type == "Coordinator" {
				continue
			}
			name := clean(d.FriendlyName)
			if name == "" {
				name = clean(d.IEEE)
			}
			cd := candidate{via: ViaZigbee2MQTT, source: source, name: name, idBase: d.FriendlyName,
				ident: clean(d.IEEE), format: formatZigbee2MQTT, topic: base + "/" + d.FriendlyName, wholeDevice: true, live: !bridge.retained}
			if slug(cd.idBase) == "" {
				cd.idBase = d.IEEE
			}
			switch {
			case d.FriendlyName == "":
				cd.skipReason = "no friendly_name"
			case d.Supported != nil && !*d.Supported:
				cd.skipReason = "not supported by Zigbee2MQTT"
			case d.Disabled:
				cd.skipReason = "disabled in Zigbee2MQTT"
			case d.Definition == nil:
				cd.skipReason = "no definition yet (still interviewing, or unsupported)"
			case !validTopic(cd.topic):
				cd.skipReason = fmt.Sprintf("friendly_name %q does not make a usable topic", d.FriendlyName)
			}
			if d.Definition != nil {
				cd.model, cd.vendor = clean(d.Definition.Model), clean(d.Definition.Vendor)
				kinds, notes := z2mKinds(d.Definition.Exposes)
				if len(kinds) > 0 {
					cd.things = []Thing{{Kinds: kinds}}
				}
				cd.notes = notes
				if len(kinds) == 0 {
					cd.untrackedNotes = []string{clean(d.Definition.Description)}
				}
			}
			out = append(out, cd)
		}
	}
	return out
}

// z2mKinds returns the kinds a device's exposes offer to the decoder.
func z2mKinds(exposes []z2mExpose) ([]reading.Kind, []string) {
	var kinds []reading.Kind
	var walk func(es []z2mExpose, depth int)
	walk = func(es []z2mExpose, depth int) {
		if depth > 8 {
			return
		}
		for _, e := range es {
			walk(e.Features, depth+1)
			if e.Access != nil && *e.Access&1 == 0 {
				continue // only /set or /get: not in the published state
			}
			prop := cmpOr(e.Property, e.Name)
			if k, ok := z2mProperties[prop]; ok {
				kinds = append(kinds, k)
				continue
			}
			if prop == "action" && slices.ContainsFunc(e.Values, func(v any) bool {
				s, ok := v.(string)
				return ok && slices.Contains(panicActions, strings.ToLower(s))
			}) {
				kinds = append(kinds, reading.KindPanic)
			}
		}
	}
	walk(exposes, 0)
	var notes []string
	if slices.Contains(kinds, reading.KindWaterLeak) && slices.Contains(kinds, reading.KindTemperature) {
		// The decoder ignores it: a leak sensor's temperature is its chip's.
		kinds = slices.DeleteFunc(kinds, func(k reading.Kind) bool { return k == reading.KindTemperature })
		notes = append(notes, "its temperature is the chip's and is not stored")
	}
	return sortKinds(kinds), notes
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
