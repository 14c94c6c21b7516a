package decode

import (
	"testing"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var esphomeDev = Device{ID: "dorm3-node", Base: "dorm3-node", Kind: reading.KindTemperature}

const esp = "dorm3-node/"

// ESPHome payloads are plain strings: sensors formatted to accuracy_decimals
// (mqtt_sensor.cpp), binary sensors ON/OFF (mqtt_binary_sensor.cpp), status
// online/offline (device-payloads.md §5.3).
var esphomeCases = []decodeCase{
	{name: "status online", topic: esp + "status", payload: "online", want: online(true)},
	{name: "status offline", topic: esp + "status", payload: "offline", want: online(false)},
	{name: "temperature sensor", topic: esp + "sensor/dorm3_temperature/state", payload: "21.5", want: Result{Observations: obs(num(reading.KindTemperature, 21.5))}},
	{name: "negative temperature", topic: esp + "sensor/outside_temp/state", payload: "-12.25", want: Result{Observations: obs(num(reading.KindTemperature, -12.25))}},
	{name: "humidity sensor", topic: esp + "sensor/dorm3_humidity/state", payload: "40.2", want: Result{Observations: obs(num(reading.KindHumidity, 40.2))}},
	{name: "pressure sensor", topic: esp + "sensor/bme280_pressure/state", payload: "1013.2", want: Result{Observations: obs(num(reading.KindPressure, 1013.2))}},
	{name: "battery sensor", topic: esp + "sensor/battery_level/state", payload: "87", want: Result{Observations: obs(num(reading.KindBattery, 87)), Battery: ptr(87)}},
	{name: "carbon monoxide sensor", topic: esp + "sensor/carbon_monoxide/state", payload: "3", want: Result{Observations: obs(num(reading.KindCO, 3))}},
	{name: "co sensor", topic: esp + "sensor/kitchen_co/state", payload: "12.0", want: Result{Observations: obs(num(reading.KindCO, 12))}},
	{name: "unnamed sensor uses the device kind", topic: esp + "sensor/probe_1/state", payload: "19.0", want: Result{Observations: obs(num(reading.KindTemperature, 19))}},
	{name: "uptime is not a reading", topic: esp + "sensor/uptime/state", payload: "3600", want: hb},
	{name: "wifi signal is not a reading", topic: esp + "sensor/wifi_signal/state", payload: "-61", want: hb},
	{name: "battery voltage is not battery percent", topic: esp + "sensor/battery_voltage/state", payload: "3.02", want: hb},
	{name: "chip temperature is not a reading", topic: esp + "sensor/internal_temperature/state", payload: "48.3", want: hb},
	{name: "co2 is not co", dev: &Device{Base: "dorm3-node", Kind: reading.KindCO}, topic: esp + "sensor/scd40_co2/state", payload: "812", want: hb},
	{name: "smoke density is not the smoke flag", topic: esp + "sensor/smoke_density/state", payload: "0.4", want: hb},
	{name: "binary door ON is open", topic: esp + "binary_sensor/front_door/state", payload: "ON", want: Result{Observations: obs(flag(reading.KindDoor, true))}},
	{name: "binary door OFF is closed", topic: esp + "binary_sensor/front_door/state", payload: "OFF", want: Result{Observations: obs(flag(reading.KindDoor, false))}},
	{
		name:    "binary door inverted",
		dev:     &Device{Base: "dorm3-node", Kind: reading.KindDoor, Invert: true},
		topic:   esp + "binary_sensor/front_door/state",
		payload: "ON",
		want:    Result{Observations: obs(flag(reading.KindDoor, false))},
	},
	{name: "binary window contact", topic: esp + "binary_sensor/window_contact/state", payload: "ON", want: Result{Observations: obs(flag(reading.KindDoor, true))}},
	{name: "binary smoke", topic: esp + "binary_sensor/kitchen_smoke/state", payload: "ON", want: Result{Observations: obs(flag(reading.KindSmoke, true))}},
	{name: "binary motion", topic: esp + "binary_sensor/hall_motion/state", payload: "OFF", want: Result{Observations: obs(flag(reading.KindMotion, false))}},
	{name: "binary pir", topic: esp + "binary_sensor/pir/state", payload: "ON", want: Result{Observations: obs(flag(reading.KindMotion, true))}},
	{name: "binary leak", topic: esp + "binary_sensor/bathroom_leak/state", payload: "ON", want: Result{Observations: obs(flag(reading.KindWaterLeak, true))}},
	{name: "binary panic", topic: esp + "binary_sensor/panic_button/state", payload: "ON", want: Result{Observations: obs(flag(reading.KindPanic, true))}},
	{name: "binary sos", topic: esp + "binary_sensor/sos/state", payload: "OFF", want: Result{Observations: obs(flag(reading.KindPanic, false))}},
	{name: "binary tamper", topic: esp + "binary_sensor/case_tamper/state", payload: "OFF", want: Result{Observations: obs(flag(reading.KindTamper, false))}},
	{name: "binary battery is low-battery", topic: esp + "binary_sensor/battery/state", payload: "ON", want: Result{Observations: obs(flag(reading.KindBatteryLow, true))}},
	{
		name:    "unnamed binary uses the device kind",
		dev:     &Device{Base: "dorm3-node", Kind: reading.KindDoor},
		topic:   esp + "binary_sensor/reed_switch/state",
		payload: "ON",
		want:    Result{Observations: obs(flag(reading.KindDoor, true))},
	},
	{name: "status binary sensor is not a reading", topic: esp + "binary_sensor/status/state", payload: "ON", want: hb},
	{name: "temperature alarm flag is not a reading", topic: esp + "binary_sensor/temperature_alarm/state", payload: "ON", want: hb},
	{name: "switch state is a heartbeat", topic: esp + "switch/relay/state", payload: "ON", want: hb},
	{name: "text sensor is a heartbeat", topic: esp + "text_sensor/esphome_version/state", payload: "2024.6.1 Jun 20 2024", want: hb},
	{name: "climate attribute is a heartbeat", topic: esp + "climate/heater/current_temperature/state", payload: "20.5", want: hb},
	{name: "debug log is a heartbeat", topic: esp + "debug", payload: "[D][sensor:094]: 'Dorm3 Temperature': Sending state 21.50000 °C", want: hb},
	{name: "value with newline", topic: esp + "sensor/dorm3_temperature/state", payload: "21.5\n", want: Result{Observations: obs(num(reading.KindTemperature, 21.5))}},

	// Rejected.
	// A failed read (mqtt_sensor.cpp publishes the float with printf: "nan")
	// is a sensor fault of the entity and a sign of life.
	{name: "nan", topic: esp + "sensor/dorm3_temperature/state", payload: "nan", want: Result{Observations: obs(fault("dorm3_temperature"))}, channels: true},
	{name: "-nan", topic: esp + "sensor/dorm3_temperature/state", payload: "-nan", want: Result{Observations: obs(fault("dorm3_temperature"))}, channels: true},
	{name: "publish_nan_as_none", topic: esp + "sensor/dorm3_temperature/state", payload: "None", want: Result{Observations: obs(fault("dorm3_temperature"))}, channels: true},
	{name: "nan of an untracked entity", topic: esp + "sensor/uptime/state", payload: "nan", want: hb},
	// The detector's battery level, named after the detector: a battery
	// reading, not smoke.
	{name: "smoke detector battery", topic: esp + "sensor/dorm_2f_smoke_battery/state", payload: "87", want: Result{Observations: obs(on("dorm_2f_smoke_battery", num(reading.KindBattery, 87))), Battery: ptr(87)}, channels: true},
	{name: "smoke detector low battery flag", topic: esp + "binary_sensor/dorm_2f_smoke_battery_low/state", payload: "ON", want: Result{Observations: obs(on("dorm_2f_smoke_battery_low", flag(reading.KindBatteryLow, true)))}, channels: true},
	{name: "channel is the object id", topic: esp + "binary_sensor/dorm_2f_smoke/state", payload: "ON", want: Result{Observations: obs(on("dorm_2f_smoke", flag(reading.KindSmoke, true)))}, channels: true},
	{
		name: "configured channel kind and polarity win", topic: esp + "binary_sensor/input_2/state", payload: "OFF",
		dev:  &Device{Base: "dorm3-node", Kind: reading.KindTemperature, Channels: map[string]Channel{"input_2": {Kind: reading.KindDoor, Invert: true}}},
		want: Result{Observations: obs(on("input_2", flag(reading.KindDoor, true)))}, channels: true,
	},
	{name: "inf", topic: esp + "sensor/dorm3_temperature/state", payload: "inf", reason: ReasonNotFinite},
	{name: "overflow", topic: esp + "sensor/dorm3_temperature/state", payload: "1e400", reason: ReasonNotFinite},
	{name: "temperature -300", topic: esp + "sensor/dorm3_temperature/state", payload: "-300", reason: ReasonOutOfRange},
	{name: "humidity 101", topic: esp + "sensor/dorm3_humidity/state", payload: "101", reason: ReasonOutOfRange},
	{name: "text for a number", topic: esp + "sensor/dorm3_temperature/state", payload: "hot", reason: ReasonMalformed},
	{name: "JSON for a number", topic: esp + "sensor/dorm3_temperature/state", payload: `{"state":21.5}`, reason: ReasonMalformed},
	{name: "hex float", topic: esp + "sensor/dorm3_temperature/state", payload: "0x1p4", reason: ReasonMalformed},
	{name: "digit separators", topic: esp + "sensor/dorm3_temperature/state", payload: "2_1", reason: ReasonMalformed},
	{name: "sign only", topic: esp + "sensor/dorm3_temperature/state", payload: "-", reason: ReasonMalformed},
	{name: "binary not ON or OFF", topic: esp + "binary_sensor/front_door/state", payload: "OPEN", reason: ReasonMalformed},
	{name: "status not online or offline", topic: esp + "status", payload: "up", reason: ReasonMalformed},
	{name: "unnamed sensor on a boolean device", dev: &Device{Base: "dorm3-node", Kind: reading.KindSmoke}, topic: esp + "sensor/probe_1/state", payload: "19.0", reason: ReasonUnknownTopic},
	{name: "unnamed binary on a number device", topic: esp + "binary_sensor/reed_switch/state", payload: "ON", reason: ReasonUnknownTopic},
	{name: "command topic", topic: esp + "switch/relay/command", payload: "ON", want: ign},
	{name: "sensor command topic", topic: esp + "sensor/dorm3_temperature/command", payload: "1", want: ign},
	{name: "nested sensor topic", topic: esp + "sensor/a/b/state", payload: "1", reason: ReasonUnknownTopic},
	{name: "missing object id", topic: esp + "sensor//state", payload: "1", reason: ReasonUnknownTopic},
	// Not the default layout (no /state), so a custom state topic.
	{name: "component level without state suffix is a custom topic", topic: esp + "sensor/dorm3_temperature", payload: "1", want: Result{Observations: obs(on("dorm3_temperature", num(reading.KindTemperature, 1)))}, channels: true},
	{name: "base topic itself", topic: "dorm3-node", payload: "online", reason: ReasonUnknownTopic},
	{name: "invalid UTF-8", topic: esp + "sensor/dorm3_temperature/state", payload: "21.5\xff", reason: ReasonInvalidUTF8},
	{name: "empty sensor", topic: esp + "sensor/dorm3_temperature/state", payload: "", reason: ReasonEmpty},
	{name: "empty status", topic: esp + "status", payload: "", reason: ReasonEmpty},

	// Custom state topics: "state_topic: livingroom/custom_state_topic" is
	// the example of https://esphome.io/components/mqtt/ (MQTT Component
	// Base Configuration); a custom topic carries the same payloads as the
	// default one (mqtt_sensor.cpp and mqtt_binary_sensor.cpp publish to
	// get_state_topic_(), mqtt_component.cpp).
	{
		name: "docs custom state topic takes the device kind", dev: &Device{Base: "livingroom", Kind: reading.KindTemperature},
		topic: "livingroom/custom_state_topic", payload: "21.5",
		want: Result{Observations: obs(on("custom_state_topic", num(reading.KindTemperature, 21.5)))}, channels: true,
	},
	{name: "custom topic named by its level", topic: esp + "smoke", payload: "ON", want: Result{Observations: obs(on("smoke", flag(reading.KindSmoke, true)))}, channels: true},
	{name: "custom topic ending in state", topic: esp + "dorm3/door/state", payload: "ON", want: Result{Observations: obs(on("door", flag(reading.KindDoor, true)))}, channels: true},
	{name: "custom topic ending in value", topic: esp + "room/temperature/value", payload: "20.5", want: Result{Observations: obs(on("temperature", num(reading.KindTemperature, 20.5)))}, channels: true},
	{name: "custom topic under a component level", topic: esp + "climate/humidity", payload: "41", want: Result{Observations: obs(on("humidity", num(reading.KindHumidity, 41)))}, channels: true},
	{
		name: "channel configured for the whole relative topic", topic: esp + "dorm3/door/state", payload: "ON",
		dev:  &Device{Base: "dorm3-node", Kind: reading.KindTemperature, Channels: map[string]Channel{"dorm3/door/state": {Kind: reading.KindDoor, Invert: true}}},
		want: Result{Observations: obs(on("dorm3/door/state", flag(reading.KindDoor, false)))}, channels: true,
	},
	{
		name: "channel configured for the last level", topic: esp + "io/input_2", payload: "ON",
		dev:  &Device{Base: "dorm3-node", Kind: reading.KindTemperature, Channels: map[string]Channel{"input_2": {Kind: reading.KindPanic}}},
		want: Result{Observations: obs(on("input_2", flag(reading.KindPanic, true)))}, channels: true,
	},
	{
		name: "unnamed custom binary uses the device kind", topic: esp + "reed", payload: "OFF",
		dev:  &Device{Base: "dorm3-node", Kind: reading.KindDoor},
		want: Result{Observations: obs(on("reed", flag(reading.KindDoor, false)))}, channels: true,
	},
	{name: "custom topic nan is a sensor fault", topic: esp + "room/temperature", payload: "nan", want: Result{Observations: obs(fault("temperature"))}, channels: true},
	{name: "custom topic None is a sensor fault", topic: esp + "room/temperature", payload: "None", want: Result{Observations: obs(fault("temperature"))}, channels: true},
	{name: "custom topic battery level", topic: esp + "smoke_battery", payload: "87", want: Result{Observations: obs(on("smoke_battery", num(reading.KindBattery, 87))), Battery: ptr(87)}, channels: true},
	{name: "custom topic uptime is a heartbeat", topic: esp + "uptime", payload: "3600", want: hb},
	{name: "custom topic text is a heartbeat", topic: esp + "info", payload: "Dorm 3 node, east wall", want: hb},
	{name: "custom topic version text is a heartbeat", topic: esp + "firmware/version", payload: "2024.6.1 Jun 20 2024", want: hb},
	{name: "custom command topic", topic: esp + "relay/command", payload: "ON", want: ign},
	{name: "custom topic text for a door", topic: esp + "door", payload: "OPEN", reason: ReasonMalformed},
	{name: "custom topic text for a temperature", topic: esp + "room/temperature", payload: "hot", reason: ReasonMalformed},
	{name: "custom topic inf", topic: esp + "room/temperature", payload: "inf", reason: ReasonNotFinite},
	{name: "custom topic temperature -300", topic: esp + "room/temperature", payload: "-300", reason: ReasonOutOfRange},
	{name: "unnamed custom binary on a number device", topic: esp + "relay", payload: "ON", reason: ReasonUnknownTopic},
	{name: "custom topic empty", topic: esp + "smoke", payload: "", reason: ReasonEmpty},
	{name: "custom topic with an empty level", topic: esp, payload: "ON", reason: ReasonUnknownTopic},
	{name: "component and state without an object id is a custom topic", topic: esp + "binary_sensor/state", payload: "ON",
		dev: &Device{Base: "dorm3-node", Kind: reading.KindDoor}, want: Result{Observations: obs(on("binary_sensor", flag(reading.KindDoor, true)))}, channels: true},
	// A will on a topic nobody configured as the status topic must not
	// pass for a sign of life.
	{name: "unconfigured status topic is refused", topic: esp + "availability", payload: "offline", reason: ReasonUnknownTopic},

	// Birth and will messages changed in the node's mqtt: section
	// (https://esphome.io/components/mqtt/, Last Will And Birth Messages;
	// defaults in esphome/components/mqtt/__init__.py validate_config).
	{name: "custom birth payload", dev: &esphomeStatusDev, topic: esp + "availability", payload: "connected", want: online(true)},
	{name: "custom will payload", dev: &esphomeStatusDev, topic: esp + "availability", payload: "disconnected", want: online(false)},
	{name: "default shutdown message on the default topic", dev: &esphomeStatusDev, topic: esp + "status", payload: "offline", want: online(false)},
	{name: "default words on the custom topic", dev: &esphomeStatusDev, topic: esp + "availability", payload: "online", want: online(true)},
	{name: "custom payloads on the default topic", dev: &esphomeStatusDev, topic: esp + "status", payload: "disconnected", want: online(false)},
	{name: "custom status payload unknown", dev: &esphomeStatusDev, topic: esp + "availability", payload: "maybe", reason: ReasonMalformed},
	{name: "custom status payload empty", dev: &esphomeStatusDev, topic: esp + "availability", payload: "", reason: ReasonEmpty},
	{name: "custom will payload on another topic is refused", dev: &esphomeStatusDev, topic: esp + "lwt", payload: "disconnected", reason: ReasonUnknownTopic},
	{
		name: "status topic is the base itself", dev: &Device{Base: "dorm3-node", Kind: reading.KindTemperature, Status: Status{Topic: "dorm3-node", Online: "1", Offline: "0"}},
		topic: "dorm3-node", payload: "0", want: online(false),
	},
	{
		name: "custom payloads on the default topic only", dev: &Device{Base: "dorm3-node", Kind: reading.KindTemperature, Status: Status{Online: "up", Offline: "down"}},
		topic: esp + "status", payload: "down", want: online(false),
	},
}

// esphomeStatusDev's node sets birth_message and will_message to
// dorm3-node/availability, payloads connected / disconnected, and leaves
// shutdown_message at its default (dorm3-node/status, offline).
var esphomeStatusDev = Device{Base: "dorm3-node", Kind: reading.KindTemperature,
	Status: Status{Topic: "dorm3-node/availability", Online: "connected", Offline: "disconnected"}}

func TestESPHome(t *testing.T) { runCases(t, ESPHome{}, esphomeDev, esphomeCases) }

func FuzzESPHome(f *testing.F) {
	seedFuzz(f, esphomeCases)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, invert bool) {
		for _, dev := range []Device{esphomeDev, esphomeStatusDev} {
			dev.Invert = invert
			fuzzDecode(t, ESPHome{}, dev, topic, payload)
		}
	})
}
