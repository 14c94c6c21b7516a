package decode

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Zigbee2Tasmota decodes what Tasmota's Zigbee bridge (Zigbee2Tasmota, Z2T:
// the Sonoff ZBBridge and any Tasmota built with USE_ZIGBEE) publishes for
// the Zigbee devices paired to it (https://tasmota.github.io/docs/Zigbee/).
//
// The base is the bridge's Tasmota %topic% ("zbbridge") under the default
// FullTopic "%prefix%/%topic%/", and every Zigbee device behind the bridge
// is a channel of that topic (named below): each configured device on the
// bridge's topic takes one Zigbee device as its channel, and
// Device.Channels gives a channel its kind. A Zigbee device nobody
// configured is decoded all the same, on its own channel; routing it is
// the pipeline's call.
//
//	tele/<b>/SENSOR         {"ZbReceived":{"<key>":{...}}}: what one or
//	                        more Zigbee devices reported (fields below)
//	tele/<b>/<addr>/SENSOR  the same, one Zigbee device per topic
//	                        (SetOption89 1; <addr> is the short address
//	                        in hex without 0x, "8F20")
//	tele/<b>/RESULT         ZbReceived as above (older releases published
//	                        it here); ZbState and other replies → heartbeat
//	tele/<b>/LWT            Online / Offline → availability of the bridge,
//	                        without a channel: every Zigbee device behind
//	                        it goes with it
//	tele|stat/<b>/X         any other upper-case Tasmota message (STATE,
//	                        INFO1, stat RESULT ...) → heartbeat
//	cmnd/<b>/...            commands to the bridge (ZbSend ...) → ignored
//	anything else           unknown topic
//
// With SetOption112 1 the topic names the Zigbee device instead of the
// bridge (tele/<friendly name>/SENSOR): such a device is configured with
// its friendly name as the base. SetOption100 1 drops the ZbReceived
// wrapper ({"<key>":{"Device":"0x8F20",...}}): top-level objects that
// carry a "Device" are read the same way. A SENSOR payload with neither is
// the bridge's own telemetry, a heartbeat.
//
// Channels: <key> is the Zigbee device's short address ("0x8F20") or, with
// SetOption83 1, its friendly name. The channel is the friendly name when
// the device has one ("Name", set with ZbName, surrounding spaces
// trimmed; or a <key> that is not a short address), else its short
// address ("Device", else <key>), whatever SetOption83 says: a short
// address changes when a device rejoins the network, a name stays. A
// config that names a device by its short address still matches: the
// channel is the short address when Device.Channels has that key and not
// the name.
//
// Fields of each Zigbee device, as Tasmota's Zigbee converters name them
// (tasmota/tasmota_xdrv_driver/xdrv_23_zigbee_5_2_converters.ino):
//
//	Temperature (°C), Humidity (%), Pressure (hPa)
//	                            → same-named kinds; null → sensor_fault
//	Contact    0 / 1            → door. Tasmota's Contact is the IAS
//	                              zone's alarm bit, so 1 means OPEN
//	                              (Zigbee2MQTT's contact is the opposite:
//	                              true = closed)
//	Occupancy  0 / 1            → motion
//	Water      0 / 1            → water_leak
//	Fire       0 / 1            → smoke
//	PersonalAlarm, Panic 0 / 1  → panic
//	ZoneStatusChange, else ZoneStatus
//	                            IAS zone status bits: bit 2 → tamper,
//	                            bit 3 → battery_low, bit 6 (trouble) set
//	                            → sensor_fault
//	BatteryPercentage (%), Battery in older releases
//	                            → battery: the Battery attribute of the
//	                              other readings, or a battery reading on
//	                              the channel when there are none
//	LinkQuality (0–255)         → LinkQuality attribute
//
// The 0 / 1 fields also accept true / false. Not read: CO (an IAS alarm
// flag, not the ppm the co kind stores), Movement (vibration sensors),
// GlassBreak, BatteryVoltage and what lights and plugs report (Power,
// Dimmer ...). Battery and LinkQuality belong to a whole Result, so they
// are taken only from a message about a single Zigbee device, as Tasmota
// sends them. Invert is not applied: Tasmota already turns each IAS zone
// type into its meaning.
type Zigbee2Tasmota struct{}

const z2tFormat = "zigbee2tasmota"

// Format implements Decoder.
func (Zigbee2Tasmota) Format() string { return z2tFormat }

// Prefixes implements Decoder. Commands (cmnd/) are not the bridge's to
// publish, so they are not among them.
func (Zigbee2Tasmota) Prefixes(base string) []string {
	return []string{"tele/" + base, "stat/" + base}
}

