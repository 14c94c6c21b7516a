package decode

import (
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var tasmotaDev = Device{ID: "dorm3-door", Base: "tasmota_A1B2C3", Kind: reading.KindDoor}

// A fixed zone, so the test does not depend on the host's tzdata.
var cet = time.FixedZone("CET", 3600)

const (
	tasmotaSensorTopic = "tele/tasmota_A1B2C3/SENSOR"
	tasmotaResultTopic = "stat/tasmota_A1B2C3/RESULT"
)

// Payloads from the Tasmota docs (BME280.md, MQTT.md, Buttons-and-Switches.md,
// ESP32.md) and device-payloads.md §5.2.
var tasmotaCases = []decodeCase{
	{
		name:    "BME280 docs example",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2019-11-03T19:34:28","BME280":{"Temperature":21.7,"Humidity":66.6,"Pressure":988.6},"PressureUnit":"hPa","TempUnit":"C"}`,
		want: Result{
			Observations: obs(num(reading.KindHumidity, 66.6), num(reading.KindPressure, 988.6), num(reading.KindTemperature, 21.7)),
			Time:         time.Date(2019, 11, 3, 19, 34, 28, 0, time.UTC),
		},
	},
	{
		name:    "Time is local time in the facility zone",
		dev:     &Device{Base: tasmotaDev.Base, Kind: reading.KindTemperature, Location: cet},
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2019-11-03T19:34:28","BME280":{"Temperature":21.7,"Humidity":66.6,"Pressure":988.6},"PressureUnit":"hPa","TempUnit":"C"}`,
		want: Result{
			Observations: obs(num(reading.KindHumidity, 66.6), num(reading.KindPressure, 988.6), num(reading.KindTemperature, 21.7)),
			Time:         time.Date(2019, 11, 3, 18, 34, 28, 0, time.UTC),
		},
	},
	{
		name:    "DS18B20 MQTT docs example",
		topic:   "tele/tasmota_A1B2C3/SENSOR",
		payload: `{"Time":"2017-02-16T10:13:52","DS18B20":{"Temperature":20.6}}`,
		want: Result{
			Observations: obs(num(reading.KindTemperature, 20.6)),
			Time:         time.Date(2017, 2, 16, 10, 13, 52, 0, time.UTC),
		},
	},
	{
		name:  "multiple DS18B20",
		topic: tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:00","DS18B20-1":{"Id":"01131B5E4D01","Temperature":20.1},` +
			`"DS18B20-2":{"Id":"01131B63F1AA","Temperature":22.4},"TempUnit":"C"}`,
		want: Result{
			Observations: obs(num(reading.KindTemperature, 20.1), num(reading.KindTemperature, 22.4)),
			Time:         time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
		},
	},
	{
		name:    "AM2301",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:00","AM2301":{"Temperature":22.1,"Humidity":45.3,"DewPoint":9.7},"TempUnit":"C"}`,
		want: Result{
			Observations: obs(num(reading.KindHumidity, 45.3), num(reading.KindTemperature, 22.1)),
			Time:         time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
		},
	},
	{
		name:    "SHT3X and SI7021 together",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2022-07-29T22:30:18","SI7021":{"Temperature":24.2,"Humidity":59.4,"DewPoint":15.8},"SHT3X":{"Temperature":23.5,"Humidity":40.1,"DewPoint":9.2},"TempUnit":"C"}`,
		want: Result{
			Observations: obs(
				num(reading.KindHumidity, 40.1), num(reading.KindHumidity, 59.4),
				num(reading.KindTemperature, 23.5), num(reading.KindTemperature, 24.2),
			),
			Time: time.Date(2022, 7, 29, 22, 30, 18, 0, time.UTC),
		},
	},
	{
		name:  "ESP32 chip temperature is not a room reading",
		topic: tasmotaSensorTopic,
		payload: `{"Time":"2022-07-29T22:30:18","SI7021":{"Temperature":24.2,"Humidity":59.4,"DewPoint":15.8},` +
			`"BMP280":{"Temperature":23.1,"Pressure":1009.1},"CCS811":{"eCO2":5170,"TVOC":7486},"ESP32":{"Temperature":41.1},"PressureUnit":"hPa","TempUnit":"C"}`,
		want: Result{
			Observations: obs(
				num(reading.KindHumidity, 59.4), num(reading.KindPressure, 1009.1),
				num(reading.KindTemperature, 23.1), num(reading.KindTemperature, 24.2),
			),
			Time: time.Date(2022, 7, 29, 22, 30, 18, 0, time.UTC),
		},
	},
	{
		name:    "ESP32 docs example alone is a heartbeat",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:00","ESP32":{"Temperature":41.7},"TempUnit":"C"}`,
		want:    Result{Heartbeat: true, Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
	},
	{
		name:    "energy monitor is a heartbeat",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2022-10-18T12:08:14","ENERGY":{"TotalStartTime":"2022-10-13T10:12:20","Total":0.392,"Yesterday":0.179,"Today":0.213,"Power":17,"ApparentPower":36,"ReactivePower":32,"Factor":0.47,"Voltage":230,"Current":0.156},"ANALOG":{"Temperature1":27.4}}`,
		want:    Result{Heartbeat: true, Time: time.Date(2022, 10, 18, 12, 8, 14, 0, time.UTC)},
	},
	{
		name:    "Fahrenheit (SetOption8)",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:00","DHT11":{"Temperature":70.0,"Humidity":30.0,"DewPoint":37.4},"TempUnit":"F"}`,
		want: Result{
			Observations: obs(num(reading.KindHumidity, 30), num(reading.KindTemperature, (70.0-32)/1.8)),
			Time:         time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
		},
	},
	{
		name:    "mmHg (SetOption24)",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2024-02-25T11:27:00","BMP280":{"Temperature":28.520,"Pressure":753.3},"PressureUnit":"mmHg"}`,
		want: Result{
			Observations: obs(num(reading.KindPressure, 753.3*hPaPerMmHg), num(reading.KindTemperature, 28.52)),
			Time:         time.Date(2024, 2, 25, 11, 27, 0, 0, time.UTC),
		},
	},
	{
		name:    "inHg (SetOption139)",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2024-02-25T11:27:00","BME280":{"Temperature":20.0,"Humidity":50.0,"Pressure":29.92},"PressureUnit":"inHg","TempUnit":"C"}`,
		want: Result{
			Observations: obs(num(reading.KindHumidity, 50), num(reading.KindPressure, 29.92*hPaPerInHg), num(reading.KindTemperature, 20)),
			Time:         time.Date(2024, 2, 25, 11, 27, 0, 0, time.UTC),
		},
	},
	{
		name:     "failed sensor read is null",
		topic:    tasmotaSensorTopic,
		payload:  `{"Time":"2021-01-01T00:00:00","DS18B20":{"Temperature":null},"TempUnit":"C"}`,
		want:     Result{Observations: obs(fault("DS18B20")), Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		channels: true,
	},
	{
		// Three DS18B20 on one bus (Tasmota numbers them): three readings,
		// told apart by their channel.
		name:     "three DS18B20",
		topic:    tasmotaSensorTopic,
		payload:  `{"Time":"2021-01-01T00:00:00","DS18B20-1":{"Id":"01144A0CB2AA","Temperature":21.5},"DS18B20-2":{"Id":"0316A2794D4F","Temperature":6.1},"DS18B20-3":{"Id":"031683E2FBFF","Temperature":54.0},"TempUnit":"C"}`,
		want:     Result{Observations: obs(on("DS18B20-1", num(reading.KindTemperature, 21.5)), on("DS18B20-2", num(reading.KindTemperature, 6.1)), on("DS18B20-3", num(reading.KindTemperature, 54))), Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		channels: true,
	},
	{
		name:     "DHT11 and SHT3X together",
		topic:    tasmotaSensorTopic,
		payload:  `{"Time":"2021-01-01T00:00:00","DHT11":{"Temperature":22.0,"Humidity":41.0,"DewPoint":8.3},"SHT3X":{"Temperature":21.6,"Humidity":43.9,"DewPoint":8.6},"TempUnit":"C"}`,
		want:     Result{Observations: obs(on("DHT11", num(reading.KindHumidity, 41)), on("SHT3X", num(reading.KindHumidity, 43.9)), on("DHT11", num(reading.KindTemperature, 22)), on("SHT3X", num(reading.KindTemperature, 21.6))), Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		channels: true,
	},
	{
		name:     "one of two sensors failed",
		topic:    tasmotaSensorTopic,
		payload:  `{"Time":"2021-01-01T00:00:00","DHT11":{"Temperature":null,"Humidity":null,"DewPoint":null},"SHT3X":{"Temperature":21.6,"Humidity":43.9,"DewPoint":8.6},"TempUnit":"C"}`,
		want:     Result{Observations: obs(on("SHT3X", num(reading.KindHumidity, 43.9)), fault("DHT11"), on("SHT3X", num(reading.KindTemperature, 21.6))), Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		channels: true,
	},
	{
		name:    "Epoch wins over local Time (TimeStamp 1)",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T01:00:00","Epoch":1609459200,"DS18B20":{"Temperature":20.6}}`,
		want:    Result{Observations: obs(num(reading.KindTemperature, 20.6)), Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
	},
	{
		name:    "numeric Time (TimeStamp 2)",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":1609459200,"DS18B20":{"Temperature":20.6}}`,
		want:    Result{Observations: obs(num(reading.KindTemperature, 20.6)), Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
	},
	{
		name:    "Time with milliseconds (TimeStamp 3)",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:00.123","DS18B20":{"Temperature":20.6}}`,
		want:    Result{Observations: obs(num(reading.KindTemperature, 20.6)), Time: time.Date(2021, 1, 1, 0, 0, 0, 123e6, time.UTC)},
	},
	{
		name:    "Time with offset (SetOption52)",
		dev:     &Device{Base: tasmotaDev.Base, Location: cet},
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T03:00:00+02:00","DS18B20":{"Temperature":20.6}}`,
		want:    Result{Observations: obs(num(reading.KindTemperature, 20.6)), Time: time.Date(2021, 1, 1, 1, 0, 0, 0, time.UTC)},
	},
	{
		name:    "unsynchronised clock is passed on for the pipeline to judge",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"1970-01-01T00:05:00","Switch1":"OFF"}`,
		want:    Result{Observations: obs(flag(reading.KindDoor, false)), Time: time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC)},
	},
	{
		name:    "Switch1 ON (SwitchMode 15) is an open door",
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:01","Switch1":"ON"}`,
		want:    Result{Observations: obs(flag(reading.KindDoor, true)), Time: time.Date(2021, 1, 1, 0, 0, 1, 0, time.UTC)},
	},
	{
		name:    "Switch1 ON inverted for an alarm contact",
		dev:     &Device{Base: tasmotaDev.Base, Kind: reading.KindDoor, Invert: true},
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:01","Switch1":"ON"}`,
		want:    Result{Observations: obs(flag(reading.KindDoor, false)), Time: time.Date(2021, 1, 1, 0, 0, 1, 0, time.UTC)},
	},
	{
		name:    "Switch1 on a motion device",
		dev:     &Device{Base: tasmotaDev.Base, Kind: reading.KindMotion},
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:01","Switch1":"OFF"}`,
		want:    Result{Observations: obs(flag(reading.KindMotion, false)), Time: time.Date(2021, 1, 1, 0, 0, 1, 0, time.UTC)},
	},
	{
		name:    "Switch1 on a temperature device is a door",
		dev:     &Device{Base: tasmotaDev.Base, Kind: reading.KindTemperature},
		topic:   tasmotaSensorTopic,
		payload: `{"Time":"2021-01-01T00:00:01","Switch1":"ON","DS18B20":{"Temperature":19.5}}`,
		want: Result{
			Observations: obs(flag(reading.KindDoor, true), num(reading.KindTemperature, 19.5)),
			Time:         time.Date(2021, 1, 1, 0, 0, 1, 0, time.UTC),
		},
	},
	{
		name:     "every switch is read, each on its channel",
		topic:    tasmotaSensorTopic,
		payload:  `{"Time":"2025-09-06T19:16:49","Switch1":"OFF","Switch2":"ON","Switch3":"ON"}`,
		want:     Result{Observations: obs(on("Switch1", flag(reading.KindDoor, false)), on("Switch2", flag(reading.KindDoor, true)), on("Switch3", flag(reading.KindDoor, true))), Time: time.Date(2025, 9, 6, 19, 16, 49, 0, time.UTC)},
		channels: true,
	},
	{
		name:     "switch channels with their own kind and polarity",
		dev:      &Device{Base: tasmotaDev.Base, Kind: reading.KindTemperature, Channels: map[string]Channel{"Switch1": {Kind: reading.KindDoor, Invert: true}, "Switch2": {Kind: reading.KindSmoke}}},
		topic:    tasmotaSensorTopic,
		payload:  `{"Time":"2025-09-06T19:16:49","Switch1":"OFF","Switch2":"ON","DS18B20":{"Temperature":19.5}}`,
		want:     Result{Observations: obs(on("Switch1", flag(reading.KindDoor, true)), on("Switch2", flag(reading.KindSmoke, true)), on("DS18B20", num(reading.KindTemperature, 19.5))), Time: time.Date(2025, 9, 6, 19, 16, 49, 0, time.UTC)},
		channels: true,
	},
	{name: "Switch0 and Switch29 are not switches", topic: tasmotaSensorTopic, payload: `{"Switch0":"ON","Switch29":"ON","Switch01":"ON"}`, want: hb},
	{name: "RESULT switch ON (SetOption114)", topic: tasmotaResultTopic, payload: `{"Switch1":{"Action":"ON"}}`, want: Result{Observations: obs(flag(reading.KindDoor, true))}},
	{name: "RESULT switch OFF", topic: tasmotaResultTopic, payload: `{"Switch1":{"Action":"OFF"}}`, want: Result{Observations: obs(flag(reading.KindDoor, false))}},
	{
		name:    "RESULT switch inverted",
		dev:     &Device{Base: tasmotaDev.Base, Kind: reading.KindDoor, Invert: true},
		topic:   tasmotaResultTopic,
		payload: `{"Switch1":{"Action":"OFF"}}`,
		want:    Result{Observations: obs(flag(reading.KindDoor, true))},
	},
	{name: "RESULT switch TOGGLE carries no state", topic: tasmotaResultTopic, payload: `{"Switch1":{"Action":"TOGGLE"}}`, want: hb},
	{name: "RESULT Switch2", topic: tasmotaResultTopic, payload: `{"Switch2":{"Action":"ON"}}`, want: Result{Observations: obs(on("Switch2", flag(reading.KindDoor, true)))}, channels: true},
	{name: "RESULT of a command", topic: tasmotaResultTopic, payload: `{"POWER":"ON"}`, want: hb},
	{name: "LWT Online", topic: "tele/tasmota_A1B2C3/LWT", payload: "Online", want: online(true)},
	{name: "LWT Offline", topic: "tele/tasmota_A1B2C3/LWT", payload: "Offline", want: online(false)},
	{
		name:  "STATE is a heartbeat with link quality",
		topic: "tele/tasmota_A1B2C3/STATE",
		payload: `{"Time":"2021-01-01T00:00:00","Uptime":"0T00:05:00","UptimeSec":300,"Heap":25,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"OFF",` +
			`"Wifi":{"AP":1,"SSId":"shelter","BSSId":"AA:BB:CC:DD:EE:FF","Channel":6,"Mode":"11n","RSSI":42,"Signal":-79,"LinkCount":1,"Downtime":"0T00:00:03"}}`,
		want: Result{Heartbeat: true, Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), LinkQuality: ptr(42 * 2.55)},
	},
	{name: "STATE without Wifi", topic: "tele/tasmota_A1B2C3/STATE", payload: `{"Time":"2021-01-01T00:00:00","Uptime":"0T00:05:00"}`, want: Result{Heartbeat: true, Time: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}},
	{name: "INFO1 is a heartbeat", topic: "tele/tasmota_A1B2C3/INFO1", payload: `{"Info1":{"Module":"Generic","Version":"14.3.0(release-tasmota)","FallbackTopic":"cmnd/DVES_A1B2C3_fb/","GroupTopic":"cmnd/tasmotas/"}}`, want: hb},
	{name: "stat POWER is a heartbeat", topic: "stat/tasmota_A1B2C3/POWER", payload: "ON", want: hb},

	// Rejected.
	{name: "Temperature as string", topic: tasmotaSensorTopic, payload: `{"BME280":{"Temperature":"hot"}}`, reason: ReasonWrongType},
	{name: "temperature -300", topic: tasmotaSensorTopic, payload: `{"DS18B20":{"Temperature":-300}}`, reason: ReasonOutOfRange},
	{name: "temperature -300 F", topic: tasmotaSensorTopic, payload: `{"DS18B20":{"Temperature":-300},"TempUnit":"F"}`, reason: ReasonOutOfRange},
	{name: "Kelvin-looking humidity alone", topic: tasmotaSensorTopic, payload: `{"AM2301":{"Humidity":145}}`, reason: ReasonOutOfRange},
	// One implausible value costs only itself: the temperature still arrives.
	{name: "bad humidity beside good temperature", topic: tasmotaSensorTopic, payload: `{"AM2301":{"Temperature":20,"Humidity":145}}`,
		want: Result{Observations: []Observation{num(reading.KindTemperature, 20)}, Rejected: []error{&Error{Reason: ReasonOutOfRange}}}},
	{name: "temperature overflows", topic: tasmotaSensorTopic, payload: `{"DS18B20":{"Temperature":1e309}}`, reason: ReasonNotFinite},
	{name: "NaN is not JSON", topic: tasmotaSensorTopic, payload: `{"DS18B20":{"Temperature":nan}}`, reason: ReasonMalformed},
	{name: "unknown TempUnit", topic: tasmotaSensorTopic, payload: `{"DS18B20":{"Temperature":293},"TempUnit":"K"}`, reason: ReasonMalformed},
	{name: "unknown PressureUnit", topic: tasmotaSensorTopic, payload: `{"BMP280":{"Pressure":101},"PressureUnit":"kPa"}`, reason: ReasonMalformed},
	// A clock that cannot be read costs the timestamp, not the reading.
	{name: "Time unparseable", topic: tasmotaSensorTopic, payload: `{"Time":"yesterday","DS18B20":{"Temperature":20}}`, want: Result{Observations: obs(num(reading.KindTemperature, 20)), Rejected: rej(ReasonBadTime)}},
	{name: "Time wrong type", topic: tasmotaSensorTopic, payload: `{"Time":true,"DS18B20":{"Temperature":20}}`, want: Result{Observations: obs(num(reading.KindTemperature, 20)), Rejected: rej(ReasonWrongType)}},
	{name: "bad Time alone", topic: tasmotaSensorTopic, payload: `{"Time":"yesterday"}`, reason: ReasonBadTime},
	{name: "Switch1 unknown state", topic: tasmotaSensorTopic, payload: `{"Switch1":"MAYBE"}`, reason: ReasonMalformed},
	{name: "Switch1 wrong type", topic: tasmotaSensorTopic, payload: `{"Switch1":1}`, reason: ReasonWrongType},
	{name: "RESULT Action wrong type", topic: tasmotaResultTopic, payload: `{"Switch1":{"Action":true}}`, reason: ReasonWrongType},
	{name: "RSSI above 100 on STATE alone", topic: "tele/tasmota_A1B2C3/STATE", payload: `{"Wifi":{"RSSI":150}}`, reason: ReasonOutOfRange},
	{name: "malformed SENSOR", topic: tasmotaSensorTopic, payload: `{"DS18B20":{"Temperature":20.6}`, reason: ReasonMalformed},
	{name: "SENSOR not an object", topic: tasmotaSensorTopic, payload: `20.6`, reason: ReasonMalformed},
	{name: "invalid UTF-8", topic: tasmotaSensorTopic, payload: "{\"DS18B20\":{\"Temperature\":20.6},\"Id\":\"\xfe\"}", reason: ReasonInvalidUTF8},
	{name: "empty SENSOR", topic: tasmotaSensorTopic, payload: "", reason: ReasonEmpty},
	{name: "empty LWT", topic: "tele/tasmota_A1B2C3/LWT", payload: "", reason: ReasonEmpty},
	{name: "LWT lower case", topic: "tele/tasmota_A1B2C3/LWT", payload: "online", reason: ReasonMalformed},
	{name: "command topic", topic: "cmnd/tasmota_A1B2C3/POWER", payload: "ON", reason: ReasonUnknownTopic},
	{name: "lower-case message", topic: "tele/tasmota_A1B2C3/sensor", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "nested message", topic: "tele/tasmota_A1B2C3/SENSOR/extra", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "bare prefix", topic: "tele/tasmota_A1B2C3", payload: `{}`, reason: ReasonUnknownTopic},
	{name: "SENSOR on stat", topic: "stat/tasmota_A1B2C3/SENSOR", payload: `{}`, want: hb},
	{name: "other device", topic: "tele/tasmota_A1B2C4/SENSOR", payload: `{}`, reason: ReasonUnknownTopic},
}

func TestTasmota(t *testing.T) { runCases(t, Tasmota{}, tasmotaDev, tasmotaCases) }

func FuzzTasmota(f *testing.F) {
	seedFuzz(f, tasmotaCases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		dev := tasmotaDev
		dev.Invert = invert
		dev.Location = cet
		fuzzDecode(t, Tasmota{}, dev, topic, payload)
	})
}

// FuzzTasmotaTimeLayouts: no "Time" reads both as a local time and as RFC
// 3339, so the order tasmotaTime tries them in changes no result.
func FuzzTasmotaTimeLayouts(f *testing.F) {
	for _, s := range []string{"2019-11-03T19:34:28", "2019-11-03T19:34:28.123", "2019-11-03T19:34:28Z",
		"2019-11-03T19:34:28.5+01:00", "2019-11-03T19:34:28,5", "2019-11-03T19:34:28-00:00", "yesterday"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, localErr := time.ParseInLocation(tasmotaLocalTime, s, cet)
		_, rfcErr := time.Parse(time.RFC3339Nano, s)
		if localErr == nil && rfcErr == nil {
			t.Fatalf("%q reads both as a local time and as RFC 3339", s)
		}
	})
}
