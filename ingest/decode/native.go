package decode

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"

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
type Native struct{}

const nativeFormat = "native"

// Format implements Decoder.
func (Native) Format() string { return nativeFormat }

// Prefixes implements Decoder: everything a native device publishes is under
// its base topic.
func (Native) Prefixes(base string) []string { return []string{base} }

type nativePayload struct {
	Time        json.RawMessage            `json:"time"`
	Battery     json.RawMessage            `json:"battery"`
	LinkQuality json.RawMessage            `json:"link_quality"`
	Values      map[string]json.RawMessage `json:"values"`
}

// Decode implements Decoder.
func (Native) Decode(dev Device, topic string, payload []byte) (Result, error) {
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
		return decodeNative(payload)
	case rest == "status":
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		return availabilityWord(format, "status", text(payload), "online", "offline")
	}
	return Result{}, unknownTopic(format, topic)
}

func decodeNative(payload []byte) (Result, error) {
	const format = nativeFormat
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Result{}, Errorf(ReasonMalformed, "%s: payload is not a JSON object", format)
	}
	var p nativePayload
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Result{}, jsonError(format, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Result{}, Errorf(ReasonMalformed, "%s: data after the JSON object", format)
	}

	b := newBuilder(format)
	if s, ok, err := strField(format, "time", p.Time); err != nil {
		b.reject(err)
	} else if ok {
		b.setTime(rfc3339Time(format, "time", s))
	}
	if v, ok, err := numField(format, "battery", p.Battery); err != nil {
		b.attr(err)
	} else if ok {
		b.setBattery(v)
	}
	if v, ok, err := numField(format, "link_quality", p.LinkQuality); err != nil {
		b.attr(err)
	} else if ok {
		b.setLinkQuality(v)
	}

	// Sorted so that the error for a payload with several bad keys does not
	// depend on map order.
	keys := make([]string, 0, len(p.Values))
	for k := range p.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kind := reading.Kind(k)
		t, known := kind.Known()
		if !known || kind == reading.KindAvailability || kind.Internal() {
			return Result{}, Errorf(ReasonMalformed, "%s: values: %q is not a reading kind", format, k)
		}
		field := "values." + k
		raw := p.Values[k]
		switch t {
		case reading.TypeNumber:
			v, ok, err := numField(format, field, raw)
			if err != nil {
				b.reject(err)
			} else if ok {
				b.number(kind, v)
			}
		case reading.TypeBool:
			v, ok, err := boolField(format, field, raw)
			if err != nil {
				b.reject(err)
			} else if ok {
				b.flag(kind, v)
			}
		default:
			return Result{}, Errorf(ReasonMalformed, "%s: values: %q is not a reading kind", format, k)
		}
	}
	return b.result()
}
