package decode

import (
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var shellyDev = Device{ID: "dorm3-ht", Base: "shellyplusht-b8d61a8b17cc", Kind: reading.KindTemperature}

const shp = "shellyplusht-b8d61a8b17cc/"

// Payloads from the Shelly Gen2 API docs (Mqtt, Notifications, Smoke, Flood,
// Input) and device-payloads.md §5.4.
var shellyCases = []decodeCase{
	{name: "temperature status", topic: shp + "status/temperature:0", payload: `{"id":0,"tC":19.8,"tF":67.6}`, want: Result{Observations: obs(num(reading.KindTemperature, 19.8))}},
	{name: "temperature in F only", topic: shp + "status/temperature:0", payload: `{"id":0,"tF":67.64}`, want: Result{Observations: obs(num(reading.KindTemperature, (67.64-32)/1.8))}},
	{name: "temperature read error", topic: shp + "status/temperature:0", payload: `{"id":0,"tC":null,"tF":null,"errors":["read"]}`, want: Result{Observations: obs(fault("temperature:0"))}, channels: true},
	// A Plus H&T on USB power: devicepower says 0 % with external power
	// present; that is no battery, not a flat one.
	{name: "USB powered H&T has no battery", topic: shp + "status/devicepower:0", payload: `{"id":0,"battery":{"V":0.0,"percent":0},"external":{"present":true}}`, want: hb},
	{
		name: "USB powered H&T full status", topic: shp + "events/rpc",
		payload: `{"src":"shellyplusht-b8d61a8b17cc","dst":"shellyplusht-b8d61a8b17cc/events","method":"NotifyFullStatus","params":{"ts":1680962879.62,"devicepower:0":{"id":0,"battery":{"V":0.0,"percent":0},"external":{"present":true}},"temperature:0":{"id":0,"tC":21.4,"tF":70.5},"humidity:0":{"id":0,"rh":44.0}}}`,
		want:    Result{Observations: obs(on("humidity:0", num(reading.KindHumidity, 44)), on("temperature:0", num(reading.KindTemperature, 21.4))), Time: time.UnixMilli(1680962879620).UTC()}, channels: true,
	},
	{name: "humidity status", topic: shp + "status/humidity:0", payload: `{"id":0,"rh":42.2}`, want: Result{Observations: obs(num(reading.KindHumidity, 42.2))}},
	{
		name:    "devicepower status is a battery reading",
		topic:   shp + "status/devicepower:0",
		payload: `{"id":0,"battery":{"V":6.13,"percent":100},"external":{"present":false}}`,
		want:    Result{Observations: obs(num(reading.KindBattery, 100)), Battery: ptr(100)},
	},
	{name: "smoke status quiet", topic: shp + "status/smoke:0", payload: `{"id":0,"alarm":false,"mute":false}`, want: Result{Observations: obs(flag(reading.KindSmoke, false))}},
	{name: "smoke status alarm", topic: shp + "status/smoke:0", payload: `{"id":0,"alarm":true,"mute":false}`, want: Result{Observations: obs(flag(reading.KindSmoke, true))}},
	{name: "flood status alarm", topic: shp + "status/flood:0", payload: `{"id":0,"alarm":true,"mute":false}`, want: Result{Observations: obs(flag(reading.KindWaterLeak, true))}},
	{
		name:    "input active on a door device",
		dev:     &Device{Base: shellyDev.Base, Kind: reading.KindDoor},
		topic:   shp + "status/input:0",
		payload: `{"id":0,"state":true}`,
		want:    Result{Observations: obs(flag(reading.KindDoor, true))},
	},
	{
		name:    "input inverted",
		dev:     &Device{Base: shellyDev.Base, Kind: reading.KindDoor, Invert: true},
		topic:   shp + "status/input:0",
		payload: `{"id":0,"state":true}`,
		want:    Result{Observations: obs(flag(reading.KindDoor, false))},
	},
	{
		name:    "input on a motion device",
		dev:     &Device{Base: shellyDev.Base, Kind: reading.KindMotion},
		topic:   shp + "status/input:0",
		payload: `{"id":0,"state":false}`,
		want:    Result{Observations: obs(flag(reading.KindMotion, false))},
	},
	{name: "input on a temperature device is a door", topic: shp + "status/input:0", payload: `{"id":0,"state":false}`, want: Result{Observations: obs(flag(reading.KindDoor, false))}},
	{name: "analog input has no state", topic: shp + "status/input:0", payload: `{"id":0,"state":null,"percent":42.5}`, want: hb},
	{name: "second input is its own channel", topic: shp + "status/input:1", payload: `{"id":1,"state":true}`, want: Result{Observations: obs(on("input:1", flag(reading.KindDoor, true)))}, channels: true},
	{
		name: "configured input channel", topic: shp + "status/input:2", payload: `{"id":2,"state":true}`,
		dev:  &Device{Base: shellyDev.Base, Kind: reading.KindTemperature, Channels: map[string]Channel{"input:2": {Kind: reading.KindSmoke}}},
		want: Result{Observations: obs(on("input:2", flag(reading.KindSmoke, true)))}, channels: true,
	},
	{
		name:  "sys status is a heartbeat",
		topic: shp + "status/sys",
		payload: `{"mac":"B8D61A8B17CC","restart_required":false,"time":"12:01","unixtime":1680962879,"uptime":12,"ram_size":246308,"ram_free":128084,` +
			`"fs_size":458752,"fs_free":114688,"cfg_rev":10,"kvs_rev":0,"webhook_rev":0,"available_updates":{},"wakeup_reason":{"boot":"deepsleep_wake","cause":"status_update"},"wakeup_period":600}`,
		want: hb,
	},
	{name: "wifi status is a heartbeat", topic: shp + "status/wifi", payload: `{"sta_ip":"192.168.1.50","status":"got ip","ssid":"shelter","rssi":-58}`, want: hb},
	{
		name:    "NotifyStatus temperature",
		topic:   shp + "events/rpc",
		payload: `{"src":"shellyplusht-b8d61a8b17cc","dst":"shellyplusht-b8d61a8b17cc/events","method":"NotifyStatus","params":{"ts":1680962879.62,"temperature:0":{"id":0,"tC":20.1,"tF":68.2}}}`,
		want:    Result{Observations: obs(num(reading.KindTemperature, 20.1)), Time: time.UnixMilli(1680962879620)},
	},
	{
		name:    "NotifyStatus partial component without tC",
		topic:   shp + "events/rpc",
		payload: `{"src":"shellyplusht-b8d61a8b17cc","dst":"shellyplusht-b8d61a8b17cc/events","method":"NotifyStatus","params":{"ts":1680962880.01,"temperature:0":{"id":0}}}`,
		want:    Result{Heartbeat: true, Time: time.UnixMilli(1680962880010)},
	},
	{
		name:  "NotifyFullStatus of an H&T",
		topic: shp + "events/rpc",
		payload: `{"src":"shellyplusht-b8d61a8b17cc","dst":"shellyplusht-b8d61a8b17cc/events","method":"NotifyFullStatus","params":{"ts":1680962879.62,` +
			`"ble":{},"cloud":{"connected":true},"devicepower:0":{"id":0,"battery":{"V":5.91,"percent":84},"external":{"present":false}},` +
			`"ht_ui":{},"humidity:0":{"id":0,"rh":44.6},"mqtt":{"connected":true},` +
			`"sys":{"mac":"B8D61A8B17CC","restart_required":false,"time":null,"unixtime":null,"uptime":1,"wakeup_period":600},` +
			`"temperature:0":{"id":0,"tC":21.3,"tF":70.3},"wifi":{"sta_ip":"192.168.1.50","status":"got ip","ssid":"shelter","rssi":-58},"ws":{"connected":false}}}`,
		want: Result{
			Observations: obs(num(reading.KindHumidity, 44.6), num(reading.KindTemperature, 21.3)),
			Time:         time.UnixMilli(1680962879620),
			Battery:      ptr(84),
		},
	},
	{
		name:    "NotifyStatus smoke alarm",
		topic:   shp + "events/rpc",
		payload: `{"src":"shellyplussmoke-aabbccddeeff","dst":"shellyplussmoke-aabbccddeeff/events","method":"NotifyStatus","params":{"ts":1700000000.5,"smoke:0":{"alarm":true}}}`,
		want:    Result{Observations: obs(flag(reading.KindSmoke, true)), Time: time.UnixMilli(1700000000500)},
	},
	{
		name:    "NotifyStatus docs example cloud disconnected",
		topic:   shp + "events/rpc",
		payload: `{"src":"shellypro4pm-f008d1d8b8b8","dst":"user_1","method":"NotifyStatus","params":{"ts":1624348482.25,"cloud":{"connected":false}}}`,
		want:    Result{Heartbeat: true, Time: time.UnixMilli(1624348482250)},
	},
	{
		name:    "NotifyStatus removed key is null",
		topic:   shp + "events/rpc",
		payload: `{"src":"shellyplusht-b8d61a8b17cc","dst":"x","method":"NotifyStatus","params":{"ts":1680962879.62,"humidity:0":null}}`,
		want:    Result{Heartbeat: true, Time: time.UnixMilli(1680962879620)},
	},
	{
		name:    "NotifyEvent is a heartbeat",
		topic:   shp + "events/rpc",
		payload: `{"src":"shellypro4pm-f008d1d8b8b8","dst":"user_1","method":"NotifyEvent","params":{"ts":1631266595.43,"events":[{"component":"input:0","id":0,"event":"single_push","ts":1631266595.43}]}}`,
		want:    Result{Heartbeat: true, Time: time.UnixMilli(1631266595430)},
	},
	{
		name:    "implausible battery does not cost the temperature",
		topic:   shp + "events/rpc",
		payload: `{"method":"NotifyFullStatus","params":{"ts":1680962879.62,"devicepower:0":{"id":0,"battery":{"V":9.9,"percent":150}},"temperature:0":{"id":0,"tC":21.3}}}`,
		want:    Result{Observations: obs(num(reading.KindTemperature, 21.3)), Time: time.UnixMilli(1680962879620)},
	},
	{name: "online true", topic: shp + "online", payload: "true", want: online(true)},
	{name: "online false", topic: shp + "online", payload: "false", want: online(false)},
	{name: "debug log is a heartbeat", topic: shp + "debug/log", payload: "shos_rpc_inst.c:243 Shelly.GetStatus via MQTT", want: hb},

	// Rejected.
	{name: "tC as string", topic: shp + "status/temperature:0", payload: `{"id":0,"tC":"hot"}`, reason: ReasonWrongType},
	{name: "tC -300", topic: shp + "status/temperature:0", payload: `{"id":0,"tC":-300,"tF":-508}`, reason: ReasonOutOfRange},
	{name: "tC overflows", topic: shp + "status/temperature:0", payload: `{"id":0,"tC":1e999}`, reason: ReasonNotFinite},
	{name: "NaN is not JSON", topic: shp + "status/temperature:0", payload: `{"id":0,"tC":NaN}`, reason: ReasonMalformed},
	{name: "rh 120", topic: shp + "status/humidity:0", payload: `{"id":0,"rh":120}`, reason: ReasonOutOfRange},
	{name: "smoke alarm as string", topic: shp + "status/smoke:0", payload: `{"id":0,"alarm":"yes"}`, reason: ReasonWrongType},
	{name: "input state as number", topic: shp + "status/input:0", payload: `{"id":0,"state":1}`, reason: ReasonWrongType},
	{name: "battery alone out of range", topic: shp + "status/devicepower:0", payload: `{"id":0,"battery":{"V":6.1,"percent":150}}`, reason: ReasonOutOfRange},
	{name: "battery alone wrong type", topic: shp + "status/devicepower:0", payload: `{"id":0,"battery":100}`, reason: ReasonWrongType},
	{name: "component not an object", topic: shp + "events/rpc", payload: `{"method":"NotifyStatus","params":{"ts":1680962879.62,"temperature:0":20.1}}`, reason: ReasonWrongType},
	{name: "params not an object", topic: shp + "events/rpc", payload: `{"method":"NotifyStatus","params":[1]}`, reason: ReasonWrongType},
	{name: "method not a string", topic: shp + "events/rpc", payload: `{"method":5,"params":{}}`, reason: ReasonWrongType},
	{name: "ts not a number", topic: shp + "events/rpc", payload: `{"method":"NotifyStatus","params":{"ts":"now"}}`, reason: ReasonWrongType},
	{name: "ts absurd", topic: shp + "events/rpc", payload: `{"method":"NotifyStatus","params":{"ts":1e300}}`, reason: ReasonBadTime},
	{name: "malformed status", topic: shp + "status/temperature:0", payload: `{"id":0,"tC":19.8`, reason: ReasonMalformed},
	{name: "malformed rpc", topic: shp + "events/rpc", payload: `NotifyStatus`, reason: ReasonMalformed},
	{name: "invalid UTF-8", topic: shp + "status/temperature:0", payload: "{\"id\":0,\"tC\":19.8,\"n\":\"\xed\xa0\x80\"}", reason: ReasonInvalidUTF8},
	{name: "empty status", topic: shp + "status/temperature:0", payload: "", reason: ReasonEmpty},
	{name: "empty online", topic: shp + "online", payload: "", reason: ReasonEmpty},
	{name: "online not a bool", topic: shp + "online", payload: "online", reason: ReasonMalformed},
	{name: "rpc request topic", topic: shp + "rpc", payload: `{"id":1,"src":"gw","method":"Shelly.GetStatus"}`, want: ign},
	{name: "command topic", topic: shp + "command", payload: "status_update", want: ign},
	{name: "status without component", topic: shp + "status", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "upper-case component", topic: shp + "status/Temperature:0", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "component without id", topic: shp + "status/temperature:", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "base topic itself", topic: "shellyplusht-b8d61a8b17cc", payload: `{}`, reason: ReasonUnknownTopic},
}

func TestShelly(t *testing.T) { runCases(t, Shelly{}, shellyDev, shellyCases) }

func FuzzShelly(f *testing.F) {
	seedFuzz(f, shellyCases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		dev := shellyDev
		dev.Invert = invert
		fuzzDecode(t, Shelly{}, dev, topic, payload)
	})
}
