package decode

import (
	"encoding/json"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// ShellyGen1 decodes Shelly Gen1 devices over MQTT: the battery sensors
// (H&T, Door/Window 2, Flood, Smoke) and the relays' inputs and temperature
// add-on (https://shelly-api-docs.shelly.cloud/gen1/, the MQTT sections of
// the common API and of each device).
//
// The base is "shellies/<id>", where <id> is the device's MQTT id: by
// default "<model>-<deviceid>" ("shellyht-6A9B1C"); a custom id replaces it
// and may itself contain '/', so the base is matched as a whole. Payloads
// are plain text except announce and info.
//
//	<base>/online               true / false (retained; false is the
//	                            LWT) → availability
//	<base>/sensor/temperature   number → temperature (units below)
//	<base>/sensor/humidity      number, % → humidity
//	<base>/sensor/battery       number, % → battery
//	<base>/sensor/error         0, or non-zero when the sensor could not
//	                            measure → sensor_fault
//	<base>/sensor/state         open / close / tilt (Door/Window 2) → door,
//	                            tilt counts as open
//	<base>/sensor/flood         true / false (Flood) → water_leak
//	<base>/sensor/smoke         true / false (Smoke) → smoke
//	<base>/sensor/lux, illumination, tilt, vibration, ext_power,
//	  act_reasons               → heartbeat: nothing we track
//	<base>/input/<n>            0 / 1 → the input's kind on channel
//	                            "input/<n>" (below)
//	<base>/ext_temperature/<n>  °C, temperature add-on probe n →
//	                            temperature on channel "ext_temperature/<n>"
//	<base>/ext_humidity/<n>     %, add-on DHT22 n → humidity on channel
//	                            "ext_humidity/<n>"
//	<base>/announce, info       JSON (announce record, /status) →
//	                            heartbeat; info's wifi_sta.rssi (dBm) →
//	                            LinkQuality, mapped as for OpenMQTTGateway
//	<base>/relay/..., roller/..., light/..., color/..., white/...,
//	  emeter/..., longpush/<n>, input_event/<n>, ext_temperature_f/<n>,
//	  temperature, temperature_f, overtemperature, temperature_status,
//	  overpower, voltage        → heartbeat: the device's own state
//	<base>/command, .../command, .../set
//	                            commands to the device → ignored
//	anything else               unknown topic
//
// The announce and command topics every device shares (shellies/announce,
// shellies/command) are not under any device's base and never reach the
// decoder.
//
// Units: sensor/temperature is in the unit chosen on the device (°C by
// default) and neither the topic nor the payload says which, so these
// devices must stay on °C: 72 °F would be read as 72 °C. The add-on's
// ext_temperature/<n> is always °C (°F has its own ext_temperature_f/<n>).
// 999 is the value Shelly's CoIoT descriptions name for "no reading"
// (extTemp range "-55/125", unavailable "999") and what a Shelly 1 shows
// for an unplugged probe, so a temperature of exactly 999 is a
// sensor_fault of its channel, not an implausible reading.
//
// Inputs: "1" means the input is active (switch closed). It reads as true
// of the channel's configured kind, else the device's, else door, and
// invert on the channel or device flips it, as for Tasmota switches and
// Shelly Gen2 inputs. The battery sensors' own values (sensor/...) carry
// no channel: each of those devices has one sensor. sensor/flood and
// sensor/smoke also accept 1 / 0: the smoke detector's CoIoT value is a
// number and integrations read both forms.
type ShellyGen1 struct{}

const shellyGen1Format = "shellygen1"

// Format implements Decoder.
func (ShellyGen1) Format() string { return shellyGen1Format }

// Prefixes implements Decoder.
func (ShellyGen1) Prefixes(base string) []string { return []string{base} }

// shellyGen1NoReading is the temperature a Gen1 device reports for a probe
// it cannot read (see ShellyGen1).
const shellyGen1NoReading = 999

// Decode implements Decoder.
func (ShellyGen1) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = shellyGen1Format
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	rest, exact, ok := splitTopic(dev.Base, topic)
	if !ok || exact {
		return Result{}, unknownTopic(format, topic)
	}
	if isCommandTopic(rest, "command") || strings.HasSuffix(rest, "/command") || strings.HasSuffix(rest, "/set") {
		return ignored()
	}
	group, sub, _ := strings.Cut(rest, "/")
	known := false
	switch group {
	case "online", "announce", "info":
		known = rest == group
	case "sensor":
		known = isShellyGen1Sensor(sub)
	case "input", "ext_temperature", "ext_humidity":
		known = isShellyGen1Index(sub)
	default:
		known = isShellyGen1State(group)
	}
	if !known {
		return Result{}, unknownTopic(format, topic)
	}
	if len(payload) == 0 {
		return Result{}, emptyPayload(format)
	}
	s := text(payload)
	switch group {
	case "online":
		return availabilityWord(format, "online", s, "true", "false")
	case "announce", "info":
		return decodeShellyGen1Info(payload)
	case "sensor":
		return decodeShellyGen1Sensor(sub, s)
	case "input":
		on, err := shellyGen1Flag(rest, s)
		if err != nil {
			return Result{}, err
		}
		kind, invert := dev.input(rest)
		b := newBuilder(format)
		b.flagOn(rest, kind, on != invert)
		return b.result()
	case "ext_temperature":
		return shellyGen1Number(rest, reading.KindTemperature, s)
	case "ext_humidity":
		return shellyGen1Number(rest, reading.KindHumidity, s)
	}
	return heartbeat()
}

