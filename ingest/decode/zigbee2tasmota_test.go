package decode

import (
	"testing"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var z2tDev = Device{ID: "zb-bridge", Base: "SonoffZB", Kind: reading.KindDoor}

const (
	z2tSensor = "tele/SonoffZB/SENSOR"
	z2tResult = "tele/SonoffZB/RESULT"
)

var z2tCases = []decodeCase{
	// https://tasmota.github.io/docs/Zigbee/ "Reading Sensors", Aqara
	// temperature & humidity sensor 0x8F20 named Kitchen. (The docs' JSON
	// lacks its final closing brace; it is added here.)
	{
		name:    "Aqara weather by short address",
		topic:   z2tSensor,
		payload: `{"ZbReceived": {"0x8F20": {"Name": "Kitchen", "Voltage": 2.995, "Battery": 98, "Temperature": 21.01, "Humidity": 53.68, "Pressure": 1004.04, "PressureUnit": "hPa", "Endpoint": 1, "LinkQuality": 88}}}`,
		want: Result{
			Observations: obs(on("Kitchen", num(reading.KindHumidity, 53.68)), on("Kitchen", num(reading.KindPressure, 1004.04)), on("Kitchen", num(reading.KindTemperature, 21.01))),
			Battery:      ptr(98),
			LinkQuality:  ptr(88),
		},
		channels: true,
	},
	// Same page, with SetOption83 1: the key is the name.
	{
		name:    "Aqara weather keyed by name (SetOption83)",
		topic:   z2tSensor,
		payload: `{"ZbReceived": {"Kitchen": {"Device": "0x8F20", "Voltage": 2.995, "Battery": 98, "Temperature": 21.01, "Humidity": 53.68, "Pressure": 1004.04, "PressureUnit": "hPa", "Endpoint": 1, "LinkQuality": 88}}}`,
		want: Result{
			Observations: obs(on("Kitchen", num(reading.KindHumidity, 53.68)), on("Kitchen", num(reading.KindPressure, 1004.04)), on("Kitchen", num(reading.KindTemperature, 21.01))),
			Battery:      ptr(98),
			LinkQuality:  ptr(88),
		},
		channels: true,
	},
	// Same page, with SetOption89 1: one topic per Zigbee device.
	{
		name:    "device topic (SetOption89)",
		topic:   "tele/SonoffZB/8F20/SENSOR",
		payload: `{"ZbReceived": {"Kitchen": {"Device": "0x8F20", "Voltage": 2.995, "Battery": 98, "Temperature": 21.01, "Humidity": 53.68, "Pressure": 1004.04, "PressureUnit": "hPa", "Endpoint": 1, "LinkQuality": 88}}}`,
		want: Result{
			Observations: obs(on("Kitchen", num(reading.KindHumidity, 53.68)), on("Kitchen", num(reading.KindPressure, 1004.04)), on("Kitchen", num(reading.KindTemperature, 21.01))),
			Battery:      ptr(98),
			LinkQuality:  ptr(88),
		},
		channels: true,
	},
	{
		name:    "config naming the short address keeps it as the channel",
		dev:     &Device{Base: "SonoffZB", Channels: map[string]Channel{"0x8F20": {Kind: reading.KindTemperature}}},
		topic:   z2tSensor,
		payload: `{"ZbReceived": {"Kitchen": {"Device": "0x8F20", "Voltage": 2.995, "Battery": 98, "Temperature": 21.01, "Humidity": 53.68, "Pressure": 1004.04, "PressureUnit": "hPa", "Endpoint": 1, "LinkQuality": 88}}}`,
		want: Result{
			Observations: obs(on("0x8F20", num(reading.KindHumidity, 53.68)), on("0x8F20", num(reading.KindPressure, 1004.04)), on("0x8F20", num(reading.KindTemperature, 21.01))),
			Battery:      ptr(98),
			LinkQuality:  ptr(88),
		},
		channels: true,
	},
	// A Sonoff ZBBridge's log
	// (https://github.com/tabspacekr/HomeAssistant/blob/main/tasmota/mqtt/readme.txt):
	// Aqara door sensor closed, then opened. Contact 1 = open.
	{
		name:    "door closed",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0x662E":{"Device":"0x662E","Name":" door_sensor","0500<00":"200000010000","ZoneStatusChange":32,"ZoneStatusChangeZone":1,"Contact":0,"Endpoint":1,"LinkQuality":157}}}`,
		want: Result{
			Observations: obs(on("door_sensor", flag(reading.KindBatteryLow, false)), on("door_sensor", flag(reading.KindDoor, false)), on("door_sensor", flag(reading.KindTamper, false))),
			LinkQuality:  ptr(157),
		},
		channels: true,
	},
	{
		name:    "door opened",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0x662E":{"Device":"0x662E","Name":" door_sensor","0500<00":"210000010000","ZoneStatusChange":33,"ZoneStatusChangeZone":1,"Contact":1,"Endpoint":1,"LinkQuality":157}}}`,
		want: Result{
			Observations: obs(on("door_sensor", flag(reading.KindBatteryLow, false)), on("door_sensor", flag(reading.KindDoor, true)), on("door_sensor", flag(reading.KindTamper, false))),
			LinkQuality:  ptr(157),
		},
		channels: true,
	},
	{
		name:    "Tuya door opened",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0xCBA4":{"Device":"0xCBA4","Name":"Tuya_Door_Sensor","0500<00":"010000010000","ZoneStatusChange":1,"ZoneStatusChangeZone":1,"Contact":1,"Endpoint":1,"LinkQuality":144}}}`,
		want: Result{
			Observations: obs(on("Tuya_Door_Sensor", flag(reading.KindBatteryLow, false)), on("Tuya_Door_Sensor", flag(reading.KindDoor, true)), on("Tuya_Door_Sensor", flag(reading.KindTamper, false))),
			LinkQuality:  ptr(144),
		},
		channels: true,
	},
	{
		name:     "motion",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x057B":{"Device":"0x057B","Name":" motion_sensor","Occupancy":1,"Endpoint":1,"LinkQuality":194}}}`,
		want:     Result{Observations: obs(on("motion_sensor", flag(reading.KindMotion, true))), LinkQuality: ptr(194)},
		channels: true,
	},
	{
		name:     "motion cleared without link quality",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x057B":{"Device":"0x057B","Name":" motion_sensor","Occupancy":0}}}`,
		want:     Result{Observations: obs(on("motion_sensor", flag(reading.KindMotion, false)))},
		channels: true,
	},
	{
		name:     "motion keyed by name",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"xiaomi_motion_sensor":{"Device":"0x057B","Name":"xiaomi_motion_sensor","Occupancy":0,"Endpoint":1,"LinkQuality":178}}}`,
		want:     Result{Observations: obs(on("xiaomi_motion_sensor", flag(reading.KindMotion, false))), LinkQuality: ptr(178)},
		channels: true,
	},
	{
		name:    "shock sensor: Movement is not read, the zone status is",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0xE30E":{"Device":"0xE30E","0500?00":"010400010000","ZoneStatusChange":1025,"ZoneStatusChangeZone":1,"Movement":1,"Endpoint":1,"LinkQuality":141}}}`,
		want: Result{
			Observations: obs(on("0xE30E", flag(reading.KindBatteryLow, false)), on("0xE30E", flag(reading.KindTamper, false))),
			LinkQuality:  ptr(141),
		},
		channels: true,
	},
	// A leak sensor's zone status as a Zigbee2Tasmota client received it
	// (Water from the IAS zone, as Tasmota's converters name it).
	{
		name:    "water leak",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0x7E14":{"0500<00":"310000010000","Water":1,"Endpoint":1,"ZoneStatusChange":49,"Device":"0x7E14","LinkQuality":92,"ZoneStatusChangeZone":1}}}`,
		want: Result{
			Observations: obs(on("0x7E14", flag(reading.KindBatteryLow, false)), on("0x7E14", flag(reading.KindTamper, false)), on("0x7E14", flag(reading.KindWaterLeak, true))),
			LinkQuality:  ptr(92),
		},
		channels: true,
	},
	{
		name:    "smoke detector: Fire, with low battery and tamper bits",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0x1C4B":{"Device":"0x1C4B","Name":"Hall_Smoke","ZoneStatusChange":13,"ZoneStatusChangeZone":1,"Fire":1,"Endpoint":1,"LinkQuality":120}}}`,
		want: Result{
			Observations: obs(on("Hall_Smoke", flag(reading.KindBatteryLow, true)), on("Hall_Smoke", flag(reading.KindSmoke, true)), on("Hall_Smoke", flag(reading.KindTamper, true))),
			LinkQuality:  ptr(120),
		},
		channels: true,
	},
	{
		name:    "personal alarm is panic",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0x2A07":{"Device":"0x2A07","Name":"SOS_Button","ZoneStatus":1,"PersonalAlarm":true,"Endpoint":1,"LinkQuality":99}}}`,
		want: Result{
			Observations: obs(on("SOS_Button", flag(reading.KindBatteryLow, false)), on("SOS_Button", flag(reading.KindPanic, true)), on("SOS_Button", flag(reading.KindTamper, false))),
			LinkQuality:  ptr(99),
		},
		channels: true,
	},
	{
		name:    "zone trouble bit is a sensor fault",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0x662E":{"Device":"0x662E","Name":"door_sensor","ZoneStatusChange":64,"Contact":0,"LinkQuality":150}}}`,
		want: Result{
			Observations: obs(on("door_sensor", flag(reading.KindBatteryLow, false)), on("door_sensor", flag(reading.KindDoor, false)), fault("door_sensor"), on("door_sensor", flag(reading.KindTamper, false))),
			LinkQuality:  ptr(150),
		},
		channels: true,
	},
	{
		name:    "temperature null is a sensor fault",
		topic:   z2tSensor,
		payload: `{"ZbReceived":{"0x8F20":{"Device":"0x8F20","Name":"Kitchen","Temperature":null,"Humidity":53.68,"LinkQuality":88}}}`,
		want: Result{
			Observations: obs(on("Kitchen", num(reading.KindHumidity, 53.68)), fault("Kitchen")),
			LinkQuality:  ptr(88),
		},
		channels: true,
	},
	// A battery report alone stays a battery reading on its channel
	// (https://github.com/mdaskalov/homebridge-tasmota-zbbridge, sensor
	// accessory source).
	{
		name:     "battery alone",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x01F3":{"Device":"0x01F3","Name":"MotionSensor","BatteryVoltage":2.7,"BatteryPercentage":17,"Endpoint":1,"LinkQuality":79}}}`,
		want:     Result{Observations: obs(on("MotionSensor", num(reading.KindBattery, 17))), Battery: ptr(17), LinkQuality: ptr(79)},
		channels: true,
	},
	{
		name:  "two devices in one message: no shared attributes",
		topic: z2tSensor,
		payload: `{"ZbReceived":{"0x057B":{"Device":"0x057B","Name":"motion_sensor","Occupancy":1,"LinkQuality":194},` +
			`"0x8F20":{"Device":"0x8F20","Name":"Kitchen","Temperature":21.01,"BatteryPercentage":98,"LinkQuality":88}}}`,
		want:     Result{Observations: obs(on("motion_sensor", flag(reading.KindMotion, true)), on("Kitchen", num(reading.KindTemperature, 21.01)))},
		channels: true,
	},
	// https://tasmota.github.io/docs/Zigbee/, a plug's power state.
	{name: "plug is a heartbeat", dev: &Device{Base: "tasmota"}, topic: "tele/tasmota/SENSOR", payload: `{"ZbReceived":{"0x4773":{"Power":true,"LinkQuality":52}}}`, want: Result{Heartbeat: true, LinkQuality: ptr(52)}, channels: true},
	// Tasmota Zigbee docs, SetOption100 and SetOption112 examples.
	{
		name:     "no wrapper, device named in the topic (SetOption100, SetOption112)",
		dev:      &Device{Base: "buttonDesk"},
		topic:    "tele/buttonDesk/SENSOR",
		payload:  `{"buttonDesk":{"Device":"0x306A","Name":"buttonDesk","0006!01":"","Power1":1,"Endpoint":1,"LinkQuality":71}}`,
		want:     Result{Heartbeat: true, LinkQuality: ptr(71)},
		channels: true,
	},
	{
		name:     "no wrapper on a device topic (SetOption100, SetOption89)",
		dev:      &Device{Base: "zigbeeTas"},
		topic:    "tele/zigbeeTas/306A/SENSOR",
		payload:  `{"buttonDesk":{"Device":"0x306A","Name":"buttonDesk","0006!01":"","Power1":1,"Endpoint":1,"LinkQuality":42}}`,
		want:     Result{Heartbeat: true, LinkQuality: ptr(42)},
		channels: true,
	},
	// Older releases published ZbReceived on RESULT (Tasmota Zigbee docs,
	// "Zigbee Friendly Names").
	{
		name:     "ZbReceived on RESULT",
		topic:    z2tResult,
		payload:  `{"ZbReceived":{"0x128F":{"Name":"Vibration_sensor","AqaraVibrationMode":"tilt","AqaraVibrationsOrAngle":171,"AqaraAccelerometer":[-691,12,130],"AqaraAngles":[-78,1,11],"LinkQuality":153}}}`,
		want:     Result{Heartbeat: true, LinkQuality: ptr(153)},
		channels: true,
	},
	{name: "ZbState on RESULT", topic: z2tResult, payload: `{"ZbState":{"Status":0,"Message":"Started"}}`, want: hb, channels: true},
	{name: "ZbBind on RESULT is not a report", topic: z2tResult, payload: `{"ZbBind":{"Device":"0xF72F","Name":"IKEA_Remote","Status":0,"StatusMessage":"SUCCESS"}}`, want: hb, channels: true},
	{
		name:     "device joined",
		topic:    z2tSensor,
		payload:  `{"ZbState":{"Status":30,"IEEEAddr":"0x00158D00036B50AE","ShortAddr":"0x8F20","PowerSource":false,"ReceiveWhenIdle":false,"Security":false}}`,
		want:     hb,
		channels: true,
	},
	{name: "bridge's own telemetry", topic: z2tSensor, payload: `{"Time":"2023-07-28T13:40:57","SHTCX":{"Temperature":27.9,"Humidity":20.7,"DewPoint":3.3},"TempUnit":"C"}`, want: hb, channels: true},
	{name: "LWT Online", topic: "tele/SonoffZB/LWT", payload: "Online", want: online(true), channels: true},
	{name: "LWT Offline", topic: "tele/SonoffZB/LWT", payload: "Offline", want: online(false), channels: true},
	{
		name:     "STATE is a heartbeat",
		topic:    "tele/SonoffZB/STATE",
		payload:  `{"Time":"2021-12-02T10:35:15","Uptime":"0T01:55:09","UptimeSec":6909,"Vcc":3.438,"Heap":27,"SleepMode":"Dynamic","Sleep":0,"LoadAvg":999,"MqttCount":1}`,
		want:     hb,
		channels: true,
	},
	{name: "stat RESULT is a heartbeat", topic: "stat/SonoffZB/RESULT", payload: `{"SetOption83":"ON"}`, want: hb, channels: true},

	// A field of the wrong type or value is dropped; the rest is kept.
	{
		name:     "Contact as a word, rest kept",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x662E":{"Device":"0x662E","Name":"door_sensor","Contact":"open","Temperature":19.5,"LinkQuality":157}}}`,
		want:     Result{Observations: obs(on("door_sensor", num(reading.KindTemperature, 19.5))), LinkQuality: ptr(157), Rejected: rej(ReasonWrongType)},
		channels: true,
	},
	{
		name:     "Contact 2, rest kept",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x662E":{"Device":"0x662E","Name":"door_sensor","Contact":2,"Occupancy":1}}}`,
		want:     Result{Observations: obs(on("door_sensor", flag(reading.KindMotion, true))), Rejected: rej(ReasonMalformed)},
		channels: true,
	},
	{
		name:     "zone status beyond 16 bits, rest kept",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x662E":{"Device":"0x662E","Name":"door_sensor","ZoneStatusChange":70000,"Contact":1}}}`,
		want:     Result{Observations: obs(on("door_sensor", flag(reading.KindDoor, true))), Rejected: rej(ReasonMalformed)},
		channels: true,
	},
	{
		name:     "battery 200 costs only the attribute",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x662E":{"Device":"0x662E","Name":"door_sensor","Contact":1,"BatteryPercentage":200}}}`,
		want:     Result{Observations: obs(on("door_sensor", flag(reading.KindDoor, true)))},
		channels: true,
	},
	{
		name:     "humidity 145 beside a good temperature",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x8F20":{"Device":"0x8F20","Name":"Kitchen","Temperature":21.01,"Humidity":145}}}`,
		want:     Result{Observations: obs(on("Kitchen", num(reading.KindTemperature, 21.01))), Rejected: rej(ReasonOutOfRange)},
		channels: true,
	},
	{
		name:     "a report that is not an object, the other kept",
		topic:    z2tSensor,
		payload:  `{"ZbReceived":{"0x057B":5,"0x8F20":{"Device":"0x8F20","Name":"Kitchen","Temperature":21.01}}}`,
		want:     Result{Observations: obs(on("Kitchen", num(reading.KindTemperature, 21.01))), Rejected: rej(ReasonWrongType)},
		channels: true,
	},

	// Commands to the bridge (https://tasmota.github.io/docs/Zigbee/,
	// "Sending Commands" and "Pairing Zigbee Devices").
	{name: "ZbSend", topic: "cmnd/SonoffZB/ZbSend", payload: `{"Device":"0x4773","Send":{"Power":"On"}}`, want: ign},
	{name: "ZbPermitJoin", topic: "cmnd/SonoffZB/ZbPermitJoin", payload: "1", want: ign},

	// Rejected.
	{name: "humidity 145 alone", topic: z2tSensor, payload: `{"ZbReceived":{"0x8F20":{"Device":"0x8F20","Humidity":145}}}`, reason: ReasonOutOfRange},
	{name: "temperature overflows alone", topic: z2tSensor, payload: `{"ZbReceived":{"0x8F20":{"Device":"0x8F20","Temperature":1e999}}}`, reason: ReasonNotFinite},
	{name: "Contact wrong type alone", topic: z2tSensor, payload: `{"ZbReceived":{"0x662E":{"Device":"0x662E","Contact":"open"}}}`, reason: ReasonWrongType},
	{name: "Device wrong type alone", topic: z2tSensor, payload: `{"ZbReceived":{"0x662E":{"Device":26158}}}`, reason: ReasonWrongType},
	{name: "ZbReceived not an object", topic: z2tSensor, payload: `{"ZbReceived":[1]}`, reason: ReasonWrongType},
	{name: "report not an object", topic: z2tSensor, payload: `{"ZbReceived":{"0x8F20":5}}`, reason: ReasonWrongType},
	{name: "link quality 300 alone", topic: z2tSensor, payload: `{"ZbReceived":{"0x4773":{"Power":true,"LinkQuality":300}}}`, reason: ReasonOutOfRange},
	{name: "not JSON", topic: z2tSensor, payload: `ZbReceived`, reason: ReasonMalformed},
	{name: "malformed", topic: z2tSensor, payload: `{"ZbReceived": {"0x8F20": {"Temperature": 21.01}}`, reason: ReasonMalformed},
	{name: "empty", topic: z2tSensor, payload: ``, reason: ReasonEmpty},
	{name: "invalid UTF-8", topic: z2tSensor, payload: "{\"ZbReceived\":{\"\xfe\":{}}}", reason: ReasonInvalidUTF8},
	{name: "LWT lower case", topic: "tele/SonoffZB/LWT", payload: "online", reason: ReasonMalformed},
	{name: "device topic with a bad address", topic: "tele/SonoffZB/8F2/SENSOR", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "device topic other message", topic: "tele/SonoffZB/8F20/STATE", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "device topic on stat", topic: "stat/SonoffZB/8F20/SENSOR", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "lower-case message", topic: "tele/SonoffZB/sensor", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "bare prefix", topic: "tele/SonoffZB", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "other bridge", topic: "tele/OtherZB/SENSOR", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "other prefix", topic: "zigbee2mqtt/SonoffZB/SENSOR", payload: `{}`, reason: ReasonUnknownTopic},
}

func TestZigbee2Tasmota(t *testing.T) { runCases(t, Zigbee2Tasmota{}, z2tDev, z2tCases) }

func TestZigbee2TasmotaPrefixes(t *testing.T) {
	got := Zigbee2Tasmota{}.Prefixes("SonoffZB")
	if len(got) != 2 || got[0] != "tele/SonoffZB" || got[1] != "stat/SonoffZB" {
		t.Fatalf("Prefixes(SonoffZB) = %q, want tele/ and stat/SonoffZB", got)
	}
}

func FuzzZigbee2Tasmota(f *testing.F) {
	seedFuzz(f, z2tCases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		dev := z2tDev
		dev.Invert = invert
		dev.Channels = map[string]Channel{"0x8F20": {Kind: reading.KindTemperature}, "door_sensor": {Kind: reading.KindDoor, Invert: invert}}
		fuzzDecode(t, Zigbee2Tasmota{}, dev, topic, payload)
	})
}
