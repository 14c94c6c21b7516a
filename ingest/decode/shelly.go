package decode

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Shelly decodes Shelly Gen2/Gen3/Gen4 devices speaking RPC over MQTT
// (https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Mqtt).
//
// The base is the device's MQTT topic_prefix (default: the device id, e.g.
// "shellyplusht-b8d61a8b17cc").
//
//	<base>/online              true / false (retained; false is the LWT)
//	<base>/status/<component>  full status of one component (status_ntf)
//	<base>/events/rpc          JSON-RPC notifications (rpc_ntf):
//	                           NotifyStatus, NotifyFullStatus, NotifyEvent
//	<base>/debug/log           debug log → heartbeat
//	<base>/rpc, /command       requests to the device → ignored
//	anything else              unknown topic
//
// Components read (status keys "type:id"):
//
//	temperature:N  {"tC":19.8,"tF":67.6}     → temperature (tC; tF if only it)
//	humidity:N     {"rh":42.2}               → humidity
//	devicepower:N  {"battery":{"percent":100}} → Battery attribute, unless
//	               "external":{"present":true}: a Plus H&T on USB power
//	               reports percent 0, which is no battery at all
//	smoke:N        {"alarm":false,"mute":false} → smoke = alarm
//	flood:N        {"alarm":false,"mute":false} → water_leak = alarm
//	input:N        {"state":true}            → the channel's configured kind,
//	                                           else the device's, else door;
//	                                           invert applies
//
// Every other component (sys, wifi, cloud, mqtt, ble, switch ...) proves the
// device alive and nothing more. Each reading's channel is its component
// key ("temperature:0", "input:1"). input.state is true when the input is
// active (contact closed); an analog input's state is null and is skipped.
// A temperature or humidity component whose value is null (tC or rh) could
// not read its sensor: a sensor_fault of that channel.
//
// NotifyStatus carries only changed keys, and a component object may lack
// a field (temperature:0 without tC): missing and null fields are skipped,
// never guessed; the gateway's last-known state does the overlaying. params.ts
// (Unix seconds, UTC) is the Time. NotifyEvent is a heartbeat: the Smoke
// docs name webhook events (smoke.alarm, smoke.alarm_off, smoke.alarm_test)
// but not their NotifyEvent form, and the alarm also arrives as a smoke:N
// status change, so we do not guess event names.
//
// devicepower alone (its own status topic) is a battery reading; next to
// other readings (NotifyFullStatus of an H&T) it is their Battery attribute.
type Shelly struct{}

const shellyFormat = "shelly"

// Format implements Decoder.
func (Shelly) Format() string { return shellyFormat }

// Prefixes implements Decoder.
func (Shelly) Prefixes(base string) []string { return []string{base} }

// Decode implements Decoder.
func (Shelly) Decode(dev Device, topic string, payload []byte) (Result, error) {
	const format = shellyFormat
	if err := checkUTF8(format, payload); err != nil {
		return Result{}, err
	}
	rest, exact, ok := splitTopic(dev.Base, topic)
	if !ok || exact {
		return Result{}, unknownTopic(format, topic)
	}
	component, isStatus := strings.CutPrefix(rest, "status/")
	switch {
	case isCommandTopic(rest, "rpc", "command"):
		return ignored()
	case rest == "online", rest == "events/rpc", isStatus && isShellyComponent(component):
	case rest == "debug/log":
		return heartbeat()
	default:
		return Result{}, unknownTopic(format, topic)
	}
	if len(payload) == 0 {
		return Result{}, emptyPayload(format)
	}
	switch rest {
	case "online":
		return availabilityWord(format, "online", text(payload), "true", "false")
	case "events/rpc":
		return decodeShellyRPC(dev, payload)
	}
	b := newBuilder(format)
	b.reject(shellyComponent(&b, dev, component, payload))
	return b.result()
}

