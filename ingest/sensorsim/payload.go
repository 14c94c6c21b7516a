package sensorsim

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Message is one MQTT publication.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// QoS is the MQTT quality of service of every simulated publication.
const QoS = 1

// The builders below are pure: they format what the device's firmware would
// publish and nothing else. Topics, field order and number formatting follow
// each firmware's documentation and source (Zigbee2MQTT device pages and
// lib/controller.ts, Tasmota MQTT/BME280/Buttons-and-Switches docs, ESPHome
// mqtt component, Shelly Gen2 MQTT and notification docs, Homie 5
// convention). d must be valid (Device.Validate) and st's numbers finite.

// Birth returns what d publishes as soon as it is connected: its retained
// "online" availability (Homie: the retained $description, then $state
// ready).
func Birth(d Device) []Message {
	switch d.Format {
	case formatHomie:
		return []Message{
			{Topic: d.Base + "/$description", Payload: homieDescription(d), Retained: true},
			{Topic: d.Base + "/$state", Payload: []byte("ready"), Retained: true},
		}
	}
	return []Message{availability(d, true)}
}

// Will returns d's MQTT last-will message: the retained "offline" the broker
// publishes when the device drops off without saying goodbye (Homie: $state
// lost).
func Will(d Device) Message {
	if d.Format == formatHomie {
		return Message{Topic: d.Base + "/$state", Payload: []byte("lost"), Retained: true}
	}
	return availability(d, false)
}

// Shutdown returns what d publishes before a clean disconnect (Homie: $state
// disconnected; everyone else: the same offline as the will).
func Shutdown(d Device) Message {
	if d.Format == formatHomie {
		return Message{Topic: d.Base + "/$state", Payload: []byte("disconnected"), Retained: true}
	}
	return availability(d, false)
}

// availability is the online/offline message of every format but Homie.
func availability(d Device, online bool) Message {
	m := Message{Retained: true}
	switch d.Format {
	case formatZigbee2MQTT:
		m.Topic = d.Base + "/availability"
		m.Payload = []byte(`{"state":"` + pick(online, "online", "offline") + `"}`)
	case formatTasmota:
		m.Topic = "tele/" + d.Base + "/LWT"
		m.Payload = []byte(pick(online, "Online", "Offline"))
	case formatShelly:
		m.Topic = d.Base + "/online"
		m.Payload = []byte(strconv.FormatBool(online))
	default: // native, esphome
		m.Topic = d.Base + "/status"
		m.Payload = []byte(pick(online, "online", "offline"))
	}
	return m
}

// Report returns d's periodic telemetry for state st at now; loc is the
// facility time zone (Tasmota's "Time" is local wall-clock time without an
// offset).
func Report(d Device, st State, now time.Time, loc *time.Location) []Message {
	return build(d, st, now, loc, true)
}

// Change returns what d publishes at once when its boolean changes (a door
// opens, smoke is detected): for most firmware the same state message as a
// report, without the extras that only come with the telemetry period
// (Tasmota STATE, Shelly devicepower). For climate devices it equals Report.
func Change(d Device, st State, now time.Time, loc *time.Location) []Message {
	return build(d, st, now, loc, false)
}

func build(d Device, st State, now time.Time, loc *time.Location, periodic bool) []Message {
	if loc == nil {
		loc = time.UTC
	}
	if isClimate(d.Kind) {
		periodic = true
	}
	switch d.Format {
	case formatZigbee2MQTT:
		return []Message{{Topic: d.Base, Payload: mustJSON(zigbee2mqttState(d, st, now))}}
	case formatTasmota:
		return tasmota(d, st, now.In(loc), periodic)
	case formatESPHome:
		return esphome(d, st)
	case formatShelly:
		return shelly(d, st, now, periodic)
	case formatHomie:
		return homie(d, st)
	case formatNative:
		return []Message{{Topic: d.Base, Payload: mustJSON(native(d, st, now.In(loc)))}}
	}
	panic(fmt.Sprintf("sensorsim: device %q: unknown format %q (call Device.Validate first)", d.ID, d.Format))
}

