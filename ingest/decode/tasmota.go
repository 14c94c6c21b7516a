package decode

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Tasmota decodes Tasmota telemetry (https://tasmota.github.io/docs/MQTT/).
//
// The base is the device's %topic% (default "tasmota_<last 6 MAC hex>"),
// and the default FullTopic "%prefix%/%topic%/" is assumed, so a device
// publishes under "tele/<topic>/" and "stat/<topic>/". A custom FullTopic is
// not supported.
//
//	tele/<t>/SENSOR  sensor JSON (below)
//	tele/<t>/STATE   heartbeat; Wifi.RSSI (0–100 %) → LinkQuality (0–255)
//	tele/<t>/LWT     Online / Offline → availability (broker sends Offline)
//	stat/<t>/RESULT  {"Switch1":{"Action":"ON"}} (SetOption114) → switch
//	tele|stat/<t>/X  any other upper-case Tasmota message (INFO1, UPTIME,
//	                 POWER, STATUS8 ...) → heartbeat: only a running device
//	                 publishes them, but they carry no reading
//	anything else    unknown topic
//
// SENSOR holds one object per sensor, keyed by the sensor's name: "BME280",
// "AM2301", "DS18B20", "DS18B20-1" for multiples. Every such object with
// Temperature, Humidity or Pressure yields readings, except "ESP32", the
// chip's own temperature, which every tasmota32 build reports and which
// says nothing about the room. TempUnit "F" (SetOption8) is converted to °C,
// PressureUnit "mmHg"/"inHg" (SetOption24/139) to hPa.
//
// "Time" is the device's local time without an offset (its Timezone
// setting), so it is read in Device.Location (UTC when nil). If the device
// appends an offset (SetOption52) that offset is used; "Epoch" (TimeStamp
// format 1) or a numeric Time (format 2) is Unix seconds and wins. Around a
// DST change a local time may be ambiguous; Go picks one of the two instants.
//
// Switch polarity: "Switch1":"ON" means the input is active (contact closed
// to GND), and reads as true of the device's kind (door if the configured
// kind is not a boolean reading kind), so ON = open for a door. An
// alarm-industry door contact is closed while the door is shut, so it
// needs Device.Invert. Only Switch1 is read: a device has one kind, and a
// rule that depended on which switch a message happened to carry would give
// different answers for SENSOR and RESULT. Actions other than ON/OFF
// (TOGGLE, HOLD ...) carry no state and are heartbeats.
type Tasmota struct{}

const tasmotaFormat = "tasmota"

// Format implements Decoder.
func (Tasmota) Format() string { return tasmotaFormat }

// Prefixes implements Decoder.
func (Tasmota) Prefixes(base string) []string {
	return []string{"tele/" + base, "stat/" + base}
}

// Pressure conversion factors, as in Tasmota's ConvertHgToHpa.
const (
	hPaPerMmHg = 1.33322387415
	hPaPerInHg = 33.8638866667
)

// Decode implements Decoder.
func (Tasmota) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = tasmotaFormat
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	var tele bool
	var rest string
	switch {
	case strings.HasPrefix(topic, "tele/"):
		tele, rest = true, topic[len("tele/"):]
	case strings.HasPrefix(topic, "stat/"):
		rest = topic[len("stat/"):]
	default:
		return Result{}, unknownTopic(format, topic)
	}
	msg, exact, ok := splitTopic(dev.Base, rest)
	if !ok || exact || !isTasmotaMessage(msg) {
		return Result{}, unknownTopic(format, topic)
	}
	if len(payload) == 0 {
		return Result{}, emptyPayload(format)
	}
	switch {
	case tele && msg == "SENSOR":
		return decodeTasmotaSensor(dev, payload)
	case tele && msg == "STATE":
		return decodeTasmotaState(dev, payload)
	case tele && msg == "LWT":
		return availabilityWord(format, "LWT", text(payload), "Online", "Offline")
	case !tele && msg == "RESULT":
		return decodeTasmotaResult(dev, payload)
	}
	return heartbeat()
}