// isShellyComponent reports whether s is a component key: "type" or
// "type:id", lower-case letters, digits and underscores in the type.
func isShellyComponent(s string) bool {
	typ, id, hasID := strings.Cut(s, ":")
	if typ == "" || (hasID && id == "") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

type shellyNotification struct {
	Method json.RawMessage            `json:"method"`
	Params map[string]json.RawMessage `json:"params"`
}

func decodeShellyRPC(dev Device, payload []byte) (Result, error) {
	const format = shellyFormat
	var n shellyNotification
	if err := decodeObject(format, payload, &n); err != nil {
		return Result{}, err
	}
	method, _, err := strField(format, "method", n.Method)
	if err != nil {
		return Result{}, err
	}
	b := newBuilder(format)
	if ts, ok, err := numField(format, "params.ts", n.Params["ts"]); err != nil {
		b.reject(err)
	} else if ok {
		b.setTime(epochTime(format, "params.ts", ts, 1))
	}
	switch method {
	case "NotifyStatus", "NotifyFullStatus":
	default:
		// NotifyEvent, or anything else a device sends on its event topic.
		return b.result()
	}
	// Sorted so that errors do not depend on map order.
	keys := make([]string, 0, len(n.Params))
	for k := range n.Params {
		if k != "ts" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.reject(shellyComponent(&b, dev, k, n.Params[k]))
	}
	return b.result()
}

type shellyStatus struct {
	TC       json.RawMessage `json:"tC"`
	TF       json.RawMessage `json:"tF"`
	RH       json.RawMessage `json:"rh"`
	Battery  json.RawMessage `json:"battery"`
	External json.RawMessage `json:"external"`
	Alarm    json.RawMessage `json:"alarm"`
	State    json.RawMessage `json:"state"`
}

// shellyComponent adds what one component's (partial) status says.
func shellyComponent(b *builder, dev Device, key string, raw []byte) error {
	const format = shellyFormat
	typ, _, _ := strings.Cut(key, ":")
	switch typ {
	case "temperature", "humidity", "devicepower", "smoke", "flood", "input":
	default:
		return nil
	}
	if absent(raw) {
		return nil
	}
	if raw[0] != '{' {
		return wrongType(format, key, "object", raw)
	}
	var s shellyStatus
	if err := json.Unmarshal(raw, &s); err != nil {
		return jsonError(format, err)
	}
	field := func(name string) string { return key + "." + name }
	switch typ {
	case "temperature":
		if string(s.TC) == "null" {
			b.fault(key)
		} else if c, ok, err := numField(format, field("tC"), s.TC); err != nil {
			return err
		} else if ok {
			b.numberOn(key, reading.KindTemperature, c)
		} else if f, ok, err := numField(format, field("tF"), s.TF); err != nil {
			return err
		} else if ok {
			b.numberOn(key, reading.KindTemperature, (f-32)/1.8)
		}
	case "humidity":
		if string(s.RH) == "null" {
			b.fault(key)
		} else if v, ok, err := numField(format, field("rh"), s.RH); err != nil {
			return err
		} else if ok {
			b.numberOn(key, reading.KindHumidity, v)
		}
	case "devicepower":
		if absent(s.Battery) || shellyExternalPower(s.External) {
			return nil
		}
		if s.Battery[0] != '{' {
			b.attr(wrongType(format, field("battery"), "object", s.Battery))
			return nil
		}
		var bat struct {
			Percent json.RawMessage `json:"percent"`
		}
		if err := json.Unmarshal(s.Battery, &bat); err != nil {
			b.attr(jsonError(format, err))
		} else if v, ok, err := numField(format, field("battery.percent"), bat.Percent); err != nil {
			b.attr(err)
		} else if ok {
			b.setBattery(v)
		}
	case "smoke", "flood":
		kind := reading.KindSmoke
		if typ == "flood" {
			kind = reading.KindWaterLeak
		}
		if v, ok, err := boolField(format, field("alarm"), s.Alarm); err != nil {
			return err
		} else if ok {
			b.flagOn(key, kind, v)
		}
	case "input":
		if v, ok, err := boolField(format, field("state"), s.State); err != nil {
			return err
		} else if ok {
			kind, invert := dev.input(key)
			b.flagOn(key, kind, v != invert)
		}
	}
	return nil
}

// shellyExternalPower reports whether a devicepower status says the device
// runs on external (USB) power: its battery figure then means nothing.
func shellyExternalPower(raw json.RawMessage) bool {
	if absent(raw) || raw[0] != '{' {
		return false
	}
	var ext struct {
		Present json.RawMessage `json:"present"`
	}
	if json.Unmarshal(raw, &ext) != nil {
		return false
	}
	return string(ext.Present) == "true"
}
