package decode

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Zigbee2MQTT decodes the messages Zigbee2MQTT (v1 and v2) publishes for a
// device (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html).
//
// The base topic is "zigbee2mqtt/<friendly name>"; friendly names may
// contain '/', so the base is matched as a whole, never split.
//
//	<base>               device state, always a JSON object
//	                     (advanced.output json, the default, or
//	                     attribute_and_json)
//	<base>/<attribute>   one state attribute, plain text (advanced.output
//	                     attribute or attribute_and_json)
//	<base>/availability  {"state":"online"|"offline"} (v2), or the plain
//	                     online/offline that v1 published
//	<base>/set, /get     commands to the device (also …/set/<attribute>):
//	                     ignored, neither data nor a sign of life
//	anything else        unknown topic (an attribute never contains '/')
//
// The bridge's own topics (<bridge base>/bridge/state, its last will) are
// the pipeline's: a bridge going offline takes every device behind it
// with it (see the pipeline's bridges).
//
// State fields read, per the exposes of the devices in the docs:
//
//	smoke, water_leak, tamper, battery_low  bool → same-named kind
//	                                        (a water_leak device's
//	                                        temperature is its chip's and
//	                                        is ignored)
//	occupancy                               bool → motion
//	contact                                 bool, true = CLOSED → door = !contact
//	temperature (°C), humidity (%), pressure (hPa), co (ppm)  numbers
//	sos                                     bool → panic (IAS zone "SOS alarm")
//	action "emergency" | "panic" | "sos"    → panic = true, unless sos is
//	                                          present (other actions ignored)
//	battery (%)                             → Battery attribute
//	linkquality (0–255)                     → LinkQuality attribute
//	last_seen                               → Time (ISO 8601 string, or epoch ms)
//
// Zigbee2MQTT publishes a device's whole known state on every update and
// adds many fields we do not track (voltage, sensitivity, device_temperature,
// power_outage_count, elapsed ...); those are ignored, and a message with
// none of ours is a heartbeat (or a battery reading if it carries battery).
// A tracked field of the wrong JSON type ("smoke":"yes") is dropped and
// reported; the other fields are kept (the package doc's policy).
// Invert is not applied: Zigbee2MQTT already normalises device semantics.
//
// # Attribute output
//
// With advanced.output attribute, Zigbee2MQTT publishes each field of that
// state on its own topic <base>/<field> instead
// (lib/controller.ts iteratePayloadAttributeOutput): a string as it is
// ("emergency", "2019-10-23T09:36:26.279Z"), a number or a boolean as its
// JSON text ("21.37", "true"), null as an empty payload, an object as one
// topic per member (<field>-<member>). Each such message is decoded as the
// JSON state {"<field>": <value>} would be: the same fields, kinds and
// checks, so <base>/contact "false" is door = true, <base>/battery alone is
// a battery reading, <base>/linkquality and any field we do not track are
// heartbeats, an empty payload is an absent field (a heartbeat), and
// <base>/smoke "yes" is dropped as wrong_type. Each field arrives alone, so
// a reading carries no Battery or LinkQuality attribute, last_seen is not
// its time, and an action is never overruled by an sos field.
//
// attribute_and_json publishes both forms of every update, and each value
// is then stored twice: prefer json (or attribute).
//
// Friendly names that nest collide in attribute output: with devices
// "hall" and "hall/smoke", zigbee2mqtt/hall/smoke is both the second
// device's state and the first one's smoke attribute. The pipeline routes
// a topic to the device with the longest base topic, here "hall/smoke", so
// give no device a friendly name that is another's plus "/<field>".
type Zigbee2MQTT struct{}

const z2mFormat = "zigbee2mqtt"

// Format implements Decoder.
func (Zigbee2MQTT) Format() string { return z2mFormat }

// Prefixes implements Decoder.
func (Zigbee2MQTT) Prefixes(base string) []string { return []string{base} }

