package decode

import (
	"cmp"
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// ESPHome decodes what ESPHome's MQTT component publishes
// (https://esphome.io/components/mqtt/).
//
// The base is the node's topic_prefix (default: the node name). Payloads
// are plain strings, not JSON.
//
//	<base>/status                       online / offline (birth and will
//	                                    defaults) → availability
//	<base>/sensor/<object_id>/state     a number formatted to
//	                                    accuracy_decimals ("21.5"); "nan"
//	                                    (or "None" with publish_nan_as_none)
//	                                    is a sensor fault → not_finite
//	<base>/binary_sensor/<id>/state     ON / OFF
//	<base>/<component>/<id>/state       other components (switch,
//	                                    text_sensor ...) → heartbeat
//	<base>/debug                        log output → heartbeat
//	<base>/.../command                  commands to the node → ignored
//	<base>/<anything else>              an entity's custom state_topic
//
// The object id is the entity name, lower-cased with spaces as underscores
// ("Dorm3 Temperature" → dorm3_temperature). It is every reading's channel,
// and it decides the kind: a kind configured for that channel wins (if its
// type fits: a number for a sensor, a boolean for a binary sensor), else the
// name (see inferKind): a sensor named for temperature, humidity, pressure,
// battery or carbon monoxide reads as that; a binary sensor named for smoke,
// door / contact / window, motion / pir / occupancy, leak / water, panic /
// sos, tamper or battery (low) as that. A name that says nothing falls back
// to the device's configured kind if its type fits, else the topic is
// unknown. Names of things we do not track (uptime, wifi_signal,
// battery_voltage, co2, internal_temperature ...), and a sensor whose name
// is about the other type ("smoke_density", "temperature_alarm"), are
// heartbeats, never the configured kind.
//
// A sensor that cannot read publishes "nan" ("None" with
// publish_nan_as_none): that is a sensor_fault of its channel and a sign of
// life, not a dead letter.
//
// Binary sensors: ON = true, so a door sensor is ON when open (ESPHome's
// and Home Assistant's convention); invert on the device or the channel
// flips it.
//
// # Custom state topics
//
// An entity's state_topic may be any topic; the gateway reads those under
// the base that are not of the default layout above (<component>/<...>/state
// with an ESPHome component type as <component>), e.g.
// "dorm3-node/smoke" or "dorm3-node/dorm3/door/state". The topic no longer
// says the component or the object id, so:
//
//   - the entity's name, which is its channel, is the topic below the base
//     ("dorm3/door/state") when a channel of that name is configured, else
//     the last level that is not "state", "status" or "value" ("door");
//   - the payload says the component: ON / OFF is a binary sensor, a
//     number (or nan, None) a sensor; online / offline (or the configured
//     status payloads) is a birth or will message on a topic not
//     configured as the status topic, refused as an unknown topic so the
//     dead letter says to set it; any other text is a heartbeat (a text
//     sensor), unless the name's kind wants a boolean or a number, when
//     it is malformed.
//
// Kinds then follow the rules above.
//
// # Birth and will messages
//
// Device.Status holds the node's birth_message / will_message when the
// installer changed them: their topic (under the base) and payloads. The
// default topic <base>/status and the defaults online / offline are read
// as well, since ESPHome's shutdown_message stays offline on <base>/status
// unless it is changed too. Birth or will messages outside the base are
// not the node's and never reach the decoder.
type ESPHome struct{}

const esphomeFormat = "esphome"

// esphomeComponents are ESPHome's MQTT component types
// (esphome/components/mqtt/mqtt_*.cpp component_type()): the first level
// of a default state topic <base>/<component>/<object_id>/state.
var esphomeComponents = []string{
	"alarm_control_panel", "binary_sensor", "button", "climate", "cover",
	"date", "datetime", "event", "fan", "humidifier", "light", "lock",
	"number", "select", "sensor", "switch", "text", "text_sensor", "time",
	"update", "valve",
}

// Format implements Decoder.
func (ESPHome) Format() string { return esphomeFormat }

// Prefixes implements Decoder.
func (ESPHome) Prefixes(base string) []string { return []string{base} }

// Decode implements Decoder.
func (ESPHome) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = esphomeFormat
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	rest, exact, ok := splitTopic(dev.Base, topic)
	if !ok {
		return Result{}, unknownTopic(format, topic)
	}
	if rest == "status" || (dev.Status.Topic != "" && topic == dev.Status.Topic) {
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		return decodeESPHomeStatus(dev.Status, text(payload))
	}
	if exact || rest == "" {
		return Result{}, unknownTopic(format, topic)
	}
	if rest == "debug" {
		return heartbeat()
	}
	if rest == "command" || strings.HasSuffix(rest, "/command") {
		return ignored()
	}

	component, path, _ := strings.Cut(rest, "/")
	if name, ok := strings.CutSuffix(path, "/state"); ok && slices.Contains(esphomeComponents, component) {
		// <component>/<object_id>/state; climate and a few others nest one
		// level deeper (<component>/<id>/<attribute>/state).
		switch component {
		case "sensor", "binary_sensor":
			if name == "" || strings.Contains(name, "/") {
				return Result{}, unknownTopic(format, topic)
			}
		default:
			return heartbeat()
		}
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		if component == "sensor" {
			return decodeESPHomeSensor(dev, name, text(payload))
		}
		return decodeESPHomeBinary(dev, name, text(payload))
	}
	if len(payload) == 0 {
		return Result{}, emptyPayload(format)
	}
	return decodeESPHomeCustom(dev, topic, rest, text(payload))
}