// zigbee2mqttState is the device's state message as Zigbee2MQTT publishes
// it, with the exposes of a typical model per kind and the last_seen that
// advanced.last_seen: ISO_8601 adds (UTC, milliseconds, as JavaScript's
// toISOString).
func zigbee2mqttState(d Device, st State, now time.Time) object {
	battery := math.Round(st.BatteryPct)
	voltage := math.Round(2700 + st.BatteryPct*3.2) // CR2032, mV
	var o object
	switch d.Kind {
	case reading.KindTemperature, reading.KindHumidity, reading.KindPressure: // Aqara WSDCGQ11LM
		o = object{
			{"temperature", round(st.TempC, 2)},
			{"humidity", round(st.HumidityPct, 1)},
			{"pressure", math.Round(st.PressureHPa)},
			{"battery", battery},
			{"voltage", voltage},
		}
	case reading.KindSmoke: // HEIMAN HS1SA
		o = object{
			{"smoke", st.Active},
			{"battery_low", st.batteryLow()},
			{"battery", battery},
		}
	case reading.KindDoor: // SONOFF SNZB-04 / Aqara MCCGQ11LM: contact true = closed
		o = object{
			{"contact", !st.Active},
			{"battery", battery},
			{"voltage", voltage},
		}
	case reading.KindMotion: // SONOFF SNZB-03
		o = object{
			{"occupancy", st.Active},
			{"battery_low", st.batteryLow()},
			{"battery", battery},
			{"voltage", voltage},
		}
	case reading.KindWaterLeak: // SONOFF SNZB-05
		o = object{
			{"water_leak", st.Active},
			{"battery_low", st.batteryLow()},
			{"battery", battery},
			{"voltage", voltage},
		}
	case reading.KindPanic: // Tuya TS0215A SOS button: "action" only on a press
		if st.Active {
			o = object{{"action", "emergency"}}
		}
		o = append(o, field{"battery", battery}, field{"voltage", voltage})
	}
	return append(o,
		field{"linkquality", st.LinkQuality},
		field{"last_seen", now.UTC().Format("2006-01-02T15:04:05.000Z")},
	)
}

// tasmota returns tele/<topic>/SENSOR (a BME280, or Switch1 with
// SwitchMode 15) and, with the telemetry period, tele/<topic>/STATE.
func tasmota(d Device, st State, local time.Time, periodic bool) []Message {
	tm := local.Format("2006-01-02T15:04:05")
	var sensor object
	if isClimate(d.Kind) {
		sensor = object{
			{"Time", tm},
			{"BME280", object{
				{"Temperature", fixed1(st.TempC)},
				{"Humidity", fixed1(st.HumidityPct)},
				{"DewPoint", fixed1(dewPointC(st.TempC, st.HumidityPct))},
				{"Pressure", fixed1(st.PressureHPa)},
			}},
			{"PressureUnit", "hPa"},
			{"TempUnit", "C"},
		}
	} else {
		sensor = object{{"Time", tm}, {"Switch1", pick(st.Active, "ON", "OFF")}}
	}
	msgs := []Message{{Topic: "tele/" + d.Base + "/SENSOR", Payload: mustJSON(sensor)}}
	if periodic {
		msgs = append(msgs, Message{Topic: "tele/" + d.Base + "/STATE", Payload: mustJSON(tasmotaState(st, local))})
	}
	return msgs
}

// tasmotaState is Tasmota's periodic STATE heartbeat of a sensor-only
// device (no relays, so no POWER).
func tasmotaState(st State, local time.Time) object {
	up := max(local.Sub(st.Boot), 0)
	if st.Boot.IsZero() {
		up = 0
	}
	signal := -90 + float64(st.LinkQuality)*45/255 // dBm
	quality := int(clamp(2*(signal+100), 0, 100))  // Tasmota's RSSI %
	return object{
		{"Time", local.Format("2006-01-02T15:04:05")},
		{"Uptime", tasmotaUptime(up)},
		{"UptimeSec", int64(up / time.Second)},
		{"Heap", 26},
		{"SleepMode", "Dynamic"},
		{"Sleep", 50},
		{"LoadAvg", 19},
		{"MqttCount", 1},
		{"Wifi", object{
			{"AP", 1},
			{"SSId", "shelter-iot"},
			{"BSSId", "30:B5:C2:5E:1A:04"},
			{"Channel", 6},
			{"Mode", "11n"},
			{"RSSI", quality},
			{"Signal", int(math.Round(signal))},
			{"LinkCount", 1},
			{"Downtime", "0T00:00:03"},
		}},
	}
}

