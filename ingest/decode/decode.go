// Package decode turns the MQTT payloads that real sensor firmware publishes
// (Zigbee2MQTT, Tasmota, ESPHome, Shelly Gen2 and Gen1, Homie 5, Tasmota
// Zigbee bridges, OpenMQTTGateway/Theengs BLE gateways and our own native
// JSON) into observations with fixed units.
//
// Decoders are pure functions of (device, topic, payload): no I/O, no shared
// state, safe for concurrent use. They never panic on input; every failure is
// an *Error whose Reason is a short metric label.
//
// # One policy for values that cannot be used
//
// A value the gateway cannot use — a field of the wrong JSON type, a number
// that overflows ("1e999"), is not finite or lies outside its kind's
// plausible range (−300 °C), a device timestamp that cannot be read — is
// dropped on its own and reported in Result.Rejected (the pipeline
// dead-letters the message with that reason and stores the rest). The
// rest of the message is kept: a smoke=true must get through even when the
// same message carries a broken humidity or a garbled clock, and a bad
// timestamp only means the receive time is used. Only a message with
// nothing usable left is rejected as a whole, as is one whose structure is
// wrong (not JSON, not an object, an unknown topic, our own strict native
// schema's unknown keys).
//
// A sensor that answers but cannot measure (ESPHome "nan" or "None",
// Shelly and Tasmota null values) is different: the firmware is telling us
// the sensor failed. That is a sensor_fault reading on the sensor's channel
// and the message is a sign of life, never a dead letter.
//
// # Channels
//
// Boards with several sensors (three DS18B20 on one Tasmota, a door and a
// smoke input on one ESP32) name each one; every Observation carries that
// name as its Channel, so readings of the same kind from one board stay
// apart, and the config can give a channel its own device, kind and
// polarity (Device.Channels).
package decode

import (
	"errors"
	"fmt"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Observation is one measurement extracted from a message, before the
// pipeline attaches facility, device and zone.
type Observation struct {
	Kind  reading.Kind
	Value reading.Value
	// Channel is the sub-sensor the value came from, as the firmware names
	// it; empty for device-wide values and formats without sub-sensors.
	Channel string
}

// Result is everything a decoder extracted from one message.
type Result struct {
	Observations []Observation
	// Time is the device's own timestamp when the payload carries one; zero
	// otherwise (the pipeline then uses the receive time).
	Time time.Time
	// Battery (percent) and LinkQuality apply to every observation of the
	// message; nil when absent.
	Battery     *float64
	LinkQuality *float64
	// Heartbeat is true when the message proves the device alive without
	// carrying a reading (Tasmota STATE, Homie $state init, a partial update
	// with only fields we do not track).
	Heartbeat bool
	// Ignored is true for a message that is not from the device at all: a
	// command a controller publishes to it (Zigbee2MQTT …/set, ESPHome
	// …/command, Homie …/set). It is neither a reading nor a sign of life,
	// and not a dead letter either.
	Ignored bool
	// Removed is true when the device said it was taken out of service
	// (Homie's empty $state): the pipeline marks it unknown, neither
	// online nor silent, until it speaks again.
	Removed bool
	// Rejected lists observations dropped as implausible while the rest of
	// the message was kept (each an *Error). The pipeline stores the rest and
	// dead-letters the message with these reasons.
	Rejected []error
}

// Device is what a decoder needs to know about the device a topic belongs to.
type Device struct {
	ID string
	// Kind is the configured primary kind: the hint for payloads that do not
	// name what they measure (an ESPHome binary_sensor "ON", a Tasmota switch).
	Kind reading.Kind
	// Base is the configured base topic (see Decoder.Prefixes).
	Base string
	// Invert flips boolean states for wiring that reports the opposite
	// (a normally-closed reed switch on a Tasmota input).
	Invert bool
	// Location is the facility's time zone, for device clocks that send local
	// time without an offset (Tasmota "Time").
	Location *time.Location
	// Channels holds what the config says about sub-sensors of the device
	// (keyed by the firmware's name for them): their kind and polarity
	// replace Kind and Invert for that channel. Nil for most devices.
	Channels map[string]Channel
	// Status is the device's own availability message where its firmware
	// lets the installer change it (ESPHome's birth and will messages);
	// the zero value means the format's default.
	Status Status
}

// Status is a configured availability message: the whole topic it comes
// on and the payloads that mean online and offline; "" for each keeps the
// format's default.
type Status struct {
	Topic, Online, Offline string
}

// Channel is the configured kind and polarity of one sub-sensor.
type Channel struct {
	Kind   reading.Kind
	Invert bool
}

// input returns the kind and polarity of a boolean input on channel ch (a
// Tasmota switch, a Shelly input, an ESPHome binary sensor without a
// telling name): the channel's configured kind when it is a boolean
// reading kind, else the device's, else door, the usual input of these
// boards.
func (d *Device) input(ch string) (reading.Kind, bool) {
	if c, ok := d.Channels[ch]; ok && isReadingBoolKind(c.Kind) {
		return c.Kind, c.Invert
	}
	if isReadingBoolKind(d.Kind) {
		return d.Kind, d.Invert
	}
	return reading.KindDoor, d.Invert
}

// configured returns the kind configured for channel ch, if any.
func (d *Device) configured(ch string) (reading.Kind, bool) {
	c, ok := d.Channels[ch]
	if !ok || c.Kind == "" {
		return "", false
	}
	return c.Kind, true
}

// invert returns the polarity for booleans of channel ch.
func (d *Device) invert(ch string) bool {
	if c, ok := d.Channels[ch]; ok {
		return c.Invert
	}
	return d.Invert
}

// Decoder decodes one payload format.
type Decoder interface {
	// Format is the name used in config ("zigbee2mqtt").
	Format() string
	// Prefixes returns the topic prefixes a device with the given base topic
	// publishes under. A topic belongs to the device when it equals a prefix
	// or starts with prefix+"/". The embedded broker's ACLs and the external
	// client's subscriptions are derived from them.
	Prefixes(base string) []string
	// Decode decodes one message published on topic (which belongs to dev).
	Decode(dev Device, topic string, payload []byte) (Result, error)
}

// Reasons for rejecting a message; they are metric labels, keep them stable.
const (
	ReasonMalformed    = "malformed"     // not valid JSON / not parseable
	ReasonWrongType    = "wrong_type"    // a field has the wrong JSON type
	ReasonNotFinite    = "not_finite"    // NaN or ±Inf
	ReasonOutOfRange   = "out_of_range"  // physically impossible value
	ReasonInvalidUTF8  = "invalid_utf8"  // payload is not UTF-8
	ReasonUnknownTopic = "unknown_topic" // topic under the device's prefix that the format does not define
	ReasonEmpty        = "empty"         // nothing we understand in the payload
	ReasonBadTime      = "bad_time"      // device timestamp present but unparseable
)

// Error is a decode failure with a metric reason.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(reason, format string, args ...any) error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the metric reason of err ("other" when it is not an *Error).
func ReasonOf(err error) string {
	var de *Error
	if errors.As(err, &de) {
		return de.Reason
	}
	return "other"
}
