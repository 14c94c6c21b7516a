package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Helpers for reading payload fields. Decoders unmarshal payloads into
// structs of json.RawMessage fields (cheap: no maps, no interface values) and
// convert each field here, so every format reports a wrong type, a null or
// an overflowing number the same way and names the field.

// splitTopic reports where topic sits relative to a device's base topic:
// exact is true when topic == base; otherwise rest is what follows "base/".
// ok is false when topic is not under base at all.
func splitTopic(base, topic string) (rest string, exact, ok bool) {
	if topic == base {
		return "", true, true
	}
	if len(topic) > len(base) && topic[len(base)] == '/' && topic[:len(base)] == base {
		return topic[len(base)+1:], false, true
	}
	return "", false, false
}

func unknownTopic(format, topic string) error {
	return Errorf(ReasonUnknownTopic, "%s: topic %q is not one the format defines for this device", format, topic)
}

func emptyPayload(format string) error {
	return Errorf(ReasonEmpty, "%s: empty payload", format)
}

// text returns a plain-text payload without surrounding white space. No
// firmware we accept pads its payloads, but scripts and mosquitto_pub -l
// add newlines, and trimming cannot change the meaning of a value.
func text(payload []byte) string {
	return string(bytes.TrimSpace(payload))
}

// decodeObject unmarshals a JSON object payload into v (a struct of
// json.RawMessage fields, or a map) and maps encoding/json errors to
// reasons.
func decodeObject(format string, payload []byte, v any) error {
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) > 0 && json.Valid(payload) {
			return Errorf(ReasonMalformed, "%s: payload is JSON %s, want an object", format, jsonTypeName(trimmed))
		}
		return Errorf(ReasonMalformed, "%s: payload is not a JSON object", format)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return jsonError(format, err)
	}
	return nil
}

// readMap reads payload, a JSON object, as decodeObject reads it into a
// map[string]json.RawMessage, but as its members sorted by key (see
// scanMap), appended to buf: in one pass when scan is set and the pass is
// sure to agree, else with encoding/json, which words any error.
func readMap(format string, payload []byte, buf []jsonMember, scan bool) ([]jsonMember, error) {
	if scan {
		if ms, ok := scanMap(payload, buf); ok {
			return ms, nil
		}
	}
	var m map[string]json.RawMessage
	if err := decodeObject(format, payload, &m); err != nil {
		return nil, err
	}
	return mapMembers(m, buf), nil
}

// readStruct reads raw, a JSON object, into v, a struct of the
// json.RawMessage fields listed in fields, as json.Unmarshal would: in one
// pass when scan is set and the pass is sure to agree, else with
// encoding/json. After an error v holds nothing of use.
func readStruct[T any](raw []byte, v *T, scan bool, fields ...rawField) error {
	if scan && scanStruct(raw, fields...) {
		return nil
	}
	var j T // apart from v, so that only this path allocates
	if err := json.Unmarshal(raw, &j); err != nil {
		return err
	}
	*v = j
	return nil
}

// jsonError maps an encoding/json error to a reason, naming the field when
// encoding/json knows it.
func jsonError(format string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return Errorf(ReasonWrongType, "%s: %q: want %s, got %s", format, te.Field, goTypeName(te), te.Value)
		}
		return Errorf(ReasonMalformed, "%s: payload is JSON %s, want an object", format, te.Value)
	}
	return Errorf(ReasonMalformed, "%s: %v", format, err)
}

func goTypeName(te *json.UnmarshalTypeError) string {
	if te.Type == nil {
		return "other"
	}
	switch te.Type.Kind().String() {
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "string":
		return "string"
	case "bool":
		return "bool"
	}
	return te.Type.String()
}

// jsonTypeName names the JSON type of a raw value for error messages.
func jsonTypeName(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "bool"
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "number"
}

// absent reports whether a field is missing or null. Null counts as absent
// everywhere: Shelly publishes "tC":null for a failed read and the
// notifications docs use null for "this key no longer exists".
func absent(raw json.RawMessage) bool {
	return len(raw) == 0 || (raw[0] == 'n' && string(raw) == "null")
}

func wrongType(format, field, want string, raw []byte) error {
	return Errorf(ReasonWrongType, "%s: %q: want %s, got %s", format, field, want, jsonTypeName(raw))
}