// isTasmotaMessage reports whether s looks like a Tasmota message name: one
// topic level of upper-case letters, digits and underscores.
func isTasmotaMessage(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

type tasmotaSensor struct {
	Temperature json.RawMessage `json:"Temperature"`
	Humidity    json.RawMessage `json:"Humidity"`
	Pressure    json.RawMessage `json:"Pressure"`
}

func decodeTasmotaSensor(dev Device, payload []byte) (Result, error) {
	const format = tasmotaFormat
	var m map[string]json.RawMessage
	if err := decodeObject(format, payload, &m); err != nil {
		return Result{}, err
	}
	b := newBuilder(format)
	if err := tasmotaTime(&b, dev, m["Time"], m["Epoch"]); err != nil {
		return Result{}, err
	}

	tempF := false
	if s, ok, err := strField(format, "TempUnit", m["TempUnit"]); err != nil {
		return Result{}, err
	} else if ok {
		switch s {
		case "C":
		case "F":
			tempF = true
		default:
			return Result{}, Errorf(ReasonMalformed, "%s: TempUnit %q: want C or F", format, s)
		}
	}
	pressureFactor := 1.0
	if s, ok, err := strField(format, "PressureUnit", m["PressureUnit"]); err != nil {
		return Result{}, err
	} else if ok {
		switch s {
		case "hPa":
		case "mmHg":
			pressureFactor = hPaPerMmHg
		case "inHg":
			pressureFactor = hPaPerInHg
		default:
			return Result{}, Errorf(ReasonMalformed, "%s: PressureUnit %q: want hPa, mmHg or inHg", format, s)
		}
	}

	if raw, ok := m["Switch1"]; ok {
		s, ok, err := strField(format, "Switch1", raw)
		if err != nil {
			return Result{}, err
		}
		if ok {
			if err := tasmotaSwitch(&b, dev, "Switch1", s, false); err != nil {
				return Result{}, err
			}
		}
	}

	// Sorted so that errors do not depend on map order.
	keys := make([]string, 0, len(m))
	for k, raw := range m {
		if len(raw) > 0 && raw[0] == '{' && k != "ESP32" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, name := range keys {
		var s tasmotaSensor
		if err := json.Unmarshal(m[name], &s); err != nil {
			return Result{}, jsonError(format, err)
		}
		t, ok, err := numField(format, name+".Temperature", s.Temperature)
		if err != nil {
			return Result{}, err
		}
		if ok {
			if tempF {
				t = (t - 32) / 1.8
			}
			b.number(reading.KindTemperature, t)
		}
		h, ok, err := numField(format, name+".Humidity", s.Humidity)
		if err != nil {
			return Result{}, err
		}
		if ok {
			b.number(reading.KindHumidity, h)
		}
		p, ok, err := numField(format, name+".Pressure", s.Pressure)
		if err != nil {
			return Result{}, err
		}
		if ok {
			b.number(reading.KindPressure, p*pressureFactor)
		}
	}
	return b.result()
}

func decodeTasmotaState(dev Device, payload []byte) (Result, error) {
	const format = tasmotaFormat
	var s struct {
		Time  json.RawMessage `json:"Time"`
		Epoch json.RawMessage `json:"Epoch"`
		Wifi  json.RawMessage `json:"Wifi"`
	}
	if err := decodeObject(format, payload, &s); err != nil {
		return Result{}, err
	}
	b := newBuilder(format)
	if err := tasmotaTime(&b, dev, s.Time, s.Epoch); err != nil {
		return Result{}, err
	}
	if !absent(s.Wifi) {
		var w struct {
			RSSI json.RawMessage `json:"RSSI"`
		}
		if s.Wifi[0] != '{' {
			b.attr(wrongType(format, "Wifi", "object", s.Wifi))
		} else if err := json.Unmarshal(s.Wifi, &w); err != nil {
			b.attr(jsonError(format, err))
		} else if pct, ok, err := numField(format, "Wifi.RSSI", w.RSSI); err != nil {
			b.attr(err)
		} else if ok {
			// RSSI is Tasmota's signal quality in percent (WifiGetRssiAsQuality).
			if err := checkAttribute(format, "Wifi.RSSI", pct, 0, 100); err != nil {
				b.attr(err)
			} else {
				b.setLinkQuality(pct * 255 / 100)
			}
		}
	}
	return b.result()
}

func decodeTasmotaResult(dev Device, payload []byte) (Result, error) {
	const format = tasmotaFormat
	var r struct {
		Switch1 json.RawMessage `json:"Switch1"`
	}
	if err := decodeObject(format, payload, &r); err != nil {
		return Result{}, err
	}
	b := newBuilder(format)
	switch {
	case absent(r.Switch1):
		// Some other command's result (POWER, a status): a heartbeat.
	case r.Switch1[0] == '{':
		var sw struct {
			Action json.RawMessage `json:"Action"`
		}
		if err := json.Unmarshal(r.Switch1, &sw); err != nil {
			return Result{}, jsonError(format, err)
		}
		action, ok, err := strField(format, "Switch1.Action", sw.Action)
		if err != nil {
			return Result{}, err
		}
		if ok {
			if err := tasmotaSwitch(&b, dev, "Switch1.Action", action, true); err != nil {
				return Result{}, err
			}
		}
	default:
		s, _, err := strField(format, "Switch1", r.Switch1)
		if err != nil {
			return Result{}, err
		}
		if err := tasmotaSwitch(&b, dev, "Switch1", s, false); err != nil {
			return Result{}, err
		}
	}
	return b.result()
}

// tasmotaSwitch adds the switch state. Actions (RESULT) other than ON/OFF
// carry no state and are ignored; in SENSOR only ON/OFF is valid.
func tasmotaSwitch(b *builder, dev Device, field, s string, action bool) error {
	var on bool
	switch s {
	case "ON":
		on = true
	case "OFF":
	default:
		if action {
			return nil
		}
		return Errorf(ReasonMalformed, "%s: %s %q: want ON or OFF", tasmotaFormat, field, s)
	}
	kind := dev.Kind
	if !isReadingBoolKind(kind) {
		kind = reading.KindDoor
	}
	b.flag(kind, on != dev.Invert)
	return nil
}

// tasmotaTime sets the builder's time from "Time" and "Epoch".
func tasmotaTime(b *builder, dev Device, timeRaw, epochRaw json.RawMessage) error {
	const format = tasmotaFormat
	if v, ok, err := numField(format, "Epoch", epochRaw); err != nil {
		return err
	} else if ok {
		t, err := epochTime(format, "Epoch", v, 1)
		if err != nil {
			return err
		}
		b.time = t
		return nil
	}
	if absent(timeRaw) {
		return nil
	}
	if timeRaw[0] != '"' {
		v, _, err := numField(format, "Time", timeRaw)
		if err != nil {
			return err
		}
		b.time, err = epochTime(format, "Time", v, 1)
		return err
	}
	s, _, err := strField(format, "Time", timeRaw)
	if err != nil {
		return err
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		b.time = t
		return nil
	}
	loc := dev.Location
	if loc == nil {
		loc = time.UTC
	}
	// Fractional seconds (TimeStamp format 3) parse without being in the
	// layout.
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		return Errorf(ReasonBadTime, "%s: \"Time\": %q is not a Tasmota time", format, s)
	}
	b.time = t
	return nil
}