// isShellyGen1Sensor reports whether name is a sensor/<name> topic of the
// battery devices.
func isShellyGen1Sensor(name string) bool {
	switch name {
	case "temperature", "humidity", "battery", "error", "state", "flood", "smoke",
		"lux", "illumination", "tilt", "vibration", "ext_power", "act_reasons":
		return true
	}
	return false
}

// isShellyGen1State reports whether a topic whose first level is group is
// one of the relays' and meters' own state topics, which prove the device
// alive and carry nothing we track.
func isShellyGen1State(group string) bool {
	switch group {
	case "relay", "roller", "light", "color", "white", "emeter", "longpush", "input_event",
		"ext_temperature_f", "temperature", "temperature_f", "overtemperature",
		"temperature_status", "overpower", "voltage":
		return true
	}
	return false
}

// isShellyGen1Index reports whether s is the index of an input or probe:
// one topic level of at most three decimal digits.
func isShellyGen1Index(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func decodeShellyGen1Sensor(name, s string) (Result, error) {
	const format = shellyGen1Format
	b := newBuilder(format)
	switch name {
	case "temperature":
		return shellyGen1Number("", reading.KindTemperature, s)
	case "humidity":
		return shellyGen1Number("", reading.KindHumidity, s)
	case "battery":
		return shellyGen1Number("", reading.KindBattery, s)
	case "error":
		v, err := parseNumberText(format, "sensor/error", s)
		if err != nil {
			return Result{}, err
		}
		if v != 0 {
			b.fault("")
		}
	case "state":
		switch s {
		case "open", "tilt":
			b.flag(reading.KindDoor, true)
		case "close":
			b.flag(reading.KindDoor, false)
		default:
			return Result{}, Errorf(ReasonMalformed, "%s: sensor/state %q: want open, close or tilt", format, s)
		}
	case "flood", "smoke":
		on, err := shellyGen1Flag("sensor/"+name, s)
		if err != nil {
			return Result{}, err
		}
		kind := reading.KindSmoke
		if name == "flood" {
			kind = reading.KindWaterLeak
		}
		b.flag(kind, on)
	}
	// lux, illumination, tilt, vibration, ext_power, act_reasons: alive,
	// nothing tracked.
	return b.result()
}

// shellyGen1Number decodes a plain-text number of kind k on channel ch.
func shellyGen1Number(ch string, k reading.Kind, s string) (Result, error) {
	const format = shellyGen1Format
	what := "sensor/" + string(k)
	if ch != "" {
		what = ch
	}
	v, err := parseNumberText(format, what, s)
	if err != nil {
		return Result{}, err
	}
	b := newBuilder(format)
	if k == reading.KindTemperature && v == shellyGen1NoReading {
		b.fault(ch)
		return b.result()
	}
	b.numberOn(ch, k, v)
	return b.result()
}

// shellyGen1Flag reads a boolean published as 0 / 1 or true / false.
func shellyGen1Flag(what, s string) (bool, error) {
	switch s {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, Errorf(ReasonMalformed, "%s: %s %q: want 0 or 1", shellyGen1Format, what, s)
}

// decodeShellyGen1Info checks that announce or info is a JSON object and
// takes the link quality from info's wifi_sta.rssi.
func decodeShellyGen1Info(payload []byte) (Result, error) {
	const format = shellyGen1Format
	var info struct {
		WifiSta json.RawMessage `json:"wifi_sta"`
	}
	if err := decodeObject(format, payload, &info); err != nil {
		return Result{}, err
	}
	b := newBuilder(format)
	if absent(info.WifiSta) {
		return b.result()
	}
	if info.WifiSta[0] != '{' {
		b.attr(wrongType(format, "wifi_sta", "object", info.WifiSta))
		return b.result()
	}
	var sta struct {
		RSSI json.RawMessage `json:"rssi"`
	}
	if err := json.Unmarshal(info.WifiSta, &sta); err != nil {
		b.attr(jsonError(format, err))
	} else if dBm, ok, err := numField(format, "wifi_sta.rssi", sta.RSSI); err != nil {
		b.attr(err)
	} else if ok {
		setRSSI(&b, format, "wifi_sta.rssi", dBm)
	}
	return b.result()
}