// tasmotaUptime formats like Tasmota: days "T" hh:mm:ss.
func tasmotaUptime(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%dT%02d:%02d:%02d", s/86400, s/3600%24, s/60%60, s%60)
}

// dewPointC is the Magnus approximation Tasmota uses for DewPoint.
func dewPointC(tempC, rh float64) float64 {
	const a, b = 17.62, 243.12
	g := math.Log(math.Max(rh, 1)/100) + a*tempC/(b+tempC)
	return b * g / (a - g)
}

// esphome returns the retained plain-string states: sensors with
// accuracy_decimals 1, binary sensors ON/OFF. Object ids are the kinds, as
// ESPHome derives them from entity names "Temperature", "Door", ….
func esphome(d Device, st State) []Message {
	if isClimate(d.Kind) {
		msgs := []Message{
			{Topic: d.Base + "/sensor/temperature/state", Payload: []byte(strconv.FormatFloat(st.TempC, 'f', 1, 64)), Retained: true},
			{Topic: d.Base + "/sensor/humidity/state", Payload: []byte(strconv.FormatFloat(st.HumidityPct, 'f', 1, 64)), Retained: true},
		}
		if d.Kind == reading.KindPressure {
			msgs = append(msgs, Message{Topic: d.Base + "/sensor/pressure/state", Payload: []byte(strconv.FormatFloat(st.PressureHPa, 'f', 1, 64)), Retained: true})
		}
		return msgs
	}
	return []Message{{Topic: d.Base + "/binary_sensor/" + string(d.Kind) + "/state", Payload: []byte(pick(st.Active, "ON", "OFF")), Retained: true}}
}

// shelly returns the status_ntf component topics and the rpc_ntf
// NotifyStatus of a Shelly Plus H&T (climate), Plus Smoke (smoke) or an
// input (door, motion, leak, panic contacts wired to a Plus i4 / Plus Uni).
func shelly(d Device, st State, now time.Time, periodic bool) []Message {
	type component struct {
		key    string
		status object
	}
	var comps []component
	battery := false
	switch {
	case isClimate(d.Kind):
		tC := round(st.TempC, 1)
		comps = []component{
			{"temperature:0", object{{"id", 0}, {"tC", tC}, {"tF", round(tC*9/5+32, 1)}}},
			{"humidity:0", object{{"id", 0}, {"rh", round(st.HumidityPct, 1)}}},
		}
		battery = true
	case d.Kind == reading.KindSmoke:
		comps = []component{{"smoke:0", object{{"id", 0}, {"alarm", st.Active}, {"mute", false}}}}
		battery = true
	default:
		comps = []component{{"input:0", object{{"id", 0}, {"state", st.Active}}}}
	}
	var msgs []Message
	params := object{{"ts", math.Round(float64(now.UnixMilli())/10) / 100}}
	for _, c := range comps {
		msgs = append(msgs, Message{Topic: d.Base + "/status/" + c.key, Payload: mustJSON(c.status)})
		params = append(params, field{c.key, c.status})
	}
	if battery && periodic {
		power := object{
			{"id", 0},
			{"battery", object{{"V", round(4.4+st.BatteryPct*0.0173, 2)}, {"percent", math.Round(st.BatteryPct)}}},
			{"external", object{{"present", false}}},
		}
		msgs = append(msgs, Message{Topic: d.Base + "/status/devicepower:0", Payload: mustJSON(power)})
	}
	notify := object{
		{"src", d.Base},
		{"dst", d.Base + "/events"},
		{"method", "NotifyStatus"},
		{"params", params},
	}
	return append(msgs, Message{Topic: d.Base + "/events/rpc", Payload: mustJSON(notify)})
}

// homieNode returns the Homie node id and the properties (id, datatype,
// unit) of d.
func homieNode(d Device) (node string, props [][3]string) {
	if isClimate(d.Kind) {
		props = [][3]string{{"temperature", "float", "°C"}, {"humidity", "float", "%"}}
		if d.Kind == reading.KindPressure {
			props = append(props, [3]string{"pressure", "float", "hPa"})
		}
		return "climate", props
	}
	return "sensor", [][3]string{{homieID(string(d.Kind)), "boolean", ""}}
}