// numField reads a JSON number. ok is false when the field is absent/null.
func numField(format, field string, raw json.RawMessage) (v float64, ok bool, err error) {
	if absent(raw) {
		return 0, false, nil
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false, wrongType(format, field, "number", raw)
	}
	v, err = strconv.ParseFloat(string(raw), 64)
	if err != nil {
		// encoding/json has validated the grammar, so the only failure is
		// a number too large for float64: ParseFloat returns ±Inf, which
		// the builder's checks drop as not_finite like any other
		// implausible value (the package doc's policy), keeping the rest.
		if math.IsInf(v, 0) {
			return v, true, nil
		}
		return 0, false, Errorf(ReasonMalformed, "%s: %q: %v", format, field, err)
	}
	return v, true, nil
}

// boolField reads a JSON boolean. ok is false when the field is absent/null.
func boolField(format, field string, raw json.RawMessage) (v, ok bool, err error) {
	if absent(raw) {
		return false, false, nil
	}
	switch string(raw) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, wrongType(format, field, "bool", raw)
}

// fieldIn reads field name of object parent with read (numField,
// boolField, strField), naming it "parent.name" in an error. The two are
// joined only when there is an error to name: a copy for every field
// would cost the hot path an allocation each.
func fieldIn[T any](read func(format, field string, raw json.RawMessage) (T, bool, error), format, parent, name string, raw json.RawMessage) (T, bool, error) {
	v, ok, err := read(format, name, raw)
	if err != nil {
		return read(format, parent+"."+name, raw)
	}
	return v, ok, err
}

// strField reads a JSON string. ok is false when the field is absent/null.
func strField(format, field string, raw json.RawMessage) (s string, ok bool, err error) {
	if absent(raw) {
		return "", false, nil
	}
	if raw[0] != '"' {
		return "", false, wrongType(format, field, "string", raw)
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true, nil
	}
	// Into a variable of its own: were it s, s would live on the heap for
	// every call, escaped strings or not.
	var u string
	if err := json.Unmarshal(raw, &u); err != nil {
		return "", false, Errorf(ReasonMalformed, "%s: %q: %v", format, field, err)
	}
	return u, true, nil
}

// parseNumberText parses a number published as plain text (ESPHome, Homie).
// Only decimal notation is accepted: strconv.ParseFloat also takes hex
// floats, "1_000" and "Inf", none of which any of these firmwares emit.
// NaN and infinities, in the spellings firmwares use ("nan" from printf,
// "NaN"/"Infinity" named as invalid by Homie 5), are ReasonNotFinite so the
// metric tells a sensor fault apart from garbage.
func parseNumberText(format, what, s string) (float64, error) {
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "nan", "inf", "infinity":
		return 0, Errorf(ReasonNotFinite, "%s: %s is %q", format, what, s)
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E':
		default:
			return 0, Errorf(ReasonMalformed, "%s: %s %q is not a decimal number", format, what, s)
		}
	}
	if digits == 0 {
		return 0, Errorf(ReasonMalformed, "%s: %s %q is not a decimal number", format, what, s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if math.IsInf(v, 0) {
			return 0, Errorf(ReasonNotFinite, "%s: %s %q overflows a float64", format, what, s)
		}
		return 0, Errorf(ReasonMalformed, "%s: %s %q is not a decimal number", format, what, s)
	}
	return v, nil
}

// maxEpochSeconds bounds numeric device timestamps (about the year 5100) so
// that converting them cannot overflow. Within it a timestamp is passed on
// as sent: whether it is plausible *now* (an unset RTC says 1970) is the
// pipeline's call, since only it has the receive time. Only a timestamp that
// cannot be read at all is ReasonBadTime.
const maxEpochSeconds = 1e11

// epochTime converts a Unix timestamp in units per second (1 for seconds,
// 1000 for milliseconds) to a time, at millisecond resolution so that float
// noise in "1680962879.62" does not leak into stored times.
func epochTime(format, field string, v float64, perSecond float64) (time.Time, error) {
	sec := v / perSecond
	if math.IsNaN(sec) || sec < 0 || sec > maxEpochSeconds {
		return time.Time{}, Errorf(ReasonBadTime, "%s: %q: %v is not a Unix time", format, field, v)
	}
	return time.UnixMilli(int64(math.Round(sec * 1000))).UTC(), nil
}

// rfc3339Time parses an ISO 8601 / RFC 3339 timestamp with offset and
// optional fraction ("2026-11-30T03:00:00Z", "2019-10-23T11:36:26.279+02:00").
func rfc3339Time(format, field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Errorf(ReasonBadTime, "%s: %q: %q is not an RFC 3339 time", format, field, s)
	}
	return t, nil
}

// isCommandTopic reports whether rest (a topic below a device's base) is a
// command to the device: one of the words, alone or followed by more
// levels ("set", "set/brightness").
func isCommandTopic(rest string, words ...string) bool {
	for _, w := range words {
		if rest == w || strings.HasPrefix(rest, w+"/") {
			return true
		}
	}
	return false
}
