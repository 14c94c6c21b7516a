package decode

import (
	"testing"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var shellyGen1Dev = Device{ID: "dorm3-ht", Base: "shellies/shellyht-123456", Kind: reading.KindTemperature}

const (
	sg1   = "shellies/shellyht-123456/"
	sg1DW = "shellies/shellydw2-6A9B1C/"
	sg1Sw = "shellies/shelly1-F42054/"
)

var (
	shellyGen1DW    = &Device{ID: "ward-window", Base: "shellies/shellydw2-6A9B1C", Kind: reading.KindDoor}
	shellyGen1Flood = &Device{ID: "store-flood", Base: "shellies/shellyflood-ABE866", Kind: reading.KindWaterLeak}
	shellyGen1Smoke = &Device{ID: "hall-smoke", Base: "shellies/shellysmoke-5E3B2A", Kind: reading.KindSmoke}
	// A Shelly 1 with its input wired to a door contact and the
	// temperature add-on's probes in the vaccine fridges.
	shellyGen1Relay = &Device{ID: "clinic-shelly1", Base: "shellies/shelly1-F42054", Kind: reading.KindDoor}
)

// Topics and payload forms from the Shelly Gen1 API docs
// (https://shelly-api-docs.shelly.cloud/gen1/, MQTT sections of the
// common API, Shelly H&T, Door/Window 2, Flood, Smoke and Shelly 1/1PM).
var shellyGen1Cases = []decodeCase{
	// An H&T's messages as a user captured them (values and payload forms as
	// in https://shelly-api-docs.shelly.cloud/gen1/#shelly-h-amp-t-mqtt).
	{name: "online", topic: sg1 + "online", payload: "true", want: online(true), channels: true},
	{name: "online false is the LWT", topic: sg1 + "online", payload: "false", want: online(false), channels: true},
	{name: "temperature", topic: sg1 + "sensor/temperature", payload: "29.62", want: Result{Observations: obs(num(reading.KindTemperature, 29.62))}, channels: true},
	{name: "humidity", topic: sg1 + "sensor/humidity", payload: "40.5", want: Result{Observations: obs(num(reading.KindHumidity, 40.5))}, channels: true},
	{name: "battery alone is a battery reading", topic: sg1 + "sensor/battery", payload: "100", want: Result{Observations: obs(num(reading.KindBattery, 100)), Battery: ptr(100)}, channels: true},
	{name: "ext_power", topic: sg1 + "sensor/ext_power", payload: "false", want: hb, channels: true},
	{name: "error 0 is a sign of life", topic: sg1 + "sensor/error", payload: "0", want: hb, channels: true},
	// "sensor/error: if different from 0, there is an error with the sensor"
	{name: "error 1 is a sensor fault", topic: sg1 + "sensor/error", payload: "1", want: Result{Observations: obs(fault(""))}, channels: true},
	{name: "act_reasons", topic: sg1 + "sensor/act_reasons", payload: `["sensor"]`, want: hb, channels: true},
	{name: "trailing newline", topic: sg1 + "sensor/temperature", payload: "29.62\n", want: Result{Observations: obs(num(reading.KindTemperature, 29.62))}, channels: true},
	// Announce record of the docs' "Device announce" (captured from an H&T).
	{
		name:     "announce",
		topic:    sg1 + "announce",
		payload:  `{"id":"shellyht-123456","model":"SHHT-1","mac":"123456789","ip":"192.168.0.123","new_fw":false,"fw_ver":"20210710-130145/v1.11.0-g12a9327-master"}`,
		want:     hb,
		channels: true,
	},
	// /status of a Shelly 1 with the temperature add-on, as published on
	// info (https://github.com/iobroker-community-adapters/ioBroker.shelly/issues/119).
	{
		name:  "info carries the Wi-Fi link quality",
		dev:   shellyGen1Relay,
		topic: sg1Sw + "info",
		payload: `{"wifi_sta":{"connected":true,"ssid":"xxxx","ip":"xxx.xxx.xxx.xxx","rssi":-70},"cloud":{"enabled":false,"connected":false},"mqtt":{"connected":true},` +
			`"time":"09:27","serial":1,"has_update":false,"mac":"xxxxxxxxxxxxxxx","relays":[{"ison":false,"has_timer":false,"overpower":false}],` +
			`"meters":[{"power":0,"is_valid":true,"timestamp":1580030843,"counters":[0,0,0],"total":0}],"inputs":[{"input":0}],` +
			`"ext_temperature":{"0":{"tC":22.19,"tF":71.9375},"1":{"tC":23.62,"tF":74.525},"2":{"tC":23.12,"tF":73.625}},` +
			`"temperature":43.77,"overtemperature":false,"tmp":{"tC":43.77,"tF":110.78,"is_valid":"true"}}`,
		want:     Result{Heartbeat: true, LinkQuality: ptr(60 * 2.55)},
		channels: true,
	},
	{name: "info without wifi_sta", topic: sg1 + "info", payload: `{"tmp":{"value":22.4,"units":"C","is_valid":true}}`, want: hb, channels: true},

	// Door/Window 2 (https://shelly-api-docs.shelly.cloud/gen1/#shelly-door-window-1-2-mqtt).
	{name: "DW2 open", dev: shellyGen1DW, topic: sg1DW + "sensor/state", payload: "open", want: Result{Observations: obs(flag(reading.KindDoor, true))}, channels: true},
	{name: "DW2 close", dev: shellyGen1DW, topic: sg1DW + "sensor/state", payload: "close", want: Result{Observations: obs(flag(reading.KindDoor, false))}, channels: true},
	{name: "DW2 tilt is open", dev: shellyGen1DW, topic: sg1DW + "sensor/state", payload: "tilt", want: Result{Observations: obs(flag(reading.KindDoor, true))}, channels: true},
	{name: "DW2 lux", dev: shellyGen1DW, topic: sg1DW + "sensor/lux", payload: "12", want: hb, channels: true},
	{name: "DW2 illumination", dev: shellyGen1DW, topic: sg1DW + "sensor/illumination", payload: "dark", want: hb, channels: true},
	{name: "DW2 tilt angle", dev: shellyGen1DW, topic: sg1DW + "sensor/tilt", payload: "0", want: hb, channels: true},
	{name: "DW2 vibration", dev: shellyGen1DW, topic: sg1DW + "sensor/vibration", payload: "1", want: hb, channels: true},
	{name: "DW2 temperature", dev: shellyGen1DW, topic: sg1DW + "sensor/temperature", payload: "21.5", want: Result{Observations: obs(num(reading.KindTemperature, 21.5))}, channels: true},
	{name: "DW2 battery", dev: shellyGen1DW, topic: sg1DW + "sensor/battery", payload: "87", want: Result{Observations: obs(num(reading.KindBattery, 87)), Battery: ptr(87)}, channels: true},

	// Flood (https://shelly-api-docs.shelly.cloud/gen1/#shelly-flood-mqtt:
	// "sensor/flood: reports true when flood is detected, false otherwise").
	{name: "flood true", dev: shellyGen1Flood, topic: "shellies/shellyflood-ABE866/sensor/flood", payload: "true", want: Result{Observations: obs(flag(reading.KindWaterLeak, true))}, channels: true},
	{name: "flood false", dev: shellyGen1Flood, topic: "shellies/shellyflood-ABE866/sensor/flood", payload: "false", want: Result{Observations: obs(flag(reading.KindWaterLeak, false))}, channels: true},
	{name: "flood temperature", dev: shellyGen1Flood, topic: "shellies/shellyflood-ABE866/sensor/temperature", payload: "18.25", want: Result{Observations: obs(num(reading.KindTemperature, 18.25))}, channels: true},
	{name: "flood online", dev: shellyGen1Flood, topic: "shellies/shellyflood-ABE866/online", payload: "true", want: online(true), channels: true},

	// Smoke (sensor/smoke true / false; the CoIoT value is 1 / 0).
	{name: "smoke true", dev: shellyGen1Smoke, topic: "shellies/shellysmoke-5E3B2A/sensor/smoke", payload: "true", want: Result{Observations: obs(flag(reading.KindSmoke, true))}, channels: true},
	{name: "smoke 0", dev: shellyGen1Smoke, topic: "shellies/shellysmoke-5E3B2A/sensor/smoke", payload: "0", want: Result{Observations: obs(flag(reading.KindSmoke, false))}, channels: true},

	// Shelly 1 input and add-on (https://shelly-api-docs.shelly.cloud/gen1/#shelly1-1pm-mqtt:
	// "input/0 reports the state of the SW terminal"; ext_temperature/<n>
	// as in https://github.com/bieniu/ha-shellies-discovery/issues/47).
	{name: "input active on a door device", dev: shellyGen1Relay, topic: sg1Sw + "input/0", payload: "1", want: Result{Observations: obs(on("input/0", flag(reading.KindDoor, true)))}, channels: true},
	{name: "input idle", dev: shellyGen1Relay, topic: sg1Sw + "input/0", payload: "0", want: Result{Observations: obs(on("input/0", flag(reading.KindDoor, false)))}, channels: true},
	{
		name:     "input inverted for an alarm contact",
		dev:      &Device{Base: shellyGen1Relay.Base, Kind: reading.KindDoor, Invert: true},
		topic:    sg1Sw + "input/0",
		payload:  "1",
		want:     Result{Observations: obs(on("input/0", flag(reading.KindDoor, false)))},
		channels: true,
	},
	{
		name:     "input with its own channel kind",
		dev:      &Device{Base: shellyGen1Relay.Base, Kind: reading.KindDoor, Channels: map[string]Channel{"input/1": {Kind: reading.KindPanic}}},
		topic:    sg1Sw + "input/1",
		payload:  "1",
		want:     Result{Observations: obs(on("input/1", flag(reading.KindPanic, true)))},
		channels: true,
	},
	{name: "input on a temperature device is a door", topic: sg1 + "input/0", payload: "1", want: Result{Observations: obs(on("input/0", flag(reading.KindDoor, true)))}, channels: true},
	{name: "add-on probe", dev: shellyGen1Relay, topic: sg1Sw + "ext_temperature/1", payload: "35.75", want: Result{Observations: obs(on("ext_temperature/1", num(reading.KindTemperature, 35.75)))}, channels: true},
	// An unplugged probe reads 999 (CoIoT "extTemp" unavailable value;
	// https://github.com/home-assistant/core/issues/49415).
	{name: "add-on probe unplugged is a sensor fault", dev: shellyGen1Relay, topic: sg1Sw + "ext_temperature/0", payload: "999", want: Result{Observations: obs(fault("ext_temperature/0"))}, channels: true},
	{name: "add-on humidity", dev: shellyGen1Relay, topic: sg1Sw + "ext_humidity/0", payload: "45.3", want: Result{Observations: obs(on("ext_humidity/0", num(reading.KindHumidity, 45.3)))}, channels: true},
	{name: "add-on probe in F is a heartbeat", dev: shellyGen1Relay, topic: sg1Sw + "ext_temperature_f/1", payload: "96.35", want: hb, channels: true},

	// Relay state topics prove the device alive
	// (https://github.com/enesbcs/Shelly_MQTT/issues/16, a Shelly 2.5).
	{name: "relay state", dev: shellyGen1Relay, topic: sg1Sw + "relay/0", payload: "off", want: hb, channels: true},
	{name: "input event", dev: shellyGen1Relay, topic: sg1Sw + "input_event/0", payload: `{"event":"","event_cnt":0}`, want: hb, channels: true},
	{name: "device temperature is the chip's", dev: shellyGen1Relay, topic: sg1Sw + "temperature", payload: "59.03", want: hb, channels: true},
	{name: "overtemperature", dev: shellyGen1Relay, topic: sg1Sw + "overtemperature", payload: "0", want: hb, channels: true},
	{name: "relay power", dev: shellyGen1Relay, topic: sg1Sw + "relay/power", payload: "0.0", want: hb, channels: true},
	{name: "roller state", dev: shellyGen1Relay, topic: sg1Sw + "roller/0", payload: "stop", want: hb, channels: true},
	{name: "longpush", dev: shellyGen1Relay, topic: sg1Sw + "longpush/0", payload: "0", want: hb, channels: true},
	{
		name:     "custom MQTT id with a slash",
		dev:      &Device{Base: "shellies/shellies/shellyem3", Kind: reading.KindTemperature},
		topic:    "shellies/shellies/shellyem3/online",
		payload:  "true",
		want:     online(true),
		channels: true,
	},

	// Commands to the device (https://shelly-api-docs.shelly.cloud/gen1/:
	// "shellies/<id>/command" accepts announce and update; relay/0/command
	// accepts on, off, toggle; the RGBW2 takes color/0/set).
	{name: "command announce", topic: sg1 + "command", payload: "announce", want: ign},
	{name: "command update", topic: sg1 + "command", payload: "update", want: ign},
	{name: "relay command", dev: shellyGen1Relay, topic: sg1Sw + "relay/0/command", payload: "on", want: ign},
	{name: "color set", topic: sg1 + "color/0/set", payload: `{"mode":"color","red":255}`, want: ign},

	// Rejected.
	{name: "temperature not a number", topic: sg1 + "sensor/temperature", payload: "hot", reason: ReasonMalformed},
	{name: "temperature -300", topic: sg1 + "sensor/temperature", payload: "-300", reason: ReasonOutOfRange},
	{name: "temperature overflows", topic: sg1 + "sensor/temperature", payload: "1e999", reason: ReasonNotFinite},
	{name: "temperature nan", topic: sg1 + "sensor/temperature", payload: "nan", reason: ReasonNotFinite},
	{name: "humidity 145", topic: sg1 + "sensor/humidity", payload: "145", reason: ReasonOutOfRange},
	{name: "battery 200", topic: sg1 + "sensor/battery", payload: "200", reason: ReasonOutOfRange},
	{name: "error not a number", topic: sg1 + "sensor/error", payload: "yes", reason: ReasonMalformed},
	{name: "DW2 unknown state", dev: shellyGen1DW, topic: sg1DW + "sensor/state", payload: "ajar", reason: ReasonMalformed},
	{name: "flood unknown word", dev: shellyGen1Flood, topic: "shellies/shellyflood-ABE866/sensor/flood", payload: "wet", reason: ReasonMalformed},
	{name: "input 2", dev: shellyGen1Relay, topic: sg1Sw + "input/0", payload: "2", reason: ReasonMalformed},
	{name: "online word", topic: sg1 + "online", payload: "yes", reason: ReasonMalformed},
	{name: "info not an object", topic: sg1 + "info", payload: `[1]`, reason: ReasonMalformed},
	{name: "info malformed", topic: sg1 + "info", payload: `{"wifi_sta":{"rssi":-70}`, reason: ReasonMalformed},
	{name: "info rssi wrong type", topic: sg1 + "info", payload: `{"wifi_sta":{"rssi":"strong"}}`, reason: ReasonWrongType},
	{name: "info wifi_sta wrong type", topic: sg1 + "info", payload: `{"wifi_sta":true}`, reason: ReasonWrongType},
	{name: "info rssi out of range", topic: sg1 + "info", payload: `{"wifi_sta":{"rssi":127}}`, reason: ReasonOutOfRange},
	{name: "empty temperature", topic: sg1 + "sensor/temperature", payload: "", reason: ReasonEmpty},
	{name: "invalid UTF-8", topic: sg1 + "sensor/temperature", payload: "2\xff", reason: ReasonInvalidUTF8},
	{name: "unknown sensor topic", topic: sg1 + "sensor/co2", payload: "400", reason: ReasonUnknownTopic},
	{name: "unknown topic", topic: sg1 + "status", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "input without index", topic: sg1 + "input/x", payload: "1", reason: ReasonUnknownTopic},
	{name: "input nested", topic: sg1 + "input/0/extra", payload: "1", reason: ReasonUnknownTopic},
	{name: "online nested", topic: sg1 + "online/extra", payload: "true", reason: ReasonUnknownTopic},
	{name: "bare base", topic: "shellies/shellyht-123456", payload: "true", reason: ReasonUnknownTopic},
	{name: "other device", topic: "shellies/shellyht-654321/sensor/temperature", payload: "20", reason: ReasonUnknownTopic},
	{name: "shared announce topic", topic: "shellies/announce", payload: `{}`, reason: ReasonUnknownTopic},
}

func TestShellyGen1(t *testing.T) { runCases(t, ShellyGen1{}, shellyGen1Dev, shellyGen1Cases) }

func FuzzShellyGen1(f *testing.F) {
	seedFuzz(f, shellyGen1Cases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		dev := shellyGen1Dev
		dev.Invert = invert
		dev.Channels = map[string]Channel{"input/1": {Kind: reading.KindPanic, Invert: invert}}
		fuzzDecode(t, ShellyGen1{}, dev, topic, payload)
	})
}
