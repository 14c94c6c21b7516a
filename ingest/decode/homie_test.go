package decode

import (
	"testing"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var homieDev = Device{ID: "dorm3-sensor", Base: "homie/5/dorm3-sensor"}

const hm = "homie/5/dorm3-sensor/"

// The description document from the Homie 5 spec's example, trimmed.
const homieDescription = `{"homie":"5.0","version":12,"name":"Dorm 3 sensor","nodes":{"env":{"name":"Environment","properties":{"temperature":{"name":"Temperature","datatype":"float","unit":"°C","format":"-20:120"}}}}}`

// Payloads per the Homie 5 convention (homieiot/convention convention.md,
// device-payloads.md §5.5).
var homieCases = []decodeCase{
	{name: "state ready", topic: hm + "$state", payload: "ready", want: online(true)},
	{name: "state lost", topic: hm + "$state", payload: "lost", want: online(false)},
	{name: "state disconnected", topic: hm + "$state", payload: "disconnected", want: online(false)},
	{name: "state init", topic: hm + "$state", payload: "init", want: hb},
	{name: "state sleeping", topic: hm + "$state", payload: "sleeping", want: hb},
	{name: "state alert (Homie 3/4)", topic: hm + "$state", payload: "alert", want: hb},
	{name: "description", topic: hm + "$description", payload: homieDescription, want: hb},
	{name: "log", topic: hm + "$log/warn", payload: "low memory", want: hb},
	{name: "alert", topic: hm + "$alert/sensor-failure", payload: "probe not responding", want: hb},
	{name: "alert cleared", topic: hm + "$alert/sensor-failure", payload: "", want: hb},
	{name: "Homie 3 device attribute", topic: hm + "$name", payload: "Dorm 3 sensor", want: hb},
	{name: "Homie 3 node attribute", topic: hm + "env/$name", payload: "Environment", want: hb},
	{name: "Homie 3 property attribute", topic: hm + "env/temperature/$unit", payload: "°C", want: hb},
	{name: "spec example temperature", topic: hm + "env/temperature", payload: "21.5", want: Result{Observations: obs(num(reading.KindTemperature, 21.5))}},
	{name: "exponent notation", topic: hm + "env/temperature", payload: "2.15e1", want: Result{Observations: obs(num(reading.KindTemperature, 21.5))}},
	{name: "humidity", topic: hm + "env/humidity", payload: "40", want: Result{Observations: obs(num(reading.KindHumidity, 40))}},
	{name: "pressure", topic: hm + "env/pressure", payload: "1013.2", want: Result{Observations: obs(num(reading.KindPressure, 1013.2))}},
	{name: "battery", topic: hm + "power/battery", payload: "87", want: Result{Observations: obs(num(reading.KindBattery, 87)), Battery: ptr(87)}},
	{name: "battery low", topic: hm + "power/battery-low", payload: "true", want: Result{Observations: obs(flag(reading.KindBatteryLow, true))}},
	{name: "co", topic: hm + "air/co", payload: "5", want: Result{Observations: obs(num(reading.KindCO, 5))}},
	{name: "smoke", topic: hm + "detector/smoke", payload: "true", want: Result{Observations: obs(flag(reading.KindSmoke, true))}},
	{name: "door contact", topic: hm + "entrance/contact", payload: "true", want: Result{Observations: obs(flag(reading.KindDoor, true))}},
	{
		name:    "door inverted",
		dev:     &Device{Base: homieDev.Base, Invert: true},
		topic:   hm + "entrance/door",
		payload: "true",
		want:    Result{Observations: obs(flag(reading.KindDoor, false))},
	},
	{name: "motion", topic: hm + "hall/motion", payload: "false", want: Result{Observations: obs(flag(reading.KindMotion, false))}},
	{name: "water leak", topic: hm + "basement/water-leak", payload: "true", want: Result{Observations: obs(flag(reading.KindWaterLeak, true))}},
	{name: "leak", topic: hm + "basement/leak", payload: "false", want: Result{Observations: obs(flag(reading.KindWaterLeak, false))}},
	{name: "panic", topic: hm + "button/panic", payload: "true", want: Result{Observations: obs(flag(reading.KindPanic, true))}},
	{name: "tamper", topic: hm + "enclosure/tamper", payload: "false", want: Result{Observations: obs(flag(reading.KindTamper, false))}},
	{name: "kind from the node id", topic: hm + "smoke-detector/alarm", payload: "true", want: Result{Observations: obs(flag(reading.KindSmoke, true))}},
	{
		name:    "kind from the device",
		dev:     &Device{Base: homieDev.Base, Kind: reading.KindDoor},
		topic:   hm + "input/state",
		payload: "false",
		want:    Result{Observations: obs(flag(reading.KindDoor, false))},
	},
	{name: "uptime is not a reading", topic: hm + "system/uptime", payload: "3600", want: hb},
	{name: "co2 is not co", topic: hm + "air/co2", payload: "812", want: hb},

	// Rejected.
	{name: "empty state is a removed device", topic: hm + "$state", payload: "", want: Result{Removed: true}},
	{name: "unknown state", topic: hm + "$state", payload: "zombie", reason: ReasonMalformed},
	{name: "description not JSON", topic: hm + "$description", payload: `{"homie":"5.0",`, reason: ReasonMalformed},
	{name: "description not an object", topic: hm + "$description", payload: `["env"]`, reason: ReasonMalformed},
	{name: "empty description", topic: hm + "$description", payload: "", reason: ReasonEmpty},
	{name: "NaN", topic: hm + "env/temperature", payload: "NaN", want: Result{Observations: obs(fault("env/temperature"))}, channels: true},
	{name: "channel is node/property", topic: hm + "env/temperature", payload: "21.5", want: Result{Observations: obs(on("env/temperature", num(reading.KindTemperature, 21.5)))}, channels: true},
	{name: "Infinity", topic: hm + "env/temperature", payload: "Infinity", reason: ReasonNotFinite},
	{name: "-Infinity", topic: hm + "env/temperature", payload: "-Infinity", reason: ReasonNotFinite},
	{name: "overflow", topic: hm + "env/temperature", payload: "1e400", reason: ReasonNotFinite},
	{name: "temperature -300", topic: hm + "env/temperature", payload: "-300", reason: ReasonOutOfRange},
	{name: "battery 120", topic: hm + "power/battery", payload: "120", reason: ReasonOutOfRange},
	{name: "text for a number", topic: hm + "env/temperature", payload: "hot", reason: ReasonMalformed},
	{name: "comma decimal separator", topic: hm + "env/temperature", payload: "21,5", reason: ReasonMalformed},
	{name: "boolean for a number", topic: hm + "env/temperature", payload: "true", reason: ReasonWrongType},
	{name: "upper-case boolean", topic: hm + "detector/smoke", payload: "TRUE", reason: ReasonWrongType},
	{name: "number for a boolean", topic: hm + "detector/smoke", payload: "1", reason: ReasonWrongType},
	{name: "Homie empty string value", topic: hm + "env/temperature", payload: "\x00", reason: ReasonEmpty},
	{name: "empty value", topic: hm + "env/temperature", payload: "", reason: ReasonEmpty},
	{name: "invalid UTF-8", topic: hm + "env/temperature", payload: "21.5\xc0", reason: ReasonInvalidUTF8},
	{name: "no kind anywhere", topic: hm + "input/state", payload: "true", reason: ReasonUnknownTopic},
	{name: "set topic", topic: hm + "env/temperature/set", payload: "22", want: ign},
	{name: "target topic", topic: hm + "env/temperature/$target", payload: "22", reason: ReasonUnknownTopic},
	{name: "upper-case ids", topic: hm + "Env/Temperature", payload: "21.5", reason: ReasonUnknownTopic},
	{name: "id ending in hyphen", topic: hm + "env-/temperature", payload: "21.5", reason: ReasonUnknownTopic},
	{name: "too deep", topic: hm + "env/temperature/x/y", payload: "21.5", reason: ReasonUnknownTopic},
	{name: "node only", topic: hm + "env", payload: "21.5", reason: ReasonUnknownTopic},
	{name: "base topic itself", topic: "homie/5/dorm3-sensor", payload: "ready", reason: ReasonUnknownTopic},
	{name: "Homie 3 topic", topic: "homie/dorm3-sensor/$state", payload: "ready", reason: ReasonUnknownTopic},
}

func TestHomie(t *testing.T) { runCases(t, Homie{}, homieDev, homieCases) }

func FuzzHomie(f *testing.F) {
	seedFuzz(f, homieCases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		dev := homieDev
		dev.Invert = invert
		dev.Kind = reading.KindDoor
		fuzzDecode(t, Homie{}, dev, topic, payload)
	})
}
