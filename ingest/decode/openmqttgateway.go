package decode

import (
	"encoding/json"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// OpenMQTTGateway decodes the Bluetooth Low Energy sensor readings that
// OpenMQTTGateway (on an ESP32) and Theengs Gateway publish once Theengs
// Decoder has decoded an advertisement
// (https://docs.openmqttgateway.com/use/ble.html,
// https://decoder.theengs.io/devices/devices.html).
//
// The base is the sensor's own topic, "<prefix>/<gateway>/BTtoMQTT/<MAC>"
// with the colons of the MAC removed
// ("home/OpenMQTTGateway/BTtoMQTT/A4C1386E4AE8",
// "home/TheengsGateway/BTtoMQTT/A4C1386E4AE8").
//
//	<base>          one decoded advertisement, a JSON object (fields below)
//	anything else   unknown topic
//
// The gateway's last will, <prefix>/<gateway>/LWT (online / offline), and
// its commands (<prefix>/<gateway>/commands/...) belong to the gateway, not
// to any sensor, and are not under a sensor's base. A BLE sensor keeps no
// connection that could drop, so this decoder never reports availability:
// a sensor is alive while its advertisements arrive, and silent (the
// device's offline_after) when they stop, whether the sensor or the
// gateway failed. A sensor heard by two gateways has one topic per
// gateway; only the configured one is read.
//
// Fields read, as Theengs Decoder names them (its device definitions and
// tests/BLE/test_ble.cpp):
//
//	tempc (°C), else tempf (°F), else tem (°C, the name OpenMQTTGateway
//	  used before Theengs Decoder)     → temperature
//	hum (%)                            → humidity
//	pres, a number (hPa)               → pressure (RuuviTag, Blue Maestro)
//	pres, a boolean                    → motion (Qingping CGPR1 names its
//	                                     presence flag pres)
//	movement, motion (bool)            → motion (SwitchBot motion and
//	                                     contact sensors; releases differ
//	                                     in the name)
//	open (bool, true = open)           → door (Shelly BLU Door/Window,
//	                                     BeeWi door sensor)
//	contact "open" / "closed" / "timeout not closed"
//	                                   → door (SwitchBot contact sensor; the
//	                                     timeout means still open)
//	batt (%)                           → Battery attribute
//	batt_low, lowbatt (bool)           → battery_low
//	rssi (dBm)                         → LinkQuality attribute (below)
//
// Everything else (volt, lux, model, name, servicedata, iBeacon fields
// ...) is ignored, and an advertisement with none of these fields proves
// the sensor alive (a heartbeat). Theengs Decoder decodes no BLE water
// leak or smoke detector, so none is read. A field of the wrong type is
// dropped and reported, the others are kept (the package doc's policy).
// One sensor is one device, so readings carry no channel.
//
// rssi is the signal strength at the gateway in dBm. It is mapped onto the
// link quality scale (0–255) the way Tasmota turns Wi-Fi RSSI into its
// signal quality (WifiGetRssiAsQuality: 2 × (dBm + 100) %, clamped to
// 0–100 %), scaled like the Tasmota decoder's percent: −100 dBm or weaker
// is 0, −70 dBm is 153, −50 dBm or stronger is 255. An rssi outside the
// range a Bluetooth controller reports (−127 to +20 dBm) is dropped.
type OpenMQTTGateway struct{}

const omgFormat = "openmqttgateway"

// Format implements Decoder.
func (OpenMQTTGateway) Format() string { return omgFormat }

// Prefixes implements Decoder.
func (OpenMQTTGateway) Prefixes(base string) []string { return []string{base} }

type omgAdvert struct {
	TempC    json.RawMessage `json:"tempc"`
	TempF    json.RawMessage `json:"tempf"`
	Tem      json.RawMessage `json:"tem"`
	Hum      json.RawMessage `json:"hum"`
	Pres     json.RawMessage `json:"pres"`
	Movement json.RawMessage `json:"movement"`
	Motion   json.RawMessage `json:"motion"`
	Open     json.RawMessage `json:"open"`
	Contact  json.RawMessage `json:"contact"`
	Batt     json.RawMessage `json:"batt"`
	BattLow  json.RawMessage `json:"batt_low"`
	LowBatt  json.RawMessage `json:"lowbatt"`
	RSSI     json.RawMessage `json:"rssi"`
}

// Decode implements Decoder.
func (OpenMQTTGateway) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = omgFormat
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	if _, exact, _ := splitTopic(dev.Base, topic); !exact {
		return Result{}, unknownTopic(format, topic)
	}
	if len(payload) == 0 {
		return Result{}, emptyPayload(format)
	}
	var a omgAdvert
	if err := decodeObject(format, payload, &a); err != nil {
		return Result{}, err
	}
	b := newBuilder(format)

	// The first temperature field that can be read wins; one of the wrong
	// type is reported and the next one tried.
	for _, t := range [...]struct {
		field string
		raw   json.RawMessage
		tempF bool
	}{
		{"tempc", a.TempC, false},
		{"tempf", a.TempF, true},
		{"tem", a.Tem, false},
	} {
		v, ok, err := numField(format, t.field, t.raw)
		if err != nil {
			b.reject(err)
			continue
		}
		if !ok {
			continue
		}
		if t.tempF {
			v = (v - 32) / 1.8
		}
		b.number(reading.KindTemperature, v)
		break
	}
	if v, ok, err := numField(format, "hum", a.Hum); err != nil {
		b.reject(err)
	} else if ok {
		b.number(reading.KindHumidity, v)
	}
	if !absent(a.Pres) && (a.Pres[0] == 't' || a.Pres[0] == 'f') {
		v, _, err := boolField(format, "pres", a.Pres)
		if err != nil {
			b.reject(err)
		} else {
			b.flag(reading.KindMotion, v)
		}
	} else if v, ok, err := numField(format, "pres", a.Pres); err != nil {
		b.reject(err)
	} else if ok {
		b.number(reading.KindPressure, v)
	}

	for _, f := range [...]struct {
		field string
		raw   json.RawMessage
		kind  reading.Kind
	}{
		{"movement", a.Movement, reading.KindMotion},
		{"motion", a.Motion, reading.KindMotion},
		{"open", a.Open, reading.KindDoor},
		{"batt_low", a.BattLow, reading.KindBatteryLow},
		{"lowbatt", a.LowBatt, reading.KindBatteryLow},
	} {
		v, ok, err := boolField(format, f.field, f.raw)
		if err != nil {
			b.reject(err)
		} else if ok {
			b.flag(f.kind, v)
		}
	}
	if s, ok, err := strField(format, "contact", a.Contact); err != nil {
		b.reject(err)
	} else if ok {
		switch s {
		case "open", "timeout not closed":
			b.flag(reading.KindDoor, true)
		case "closed":
			b.flag(reading.KindDoor, false)
		default:
			b.reject(Errorf(ReasonMalformed, "%s: contact %q: want open, closed or timeout not closed", format, s))
		}
	}

	if v, ok, err := numField(format, "batt", a.Batt); err != nil {
		b.attr(err)
	} else if ok {
		b.setBattery(v)
	}
	if v, ok, err := numField(format, "rssi", a.RSSI); err != nil {
		b.attr(err)
	} else if ok {
		setRSSI(&b, format, "rssi", v)
	}
	return b.result()
}

// The signal strengths a Bluetooth controller reports, in dBm (the HCI LE
// Advertising Report's RSSI range); Wi-Fi RSSI falls in it too.
const (
	rssiMin = -127
	rssiMax = 20
)

// setRSSI sets the LinkQuality attribute from a signal strength in dBm (see
// OpenMQTTGateway for the mapping).
func setRSSI(b *builder, format, field string, dBm float64) {
	if err := checkAttribute(format, field, dBm, rssiMin, rssiMax); err != nil {
		b.attr(err)
		return
	}
	pct := min(max(2*(dBm+100), 0), 100)
	b.setLinkQuality(pct * 255 / 100)
}
