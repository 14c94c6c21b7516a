// Package decode turns the MQTT payloads that real sensor firmware publishes
// (Zigbee2MQTT, Tasmota, ESPHome, Shelly Gen2, Homie 5 and our own native
// JSON) into observations with fixed units.
//
// Decoders are pure functions of (device, topic, payload): no I/O, no shared
// state, safe for concurrent use. They never panic on input; every failure is
// an *Error whose Reason is a short metric label.
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
