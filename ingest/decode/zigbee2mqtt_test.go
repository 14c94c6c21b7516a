package decode

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// The friendly name contains '/', as the Zigbee2MQTT docs allow.
var z2mDev = Device{ID: "hall-smoke", Base: "zigbee2mqtt/hall/smoke", Kind: reading.KindSmoke}

const z2mTopic = "zigbee2mqtt/hall/smoke"

// Payloads are the examples from the Zigbee2MQTT device pages and sources
// cited in the device payload reference notes (device-payloads.md §5.1).
var z2mCases = []decodeCase{
	{
		name:    "HEIMAN HS1SA smoke detector",
		topic:   z2mTopic,
		payload: `{"smoke":false,"battery_low":false,"battery":100,"linkquality":120}`,
		want: Result{
			Observations: obs(flag(reading.KindBatteryLow, false), flag(reading.KindSmoke, false)),
			Battery:      ptr(100), LinkQuality: ptr(120),
		},
	},
	{
		name:  "Xiaomi JTYJ-GD-01LM smoke alarm with extra fields",
		topic: z2mTopic,
		payload: `{"smoke":true,"battery_low":false,"tamper":false,"battery":100,"sensitivity":"medium",` +
			`"smoke_density":0,"voltage":3100,"test":false,"device_temperature":25,"power_outage_count":3,"linkquality":60}`,
		want: Result{
			Observations: obs(flag(reading.KindBatteryLow, false), flag(reading.KindSmoke, true), flag(reading.KindTamper, false)),
			Battery:      ptr(100), LinkQuality: ptr(60),
		},
	},
	{
		name:    "Aqara MCCGQ11LM contact false is an open door",
		topic:   z2mTopic,
		payload: `{"contact":false,"battery":91,"voltage":3005,"linkquality":87}`,
		want:    Result{Observations: obs(flag(reading.KindDoor, true)), Battery: ptr(91), LinkQuality: ptr(87)},
	},
	{
		name:    "SONOFF SNZB-04 contact true is a closed door",
		topic:   z2mTopic,
		payload: `{"contact":true,"battery_low":false,"battery":100,"voltage":3100,"linkquality":102}`,
		want: Result{
			Observations: obs(flag(reading.KindBatteryLow, false), flag(reading.KindDoor, false)),
			Battery:      ptr(100), LinkQuality: ptr(102),
		},
	},
	{
		name:    "Invert does not apply to Zigbee2MQTT",
		dev:     &Device{Base: z2mDev.Base, Kind: reading.KindDoor, Invert: true},
		topic:   z2mTopic,
		payload: `{"contact":true}`,
		want:    Result{Observations: obs(flag(reading.KindDoor, false))},
	},
	{
		name:    "Aqara WSDCGQ11LM temperature humidity pressure",
		topic:   z2mTopic,
		payload: `{"temperature":21.37,"humidity":44.7,"pressure":1003,"battery":97,"voltage":3015,"linkquality":96}`,
		want: Result{
			Observations: obs(num(reading.KindHumidity, 44.7), num(reading.KindPressure, 1003), num(reading.KindTemperature, 21.37)),
			Battery:      ptr(97), LinkQuality: ptr(96),
		},
	},
	{
		name:    "docs example WSDCGQ01LM",
		topic:   z2mTopic,
		payload: `{"temperature":27.34,"humidity":44.72}`,
		want:    Result{Observations: obs(num(reading.KindHumidity, 44.72), num(reading.KindTemperature, 27.34))},
	},
	{
		name:    "Aqara RTCGQ11LM occupancy is motion",
		topic:   z2mTopic,
		payload: `{"occupancy":true,"illuminance":23,"illuminance_lux":23,"battery":100,"voltage":3055,"device_temperature":26,"power_outage_count":12,"linkquality":72}`,
		want:    Result{Observations: obs(flag(reading.KindMotion, true)), Battery: ptr(100), LinkQuality: ptr(72)},
	},
	{
		name:    "Perenio PECLS01 water leak",
		topic:   z2mTopic,
		payload: `{"water_leak":true,"battery_low":false,"tamper":false,"battery":90,"linkquality":100}`,
		want: Result{
			Observations: obs(flag(reading.KindBatteryLow, false), flag(reading.KindTamper, false), flag(reading.KindWaterLeak, true)),
			Battery:      ptr(90), LinkQuality: ptr(100),
		},
	},
	{
		name:    "SOS button emergency action is panic",
		topic:   z2mTopic,
		payload: `{"action":"emergency","battery":100,"linkquality":80}`,
		want:    Result{Observations: obs(flag(reading.KindPanic, true)), Battery: ptr(100), LinkQuality: ptr(80)},
	},
	{
		name:    "sos action is panic",
		topic:   z2mTopic,
		payload: `{"action":"sos"}`,
		want:    Result{Observations: obs(flag(reading.KindPanic, true))},
	},
	{
		name:    "IAS sos flag is panic",
		topic:   z2mTopic,
		payload: `{"sos":true,"battery_low":false,"tamper":false,"linkquality":90}`,
		want: Result{
			Observations: obs(flag(reading.KindBatteryLow, false), flag(reading.KindPanic, true), flag(reading.KindTamper, false)),
			LinkQuality:  ptr(90),
		},
	},
	{
		name:    "sos flag wins over the action",
		topic:   z2mTopic,
		payload: `{"sos":false,"action":"emergency"}`,
		want:    Result{Observations: obs(flag(reading.KindPanic, false))},
	},
	{
		name:    "other actions are not readings",
		topic:   z2mTopic,
		payload: `{"action":"single","linkquality":80}`,
		want:    Result{Heartbeat: true, LinkQuality: ptr(80)},
	},
	{
		name:    "CO sensor",
		topic:   z2mTopic,
		payload: `{"co":12,"battery":88,"linkquality":110}`,
		want:    Result{Observations: obs(num(reading.KindCO, 12)), Battery: ptr(88), LinkQuality: ptr(110)},
	},
	{
		name:    "only battery and link quality is a battery reading",
		topic:   z2mTopic,
		payload: `{"battery":97,"linkquality":96}`,
		want:    Result{Observations: obs(num(reading.KindBattery, 97)), Battery: ptr(97), LinkQuality: ptr(96)},
	},
	{
		name:    "only link quality is a heartbeat",
		topic:   z2mTopic,
		payload: `{"linkquality":96}`,
		want:    Result{Heartbeat: true, LinkQuality: ptr(96)},
	},
	{
		name:    "only untracked fields is a heartbeat",
		topic:   z2mTopic,
		payload: `{"voltage":3005,"power_outage_count":3}`,
		want:    hb,
	},
	{
		name:    "last_seen ISO_8601",
		topic:   z2mTopic,
		payload: `{"temperature":21.5,"last_seen":"2019-10-23T09:36:26.279Z","linkquality":40}`,
		want: Result{
			Observations: obs(num(reading.KindTemperature, 21.5)),
			Time:         time.Date(2019, 10, 23, 9, 36, 26, 279e6, time.UTC), LinkQuality: ptr(40),
		},
	},
	{
		name:    "last_seen ISO_8601_local",
		topic:   z2mTopic,
		payload: `{"temperature":21.5,"last_seen":"2019-10-23T11:36:26.279+02:00"}`,
		want: Result{
			Observations: obs(num(reading.KindTemperature, 21.5)),
			Time:         time.Date(2019, 10, 23, 9, 36, 26, 279e6, time.UTC),
		},
	},
	{
		name:    "last_seen epoch milliseconds",
		topic:   z2mTopic,
		payload: `{"temperature":21.5,"last_seen":1571823386279,"elapsed":12000}`,
		want: Result{
			Observations: obs(num(reading.KindTemperature, 21.5)),
			Time:         time.Date(2019, 10, 23, 9, 36, 26, 279e6, time.UTC),
		},
	},
	{
		name:    "implausible temperature does not cost the smoke reading",
		topic:   z2mTopic,
		payload: `{"smoke":true,"temperature":-300,"linkquality":90}`,
		want: Result{Observations: obs(flag(reading.KindSmoke, true)), LinkQuality: reading.Ptr(90),
			Rejected: []error{&Error{Reason: ReasonOutOfRange}}},
	},
	{
		name:    "null fields are absent",
		topic:   z2mTopic,
		payload: `{"smoke":null,"battery":null,"temperature":20}`,
		want:    Result{Observations: obs(num(reading.KindTemperature, 20))},
	},
	{
		name:    "wrong-typed battery does not cost the smoke reading",
		topic:   z2mTopic,
		payload: `{"smoke":true,"battery":"high","linkquality":300}`,
		want:    Result{Observations: obs(flag(reading.KindSmoke, true))},
	},
	{name: "availability online", topic: z2mTopic + "/availability", payload: `{"state":"online"}`, want: online(true)},
	{name: "availability offline", topic: z2mTopic + "/availability", payload: `{"state":"offline"}`, want: online(false)},
	{name: "legacy availability online", topic: z2mTopic + "/availability", payload: `online`, want: online(true)},
	{name: "legacy availability offline", topic: z2mTopic + "/availability", payload: `offline`, want: online(false)},

	// Rejected.
	{name: "smoke as string", topic: z2mTopic, payload: `{"smoke":"yes","battery":100}`, reason: ReasonWrongType},
	{name: "temperature as string", topic: z2mTopic, payload: `{"temperature":"hot"}`, reason: ReasonWrongType},
	{name: "contact as number", topic: z2mTopic, payload: `{"contact":0}`, reason: ReasonWrongType},
	{name: "sos as string", topic: z2mTopic, payload: `{"sos":"on"}`, reason: ReasonWrongType},
	{name: "action as number", topic: z2mTopic, payload: `{"action":1}`, reason: ReasonWrongType},
	{name: "temperature -300", topic: z2mTopic, payload: `{"temperature":-300,"linkquality":96}`, reason: ReasonOutOfRange},
	{name: "humidity 101", topic: z2mTopic, payload: `{"humidity":101}`, reason: ReasonOutOfRange},
	{name: "temperature overflows", topic: z2mTopic, payload: `{"temperature":-1e999}`, reason: ReasonNotFinite},
	{name: "NaN is not JSON", topic: z2mTopic, payload: `{"temperature":NaN}`, reason: ReasonMalformed},
	{name: "Infinity is not JSON", topic: z2mTopic, payload: `{"temperature":Infinity}`, reason: ReasonMalformed},
	{name: "battery alone wrong type", topic: z2mTopic, payload: `{"battery":"high"}`, reason: ReasonWrongType},
	{name: "link quality alone out of range", topic: z2mTopic, payload: `{"linkquality":300}`, reason: ReasonOutOfRange},
	// A smoke flag with a garbled clock still gets through, on the receive
	// time.
	{name: "last_seen unparseable", topic: z2mTopic, payload: `{"smoke":true,"last_seen":"yesterday"}`, want: Result{Observations: obs(flag(reading.KindSmoke, true)), Rejected: rej(ReasonBadTime)}},
	{name: "last_seen negative", topic: z2mTopic, payload: `{"smoke":false,"last_seen":-5}`, want: Result{Observations: obs(flag(reading.KindSmoke, false)), Rejected: rej(ReasonBadTime)}},
	{name: "last_seen bool", topic: z2mTopic, payload: `{"smoke":false,"last_seen":true}`, want: Result{Observations: obs(flag(reading.KindSmoke, false)), Rejected: rej(ReasonWrongType)}},
	// One policy for values that cannot be used: dropped alone, the rest kept.
	{name: "overflowing humidity next to smoke", topic: z2mTopic, payload: `{"smoke":true,"humidity":1e999}`, want: Result{Observations: obs(flag(reading.KindSmoke, true)), Rejected: rej(ReasonNotFinite)}},
	{name: "wrong-typed humidity next to smoke", topic: z2mTopic, payload: `{"smoke":true,"humidity":"40"}`, want: Result{Observations: obs(flag(reading.KindSmoke, true)), Rejected: rej(ReasonWrongType)}},
	{name: "only an overflowing value", topic: z2mTopic, payload: `{"temperature":1e999}`, reason: ReasonNotFinite},
	{
		// A leak sensor's temperature is its chip's, not the room's.
		name: "leak sensor temperature ignored", topic: z2mTopic, dev: &Device{Base: "zigbee2mqtt/hall/smoke", Kind: reading.KindWaterLeak},
		payload: `{"water_leak":false,"temperature":27,"battery":90,"linkquality":80}`,
		want:    Result{Observations: obs(flag(reading.KindWaterLeak, false)), Battery: ptr(90), LinkQuality: ptr(80)},
	},
	{name: "malformed JSON", topic: z2mTopic, payload: `{"smoke":`, reason: ReasonMalformed},
	{name: "not an object", topic: z2mTopic, payload: `[true]`, reason: ReasonMalformed},
	{name: "plain text state", topic: z2mTopic, payload: `ON`, reason: ReasonMalformed},
	{name: "invalid UTF-8", topic: z2mTopic, payload: "{\"smoke\":false,\"x\":\"\xc3\x28\"}", reason: ReasonInvalidUTF8},
	{name: "empty payload", topic: z2mTopic, payload: "", reason: ReasonEmpty},
	{name: "empty availability", topic: z2mTopic + "/availability", payload: "", reason: ReasonEmpty},
	{name: "availability unknown state", topic: z2mTopic + "/availability", payload: `{"state":"maybe"}`, reason: ReasonMalformed},
	{name: "availability state wrong type", topic: z2mTopic + "/availability", payload: `{"state":1}`, reason: ReasonWrongType},
	{name: "availability without state", topic: z2mTopic + "/availability", payload: `{}`, reason: ReasonMalformed},
	{name: "set topic", topic: z2mTopic + "/set", payload: `{"state":"ON"}`, want: ign},
	{name: "get topic", topic: z2mTopic + "/get", payload: `{"state":""}`, want: ign},
	{name: "set attribute topic", topic: z2mTopic + "/set/sensitivity", payload: `high`, want: ign},

	// advanced.output: attribute publishes each field of the state on
	// <base>/<field>: strings as they are, numbers and booleans as JSON
	// text, null as an empty payload
	// (https://github.com/Koenkk/zigbee2mqtt/blob/master/lib/controller.ts,
	// iteratePayloadAttributeOutput; test/controller.test.ts "Publish
	// entity state attribute output": zigbee2mqtt/bulb/brightness "50",
	// zigbee2mqtt/bulb/test1 ""). The fields are HS1SA's, SNZB-04's,
	// WSDCGQ11LM's and the IAS presets' as in the JSON cases above.
	{name: "attribute smoke true", topic: z2mTopic + "/smoke", payload: `true`, want: Result{Observations: obs(flag(reading.KindSmoke, true))}},
	{name: "attribute smoke false", topic: z2mTopic + "/smoke", payload: `false`, want: Result{Observations: obs(flag(reading.KindSmoke, false))}},
	{name: "attribute contact true is a closed door", topic: z2mTopic + "/contact", payload: `true`, want: Result{Observations: obs(flag(reading.KindDoor, false))}},
	{name: "attribute contact false is an open door", topic: z2mTopic + "/contact", payload: `false`, want: Result{Observations: obs(flag(reading.KindDoor, true))}},
	{name: "attribute occupancy is motion", topic: z2mTopic + "/occupancy", payload: `true`, want: Result{Observations: obs(flag(reading.KindMotion, true))}},
	{name: "attribute water_leak", topic: z2mTopic + "/water_leak", payload: `true`, want: Result{Observations: obs(flag(reading.KindWaterLeak, true))}},
	{name: "attribute tamper", topic: z2mTopic + "/tamper", payload: `false`, want: Result{Observations: obs(flag(reading.KindTamper, false))}},
	{name: "attribute battery_low", topic: z2mTopic + "/battery_low", payload: `false`, want: Result{Observations: obs(flag(reading.KindBatteryLow, false))}},
	{name: "attribute temperature", topic: z2mTopic + "/temperature", payload: `21.37`, want: Result{Observations: obs(num(reading.KindTemperature, 21.37))}},
	{name: "attribute negative temperature", topic: z2mTopic + "/temperature", payload: `-4.5`, want: Result{Observations: obs(num(reading.KindTemperature, -4.5))}},
	{name: "attribute humidity", topic: z2mTopic + "/humidity", payload: `44.7`, want: Result{Observations: obs(num(reading.KindHumidity, 44.7))}},
	{name: "attribute pressure", topic: z2mTopic + "/pressure", payload: `1003`, want: Result{Observations: obs(num(reading.KindPressure, 1003))}},
	{name: "attribute co", topic: z2mTopic + "/co", payload: `12`, want: Result{Observations: obs(num(reading.KindCO, 12))}},
	{name: "attribute sos", topic: z2mTopic + "/sos", payload: `true`, want: Result{Observations: obs(flag(reading.KindPanic, true))}},
	{name: "attribute action emergency is panic", topic: z2mTopic + "/action", payload: `emergency`, want: Result{Observations: obs(flag(reading.KindPanic, true))}},
	{name: "attribute other action", topic: z2mTopic + "/action", payload: `single`, want: hb},
	{name: "attribute battery alone is a battery reading", topic: z2mTopic + "/battery", payload: `100`, want: Result{Observations: obs(num(reading.KindBattery, 100)), Battery: ptr(100)}},
	{name: "attribute linkquality is a heartbeat", topic: z2mTopic + "/linkquality", payload: `120`, want: Result{Heartbeat: true, LinkQuality: ptr(120)}},
	{name: "attribute last_seen ISO_8601", topic: z2mTopic + "/last_seen", payload: `2019-10-23T09:36:26.279Z`, want: Result{Heartbeat: true, Time: time.Date(2019, 10, 23, 9, 36, 26, 279e6, time.UTC)}},
	{name: "attribute last_seen epoch", topic: z2mTopic + "/last_seen", payload: `1571823386279`, want: Result{Heartbeat: true, Time: time.Date(2019, 10, 23, 9, 36, 26, 279e6, time.UTC)}},
	{name: "untracked attribute is a heartbeat", topic: z2mTopic + "/voltage", payload: `3100`, want: hb},
	{name: "untracked string attribute is a heartbeat", topic: z2mTopic + "/sensitivity", payload: `medium`, want: hb},
	{name: "object member attribute is a heartbeat", topic: z2mTopic + "/update-state", payload: `idle`, want: hb},
	{name: "attribute null is an absent field", topic: z2mTopic + "/smoke", payload: ``, want: hb},
	{name: "attribute JSON null is an absent field", topic: z2mTopic + "/temperature", payload: `null`, want: hb},
	{name: "attribute with newline", topic: z2mTopic + "/smoke", payload: "true\n", want: Result{Observations: obs(flag(reading.KindSmoke, true))}},
	{
		// A leak sensor's temperature is its chip's, in attribute output too.
		name: "attribute leak sensor temperature ignored", topic: z2mTopic + "/temperature", dev: &Device{Base: "zigbee2mqtt/hall/smoke", Kind: reading.KindWaterLeak},
		payload: `27`, want: hb,
	},
	{
		name: "attribute contact on a channel-less device has no channel", topic: z2mTopic + "/contact", payload: `false`,
		want: Result{Observations: obs(flag(reading.KindDoor, true))}, channels: true,
	},
	{name: "attribute smoke as a word", topic: z2mTopic + "/smoke", payload: `yes`, reason: ReasonWrongType},
	{name: "attribute smoke as ON", topic: z2mTopic + "/smoke", payload: `ON`, reason: ReasonWrongType},
	{name: "attribute temperature as a word", topic: z2mTopic + "/temperature", payload: `hot`, reason: ReasonWrongType},
	{name: "attribute temperature with a unit", topic: z2mTopic + "/temperature", payload: `21.5 °C`, reason: ReasonWrongType},
	{name: "attribute temperature -300", topic: z2mTopic + "/temperature", payload: `-300`, reason: ReasonOutOfRange},
	{name: "attribute temperature overflows", topic: z2mTopic + "/temperature", payload: `1e999`, reason: ReasonNotFinite},
	{name: "attribute contact as a number", topic: z2mTopic + "/contact", payload: `0`, reason: ReasonWrongType},
	{name: "attribute action as a number", topic: z2mTopic + "/action", payload: `1`, reason: ReasonWrongType},
	{name: "attribute battery as a word", topic: z2mTopic + "/battery", payload: `high`, reason: ReasonWrongType},
	{name: "attribute battery 200", topic: z2mTopic + "/battery", payload: `200`, reason: ReasonOutOfRange},
	{name: "attribute linkquality out of range", topic: z2mTopic + "/linkquality", payload: `300`, reason: ReasonOutOfRange},
	{name: "attribute last_seen unparseable", topic: z2mTopic + "/last_seen", payload: `yesterday`, reason: ReasonBadTime},
	{name: "attribute invalid UTF-8", topic: z2mTopic + "/smoke", payload: "tru\xff", reason: ReasonInvalidUTF8},
	{name: "attribute topic nested", topic: z2mTopic + "/smoke/extra", payload: `true`, reason: ReasonUnknownTopic},
	{name: "empty attribute name", topic: z2mTopic + "/", payload: `true`, reason: ReasonUnknownTopic},
	{name: "get attribute topic", topic: z2mTopic + "/get/state", payload: ``, want: ign},
	{name: "parent of base", topic: "zigbee2mqtt/hall", payload: `{"smoke":false}`, reason: ReasonUnknownTopic},
	{name: "longer friendly name", topic: "zigbee2mqtt/hall/smoke2", payload: `{"smoke":false}`, reason: ReasonUnknownTopic},
	{name: "bridge state", topic: "zigbee2mqtt/bridge/state", payload: `{"state":"online"}`, reason: ReasonUnknownTopic},
}

func TestZigbee2MQTT(t *testing.T) { runCases(t, Zigbee2MQTT{}, z2mDev, z2mCases) }

// TestZ2MAttributesAreTheStateFields keeps attribute output in step with
// the JSON state: every field the state reads has its attribute topic.
func TestZ2MAttributesAreTheStateFields(t *testing.T) {
	var s z2mState
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("json")
		if f := s.field(name); f != v.Field(i).Addr().Interface().(*json.RawMessage) {
			t.Errorf("field(%q) is not z2mState.%s", name, v.Type().Field(i).Name)
		}
	}
	if s.field("voltage") != nil {
		t.Error(`field("voltage") is not nil: the state does not read it`)
	}
}

func FuzzZigbee2MQTT(f *testing.F) {
	seedFuzz(f, z2mCases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		dev := z2mDev
		dev.Invert = invert
		fuzzDecode(t, Zigbee2MQTT{}, dev, topic, payload)
	})
}
