// Package reading defines the normalised sensor observation that flows through
// the gateway: decoded once from a device payload, appended once to the durable
// store, and read from there by rules, the forwarder and the history API.
//
// A Reading is a plain value; it carries no locks or references and may be
// copied freely between goroutines.
package reading

import (
	"fmt"
	"math"
	"time"
)

// Kind names what a reading measures. The same words are used in config,
// metrics, the API and the UI.
type Kind string

// Kinds the gateway understands. Units are fixed per kind so that every
// consumer can compare readings from different firmware directly.
const (
	KindSmoke        Kind = "smoke"        // bool: true = smoke detected
	KindDoor         Kind = "door"         // bool: true = open
	KindTemperature  Kind = "temperature"  // number: °C
	KindHumidity     Kind = "humidity"     // number: % relative humidity
	KindPressure     Kind = "pressure"     // number: hPa
	KindMotion       Kind = "motion"       // bool: true = motion/occupancy
	KindWaterLeak    Kind = "water_leak"   // bool: true = water detected
	KindPanic        Kind = "panic"        // bool: true = panic button pressed
	KindTamper       Kind = "tamper"       // bool: true = enclosure opened
	KindBattery      Kind = "battery"      // number: % (only when the message holds nothing else)
	KindBatteryLow   Kind = "battery_low"  // bool: true = firmware reports low battery
	KindCO           Kind = "co"           // number: ppm carbon monoxide
	KindAvailability Kind = "availability" // bool: true = online (from availability/LWT topics)
	// KindSensorFault says a sensor answered but could not measure: ESPHome
	// "nan", a Shelly or Tasmota null, a Tasmota read error. The message
	// still proves the device alive; the reading's Channel names the
	// sensor.
	KindSensorFault Kind = "sensor_fault" // bool: true = the sensor failed to read
	// KindFault is the condition of one of the gateway's own parts (a
	// camera's video, an InfluxDB target, the store): "ok", or what is
	// wrong. Only the gateway's built-in devices report it.
	KindFault Kind = "fault" // state: "ok" or the fault
	// KindReach is whether a device can be reached at all, written by the
	// gateway for every device behind a bridge when the bridge goes
	// offline or comes back, and for a device that says it was removed:
	// ReachOK, ReachBridgeOffline or ReachRemoved. See facility's
	// availability rules.
	KindReach Kind = "reach" // state
)

// Values of KindReach readings.
const (
	ReachOK            = "ok"
	ReachBridgeOffline = "bridge_offline"
	ReachRemoved       = "removed"
)

// knownKinds maps each kind to the value type it carries.
var knownKinds = map[Kind]ValueType{
	KindSmoke:        TypeBool,
	KindDoor:         TypeBool,
	KindTemperature:  TypeNumber,
	KindHumidity:     TypeNumber,
	KindPressure:     TypeNumber,
	KindMotion:       TypeBool,
	KindWaterLeak:    TypeBool,
	KindPanic:        TypeBool,
	KindTamper:       TypeBool,
	KindBattery:      TypeNumber,
	KindBatteryLow:   TypeBool,
	KindCO:           TypeNumber,
	KindAvailability: TypeBool,
	KindSensorFault:  TypeBool,
	KindFault:        TypeState,
	KindReach:        TypeState,
}

// Known reports whether k is a kind the gateway understands, and the value
// type readings of that kind carry.
func (k Kind) Known() (ValueType, bool) {
	t, ok := knownKinds[k]
	return t, ok
}

// Safety reports whether readings of kind k can mean a life is at risk
// now (smoke, carbon monoxide, a panic button, water, a door, tampering)
// or are the gateway's own faults. They go first where room is short: a
// full disk still stores them (ingest/store/space.go).
func (k Kind) Safety() bool {
	switch k {
	case KindSmoke, KindCO, KindPanic, KindWaterLeak, KindDoor, KindTamper, KindFault:
		return true
	}
	return false
}

// Internal reports whether only the gateway itself reports kind k: a
// device's payload or config may never claim it, so no sensor can raise or
// clear a gateway fault.
func (k Kind) Internal() bool { return k == KindFault || k == KindReach }

// Kinds returns every kind a device may report (for config validation and
// docs): the known kinds except the internal ones.
func Kinds() []Kind {
	out := make([]Kind, 0, len(knownKinds))
	for k := range knownKinds {
		if !k.Internal() {
			out = append(out, k)
		}
	}
	return out
}

// ValueType says which field of a Value is meaningful.
type ValueType uint8

// Value types, in the order they are encoded on disk (do not reorder).
const (
	TypeNumber ValueType = iota + 1
	TypeBool
	TypeState
)

func (t ValueType) String() string {
	switch t {
	case TypeNumber:
		return "number"
	case TypeBool:
		return "bool"
	case TypeState:
		return "state"
	}
	return fmt.Sprintf("ValueType(%d)", uint8(t))
}

// Value is a number, a boolean or a short state string.
type Value struct {
	Type  ValueType
	Num   float64
	Bool  bool
	State string
}

// Number returns a numeric Value.
func Number(f float64) Value { return Value{Type: TypeNumber, Num: f} }

// Bool returns a boolean Value.
func Bool(b bool) Value { return Value{Type: TypeBool, Bool: b} }

// State returns a state Value (e.g. "ready").
func State(s string) Value { return Value{Type: TypeState, State: s} }

// Float returns the value as a number: booleans are 0 or 1, states NaN.
// Downsampling and InfluxDB fields use it.
func (v Value) Float() float64 {
	switch v.Type {
	case TypeNumber:
		return v.Num
	case TypeBool:
		if v.Bool {
			return 1
		}
		return 0
	}
	return math.NaN()
}

// Any returns the value as a Go value for JSON and expressions.
func (v Value) Any() any {
	switch v.Type {
	case TypeNumber:
		return v.Num
	case TypeBool:
		return v.Bool
	case TypeState:
		return v.State
	}
	return nil
}

func (v Value) String() string {
	switch v.Type {
	case TypeNumber:
		return fmt.Sprintf("%g", v.Num)
	case TypeBool:
		return fmt.Sprintf("%t", v.Bool)
	case TypeState:
		return fmt.Sprintf("%q", v.State)
	}
	return "<none>"
}

// Reading is one normalised observation from one device.
type Reading struct {
	// Seq is the position in the durable log, assigned by the store on append
	// (zero before). It orders readings by arrival.
	Seq uint64

	Facility string
	Device   string
	Zone     string
	Kind     Kind
	// Format is the payload format the reading was decoded from
	// (native, zigbee2mqtt, tasmota, esphome, shelly, homie).
	Format string

	// Time is when the observation was made: the device's own timestamp when
	// the payload carries a plausible one, else Received.
	Time time.Time
	// Received is when the gateway took the message from MQTT.
	Received time.Time

	Value Value

	// Channel names the sub-sensor of a multi-sensor device the reading
	// came from, as its firmware names it (a Tasmota sensor "DS18B20-2" or
	// input "Switch2", an ESPHome object id, a Shelly component "input:1",
	// a Homie "node/property"); empty when the format has no sub-sensors.
	// Two sensors of one kind on one board differ only by it, so the
	// forwarder writes it as a tag.
	Channel string

	// Battery in percent and LinkQuality (0–255, Zigbee LQI scale, or the
	// firmware's own) are attached when the message carries them.
	Battery     *float64
	LinkQuality *float64
}

// Ptr returns a pointer to f, for the optional fields.
func Ptr(f float64) *float64 { return &f }