// Decode implements Decoder.
func (Zigbee2Tasmota) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = z2tFormat
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	prefix, rest, _ := strings.Cut(topic, "/")
	msg, exact, ok := splitTopic(dev.Base, rest)
	if !ok || exact {
		return Result{}, unknownTopic(format, topic)
	}
	switch prefix {
	case "cmnd":
		return ignored()
	case "tele", "stat":
	default:
		return Result{}, unknownTopic(format, topic)
	}
	tele := prefix == "tele"
	if addr, name, found := strings.Cut(msg, "/"); found {
		// SetOption89: tele/<bridge>/<short address>/SENSOR.
		if !tele || name != "SENSOR" || !isZ2TShortAddr(addr) {
			return Result{}, unknownTopic(format, topic)
		}
		msg = name
	}
	if !isTasmotaMessage(msg) {
		return Result{}, unknownTopic(format, topic)
	}
	if len(payload) == 0 {
		return Result{}, emptyPayload(format)
	}
	switch {
	case tele && msg == "LWT":
		return availabilityWord(format, "LWT", text(payload), "Online", "Offline")
	case tele && (msg == "SENSOR" || msg == "RESULT"):
		return decodeZ2TReport(dev, payload, msg == "SENSOR")
	}
	return heartbeat()
}

// isZ2TShortAddr reports whether s is a short address as SetOption89 puts
// it in the topic: four hex digits.
func isZ2TShortAddr(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// z2tAttrs are the attributes of one Zigbee device in a report.
type z2tAttrs struct {
	Device            json.RawMessage `json:"Device"`
	Name              json.RawMessage `json:"Name"`
	Temperature       json.RawMessage `json:"Temperature"`
	Humidity          json.RawMessage `json:"Humidity"`
	Pressure          json.RawMessage `json:"Pressure"`
	Contact           json.RawMessage `json:"Contact"`
	Occupancy         json.RawMessage `json:"Occupancy"`
	Water             json.RawMessage `json:"Water"`
	Fire              json.RawMessage `json:"Fire"`
	PersonalAlarm     json.RawMessage `json:"PersonalAlarm"`
	Panic             json.RawMessage `json:"Panic"`
	ZoneStatus        json.RawMessage `json:"ZoneStatus"`
	ZoneStatusChange  json.RawMessage `json:"ZoneStatusChange"`
	BatteryPercentage json.RawMessage `json:"BatteryPercentage"`
	Battery           json.RawMessage `json:"Battery"`
	LinkQuality       json.RawMessage `json:"LinkQuality"`
}

// IAS zone status bits (ZCL IAS Zone cluster, ZoneStatus attribute).
const (
	iasTamper     = 1 << 2
	iasBatteryLow = 1 << 3
	iasTrouble    = 1 << 6
)

// decodeZ2TReport decodes a SENSOR or RESULT payload; unwrapped says
// whether reports without the ZbReceived wrapper (SetOption100) may be in
// it, as they may only on SENSOR.
func decodeZ2TReport(dev Device, payload []byte, unwrapped bool) (Result, error) {
	const format = z2tFormat
	var m map[string]json.RawMessage
	if err := decodeObject(format, payload, &m); err != nil {
		return Result{}, err
	}
	var reports map[string]json.RawMessage
	if raw, ok := m["ZbReceived"]; ok {
		if absent(raw) || raw[0] != '{' {
			return Result{}, wrongType(format, "ZbReceived", "object", raw)
		}
		if err := json.Unmarshal(raw, &reports); err != nil {
			return Result{}, jsonError(format, err)
		}
	} else if unwrapped {
		// SetOption100: no wrapper. Only objects naming a Zigbee device
		// are reports; anything else is the bridge's own telemetry.
		reports = make(map[string]json.RawMessage, len(m))
		for k, raw := range m {
			if isZ2TDeviceObject(raw) {
				reports[k] = raw
			}
		}
	}
	keys := make([]string, 0, len(reports))
	for k := range reports {
		keys = append(keys, k)
	}
	// Sorted so that results and errors do not depend on map order.
	slices.Sort(keys)
	b := newBuilder(format)
	for _, key := range keys {
		raw := reports[key]
		if absent(raw) || raw[0] != '{' {
			b.reject(wrongType(format, "ZbReceived."+key, "object", raw))
			continue
		}
		var a z2tAttrs
		if err := json.Unmarshal(raw, &a); err != nil {
			b.reject(jsonError(format, err))
			continue
		}
		z2tDevice(&b, dev, key, &a, len(keys) == 1)
	}
	return b.result()
}

// isZ2TDeviceObject reports whether raw is an object with a "Device" field,
// as every Zigbee device report has unless SetOption119 removes it.
func isZ2TDeviceObject(raw json.RawMessage) bool {
	if absent(raw) || raw[0] != '{' {
		return false
	}
	var a struct {
		Device json.RawMessage `json:"Device"`
	}
	return json.Unmarshal(raw, &a) == nil && !absent(a.Device)
}

// z2tChannel names the Zigbee device of a report (see Zigbee2Tasmota).
func z2tChannel(dev Device, key, addr, name string) string {
	if name == "" {
		if addr != "" {
			return addr
		}
		return key
	}
	if addr != "" {
		if _, byAddr := dev.Channels[addr]; byAddr {
			if _, byName := dev.Channels[name]; !byName {
				return addr
			}
		}
	}
	return name
}

// z2tDevice adds what one Zigbee device reported; attrs says whether its
// battery and link quality are the message's.
func z2tDevice(b *builder, dev Device, key string, a *z2tAttrs, attrs bool) {
	const format = z2tFormat
	field := func(name string) string { return key + "." + name }
	addr, _, err := strField(format, field("Device"), a.Device)
	b.reject(err)
	name, _, err := strField(format, field("Name"), a.Name)
	b.reject(err)
	name = strings.TrimSpace(name)
	if name == "" && key != addr && !(strings.HasPrefix(key, "0x") && isZ2TShortAddr(key[2:])) {
		// SetOption83 without a Name field (older releases): the key is
		// the friendly name.
		name = key
	}
	ch := z2tChannel(dev, key, addr, name)

	faulted := false
	for _, f := range [...]struct {
		field string
		raw   json.RawMessage
		kind  reading.Kind
	}{
		{"Temperature", a.Temperature, reading.KindTemperature},
		{"Humidity", a.Humidity, reading.KindHumidity},
		{"Pressure", a.Pressure, reading.KindPressure},
	} {
		if string(f.raw) == "null" {
			faulted = true
			continue
		}
		v, ok, err := numField(format, field(f.field), f.raw)
		if err != nil {
			b.reject(err)
		} else if ok {
			b.numberOn(ch, f.kind, v)
		}
	}

	for _, f := range [...]struct {
		field string
		raw   json.RawMessage
		kind  reading.Kind
	}{
		{"Contact", a.Contact, reading.KindDoor}, // 1 = open
		{"Occupancy", a.Occupancy, reading.KindMotion},
		{"Water", a.Water, reading.KindWaterLeak},
		{"Fire", a.Fire, reading.KindSmoke},
		{"PersonalAlarm", a.PersonalAlarm, reading.KindPanic},
		{"Panic", a.Panic, reading.KindPanic},
	} {
		v, ok, err := z2tFlag(field(f.field), f.raw)
		if err != nil {
			b.reject(err)
		} else if ok {
			b.flagOn(ch, f.kind, v)
		}
	}

	zs, zsField := a.ZoneStatusChange, "ZoneStatusChange"
	if absent(zs) {
		zs, zsField = a.ZoneStatus, "ZoneStatus"
	}
	if status, ok, err := z2tZoneStatus(field(zsField), zs); err != nil {
		b.reject(err)
	} else if ok {
		b.flagOn(ch, reading.KindTamper, status&iasTamper != 0)
		b.flagOn(ch, reading.KindBatteryLow, status&iasBatteryLow != 0)
		if status&iasTrouble != 0 {
			faulted = true
		}
	}
	if faulted {
		b.fault(ch)
	}

	if !attrs {
		return
	}
	bat, batField := a.BatteryPercentage, "BatteryPercentage"
	if absent(bat) {
		bat, batField = a.Battery, "Battery"
	}
	if v, ok, err := numField(format, field(batField), bat); err != nil {
		b.attr(err)
	} else if ok {
		// A battery reading on the device's channel: the builder turns it
		// into the Battery attribute of the other readings, and keeps it
		// (with its channel) when the message holds nothing else.
		if err := checkAttribute(format, field(batField), v, 0, 100); err != nil {
			b.attr(err)
		} else {
			b.numberOn(ch, reading.KindBattery, v)
		}
	}
	if v, ok, err := numField(format, field("LinkQuality"), a.LinkQuality); err != nil {
		b.attr(err)
	} else if ok {
		b.setLinkQuality(v)
	}
}

// z2tFlag reads a 0 / 1 attribute (or true / false). ok is false when it
// is absent or null.
func z2tFlag(field string, raw json.RawMessage) (v, ok bool, err error) {
	const format = z2tFormat
	if absent(raw) {
		return false, false, nil
	}
	switch string(raw) {
	case "1", "true":
		return true, true, nil
	case "0", "false":
		return false, true, nil
	}
	if c := raw[0]; c == '-' || c >= '0' && c <= '9' {
		return false, false, Errorf(ReasonMalformed, "%s: %q: %s: want 0 or 1", format, field, raw)
	}
	return false, false, wrongType(format, field, "0 or 1", raw)
}

// z2tZoneStatus reads an IAS zone status: a 16-bit bitmap. ok is false when
// it is absent or null.
func z2tZoneStatus(field string, raw json.RawMessage) (status uint16, ok bool, err error) {
	const format = z2tFormat
	v, ok, err := numField(format, field, raw)
	if err != nil || !ok {
		return 0, false, err
	}
	if v < 0 || v > 0xFFFF || v != float64(int64(v)) {
		return 0, false, Errorf(ReasonMalformed, "%s: %q: %v is not a 16-bit zone status", format, field, v)
	}
	return uint16(v), true, nil
}
