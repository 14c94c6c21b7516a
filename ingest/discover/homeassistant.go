package discover

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Home Assistant MQTT discovery
// (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
// homeassistant/<component>/[<node_id>/]<object_id>/config holds one entity
// as JSON, with its state_topic, availability, device_class,
// unit_of_measurement, unique_id and the device it belongs to (identifiers,
// name, model, manufacturer, sw_version). Keys may be abbreviated (stat_t,
// avty_t, dev_cla, uniq_id, dev, ids, mdl, mf ...), and a "~" key is a base
// topic that replaces a "~" at the start or end of any topic value.
// homeassistant/device/<object_id>/config holds a whole device, its
// entities under "cmps" (components), each with "p" (platform) and the
// device's shared keys as defaults.
//
// The firmware is recognised by the topics of its entities: ESPHome
// publishes <prefix>/<component>/<object_id>/state with <prefix>/status as
// availability; Tasmota (SetOption19 1) tele/<topic>/SENSOR with a value
// template naming the sensor and tele/<topic>/LWT; Zigbee2MQTT
// <base>/<friendly_name> with identifiers "zigbee2mqtt_<ieee>".

type haEntity struct {
	topic       string // the discovery topic
	component   string // sensor, binary_sensor, ...
	objectID    string
	name        string
	deviceClass string
	unit        string
	stateTopic  string
	availTopics []string
	template    string
	uniqueID    string
	origin      string
	dev         haDevice
	retained    bool
}

type haDevice struct {
	ids                []string
	name, model, maker string
}

// haAbbrev maps the abbreviations of the keys read to their full names.
var haAbbrev = map[string]string{
	"stat_t": "state_topic", "avty_t": "availability_topic", "avty": "availability",
	"dev_cla": "device_class", "uniq_id": "unique_id", "dev": "device",
	"unit_of_meas": "unit_of_measurement", "val_tpl": "value_template", "obj_id": "object_id",
	"json_attr_t": "json_attributes_topic", "o": "origin", "cmps": "components", "p": "platform",
}

var haDeviceAbbrev = map[string]string{
	"ids": "identifiers", "mdl": "model", "mf": "manufacturer", "sw": "sw_version", "cns": "connections",
}

// expand returns m with abbreviated keys under their full names (a full
// name present wins).
func expand(m map[string]json.RawMessage, abbrev map[string]string) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		if _, short := abbrev[k]; !short {
			out[k] = v
		}
	}
	for k, v := range m {
		if full, short := abbrev[k]; short {
			if _, dup := out[full]; !dup {
				out[full] = v
			}
		}
	}
	return out
}

