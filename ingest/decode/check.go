package decode

import (
	"math"
	"unicode/utf8"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Validation shared by every decoder. A decoder parses its format into
// observations through a builder (result.go); the builder runs these checks
// before anything leaves the package, so no decoder can hand the store a NaN,
// a reading of an unknown kind or a value of the wrong type.

// checkUTF8 rejects payloads that are not UTF-8. Every format we accept is
// text (JSON or plain strings; Homie 5 and MQTT itself require UTF-8), so
// bytes that are not UTF-8 mean a corrupted or hostile message. Decoders call
// it before anything else so the reason is the same whatever else is wrong.
func checkUTF8(format string, payload []byte) error {
	if !utf8.Valid(payload) {
		return Errorf(ReasonInvalidUTF8, "%s: payload is not valid UTF-8", format)
	}
	return nil
}

// plausibleRange is the physically possible span of a numeric kind, in the
// kind's fixed unit. A value outside it comes from a broken sensor or a unit
// bug (Kelvin, °F, Pa or a raw ADC count sent as °C/hPa), never from a real
// room, so it is rejected rather than stored and alarmed on.
func plausibleRange(k reading.Kind) (lo, hi float64, ok bool) {
	switch k {
	case reading.KindTemperature:
		// °C. The coldest air ever measured is -89.2 °C (Vostok); 200 °C is
		// beyond what any room sensor survives, so it still admits a fire.
		return -90, 200, true
	case reading.KindHumidity:
		return 0, 100, true // % relative humidity, by definition
	case reading.KindPressure:
		// hPa. About 300 on the summit of Everest; the highest sea-level
		// pressure ever recorded is 1084.
		return 300, 1100, true
	case reading.KindBattery:
		return 0, 100, true // %
	case reading.KindCO:
		// ppm. 10,000 ppm (1%) is lethal within minutes and the top of
		// consumer sensor ranges.
		return 0, 10000, true
	}
	return 0, 0, false
}

// Link quality uses the Zigbee LQI scale (one byte); other firmware's signal
// figures are mapped onto it by their decoder.
const (
	linkQualityMin = 0
	linkQualityMax = 255
)

// checkObservation enforces the invariants the rest of the gateway relies
// on: the kind is known, the value has the kind's type, and numbers are finite
// and plausible.
func checkObservation(format string, o Observation) error {
	t, ok := o.Kind.Known()
	if !ok || o.Kind.Internal() {
		// An internal kind (a gateway fault) from a payload would let a
		// sensor speak for the gateway: refused like an unknown kind.
		return Errorf(ReasonMalformed, "%s: unknown reading kind %q", format, o.Kind)
	}
	if o.Value.Type != t {
		return Errorf(ReasonWrongType, "%s: %s: want %s, got %s", format, o.Kind, t, o.Value.Type)
	}
	if t != reading.TypeNumber {
		return nil
	}
	v := o.Value.Num
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Errorf(ReasonNotFinite, "%s: %s is %v", format, o.Kind, v)
	}
	if lo, hi, ok := plausibleRange(o.Kind); ok && (v < lo || v > hi) {
		return Errorf(ReasonOutOfRange, "%s: %s %g outside plausible range %g..%g", format, o.Kind, v, lo, hi)
	}
	return nil
}

// checkAttribute validates the Battery (percent) or LinkQuality attribute.
func checkAttribute(format, name string, v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Errorf(ReasonNotFinite, "%s: %s is %v", format, name, v)
	}
	if v < lo || v > hi {
		return Errorf(ReasonOutOfRange, "%s: %s %g outside plausible range %g..%g", format, name, v, lo, hi)
	}
	return nil
}

// isReadingBoolKind reports whether k can be the configured kind of a
// generic boolean input (a Tasmota switch, a Shelly input, an ESPHome binary
// sensor without a telling name). Availability is excluded: it comes only
// from the format's availability/LWT topic, never from a sensor value.
func isReadingBoolKind(k reading.Kind) bool {
	t, ok := k.Known()
	return ok && t == reading.TypeBool && k != reading.KindAvailability
}

// isNumberKind reports whether k is a known kind carrying a number.
func isNumberKind(k reading.Kind) bool {
	t, ok := k.Known()
	return ok && t == reading.TypeNumber
}
