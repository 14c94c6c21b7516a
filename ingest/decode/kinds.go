package decode

import (
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Formats whose topics name the value but not its meaning (ESPHome object
// ids such as "dorm3_temperature", Homie property ids such as "water-leak")
// go through inferKind. Getting this wrong is worse than not guessing: a
// battery *voltage* stored as battery percent, or a CO2 sensor stored as CO
// ppm, raises false alarms. So names that clearly measure something we do
// not track are recognised first and turned into heartbeats instead of
// falling back to the device's configured kind.

// inference is the outcome of inferKind.
type inference uint8

const (
	inferNone  inference = iota // the name says nothing we recognise
	inferFound                  // the name names a kind
	inferOther                  // the name names something we do not track
)

// isOtherToken reports name tokens meaning "a measurement we do not track";
// they win over every kind word, so "battery_voltage" is not a battery
// percentage and "co2" or "esp_internal_temperature" are not readings.
func isOtherToken(t string) bool {
	switch t {
	case "voltage", "volt", "current", "power", "energy", "resistance",
		"co2", "eco2", "dioxide", "tvoc", "voc", "pm1", "pm2", "pm25", "pm10",
		"lux", "illuminance", "dew", "dewpoint",
		"internal", "cpu", "chip", "uptime", "wifi", "rssi", "signal", "heap":
		return true
	}
	return false
}

// isWeakOtherToken reports tokens that mean "not a reading" only when no
// kind word matched, so that "door_status" is still a door while ESPHome's
// status binary sensor ("status", "node_status") is not.
func isWeakOtherToken(t string) bool {
	switch t {
	case "status", "version", "ip", "ssid", "mac", "restart":
		return true
	}
	return false
}

// inferKind guesses the kind from a sensor or property name. Rules, first
// match wins (substrings for long words, whole tokens for short ones):
//
//	voltage, power, co2, internal, uptime, wifi, ...  → not tracked
//	battery (+ token low)                             → battery (battery_low)
//	tamper                                            → tamper
//	smoke                                             → smoke
//	carbon_monoxide, token co                         → co
//	temperature, token temp                           → temperature
//	humidity                                          → humidity
//	pressure                                          → pressure
//	leak, flood, token water                          → water_leak
//	panic, emergency, token sos                       → panic
//	motion, occupancy, presence, token pir            → motion
//	contact, window, token door                       → door
//	status, version, ip, ...                          → not tracked
//
// Order matters: "smoke_battery" is a battery level, "water_temperature" a
// temperature, "door_tamper" a tamper switch, "indoor_motion" motion (door
// is matched only as a token).
func inferKind(name string) (reading.Kind, inference) {
	name = strings.ToLower(name)
	var buf [8]string
	toks := tokens(name, buf[:0])
	has := func(words ...string) bool {
		for _, t := range toks {
			for _, w := range words {
				if t == w {
					return true
				}
			}
		}
		return false
	}
	sub := strings.Contains
	for _, t := range toks {
		if isOtherToken(t) {
			return "", inferOther
		}
	}
	switch {
	case sub(name, "battery"):
		// First: "dorm_2f_smoke_battery" is the detector's battery, not
		// smoke, and "door_battery_low" a low-battery flag, not a door.
		if has("low") {
			return reading.KindBatteryLow, inferFound
		}
		return reading.KindBattery, inferFound
	case sub(name, "tamper"):
		return reading.KindTamper, inferFound
	case sub(name, "smoke"):
		return reading.KindSmoke, inferFound
	case sub(name, "carbon_monoxide"), sub(name, "carbon-monoxide"), sub(name, "carbonmonoxide"), has("co"):
		return reading.KindCO, inferFound
	case sub(name, "temperature"), has("temp"):
		return reading.KindTemperature, inferFound
	case sub(name, "humidity"):
		return reading.KindHumidity, inferFound
	case sub(name, "pressure"):
		return reading.KindPressure, inferFound
	case sub(name, "leak"), sub(name, "flood"), has("water"):
		return reading.KindWaterLeak, inferFound
	case sub(name, "panic"), sub(name, "emergency"), has("sos"):
		return reading.KindPanic, inferFound
	case sub(name, "motion"), sub(name, "occupancy"), sub(name, "presence"), has("pir"):
		return reading.KindMotion, inferFound
	case sub(name, "contact"), sub(name, "window"), has("door", "doors"):
		return reading.KindDoor, inferFound
	}
	for _, t := range toks {
		if isWeakOtherToken(t) {
			return "", inferOther
		}
	}
	return "", inferNone
}

// tokens splits a lower-case name at every byte that is not a letter or
// digit ("dorm3_temp-c" → dorm3, temp, c), appending to dst.
func tokens(name string, dst []string) []string {
	start := -1
	for i := 0; i <= len(name); i++ {
		alnum := i < len(name) && (name[i] >= 'a' && name[i] <= 'z' || name[i] >= '0' && name[i] <= '9')
		switch {
		case alnum && start < 0:
			start = i
		case !alnum && start >= 0:
			dst = append(dst, name[start:i])
			start = -1
		}
	}
	return dst
}

// internKind returns the Kind that key spells, as the package's constant
// when it is a known kind: an observation then keeps no copy of the
// payload's bytes.
func internKind(key []byte) reading.Kind {
	for _, k := range [...]reading.Kind{
		reading.KindSmoke, reading.KindDoor, reading.KindTemperature, reading.KindHumidity,
		reading.KindPressure, reading.KindMotion, reading.KindWaterLeak, reading.KindPanic,
		reading.KindTamper, reading.KindBattery, reading.KindBatteryLow, reading.KindCO,
		reading.KindAvailability, reading.KindSensorFault, reading.KindFault, reading.KindReach,
	} {
		if string(key) == string(k) {
			return k
		}
	}
	return reading.Kind(key)
}
