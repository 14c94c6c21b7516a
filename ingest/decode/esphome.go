package decode

import (
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// ESPHome decodes what ESPHome's MQTT component publishes
// (https://esphome.io/components/mqtt/), with default topics.
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
//	<base>/.../command                  commands to the node → unknown topic
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
// flips it. Commands to the node (…/command) are ignored. Custom state
// topics, birth or will messages are not supported.
type ESPHome struct{}

const esphomeFormat = "esphome"

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
	if !ok || exact {
		return Result{}, unknownTopic(format, topic)
	}
	switch rest {
	case "status":
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		return availabilityWord(format, "status", text(payload), "online", "offline")
	case "debug":
		return heartbeat()
	}

	if strings.HasSuffix(rest, "/command") {
		return ignored()
	}
	// <component>/<object_id>/state; climate and a few others nest one
	// level deeper (<component>/<id>/<attribute>/state).
	if !strings.HasSuffix(rest, "/state") {
		return Result{}, unknownTopic(format, topic)
	}
	path := strings.TrimSuffix(rest, "/state")
	component, name, found := strings.Cut(path, "/")
	if !found || component == "" || name == "" {
		return Result{}, unknownTopic(format, topic)
	}
	nested := strings.Contains(name, "/")
	switch component {
	case "sensor", "binary_sensor":
		if nested {
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
