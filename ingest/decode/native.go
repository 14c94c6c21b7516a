package decode

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Native decodes ShelterWatch's own payload format, for firmware we write
// ourselves (and for scripts bridging anything else).
//
// # Topics
//
// A device has a base topic, for example "shelterwatch/dorm3-temp", and
// publishes on exactly two topics:
//
//	<base>          readings, a JSON object (below), not retained or retained
//	<base>/status   availability: "online" or "offline" (plain text, retained;
//	                set "offline" as the MQTT last will)
//
// Anything else under <base>/ is rejected as an unknown topic.
//
// # Readings payload
//
//	{
//	  "time": "2026-11-30T03:00:00Z",
//	  "battery": 87,
//	  "link_quality": 200,
//	  "values": {
//	    "temperature": 21.5,
//	    "humidity": 40.2,
//	    "smoke": false,
//	    "door": true
//	  }
//	}
//
// Every key is optional:
//
//   - time: when the values were measured, RFC 3339 with an offset
//     ("Z" or "+01:00"), optionally with fractional seconds. Omit it when the
//     device has no reliable clock; the gateway then uses the receive time.
//   - battery: battery level in percent, 0–100.
//   - link_quality: radio link quality on the Zigbee LQI scale, 0–255.
//   - values: the readings. Each key is a reading kind and each value has
//     the kind's type and unit:
//     temperature (°C), humidity (% RH), pressure (hPa), co (ppm) and
//     battery (%) are numbers; smoke, door (true = open), motion,
//     water_leak, panic, tamper and battery_low are booleans.
//     availability is not accepted here: it comes from <base>/status.
//
// A null value counts as absent. A message with no values is a heartbeat
// (or, if it carries battery alone, a battery reading), so a device may
// publish "{}" as a keep-alive.
//
// The format is strict, because we control the firmware and a typo should
// fail loudly rather than lose a reading: an unknown top-level key or an
// unknown kind in values rejects the message as malformed, naming the key;
// a value of the wrong JSON type is dropped as wrong_type and, like any
// value or time that cannot be used, costs only itself (the package doc's
// policy). (Key matching is case-insensitive, as everywhere in
// encoding/json.)
type Native struct {
	// encodingJSON reads every payload with encoding/json alone: the
	// reference the one-pass reading is tested against.
	encodingJSON bool
}

const nativeFormat = "native"

// Format implements Decoder.
func (Native) Format() string { return nativeFormat }

// Prefixes implements Decoder: everything a native device publishes is under
// its base topic.
func (Native) Prefixes(base string) []string { return []string{base} }

// nativeFields are the top-level fields of a readings payload but values,
// which are read as the members of their object sorted by key, each key
// once. They are kept apart so that the members, on the stack, do not
// escape with the fields that the error paths keep.
type nativeFields struct {
	time, battery, linkQuality json.RawMessage
}

// Decode implements Decoder.
func (n Native) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = nativeFormat
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	rest, exact, ok := splitTopic(dev.Base, topic)
	switch {
	case !ok:
		return Result{}, unknownTopic(format, topic)
	case exact:
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		return decodeNative(payload, !n.encodingJSON)
	case rest == "status":
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		return availabilityWord(format, "status", text(payload), "online", "offline")
	}
	return Result{}, unknownTopic(format, topic)
}

// scanNative reads payload in one pass as readNative would; false when it
// cannot be sure to agree, and readNative then decides. It takes the keys
// only as documented: any other spelling is an unknown key or a
// case-folded known one, both encoding/json's to judge, and so is a
// second values object (encoding/json merges it into the first).
func scanNative(payload []byte, buf []jsonMember) (p nativeFields, values []jsonMember, ok bool) {
	var object json.RawMessage
	if !scanObject(payload, func(key, value []byte) bool {
		switch string(key) {
		case "time":
			p.time = value
		case "battery":
			p.battery = value
		case "link_quality":
			p.linkQuality = value
		case "values":
			if object != nil {
				return false
			}
			object = value
		default:
			return false
		}
		return true
	}) {
		return p, nil, false
	}
	switch {
	case absent(object):
		return p, nil, true
	case object[0] != '{':
		return p, nil, false // a wrong type, which encoding/json words
	}
	values, ok = scanMap(object, buf)
	return p, values, ok
}

// readNative reads payload with encoding/json, which words every error.
func readNative(payload []byte, buf []jsonMember) (nativeFields, []jsonMember, error) {
	const format = nativeFormat
	var p struct {
		Time        json.RawMessage            `json:"time"`
		Battery     json.RawMessage            `json:"battery"`
		LinkQuality json.RawMessage            `json:"link_quality"`
		Values      map[string]json.RawMessage `json:"values"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nativeFields{}, nil, jsonError(format, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nativeFields{}, nil, Errorf(ReasonMalformed, "%s: data after the JSON object", format)
	}
	return nativeFields{p.Time, p.Battery, p.LinkQuality}, mapMembers(p.Values, buf), nil
}

// decodeNative decodes a readings payload, read in one pass when scan is
// set and the pass is sure to agree with encoding/json, else with
// encoding/json.
func decodeNative(payload []byte, scan bool) (Result, error) {
	const format = nativeFormat
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Result{}, Errorf(ReasonMalformed, "%s: payload is not a JSON object", format)
	}
	var buf [16]jsonMember
	var p nativeFields
	var values []jsonMember
	ok := false
	if scan {
		p, values, ok = scanNative(payload, buf[:0])
	}
	if !ok {
		var err error
		if p, values, err = readNative(payload, buf[:0]); err != nil {
			return Result{}, err
		}
	}

	b := newBuilder(format)
	if s, ok, err := strField(format, "time", p.time); err != nil {
		b.reject(err)
	} else if ok {
		b.setTime(rfc3339Time(format, "time", s))
	}
	if v, ok, err := numField(format, "battery", p.battery); err != nil {
		b.attr(err)
	} else if ok {
		b.setBattery(v)
	}
	if v, ok, err := numField(format, "link_quality", p.linkQuality); err != nil {
		b.attr(err)
	} else if ok {
		b.setLinkQuality(v)
	}

	// Sorted by key, so that the error for a payload with several bad keys
	// does not depend on the order they were written in.
	for _, m := range values {
		kind := internKind(m.key)
		t, known := kind.Known()
		if !known || kind == reading.KindAvailability || kind.Internal() {
			return Result{}, Errorf(ReasonMalformed, "%s: values: %q is not a reading kind", format, string(kind))
		}
		switch t {
		case reading.TypeNumber:
			v, ok, err := fieldIn(numField, format, "values", string(kind), m.value)
			if err != nil {
				b.reject(err)
			} else if ok {
				b.number(kind, v)
			}
		case reading.TypeBool:
			v, ok, err := fieldIn(boolField, format, "values", string(kind), m.value)
			if err != nil {
				b.reject(err)
			} else if ok {
				b.flag(kind, v)
			}
		default:
			return Result{}, Errorf(ReasonMalformed, "%s: values: %q is not a reading kind", format, string(kind))
		}
	}
	return b.result()
}
