package discover

import (
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// priority orders the kinds a device may report, most important first:
// the first one a device reports is its kind.
var priority = []reading.Kind{
	reading.KindSmoke, reading.KindCO, reading.KindWaterLeak, reading.KindPanic,
	reading.KindDoor, reading.KindMotion,
	reading.KindTemperature, reading.KindHumidity, reading.KindPressure,
	reading.KindTamper, reading.KindBatteryLow, reading.KindBattery,
}

// sortKinds returns kinds without duplicates, most important first; kinds
// not in priority are dropped.
func sortKinds(kinds []reading.Kind) []reading.Kind {
	var out []reading.Kind
	for _, k := range priority {
		if slices.Contains(kinds, k) {
			out = append(out, k)
		}
	}
	return out
}

func isBoolKind(k reading.Kind) bool {
	t, ok := k.Known()
	return ok && t == reading.TypeBool
}

func isNumberKind(k reading.Kind) bool {
	t, ok := k.Known()
	return ok && t == reading.TypeNumber
}

// nameTokens splits a name into lower-case words of letters and digits.
func nameTokens(name string) []string {
	return strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
}

// otherWord reports words naming a measurement the gateway does not track;
// they win over every kind word, so "battery_voltage" is no battery
// percentage, "co2" no carbon monoxide and "esp_internal_temperature" no
// room temperature.
func otherWord(w string) bool {
	switch w {
	case "voltage", "volt", "current", "power", "energy", "co2", "eco2", "dioxide", "tvoc", "voc",
		"pm1", "pm2", "pm25", "pm10", "lux", "illuminance", "dew", "dewpoint", "internal", "cpu",
		"chip", "uptime", "wifi", "rssi", "signal", "heap", "device", "status", "version", "ip", "ssid", "mac":
		return true
	}
	return false
}

// inferKind guesses the kind a sensor reports from its name (an ESPHome
// object id, a Homie property id): the same words the gateway's decoders
// read, so that what is proposed is what will be stored.
func inferKind(name string) (reading.Kind, bool) {
	toks := nameTokens(name)
	if slices.ContainsFunc(toks, otherWord) {
		return "", false
	}
	has := func(words ...string) bool {
		return slices.ContainsFunc(toks, func(t string) bool { return slices.Contains(words, t) })
	}
	n := strings.ToLower(name)
	sub := func(s string) bool { return strings.Contains(n, s) }
	switch {
	case sub("tamper"):
		return reading.KindTamper, true
	case sub("smoke"):
		return reading.KindSmoke, true
	case sub("carbon_monoxide"), sub("carbon-monoxide"), sub("carbonmonoxide"), has("co"):
		return reading.KindCO, true
	case sub("battery"):
		if has("low") {
			return reading.KindBatteryLow, true
		}
		return reading.KindBattery, true
	case sub("temperature"), has("temp"):
		return reading.KindTemperature, true
	case sub("humidity"):
		return reading.KindHumidity, true
	case sub("pressure"):
		return reading.KindPressure, true
	case sub("leak"), sub("flood"), has("water"):
		return reading.KindWaterLeak, true
	case sub("panic"), sub("emergency"), has("sos"):
		return reading.KindPanic, true
	case sub("motion"), sub("occupancy"), sub("presence"), has("pir"):
		return reading.KindMotion, true
	case sub("contact"), sub("window"), has("door", "doors"):
		return reading.KindDoor, true
	}
	return "", false
}
