package decode

import (
	"encoding/json"
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
// Every reading carries its sensor's key as its channel ("DS18B20-2",
// "SHT3X", "Switch2"), so a board with three DS18B20, or a DHT11 next to an
// SHT3X, gives readings that stay apart. A sensor whose value is null
// (Tasmota prints a failed read, NaN, as null) is a sensor_fault of its
// channel.
//
// Switches: "SwitchN":"ON" (N = 1…28) means input N is active (contact
// closed to GND), and reads as true of the channel's configured kind, else
// the device's kind, else door, so ON = open for a door. An alarm-industry
// door contact is closed while the door is shut, so it needs invert on the
// device or the channel. Actions other than ON/OFF (TOGGLE, HOLD ...) carry
// no state and are heartbeats.
type Tasmota struct {
	// encodingJSON reads every payload with encoding/json alone: the
	// reference the one-pass reading is tested against.
	encodingJSON bool
}

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
func (t Tasmota) Decode(dev Device, topic string, payload []byte) (Result, error) {
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
	scan := !t.encodingJSON
	switch {
	case tele && msg == "SENSOR":
		return decodeTasmotaSensor(dev, payload, scan)
	case tele && msg == "STATE":
		return decodeTasmotaState(dev, payload, scan)
	case tele && msg == "LWT":
		return availabilityWord(format, "LWT", text(payload), "Online", "Offline")
	case !tele && msg == "RESULT":
		return decodeTasmotaResult(dev, payload, scan)
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

func decodeTasmotaSensor(dev Device, payload []byte, scan bool) (Result, error) {
	const format = tasmotaFormat
	var buf [16]jsonMember
	m, err := readMap(format, payload, buf[:0], scan)
	if err != nil {
		return Result{}, err
	}
	b := newBuilder(format)
	b.reject(tasmotaTime(&b, dev, lookup(m, "Time"), lookup(m, "Epoch")))

	tempF := false
	if s, ok, err := strField(format, "TempUnit", lookup(m, "TempUnit")); err != nil {
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
	if s, ok, err := strField(format, "PressureUnit", lookup(m, "PressureUnit")); err != nil {
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

	// Sorted by key, so that results and errors do not depend on the
	// order the payload lists its sensors in.
	for _, mb := range m {
		raw := mb.value
		if isTasmotaSwitch(string(mb.key)) {
			name := string(mb.key)
			s, ok, err := strField(format, name, raw)
			if err != nil {
				b.reject(err)
			} else if ok {
				b.reject(tasmotaSwitch(&b, dev, name, s, false))
			}
			continue
		}
		if len(raw) == 0 || raw[0] != '{' || string(mb.key) == "ESP32" {
			continue
		}
		name := string(mb.key)
		var s tasmotaSensor
		if err := readStruct(raw, &s, scan,
			rawField{"Temperature", &s.Temperature},
			rawField{"Humidity", &s.Humidity},
			rawField{"Pressure", &s.Pressure},
		); err != nil {
			b.reject(jsonError(format, err))
			continue
		}
		faulted := false
		for _, f := range [...]struct {
			field  string
			raw    json.RawMessage
			kind   reading.Kind
			factor float64
		}{
			{"Temperature", s.Temperature, reading.KindTemperature, 0},
			{"Humidity", s.Humidity, reading.KindHumidity, 1},
			{"Pressure", s.Pressure, reading.KindPressure, pressureFactor},
		} {
			if string(f.raw) == "null" {
				faulted = true
				continue
			}
			v, ok, err := fieldIn(numField, format, name, f.field, f.raw)
			if err != nil {
				b.reject(err)
				continue
			}
			if !ok {
				continue
			}
			switch {
			case f.factor != 0:
				v *= f.factor
			case tempF:
				v = (v - 32) / 1.8
			}
			b.numberOn(name, f.kind, v)
		}
		if faulted {
			b.fault(name)
		}
	}
	return b.result()
}

// isTasmotaSwitch reports whether key names a switch input: Switch1 to
// Switch28 (the most any build has).
func isTasmotaSwitch(key string) bool {
	n, ok := strings.CutPrefix(key, "Switch")
	if !ok || n == "" || n[0] == '0' || len(n) > 2 {
		return false
	}
	v := 0
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
		v = v*10 + int(n[i]-'0')
	}
	return v >= 1 && v <= 28
}

type tasmotaState struct {
	Time  json.RawMessage `json:"Time"`
	Epoch json.RawMessage `json:"Epoch"`
	Wifi  json.RawMessage `json:"Wifi"`
}

type tasmotaWifi struct {
	RSSI json.RawMessage `json:"RSSI"`
}

func decodeTasmotaState(dev Device, payload []byte, scan bool) (Result, error) {
	const format = tasmotaFormat
	var s tasmotaState
	if !scan || !scanStruct(payload, rawField{"Time", &s.Time}, rawField{"Epoch", &s.Epoch}, rawField{"Wifi", &s.Wifi}) {
		var j tasmotaState // apart from s, so that only this path allocates
		if err := decodeObject(format, payload, &j); err != nil {
			return Result{}, err
		}
		s = j
	}
	b := newBuilder(format)
	b.reject(tasmotaTime(&b, dev, s.Time, s.Epoch))
	if !absent(s.Wifi) {
		var w tasmotaWifi
		if s.Wifi[0] != '{' {
			b.attr(wrongType(format, "Wifi", "object", s.Wifi))
		} else if err := readStruct(s.Wifi, &w, scan, rawField{"RSSI", &w.RSSI}); err != nil {
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

type tasmotaAction struct {
	Action json.RawMessage `json:"Action"`
}

func decodeTasmotaResult(dev Device, payload []byte, scan bool) (Result, error) {
	const format = tasmotaFormat
	var buf [16]jsonMember
	m, err := readMap(format, payload, buf[:0], scan)
	if err != nil {
		return Result{}, err
	}
	b := newBuilder(format)
	// Sorted by key. No switch: some other command's result (POWER, a
	// status), a heartbeat.
	for _, mb := range m {
		if !isTasmotaSwitch(string(mb.key)) {
			continue
		}
		name, raw := string(mb.key), mb.value
		switch {
		case absent(raw):
		case raw[0] == '{':
			var sw tasmotaAction
			if err := readStruct(raw, &sw, scan, rawField{"Action", &sw.Action}); err != nil {
				b.reject(jsonError(format, err))
				continue
			}
			action, ok, err := strField(format, name+".Action", sw.Action)
			if err != nil {
				b.reject(err)
			} else if ok {
				b.reject(tasmotaSwitch(&b, dev, name, action, true))
			}
		default:
			s, _, err := strField(format, name, raw)
			if err != nil {
				b.reject(err)
				continue
			}
			b.reject(tasmotaSwitch(&b, dev, name, s, false))
		}
	}
	return b.result()
}

// tasmotaSwitch adds the state of switch input name. Actions (RESULT) other
// than ON/OFF carry no state and are ignored; in SENSOR only ON/OFF is
// valid.
func tasmotaSwitch(b *builder, dev Device, name, s string, action bool) error {
	var on bool
	switch s {
	case "ON":
		on = true
	case "OFF":
	default:
		if action {
			return nil
		}
		return Errorf(ReasonMalformed, "%s: %s %q: want ON or OFF", tasmotaFormat, name, s)
	}
	kind, invert := dev.input(name)
	b.flagOn(name, kind, on != invert)
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
	loc := dev.Location
	if loc == nil {
		loc = time.UTC
	}
	// The local time Tasmota sends by default is tried first, as a failed
	// parse costs an allocated error. No string is both that and RFC 3339
	// (the one ends after the seconds, the other needs an offset there),
	// so the order changes no result. Fractional seconds (TimeStamp
	// format 3) parse without being in the layout.
	if t, err := time.ParseInLocation(tasmotaLocalTime, s, loc); err == nil {
		b.time = t
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Errorf(ReasonBadTime, "%s: \"Time\": %q is not a Tasmota time", format, s)
	}
	b.time = t
	return nil
}

// tasmotaLocalTime is the layout of Tasmota's "Time" without an offset.
const tasmotaLocalTime = "2006-01-02T15:04:05"