func str(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// strs reads a string or a list of strings.
func strs(raw json.RawMessage) []string {
	if s := str(raw); s != "" {
		return []string{s}
	}
	var l []any
	if json.Unmarshal(raw, &l) != nil {
		return nil
	}
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *Collector) addHA(m Message) error {
	delete(c.ha, m.Topic)
	if len(bytes.TrimSpace(m.Payload)) == 0 {
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(m.Payload, &top); err != nil {
		return fmt.Errorf("discover: Home Assistant discovery on %q: %w", m.Topic, err)
	}
	if top == nil {
		return fmt.Errorf("discover: Home Assistant discovery on %q: not a JSON object", m.Topic)
	}
	top = expand(top, haAbbrev)
	lv := strings.Split(m.Topic, "/")
	component, objectID := lv[1], lv[len(lv)-2]
	if component != "device" {
		e := parseHAEntity(m.Topic, component, objectID, top)
		e.retained = m.Retained
		c.ha[m.Topic] = []haEntity{e}
		return nil
	}
	var cmps map[string]map[string]json.RawMessage
	if raw, ok := top["components"]; ok {
		if err := json.Unmarshal(raw, &cmps); err != nil {
			return fmt.Errorf("discover: Home Assistant device discovery on %q: components: %w", m.Topic, err)
		}
	}
	delete(top, "components")
	var ents []haEntity
	for _, id := range slices.Sorted(maps.Keys(cmps)) {
		merged := maps.Clone(top)
		maps.Copy(merged, expand(cmps[id], haAbbrev))
		e := parseHAEntity(m.Topic, str(merged["platform"]), id, merged)
		e.retained = m.Retained
		ents = append(ents, e)
	}
	c.ha[m.Topic] = ents
	return nil
}

func parseHAEntity(topic, component, objectID string, m map[string]json.RawMessage) haEntity {
	base := str(m["~"])
	tilde := func(t string) string {
		switch {
		case base == "":
		case strings.HasPrefix(t, "~"):
			t = base + t[1:]
		case strings.HasSuffix(t, "~"):
			t = t[:len(t)-1] + base
		}
		return t
	}
	e := haEntity{
		topic: topic, component: component, objectID: objectID,
		name: str(m["name"]), deviceClass: str(m["device_class"]), unit: str(m["unit_of_measurement"]),
		stateTopic: tilde(str(m["state_topic"])), template: str(m["value_template"]), uniqueID: str(m["unique_id"]),
	}
	if t := tilde(str(m["availability_topic"])); t != "" {
		e.availTopics = append(e.availTopics, t)
	}
	var avail []map[string]json.RawMessage
	if json.Unmarshal(m["availability"], &avail) == nil {
		for _, a := range avail {
			if t := tilde(cmp.Or(str(a["topic"]), str(a["t"]))); t != "" {
				e.availTopics = append(e.availTopics, t)
			}
		}
	}
	var origin map[string]json.RawMessage
	if json.Unmarshal(m["origin"], &origin) == nil {
		e.origin = str(origin["name"])
	}
	var dev map[string]json.RawMessage
	if json.Unmarshal(m["device"], &dev) == nil && dev != nil {
		dev = expand(dev, haDeviceAbbrev)
		e.dev = haDevice{ids: strs(dev["identifiers"]), name: str(dev["name"]), model: str(dev["model"]), maker: str(dev["manufacturer"])}
	}
	return e
}

// templateKeys returns the keys a value template reads from the JSON
// state: {{ value_json.temperature }} → [temperature],
// {{value_json['BME280']['Temperature']}} → [BME280 Temperature].
func templateKeys(tpl string) []string {
	i := strings.Index(tpl, "value_json")
	if i < 0 {
		return nil
	}
	s := tpl[i+len("value_json"):]
	var keys []string
	for len(s) > 0 && len(keys) < 4 {
		switch s[0] {
		case '.':
			j := 1
			for j < len(s) && (isAlnum(s[j]) || s[j] == '_' || s[j] == '-') {
				j++
			}
			if j == 1 {
				return keys
			}
			keys = append(keys, s[1:j])
			s = s[j:]
		case '[':
			rest := strings.TrimLeft(s[1:], " ")
			if rest == "" || (rest[0] != '\'' && rest[0] != '"') {
				return keys
			}
			end := strings.IndexByte(rest[1:], rest[0])
			if end < 0 {
				return keys
			}
			keys = append(keys, rest[1:1+end])
			rest = strings.TrimLeft(rest[2+end:], " ")
			if !strings.HasPrefix(rest, "]") {
				return keys
			}
			s = rest[1:]
		default:
			return keys
		}
	}
	return keys
}

func isAlnum(b byte) bool {
	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

// esphomeComponents are the ESPHome component types that have a state
// topic <prefix>/<component>/<object_id>/state.
var esphomeComponents = []string{"sensor", "binary_sensor", "text_sensor", "switch", "button", "number",
	"select", "text", "light", "fan", "cover", "climate", "lock", "valve", "event", "update", "alarm_control_panel"}

var tasmotaSwitchTopic = regexp.MustCompile(`^SWITCH([0-9]{1,2})$`)

// haDevicePlace is where an entity's readings arrive: the firmware format,
// the device's base topic and the channel.
type haDevicePlace struct {
	format, topic, channel, property string
}

// place recognises the firmware by the entity's topics.
func (e *haEntity) place() (haDevicePlace, bool) {
	st := e.stateTopic
	if st == "" {
		return haDevicePlace{}, false
	}
	lv := strings.Split(st, "/")
	keys := templateKeys(e.template)
	// Zigbee2MQTT: the state topic is the device's, its identifiers or
	// origin say so.
	z2m := e.origin == "Zigbee2MQTT" || slices.ContainsFunc(e.dev.ids, func(id string) bool { return strings.HasPrefix(id, "zigbee2mqtt_") }) ||
		slices.Contains(e.availTopics, st+"/availability")
	if z2m {
		p := haDevicePlace{format: formatZigbee2MQTT, topic: st}
		if len(keys) > 0 {
			p.property = keys[0]
		}
		return p, true
	}
	// Tasmota: tele/<topic>/SENSOR with the sensor in the template, or
	// stat/<topic>/SWITCHn for a switch.
	if len(lv) == 3 && (lv[0] == "tele" || lv[0] == "stat") && lv[1] != "" {
		p := haDevicePlace{format: formatTasmota, topic: lv[1]}
		switch {
		case tasmotaSwitchTopic.MatchString(lv[2]):
			p.channel = "Switch" + strings.TrimLeft(tasmotaSwitchTopic.FindStringSubmatch(lv[2])[1], "0")
		case lv[2] == "SENSOR" && len(keys) > 0:
			p.channel = keys[0]
			if len(keys) > 1 {
				p.property = keys[1]
			}
		default:
			return p, true // status, relays: not a sensor
		}
		return p, true
	}
	// ESPHome: <prefix>/<component>/<object_id>/state.
	if n := len(lv); n >= 4 && lv[n-1] == "state" && slices.Contains(esphomeComponents, lv[n-3]) && lv[n-2] != "" {
		prefix := strings.Join(lv[:n-3], "/")
		if slices.Contains(e.availTopics, prefix+"/status") || strings.HasPrefix(e.uniqueID, "ESP") ||
			strings.Contains(e.uniqueID, "-"+lv[n-3]+"-") {
			return haDevicePlace{format: formatESPHome, topic: prefix, channel: lv[n-2]}, true
		}
	}
	return haDevicePlace{}, false
}

// haBinaryClasses and haSensorClasses map device classes to kinds.
var haBinaryClasses = map[string]reading.Kind{
	"smoke": reading.KindSmoke, "door": reading.KindDoor, "window": reading.KindDoor, "opening": reading.KindDoor,
	"garage_door": reading.KindDoor, "moisture": reading.KindWaterLeak, "motion": reading.KindMotion,
	"occupancy": reading.KindMotion, "presence": reading.KindMotion, "tamper": reading.KindTamper,
	"battery": reading.KindBatteryLow,
}

var haSensorClasses = map[string]reading.Kind{
	"temperature": reading.KindTemperature, "humidity": reading.KindHumidity, "pressure": reading.KindPressure,
	"atmospheric_pressure": reading.KindPressure, "carbon_monoxide": reading.KindCO, "battery": reading.KindBattery,
}

// kind returns what a sensor or binary sensor entity reports, or a note
// on why it is not tracked.
func (e *haEntity) kind(p haDevicePlace) (reading.Kind, string) {
	if p.format == formatZigbee2MQTT {
		// The decoder reads named state fields, whatever the class says
		// (a device_temperature is the chip's).
		return z2mProperties[p.property], ""
	}
	switch e.component {
	case "binary_sensor":
		if k, ok := haBinaryClasses[e.deviceClass]; ok {
			return k, ""
		}
		switch e.deviceClass {
		case "carbon_monoxide", "gas":
			return "", "a " + e.deviceClass + " alarm (on/off): the gateway stores carbon monoxide only in ppm"
		case "":
		default:
			return "", ""
		}
		for _, n := range []string{p.channel, p.property, e.objectID, e.name} {
			if k, ok := inferKind(n); ok && isBoolKind(k) {
				return k, ""
			}
		}
	case "sensor":
		if k, ok := haSensorClasses[e.deviceClass]; ok {
			return k, ""
		}
		if e.deviceClass != "" {
			return "", ""
		}
		for _, n := range []string{p.property, p.channel, e.objectID, e.name} {
			if k, ok := inferKind(n); ok && isNumberKind(k) {
				return k, ""
			}
		}
	}
	return "", ""
}

func (c *Collector) haCandidates() []candidate {
	groups := map[string]*candidate{}
	var order []string
	var skipped []candidate
	for _, topic := range slices.Sorted(maps.Keys(c.ha)) {
		for _, e := range c.ha[topic] {
			if e.component != "sensor" && e.component != "binary_sensor" {
				continue
			}
			p, ok := e.place()
			if !ok {
				if k, _ := e.kind(p); k != "" {
					skipped = append(skipped, candidate{via: ViaHomeAssistant, source: topic, name: clean(cmp.Or(e.dev.name, e.name)),
						skipReason: fmt.Sprintf("state topic %q: not the topics of ESPHome, Tasmota or Zigbee2MQTT", e.stateTopic)})
				}
				continue
			}
			key := p.format + "\x00" + p.topic
			cd := groups[key]
			if cd == nil {
				cd = &candidate{via: ViaHomeAssistant, source: topic, format: p.format, topic: p.topic,
					ownLogin: p.format != formatZigbee2MQTT, wholeDevice: p.format == formatZigbee2MQTT}
				if !validTopic(p.topic) {
					cd.skipReason = fmt.Sprintf("topic %q is not usable as a device topic", p.topic)
				}
				groups[key] = cd
				order = append(order, key)
			}
			if cd.name == "" {
				cd.name = clean(e.dev.name)
			}
			if cd.ident == "" && len(e.dev.ids) > 0 {
				cd.ident = clean(e.dev.ids[0])
			}
			cd.model, cd.vendor = cmp.Or(cd.model, clean(e.dev.model)), cmp.Or(cd.vendor, clean(e.dev.maker))
			if p.format == formatTasmota && (p.channel == "ESP32" || p.channel == "ESP8266") {
				continue // the chip's own temperature; the decoder skips it
			}
			cd.live = cd.live || !e.retained
			k, note := e.kind(p)
			if note != "" && !slices.Contains(cd.untrackedNotes, note) {
				cd.untrackedNotes = append(cd.untrackedNotes, note)
				cd.notes = append(cd.notes, "also "+note)
			}
			if k == "" {
				continue
			}
			if p.channel != "" && !validChannel(p.channel) {
				cd.notes = append(cd.notes, fmt.Sprintf("%q left out: not usable as a channel", clean(p.channel)))
				continue
			}
			th := Thing{Channel: p.channel, Name: clean(e.name), Kinds: []reading.Kind{k}, Source: topic}
			if n := e.unitNote(p, k); n != "" {
				th.Notes = append(th.Notes, n)
			}
			if p.format == formatTasmota && strings.HasPrefix(p.channel, "Switch") && k == reading.KindDoor && e.deviceClass == "" {
				th.Notes = append(th.Notes, switchNote)
			}
			cd.things = addThing(cd.things, th)
		}
	}
	out := make([]candidate, 0, len(order)+len(skipped))
	for _, key := range order {
		cd := groups[key]
		switch {
		case cd.name == "":
			cd.name = cd.topic[strings.LastIndex(cd.topic, "/")+1:]
			cd.idBase = cd.name
		case cd.format == formatTasmota && strings.EqualFold(cd.name, "Tasmota"):
			cd.idBase = cd.topic // every Tasmota is called Tasmota until renamed
		default:
			cd.idBase = cd.name
		}
		if cd.format == formatZigbee2MQTT {
			cd.idBase = cd.topic[strings.Index(cd.topic, "/")+1:]
		}
		out = append(out, *cd)
	}
	return append(out, skipped...)
}

// unitNote warns about a unit the gateway would store wrongly.
func (e *haEntity) unitNote(p haDevicePlace, k reading.Kind) string {
	if p.format != formatESPHome || e.unit == "" {
		return "" // the tasmota decoder converts TempUnit and PressureUnit; Zigbee2MQTT publishes °C and hPa
	}
	switch {
	case k == reading.KindTemperature && e.unit != "°C":
		return fmt.Sprintf("%s reports temperature in %s: the gateway stores °C", cmp.Or(p.channel, "it"), clean(e.unit))
	case k == reading.KindPressure && e.unit != "hPa" && e.unit != "mbar":
		return fmt.Sprintf("%s reports pressure in %s: the gateway stores hPa", cmp.Or(p.channel, "it"), clean(e.unit))
	}
	return ""
}

func appendOnce(l []string, s string) []string {
	if slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}