// decodeESPHomeStatus decodes a birth, will or shutdown message: the
// configured payloads first, then ESPHome's defaults.
func decodeESPHomeStatus(st Status, s string) (Result, error) {
	const format = esphomeFormat
	switch {
	case st.Online != "" && s == st.Online:
		return availability(true)
	case st.Offline != "" && s == st.Offline:
		return availability(false)
	case s == "online":
		return availability(true)
	case s == "offline":
		return availability(false)
	}
	on, off := cmp.Or(st.Online, "online"), cmp.Or(st.Offline, "offline")
	return Result{}, Errorf(ReasonMalformed, "%s: status %q: want %s or %s", format, s, on, off)
}

// decodeESPHomeCustom decodes the state of an entity on a custom
// state_topic, rest being the topic below the base (see the type's doc).
func decodeESPHomeCustom(dev Device, topic, rest, s string) (Result, error) {
	name := rest
	if _, ok := dev.Channels[rest]; !ok {
		name = esphomeTopicName(rest)
	}
	if name == "" {
		return Result{}, unknownTopic(esphomeFormat, topic)
	}
	switch {
	case s == "ON" || s == "OFF":
		return decodeESPHomeBinary(dev, name, s)
	case esphomeNumeric(s):
		return decodeESPHomeSensor(dev, name, s)
	}
	if s == "online" || s == "offline" || s == dev.Status.Online || s == dev.Status.Offline {
		// A birth or will message on a topic not configured as the
		// node's status topic: taking a will for a sign of life would
		// hide the node's death, so it is refused, saying what to set.
		return Result{}, Errorf(ReasonUnknownTopic, "%s: %q on %q looks like the node's birth or will message: set the device's status_topic to this topic", esphomeFormat, s, topic)
	}
	// Neither a binary sensor's nor a sensor's state: a text sensor,
	// unless the entity is one whose state we read.
	kind, inf := inferKind(name)
	if k, ok := dev.configured(name); ok {
		kind, inf = k, inferFound
	}
	switch {
	case inf != inferFound:
		return heartbeat()
	case isNumberKind(kind):
		return decodeESPHomeSensor(dev, name, s)
	case isReadingBoolKind(kind):
		return decodeESPHomeBinary(dev, name, s)
	}
	return heartbeat()
}

// esphomeTopicName is the name of the entity on a custom state topic:
// its last level that is not a generic word, else the last level.
func esphomeTopicName(rest string) string {
	levels := strings.Split(rest, "/")
	for i := len(levels) - 1; i >= 0; i-- {
		switch levels[i] {
		case "state", "status", "value":
			continue
		}
		return levels[i]
	}
	return levels[len(levels)-1]
}

// esphomeNumeric reports whether s is what a sensor publishes: a number,
// or a failed read ("nan", "None"); "inf" counts, so that it is reported
// as not_finite rather than taken for text.
func esphomeNumeric(s string) bool {
	if s == "None" {
		return true
	}
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "nan", "inf", "infinity":
		return true
	}
	_, err := parseNumberText(esphomeFormat, "", s)
	return err == nil || ReasonOf(err) == ReasonNotFinite
}

func decodeESPHomeSensor(dev Device, name, s string) (Result, error) {
	const format = esphomeFormat
	kind, inf := inferKind(name)
	if k, ok := dev.configured(name); ok && isNumberKind(k) {
		kind, inf = k, inferFound
	}
	if inf == inferOther || (inf == inferFound && !isNumberKind(kind)) {
		// Something we do not track, or a number about a boolean kind
		// ("smoke_density"): not a reading, and not the configured kind.
		return heartbeat()
	}
	if inf == inferNone {
		if !isNumberKind(dev.Kind) {
			return Result{}, Errorf(ReasonUnknownTopic, "%s: sensor %q: cannot tell what it measures from its name and the device kind %q is not a number", format, name, dev.Kind)
		}
		kind = dev.Kind
	}
	b := newBuilder(format)
	if s == "None" || strings.EqualFold(strings.TrimLeft(s, "+-"), "nan") {
		// The sensor answered without a value: a failed read.
		b.fault(name)
		return b.result()
	}
	v, err := parseNumberText(format, "sensor "+name, s)
	if err != nil {
		return Result{}, err
	}
	b.numberOn(name, kind, v)
	return b.result()
}

func decodeESPHomeBinary(dev Device, name, s string) (Result, error) {
	const format = esphomeFormat
	kind, inf := inferKind(name)
	if kind == reading.KindBattery {
		kind = reading.KindBatteryLow // a binary battery sensor is a low-battery flag
	}
	if k, ok := dev.configured(name); ok && isReadingBoolKind(k) {
		kind, inf = k, inferFound
	}
	if inf == inferOther || (inf == inferFound && !isReadingBoolKind(kind)) {
		// Something we do not track, or a flag about a numeric kind
		// ("temperature_alarm"): not a reading, and not the configured kind.
		return heartbeat()
	}
	if inf == inferNone {
		if !isReadingBoolKind(dev.Kind) {
			return Result{}, Errorf(ReasonUnknownTopic, "%s: binary sensor %q: cannot tell what it detects from its name and the device kind %q is not a boolean", format, name, dev.Kind)
		}
		kind = dev.Kind
	}
	var on bool
	switch s {
	case "ON":
		on = true
	case "OFF":
	default:
		return Result{}, Errorf(ReasonMalformed, "%s: binary sensor %q: %q: want ON or OFF", format, name, s)
	}
	b := newBuilder(format)
	b.flagOn(name, kind, on != dev.invert(name))
	return b.result()
}