type z2mState struct {
	Smoke       json.RawMessage `json:"smoke"`
	Contact     json.RawMessage `json:"contact"`
	Occupancy   json.RawMessage `json:"occupancy"`
	WaterLeak   json.RawMessage `json:"water_leak"`
	Tamper      json.RawMessage `json:"tamper"`
	BatteryLow  json.RawMessage `json:"battery_low"`
	Temperature json.RawMessage `json:"temperature"`
	Humidity    json.RawMessage `json:"humidity"`
	Pressure    json.RawMessage `json:"pressure"`
	CO          json.RawMessage `json:"co"`
	SOS         json.RawMessage `json:"sos"`
	Action      json.RawMessage `json:"action"`
	Battery     json.RawMessage `json:"battery"`
	LinkQuality json.RawMessage `json:"linkquality"`
	LastSeen    json.RawMessage `json:"last_seen"`
}

// field returns the field of s that holds the state field name, or nil
// for a field the gateway does not read. It names the same fields as
// the struct tags.
func (s *z2mState) field(name string) *json.RawMessage {
	switch name {
	case "smoke":
		return &s.Smoke
	case "contact":
		return &s.Contact
	case "occupancy":
		return &s.Occupancy
	case "water_leak":
		return &s.WaterLeak
	case "tamper":
		return &s.Tamper
	case "battery_low":
		return &s.BatteryLow
	case "temperature":
		return &s.Temperature
	case "humidity":
		return &s.Humidity
	case "pressure":
		return &s.Pressure
	case "co":
		return &s.CO
	case "sos":
		return &s.SOS
	case "action":
		return &s.Action
	case "battery":
		return &s.Battery
	case "linkquality":
		return &s.LinkQuality
	case "last_seen":
		return &s.LastSeen
	}
	return nil
}

// scan fills s from payload in one pass (scanObject), as encoding/json
// would; false when it cannot be sure to (s is then partly filled).
// Values are slices of payload, not copies.
func (s *z2mState) scan(payload []byte) bool {
	return scanObject(payload, func(key, value []byte) bool {
		for _, c := range key {
			if (c >= 'A' && c <= 'Z') || c >= 0x80 {
				return false // encoding/json matches names case-insensitively
			}
		}
		if f := s.field(string(key)); f != nil {
			*f = value // the last of duplicate keys wins, as in encoding/json
		}
		return true
	})
}

// Decode implements Decoder.
func (Zigbee2MQTT) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = z2mFormat
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	rest, exact, ok := splitTopic(dev.Base, topic)
	switch {
	case !ok:
	case isCommandTopic(rest, "set", "get"):
		return ignored()
	case exact:
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		var s z2mState
		if !s.scan(payload) {
			s = z2mState{}
			if err := decodeObject(format, payload, &s); err != nil {
				return Result{}, err
			}
		}
		return decodeZ2MState(dev, &s)
	case rest == "availability":
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		return decodeZ2MAvailability(payload)
	case rest != "" && !strings.Contains(rest, "/"):
		return decodeZ2MAttribute(dev, rest, payload)
	}
	return Result{}, unknownTopic(format, topic)
}

// decodeZ2MAttribute decodes one field published alone (advanced.output
// attribute) as the state {"<name>": <value>}.
func decodeZ2MAttribute(dev Device, name string, payload []byte) (Result, error) {
	var s z2mState
	f := s.field(name)
	if f == nil {
		// A field we do not track (voltage, device_temperature,
		// update-state ...): the device is alive, as it is when a JSON
		// state holds only such fields.
		return heartbeat()
	}
	*f = z2mAttributeValue(payload)
	return decodeZ2MState(dev, &s)
}

// z2mAttributeValue turns an attribute topic's payload back into the JSON
// value Zigbee2MQTT wrote it from: null is an empty payload, a number or a
// boolean its JSON text, a string the string itself. So a payload that
// reads as JSON null, a boolean or a number is that value, and anything
// else is a string ("emergency", an ISO 8601 last_seen, or "yes" where a
// boolean belongs, which the field's check then drops as wrong_type).
// Nil means the field is absent.
func z2mAttributeValue(payload []byte) json.RawMessage {
	v := bytes.TrimSpace(payload)
	switch {
	case len(v) == 0:
		return nil
	case string(v) == "null" || string(v) == "true" || string(v) == "false":
		return v
	case (v[0] == '-' || v[0] >= '0' && v[0] <= '9') && json.Valid(v):
		return v
	}
	quoted, err := json.Marshal(string(v))
	if err != nil {
		return nil // unreachable: a Go string always marshals
	}
	return quoted
}

