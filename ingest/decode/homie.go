package decode

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Homie decodes devices following the Homie 5 convention
// (https://homieiot.github.io/specification/).
//
// The base is "homie/5/<device-id>". Payloads are plain UTF-8 strings.
//
//	<base>/$state                ready → availability true;
//	                             lost (the LWT), disconnected → false;
//	                             init, sleeping → heartbeat;
//	                             alert (Homie 3/4) → heartbeat;
//	                             empty → device removed (Result.Removed)
//	<base>/$description          JSON description → heartbeat (must be valid
//	                             JSON; not interpreted)
//	<base>/$<other>...           device attributes ($log, $alert/<id>, Homie
//	                             3/4 $name, $stats ...) → heartbeat
//	<base>/<node>/<property>     the property value → reading
//	<base>/<node>/<property>/set commands → ignored
//	<base>/.../$target           desired, not actual, value → unknown topic
//	<base>/<node>/$<attr>, <base>/<node>/<property>/$<attr>
//	                             Homie 3/4 attributes → heartbeat
//
// Why init and sleeping are heartbeats rather than availability: init is a
// device on its way to ready (it is connected, but its values may not be
// published yet), and sleeping is a battery device saving power as
// designed; reporting either as offline would alarm on every wake cycle.
// The gateway's check-in timeout still catches a device that never wakes.
//
// Why an empty $state is not an outage: the convention defines it as
// "device removed", a deliberate act by whoever decommissioned it, not a
// failure to alarm on. The device becomes unknown (cause "removed") until
// it speaks again, so it raises no offline alarm; the console shows it, so
// a device removed by mistake is seen, and the config should drop it.
//
// The kind of a property comes from its id, else from its node's id (see
// inferKind: temperature, humidity, pressure, battery, smoke, door/contact,
// motion, water-leak/leak, panic, tamper, co ...), else the device's
// configured kind; a kind configured for the channel "<node>/<property>"
// wins. That "node/property" is every reading's channel. Values follow Homie 5 payload rules: booleans are exactly
// "true" / "false" (true of a door = open; Device.Invert flips every
// boolean of the device), numbers are decimal; "NaN" and "Infinity" are
// invalid payloads and reported as not_finite. Homie 5 sends an empty
// string value as a single 0x00 byte; none of our kinds is a string, so it
// is ReasonEmpty like a zero-length payload.
type Homie struct{}

const homieFormat = "homie"

// Format implements Decoder.
func (Homie) Format() string { return homieFormat }

// Prefixes implements Decoder.
func (Homie) Prefixes(base string) []string { return []string{base} }

// Decode implements Decoder.
func (Homie) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = homieFormat
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	rest, exact, ok := splitTopic(dev.Base, topic)
	if !ok || exact {
		return Result{}, unknownTopic(format, topic)
	}
	first, tail, _ := strings.Cut(rest, "/")
	switch {
	case first == "$state" && tail == "":
		return decodeHomieState(payload)
	case first == "$description" && tail == "":
		if len(payload) == 0 {
			return Result{}, emptyPayload(format)
		}
		trimmed := bytes.TrimLeft(payload, " \t\r\n")
		if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(payload) {
			return Result{}, Errorf(ReasonMalformed, "%s: $description is not a JSON object", format)
		}
		return heartbeat()
	case strings.HasPrefix(first, "$"):
		return heartbeat()
	}

	node := first
	property, attr, hasAttr := strings.Cut(tail, "/")
	if !isHomieID(node) {
		return Result{}, unknownTopic(format, topic)
	}
	if strings.HasPrefix(property, "$") && !hasAttr {
		return heartbeat() // node attribute (Homie 3/4)
	}
	if !isHomieID(property) {
		return Result{}, unknownTopic(format, topic)
	}
	if hasAttr {
		if attr == "set" {
			return ignored()
		}
		if attr != "$target" && strings.HasPrefix(attr, "$") && !strings.Contains(attr, "/") {
			return heartbeat() // property attribute (Homie 3/4)
		}
		return Result{}, unknownTopic(format, topic) // set, $target, deeper levels
	}
	return decodeHomieProperty(dev, node, property, payload)
}

func decodeHomieState(payload []byte) (Result, error) {
	const format = homieFormat
	if len(payload) == 0 {
		return Result{Removed: true}, nil
	}
	switch s := text(payload); s {
	case "ready":
		return availability(true)
	case "lost", "disconnected":
		return availability(false)
	case "init", "sleeping", "alert":
		return heartbeat()
	default:
		return Result{}, Errorf(ReasonMalformed, "%s: $state %q: want init, ready, disconnected, sleeping or lost", format, s)
	}
}

// isHomieID reports whether s is a valid Homie topic ID: lower-case
// letters, digits and hyphens, not starting or ending with a hyphen.
func isHomieID(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func decodeHomieProperty(dev Device, node, property string, payload []byte) (Result, error) {
	const format = homieFormat
	what := node + "/" + property
	kind, inf := inferKind(property)
	if inf == inferNone {
		kind, inf = inferKind(node)
	}
	if k, ok := dev.configured(what); ok {
		kind, inf = k, inferFound
	}
	switch inf {
	case inferOther:
		return heartbeat()
	case inferNone:
		if _, ok := dev.Kind.Known(); !ok || dev.Kind == reading.KindAvailability {
			return Result{}, Errorf(ReasonUnknownTopic, "%s: property %s: cannot tell what it measures from its id and the device has no usable kind (%q)", format, what, dev.Kind)
		}
		kind = dev.Kind
	}
	if len(payload) == 0 || (len(payload) == 1 && payload[0] == 0) {
		return Result{}, Errorf(ReasonEmpty, "%s: property %s: empty value", format, what)
	}
	s := text(payload)
	b := newBuilder(format)
	switch t, _ := kind.Known(); t {
	case reading.TypeBool:
		var v bool
		switch s {
		case "true":
			v = true
		case "false":
		default:
			return Result{}, Errorf(ReasonWrongType, "%s: property %s: %q: want true or false for %s", format, what, s, kind)
		}
		b.flagOn(what, kind, v != dev.invert(what))
	default:
		if s == "true" || s == "false" {
			return Result{}, Errorf(ReasonWrongType, "%s: property %s: %q: want a number for %s", format, what, s, kind)
		}
		if strings.EqualFold(strings.TrimLeft(s, "+-"), "nan") {
			// A sensor that could not read (Homie 5 calls NaN invalid, but
			// firmware printing a failed float sends it).
			b.fault(what)
			return b.result()
		}
		v, err := parseNumberText(format, "property "+what, s)
		if err != nil {
			return Result{}, err
		}
		b.numberOn(what, kind, v)
	}
	return b.result()
}