// homieID turns a kind into a Homie id ([a-z0-9-]).
func homieID(s string) string { return strings.ReplaceAll(s, "_", "-") }

// homie returns the retained property values: plain strings.
func homie(d Device, st State) []Message {
	node, props := homieNode(d)
	msgs := make([]Message, 0, len(props))
	for _, p := range props {
		var v string
		switch p[0] {
		case "temperature":
			v = strconv.FormatFloat(st.TempC, 'f', 1, 64)
		case "humidity":
			v = strconv.FormatFloat(st.HumidityPct, 'f', 1, 64)
		case "pressure":
			v = strconv.FormatFloat(st.PressureHPa, 'f', 1, 64)
		default:
			v = strconv.FormatBool(st.Active)
		}
		msgs = append(msgs, Message{Topic: d.Base + "/" + node + "/" + p[0], Payload: []byte(v), Retained: true})
	}
	return msgs
}

// homieDescription is the Homie 5 $description document of d.
func homieDescription(d Device) []byte {
	node, props := homieNode(d)
	properties := make(object, 0, len(props))
	for _, p := range props {
		prop := object{{"name", titleCase(p[0])}, {"datatype", p[1]}}
		if p[2] != "" {
			prop = append(prop, field{"unit", p[2]})
		}
		properties = append(properties, field{p[0], prop})
	}
	return mustJSON(object{
		{"homie", "5.0"},
		{"version", 1},
		{"name", d.ID},
		{"nodes", object{{node, object{{"name", titleCase(node)}, {"properties", properties}}}}},
	})
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	s = strings.ReplaceAll(s, "-", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// native is our own JSON: device time, battery, and values keyed by reading
// kind.
func native(d Device, st State, local time.Time) object {
	var values object
	if isClimate(d.Kind) {
		values = object{
			{string(reading.KindTemperature), round(st.TempC, 1)},
			{string(reading.KindHumidity), round(st.HumidityPct, 1)},
		}
		if d.Kind == reading.KindPressure {
			values = append(values, field{string(reading.KindPressure), round(st.PressureHPa, 1)})
		}
	} else {
		values = object{{string(d.Kind), st.Active}}
	}
	return object{
		{"time", local.Format(time.RFC3339)},
		{"battery", math.Round(st.BatteryPct)},
		{"values", values},
	}
}

// field and object build JSON objects whose keys keep the firmware's order
// (encoding/json sorts map keys).
type field struct {
	k string
	v any
}

type object []field

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) { return o.appendTo(nil) }

// appendTo appends o as JSON. Benchmark tools generate payloads in bulk, so
// the common value types are written directly instead of through
// encoding/json, which would re-validate every nested object.
func (o object) appendTo(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSON(b, f.k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = appendJSON(b, f.v); err != nil {
			return nil, fmt.Errorf("field %q: %w", f.k, err)
		}
	}
	return append(b, '}'), nil
}

// appendJSON appends v as encoding/json would.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case object:
		return v.appendTo(b)
	case fixed1:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("non-finite value %v", f)
		}
		return strconv.AppendFloat(b, f, 'f', 1, 64), nil
	case float64:
		// encoding/json's plain form; it switches to exponents outside
		// [1e-6, 1e21), which sensor values never reach.
		if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) || math.IsNaN(v) {
			break
		}
		return strconv.AppendFloat(b, v, 'f', -1, 64), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		if plainString(v) {
			b = append(b, '"')
			b = append(b, v...)
			return append(b, '"'), nil
		}
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// plainString reports whether s needs no JSON escaping (as encoding/json
// escapes it, including <, > and &).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// fixed1 is a number printed with exactly one decimal, as Tasmota prints
// sensor values at the default resolution (21.0, not 21).
type fixed1 float64

// mustJSON marshals a payload built from our own types; it fails only when a
// State holds a non-finite number, which is a caller bug.
func mustJSON(o object) []byte {
	b, err := o.appendTo(make([]byte, 0, 128))
	if err != nil {
		panic("sensorsim: building payload: " + err.Error())
	}
	return b
}

// round rounds x to n decimals; JSON then prints the shortest form (21.37,
// 1003), as JavaScript firmware does.
func round(x float64, n int) float64 {
	p := math.Pow10(n)
	return math.Round(x*p) / p
}

func pick[T any](cond bool, yes, no T) T {
	if cond {
		return yes
	}
	return no
}
