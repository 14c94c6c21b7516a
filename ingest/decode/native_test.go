package decode

import (
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var nativeDev = Device{ID: "dorm3-temp", Base: "shelterwatch/dorm3-temp", Kind: reading.KindTemperature}

const nativeTopic = "shelterwatch/dorm3-temp"

var nativeCases = []decodeCase{
	{
		name:  "documented example",
		topic: nativeTopic,
		payload: `{"time":"2026-11-30T03:00:00Z","battery":87,"link_quality":200,` +
			`"values":{"temperature":21.5,"humidity":40.2,"smoke":false,"door":true}}`,
		want: Result{
			Observations: obs(
				flag(reading.KindDoor, true),
				num(reading.KindHumidity, 40.2),
				flag(reading.KindSmoke, false),
				num(reading.KindTemperature, 21.5),
			),
			Time:        time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC),
			Battery:     ptr(87),
			LinkQuality: ptr(200),
		},
	},
	{
		name:    "values only",
		topic:   nativeTopic,
		payload: `{"values":{"temperature":-4.25}}`,
		want:    Result{Observations: obs(num(reading.KindTemperature, -4.25))},
	},
	{
		name:    "time with offset and fraction",
		topic:   nativeTopic,
		payload: `{"time":"2026-11-30T04:00:00.250+01:00","values":{"motion":true}}`,
		want: Result{
			Observations: obs(flag(reading.KindMotion, true)),
			Time:         time.Date(2026, 11, 30, 3, 0, 0, 250e6, time.UTC),
		},
	},
	{
		name:    "every kind",
		topic:   nativeTopic,
		payload: `{"values":{"smoke":true,"door":false,"temperature":19,"humidity":55,"pressure":1013.25,"motion":false,"water_leak":true,"panic":false,"tamper":false,"battery_low":true,"co":35}}`,
		want: Result{Observations: obs(
			flag(reading.KindBatteryLow, true),
			num(reading.KindCO, 35),
			flag(reading.KindDoor, false),
			num(reading.KindHumidity, 55),
			flag(reading.KindMotion, false),
			flag(reading.KindPanic, false),
			num(reading.KindPressure, 1013.25),
			flag(reading.KindSmoke, true),
			flag(reading.KindTamper, false),
			num(reading.KindTemperature, 19),
			flag(reading.KindWaterLeak, true),
		)},
	},
	{
		name:    "keep-alive",
		topic:   nativeTopic,
		payload: `{}`,
		want:    hb,
	},
	{
		name:    "empty values keep-alive with link quality",
		topic:   nativeTopic,
		payload: `{"values":{},"link_quality":180}`,
		want:    Result{Heartbeat: true, LinkQuality: ptr(180)},
	},
	{
		name:    "battery alone is a battery reading",
		topic:   nativeTopic,
		payload: `{"battery":87}`,
		want:    Result{Observations: obs(num(reading.KindBattery, 87)), Battery: ptr(87)},
	},
	{
		name:    "battery value next to others becomes the attribute",
		topic:   nativeTopic,
		payload: `{"values":{"battery":64,"smoke":false}}`,
		want:    Result{Observations: obs(flag(reading.KindSmoke, false)), Battery: ptr(64)},
	},
	{
		name:    "null counts as absent",
		topic:   nativeTopic,
		payload: `{"time":null,"values":{"temperature":null,"smoke":true}}`,
		want:    Result{Observations: obs(flag(reading.KindSmoke, true))},
	},
	{
		name:    "implausible battery does not cost the smoke reading",
		topic:   nativeTopic,
		payload: `{"battery":200,"values":{"smoke":true}}`,
		want:    Result{Observations: obs(flag(reading.KindSmoke, true))},
	},
	{
		name:    "surrounding white space",
		topic:   nativeTopic,
		payload: " {\"values\":{\"door\":true}}\n",
		want:    Result{Observations: obs(flag(reading.KindDoor, true))},
	},
	{name: "status online", topic: nativeTopic + "/status", payload: "online", want: online(true)},
	{name: "status offline", topic: nativeTopic + "/status", payload: "offline", want: online(false)},
	{name: "status with newline", topic: nativeTopic + "/status", payload: "offline\n", want: online(false)},

	// Rejected.
	{name: "unknown top-level key", topic: nativeTopic, payload: `{"values":{},"colour":"red"}`, reason: ReasonMalformed},
	{name: "unknown kind", topic: nativeTopic, payload: `{"values":{"temprature":21}}`, reason: ReasonMalformed},
	{name: "availability in values", topic: nativeTopic, payload: `{"values":{"availability":true}}`, reason: ReasonMalformed},
	// A sensor may never speak for the gateway: fault is reported only by
	// the gateway's own parts.
	{name: "fault in values", topic: nativeTopic, payload: `{"values":{"fault":"ok"}}`, reason: ReasonMalformed},
	{name: "number for bool kind", topic: nativeTopic, payload: `{"values":{"smoke":1}}`, reason: ReasonWrongType},
	{name: "string for number kind", topic: nativeTopic, payload: `{"values":{"temperature":"hot"}}`, reason: ReasonWrongType},
	{name: "values not an object", topic: nativeTopic, payload: `{"values":[21.5]}`, reason: ReasonWrongType},
	// A timestamp that cannot be read costs itself, not the door.
	{name: "time not a string", topic: nativeTopic, payload: `{"time":1764471600,"values":{"door":true}}`, want: Result{Observations: obs(flag(reading.KindDoor, true)), Rejected: rej(ReasonWrongType)}},
	{name: "time without offset", topic: nativeTopic, payload: `{"time":"2026-11-30T03:00:00","values":{"door":true}}`, want: Result{Observations: obs(flag(reading.KindDoor, true)), Rejected: rej(ReasonBadTime)}},
	{name: "only a bad time", topic: nativeTopic, payload: `{"time":"2026-11-30T03:00:00"}`, reason: ReasonBadTime},
	{name: "wrong-typed value next to a good one", topic: nativeTopic, payload: `{"values":{"smoke":true,"humidity":"dry"}}`, want: Result{Observations: obs(flag(reading.KindSmoke, true)), Rejected: rej(ReasonWrongType)}},
	{name: "temperature -300", topic: nativeTopic, payload: `{"values":{"temperature":-300}}`, reason: ReasonOutOfRange},
	{name: "humidity 120", topic: nativeTopic, payload: `{"values":{"humidity":120}}`, reason: ReasonOutOfRange},
	{name: "pressure in Pa", topic: nativeTopic, payload: `{"values":{"pressure":101325}}`, reason: ReasonOutOfRange},
	{name: "co 20000", topic: nativeTopic, payload: `{"values":{"co":20000}}`, reason: ReasonOutOfRange},
	{name: "number overflows to infinity", topic: nativeTopic, payload: `{"values":{"temperature":1e400}}`, reason: ReasonNotFinite},
	{name: "NaN is not JSON", topic: nativeTopic, payload: `{"values":{"temperature":NaN}}`, reason: ReasonMalformed},
	{name: "battery alone out of range", topic: nativeTopic, payload: `{"battery":101}`, reason: ReasonOutOfRange},
	{name: "link quality alone wrong type", topic: nativeTopic, payload: `{"link_quality":"good"}`, reason: ReasonWrongType},
	{name: "malformed JSON", topic: nativeTopic, payload: `{"values":{"door":true}`, reason: ReasonMalformed},
	{name: "trailing data", topic: nativeTopic, payload: `{"values":{"door":true}} {}`, reason: ReasonMalformed},
	{name: "array payload", topic: nativeTopic, payload: `[{"values":{}}]`, reason: ReasonMalformed},
	{name: "null payload", topic: nativeTopic, payload: `null`, reason: ReasonMalformed},
	{name: "invalid UTF-8", topic: nativeTopic, payload: "{\"values\":{\"door\":true},\"x\":\"\xff\"}", reason: ReasonInvalidUTF8},
	{name: "empty payload", topic: nativeTopic, payload: "", reason: ReasonEmpty},
	{name: "empty status", topic: nativeTopic + "/status", payload: "", reason: ReasonEmpty},
	{name: "status not online or offline", topic: nativeTopic + "/status", payload: "Online", reason: ReasonMalformed},
	{name: "unknown sub-topic", topic: nativeTopic + "/set", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "trailing slash", topic: nativeTopic + "/", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "other device", topic: "shelterwatch/dorm3-temp2", payload: `{}`, reason: ReasonUnknownTopic},
}

func TestNative(t *testing.T) { runCases(t, Native{}, nativeDev, nativeCases) }

func FuzzNative(f *testing.F) {
	seedFuzz(f, nativeCases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		dev := nativeDev
		dev.Invert = invert
		fuzzDecode(t, Native{}, dev, topic, payload)
	})
}