// decodeZ2MState reads the fields of one state, whether it came as a
// JSON object or as one attribute topic.
func decodeZ2MState(dev Device, s *z2mState) (Result, error) {
	const format = z2mFormat
	b := newBuilder(format)

	flags := [...]struct {
		field  string
		raw    json.RawMessage
		kind   reading.Kind
		invert bool
	}{
		{"smoke", s.Smoke, reading.KindSmoke, false},
		{"contact", s.Contact, reading.KindDoor, true}, // contact true = closed
		{"occupancy", s.Occupancy, reading.KindMotion, false},
		{"water_leak", s.WaterLeak, reading.KindWaterLeak, false},
		{"tamper", s.Tamper, reading.KindTamper, false},
		{"battery_low", s.BatteryLow, reading.KindBatteryLow, false},
		{"sos", s.SOS, reading.KindPanic, false}, // zigbee-herdsman-converters IAS zone preset
	}
	for _, f := range flags {
		v, ok, err := boolField(format, f.field, f.raw)
		if err != nil {
			b.reject(err)
		} else if ok {
			b.flag(f.kind, v != f.invert)
		}
	}

	nums := [...]struct {
		field string
		raw   json.RawMessage
		kind  reading.Kind
	}{
		{"temperature", s.Temperature, reading.KindTemperature},
		{"humidity", s.Humidity, reading.KindHumidity},
		{"pressure", s.Pressure, reading.KindPressure},
		{"co", s.CO, reading.KindCO},
	}
	for _, f := range nums {
		if f.kind == reading.KindTemperature && dev.Kind == reading.KindWaterLeak {
			// A leak sensor lies on the floor by the pipes, and the
			// temperature some models report is their chip's: not the
			// room's, so it must not feed the zone's heat and cold rules.
			continue
		}
		v, ok, err := numField(format, f.field, f.raw)
		if err != nil {
			b.reject(err)
		} else if ok {
			b.number(f.kind, v)
		}
	}

	action, ok, err := strField(format, "action", s.Action)
	b.reject(err)
	if ok && absent(s.SOS) {
		// An action is an event, never a "released" state, so it only ever
		// says panic = true; an explicit sos field is the better source.
		switch action {
		case "emergency", "panic", "sos":
			b.flag(reading.KindPanic, true)
		}
	}

	if v, ok, err := numField(format, "battery", s.Battery); err != nil {
		b.attr(err)
	} else if ok {
		b.setBattery(v)
	}
	if v, ok, err := numField(format, "linkquality", s.LinkQuality); err != nil {
		b.attr(err)
	} else if ok {
		b.setLinkQuality(v)
	}

	// last_seen follows advanced.last_seen: ISO_8601 ("...Z"), ISO_8601_local
	// ("...+02:00") or epoch (milliseconds, a number).
	if !absent(s.LastSeen) {
		if s.LastSeen[0] == '"' {
			str, _, err := strField(format, "last_seen", s.LastSeen)
			if err != nil {
				b.reject(err)
			} else {
				b.setTime(rfc3339Time(format, "last_seen", str))
			}
		} else {
			ms, _, err := numField(format, "last_seen", s.LastSeen)
			if err != nil {
				b.reject(err)
			} else {
				b.setTime(epochTime(format, "last_seen", ms, 1000))
			}
		}
	}
	return b.result()
}

func decodeZ2MAvailability(payload []byte) (Result, error) {
	const format = z2mFormat
	state := text(payload)
	if len(state) > 0 && state[0] == '{' {
		var a struct {
			State json.RawMessage `json:"state"`
		}
		if err := decodeObject(format, payload, &a); err != nil {
			return Result{}, err
		}
		s, ok, err := strField(format, "state", a.State)
		if err != nil {
			return Result{}, err
		}
		if !ok {
			return Result{}, Errorf(ReasonMalformed, "%s: availability has no \"state\"", format)
		}
		state = s
	}
	switch state {
	case "online":
		return availability(true)
	case "offline":
		return availability(false)
	}
	return Result{}, Errorf(ReasonMalformed, "%s: availability %q: want online or offline", format, state)
}
