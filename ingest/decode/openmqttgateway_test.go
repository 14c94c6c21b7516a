package decode

import (
	"testing"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var omgDev = Device{ID: "ward-th", Base: "home/OpenMQTTGateway/BTtoMQTT/A4C1386E4AE8", Kind: reading.KindTemperature}

const omgTopic = "home/OpenMQTTGateway/BTtoMQTT/A4C1386E4AE8"

// rssiLQ is the link quality the decoder maps dBm onto (see OpenMQTTGateway).
func rssiLQ(dBm float64) *float64 { return ptr(min(max(2*(dBm+100), 0), 100) * 2.55) }

var omgCases = []decodeCase{
	// Theengs Decoder's expected output for a LYWSD03MMC with ATC firmware
	// (https://github.com/theengs/decoder/blob/development/tests/BLE/test_ble.cpp).
	{
		name:     "LYWSD03MMC ATC",
		topic:    omgTopic,
		payload:  `{"brand":"Xiaomi","model":"LYWSD03MMC","model_id":"LYWSD03MMC_ATC","tempc":32.5,"tempf":90.5,"hum":62,"batt":81,"volt":2.939}`,
		want:     Result{Observations: obs(num(reading.KindHumidity, 62), num(reading.KindTemperature, 32.5)), Battery: ptr(81)},
		channels: true,
	},
	// Same file: PVVX firmware.
	{
		name:     "LYWSD03MMC PVVX",
		topic:    omgTopic,
		payload:  `{"brand":"Xiaomi","model":"LYWSD03MMC","model_id":"LYWSD03MMC_PVVX","tempc":21.12,"tempf":70.016,"hum":50.53,"batt":100,"volt":3.143}`,
		want:     Result{Observations: obs(num(reading.KindHumidity, 50.53), num(reading.KindTemperature, 21.12)), Battery: ptr(100)},
		channels: true,
	},
	// What the gateway publishes adds id, name and rssi (the shape of the
	// iBeacon examples in https://docs.openmqttgateway.com/use/ble.html),
	// here around the ATC reading above.
	{
		name:     "ATC as the gateway publishes it",
		topic:    omgTopic,
		payload:  `{"id":"A4:C1:38:6E:4A:E8","mac_type":0,"name":"ATC_6E4AE8","rssi":-91,"brand":"Xiaomi","model":"LYWSD03MMC","model_id":"LYWSD03MMC_ATC","tempc":14.2,"tempf":57.56,"hum":56,"batt":75,"volt":2.887}`,
		want:     Result{Observations: obs(num(reading.KindHumidity, 56), num(reading.KindTemperature, 14.2)), Battery: ptr(75), LinkQuality: rssiLQ(-91)},
		channels: true,
	},
	// https://docs.openmqttgateway.com/use/ble.html, "Advertisement and
	// advanced data": a Qingping motion & light sensor.
	{
		name:     "CGPR1 advertisement data is a battery reading",
		topic:    omgTopic,
		payload:  `{"id":"11:22:33:44:55:66","mac_type":0,"adv_type":0,"name":"Qingping Motion & Light","rssi":-93,"servicedata":"88121122334455660201520f0126090403000000","servicedatauuid":"0xfdcd","brand":"Qingping","model":"Motion & Light","model_id":"CGPR1","lux":3,"batt":82}`,
		want:     Result{Observations: obs(num(reading.KindBattery, 82)), Battery: ptr(82), LinkQuality: rssiLQ(-93)},
		channels: true,
	},
	// Same page: iBeacon and a plain beacon carry nothing we track.
	{
		name:     "iBeacon is a heartbeat with link quality",
		topic:    omgTopic,
		payload:  `{"id":"58:78:20:76:BC:24","mac_type":1,"rssi":-79,"brand":"GENERIC","model":"iBeacon","model_id":"IBEACON","mfid":"4c00","uuid":"1de4b189115e45f6b44e509352269977","major":0,"minor":0,"txpower":-66}`,
		want:     Result{Heartbeat: true, LinkQuality: rssiLQ(-79)},
		channels: true,
	},
	{
		name:     "beacon with service data",
		topic:    omgTopic,
		payload:  `{"id":"45:e1:74:12:6e:00","rssi":-89,"distance":21.51847,"servicedata":"fe0000000000000000000000000000000000000000"}`,
		want:     Result{Heartbeat: true, LinkQuality: rssiLQ(-89)},
		channels: true,
	},
	// test_ble.cpp: BeeWi door sensor ("cont" is "needs continuous
	// scanning", not a contact).
	{
		name:     "BeeWi door closed",
		topic:    omgTopic,
		payload:  `{"brand":"Otio/BeeWi","model":"Door & Window Sensor","model_id":"BSDOO","type":"CTMO","cidc":false,"cont":true,"open":false,"batt":100}`,
		want:     Result{Observations: obs(flag(reading.KindDoor, false)), Battery: ptr(100)},
		channels: true,
	},
	{
		name:     "BeeWi door open",
		topic:    omgTopic,
		payload:  `{"brand":"Otio/BeeWi","model":"Door & Window Sensor","model_id":"BSDOO","type":"CTMO","cidc":false,"cont":true,"open":true,"batt":100}`,
		want:     Result{Observations: obs(flag(reading.KindDoor, true)), Battery: ptr(100)},
		channels: true,
	},
	// test_ble.cpp: SwitchBot contact sensor, both namings of its PIR.
	{
		name:     "SwitchBot contact open",
		topic:    omgTopic,
		payload:  `{"brand":"SwitchBot","model":"Contact Sensor","model_id":"W120150X","contact":"open","movement":false,"lightlevel":"dark","batt":87}`,
		want:     Result{Observations: obs(flag(reading.KindDoor, true), flag(reading.KindMotion, false)), Battery: ptr(87)},
		channels: true,
	},
	{
		name:     "SwitchBot contact closed with motion",
		topic:    omgTopic,
		payload:  `{"brand":"SwitchBot","model":"Contact Sensor","model_id":"W120150X","type":"CTMO","acts":true,"cont":true,"contact":"closed","motion":true,"lightlevel":"bright","in_ct":0,"out_ct":0,"push_ct":0,"scopetested":true,"batt":92}`,
		want:     Result{Observations: obs(flag(reading.KindDoor, false), flag(reading.KindMotion, true)), Battery: ptr(92)},
		channels: true,
	},
	// test_ble.cpp: Xiaomi motion night light names presence "pres".
	{
		name:     "pres as a flag is motion",
		topic:    omgTopic,
		payload:  `{"brand":"Xiaomi","model":"MiLamp","model_id":"MUE4094RT","type":"CTMO","cont":true,"pres":true,"darkness":29}`,
		want:     Result{Observations: obs(flag(reading.KindMotion, true))},
		channels: true,
	},
	// test_ble.cpp: RuuviTag with pressure in hPa.
	{
		name:     "RuuviTag",
		topic:    omgTopic,
		payload:  `{"brand":"Ruuvi","model":"RuuviTag","model_id":"RuuviTag_RAWv1","type":"ACEL","track":true,"hum":20.5,"tempc":26.3,"tempf":79.34,"pres":1027.66,"accx":-0.980665,"accy":-1.69262779,"accz":0.70019481,"volt":2.899}`,
		want:     Result{Observations: obs(num(reading.KindHumidity, 20.5), num(reading.KindPressure, 1027.66), num(reading.KindTemperature, 26.3))},
		channels: true,
	},
	// test_ble.cpp: the RuuviTag's maximum raw values. Humidity and
	// pressure are impossible and dropped; the temperature is kept.
	{
		name:    "RuuviTag maxima keep what is plausible",
		topic:   omgTopic,
		payload: `{"brand":"Ruuvi","model":"RuuviTag","model_id":"RuuviTag_RAWv1","type":"ACEL","track":true,"hum":127.5,"tempc":127.99,"tempf":262.382,"pres":1155.35,"accx":32.13345006,"accy":32.13345006,"accz":32.13345006,"volt":65.535}`,
		want: Result{
			Observations: obs(num(reading.KindTemperature, 127.99)),
			Rejected:     []error{&Error{Reason: ReasonOutOfRange}, &Error{Reason: ReasonOutOfRange}},
		},
		channels: true,
	},
	// test_ble.cpp: ThermoPro reports a low-battery flag instead of a level.
	{
		name:     "ThermoPro battery low",
		topic:    omgTopic,
		payload:  `{"brand":"ThermoPro","model":"TH Sensor","model_id":"TP35X/393","type":"THB","cidc":false,"acts":true,"tempc":25.5,"tempf":77.9,"hum":53,"batt_low":true}`,
		want:     Result{Observations: obs(flag(reading.KindBatteryLow, true), num(reading.KindHumidity, 53), num(reading.KindTemperature, 25.5))},
		channels: true,
	},
	// test_ble.cpp: iNode names it lowbatt.
	{
		name:     "iNode lowbatt",
		topic:    omgTopic,
		payload:  `{"brand":"iNode","model":"Energy Meter","model_id":"INEM","type":"ENRG","cidc":false,"avg":2.376,"avgu":"kW","sum":21.2928,"sumu":"kWh","batt":10,"lowbatt":true}`,
		want:     Result{Observations: obs(flag(reading.KindBatteryLow, true)), Battery: ptr(10)},
		channels: true,
	},
	// The broken variants below are the ATC reading with one field damaged.
	{
		name:    "tempc wrong type falls back to tempf",
		topic:   omgTopic,
		payload: `{"model_id":"LYWSD03MMC_ATC","tempc":"32.5","tempf":90.5,"hum":62,"batt":81}`,
		want: Result{
			Observations: obs(num(reading.KindHumidity, 62), num(reading.KindTemperature, (90.5-32)/1.8)),
			Battery:      ptr(81),
			Rejected:     rej(ReasonWrongType),
		},
		channels: true,
	},
	// OpenMQTTGateway before Theengs Decoder named temperature "tem" (its
	// Home Assistant examples read value_json.tem).
	{name: "legacy tem", topic: omgTopic, payload: `{"id":"a4:c1:38:6e:4a:e8","rssi":-70,"tem":22.4,"hum":45.6}`, want: Result{Observations: obs(num(reading.KindHumidity, 45.6), num(reading.KindTemperature, 22.4)), LinkQuality: ptr(153)}, channels: true},
	{
		name:     "humidity wrong type, rest kept",
		topic:    omgTopic,
		payload:  `{"model_id":"LYWSD03MMC_ATC","tempc":32.5,"hum":"62","batt":81}`,
		want:     Result{Observations: obs(num(reading.KindTemperature, 32.5)), Battery: ptr(81), Rejected: rej(ReasonWrongType)},
		channels: true,
	},
	{
		name:     "unknown contact word, rest kept",
		topic:    omgTopic,
		payload:  `{"model_id":"W120150X","contact":"ajar","movement":true,"batt":87}`,
		want:     Result{Observations: obs(flag(reading.KindMotion, true)), Battery: ptr(87), Rejected: rej(ReasonMalformed)},
		channels: true,
	},
	{
		name:     "bad rssi costs only the attribute",
		topic:    omgTopic,
		payload:  `{"model_id":"LYWSD03MMC_ATC","tempc":32.5,"rssi":"weak"}`,
		want:     Result{Observations: obs(num(reading.KindTemperature, 32.5))},
		channels: true,
	},
	{name: "rssi at -50 dBm or stronger is 255", topic: omgTopic, payload: `{"rssi":-42}`, want: Result{Heartbeat: true, LinkQuality: ptr(255)}, channels: true},
	{name: "rssi at -100 dBm or weaker is 0", topic: omgTopic, payload: `{"rssi":-105}`, want: Result{Heartbeat: true, LinkQuality: ptr(0)}, channels: true},

	// Rejected.
	{name: "rssi 127 means not available", topic: omgTopic, payload: `{"rssi":127}`, reason: ReasonOutOfRange},
	{name: "battery 200 alone", topic: omgTopic, payload: `{"batt":200}`, reason: ReasonOutOfRange},
	{name: "temperature overflows alone", topic: omgTopic, payload: `{"tempc":1e999}`, reason: ReasonNotFinite},
	{name: "open wrong type alone", topic: omgTopic, payload: `{"open":"yes"}`, reason: ReasonWrongType},
	{name: "not JSON", topic: omgTopic, payload: `tempc=21`, reason: ReasonMalformed},
	{name: "array", topic: omgTopic, payload: `[{"tempc":21}]`, reason: ReasonMalformed},
	{name: "empty", topic: omgTopic, payload: ``, reason: ReasonEmpty},
	{name: "invalid UTF-8", topic: omgTopic, payload: "{\"name\":\"\xfe\",\"tempc\":21}", reason: ReasonInvalidUTF8},
	{name: "sub-topic", topic: omgTopic + "/extra", payload: `{"tempc":21}`, reason: ReasonUnknownTopic},
	{name: "other sensor", topic: "home/OpenMQTTGateway/BTtoMQTT/A4C1386E4AE9", payload: `{"tempc":21}`, reason: ReasonUnknownTopic},
	// The gateway's LWT is not the sensor's.
	{name: "gateway LWT", topic: "home/OpenMQTTGateway/LWT", payload: `offline`, reason: ReasonUnknownTopic},
}

func TestOpenMQTTGateway(t *testing.T) { runCases(t, OpenMQTTGateway{}, omgDev, omgCases) }

func FuzzOpenMQTTGateway(f *testing.F) {
	seedFuzz(f, omgCases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		dev := omgDev
		dev.Invert = invert
		fuzzDecode(t, OpenMQTTGateway{}, dev, topic, payload)
	})
}
