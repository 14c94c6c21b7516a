package discover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Tasmota discovery (Tasmota 9.2 and later with SetOption19 0, the
// default; tasmota/tasmota_xdrv_driver/xdrv_12_discovery.ino): retained
// tasmota/discovery/<MAC>/config with the device ("dn" device name, "fn"
// friendly names, "md" module, "sw" version, "t" topic, "ft" full topic,
// "tp" prefixes, "swc" switch modes, -1 where no switch is announced, "swn"
// switch names) and tasmota/discovery/<MAC>/sensors with a snapshot of
// tele/<topic>/SENSOR: {"sn":{"Time":"…","BME280":{"Temperature":…},…},"ver":1}.

type tasmotaNode struct {
	config, sensors []byte
	configTopic     string
	sensorsTopic    string
	configRetained  bool
}

type tasmotaConfig struct {
	IP         string    `json:"ip"`
	DeviceName string    `json:"dn"`
	Friendly   []*string `json:"fn"`
	Hostname   string    `json:"hn"`
	MAC        string    `json:"mac"`
	Module     string    `json:"md"`
	Version    string    `json:"sw"`
	Topic      string    `json:"t"`
	FullTopic  string    `json:"ft"`
	Prefixes   []string  `json:"tp"`
	Switches   []int     `json:"swc"`
	SwitchName []*string `json:"swn"`
}

func (c *Collector) addTasmota(mac, which string, m Message) error {
	n := c.tasmota[mac]
	if n == nil {
		n = &tasmotaNode{}
	}
	empty := len(bytes.TrimSpace(m.Payload)) == 0
	var err error
	if !empty {
		if which == "config" {
			var cfg tasmotaConfig
			if err = json.Unmarshal(m.Payload, &cfg); err == nil && cfg.MAC != "" && !strings.EqualFold(cfg.MAC, mac) {
				err = fmt.Errorf("the payload's MAC %q is not the topic's", cfg.MAC)
			}
		} else {
			var s struct {
				SN map[string]json.RawMessage `json:"sn"`
			}
			err = json.Unmarshal(m.Payload, &s)
		}
	}
	switch {
	case which == "config" && (empty || err != nil):
		n.config, n.configTopic = nil, ""
	case which == "config":
		n.config, n.configTopic, n.configRetained = bytes.Clone(m.Payload), m.Topic, m.Retained
	case empty || err != nil:
		n.sensors, n.sensorsTopic = nil, ""
	default:
		n.sensors, n.sensorsTopic = bytes.Clone(m.Payload), m.Topic
	}
	if n.config == nil && n.sensors == nil {
		delete(c.tasmota, mac)
	} else {
		c.tasmota[mac] = n
	}
	if err != nil {
		return fmt.Errorf("discover: Tasmota discovery on %q: %w", m.Topic, err)
	}
	return nil
}

// tasmotaQuantities are the fields of a sensor object the tasmota decoder
// reads.
var tasmotaQuantities = map[string]reading.Kind{
	"Temperature": reading.KindTemperature,
	"Humidity":    reading.KindHumidity,
	"Pressure":    reading.KindPressure,
}

func (c *Collector) tasmotaCandidates() []candidate {
	var out []candidate
	for _, mac := range slices.Sorted(maps.Keys(c.tasmota)) {
		n := c.tasmota[mac]
		if n.config == nil {
			out = append(out, candidate{via: ViaTasmota, source: n.sensorsTopic, name: mac,
				skipReason: "only its sensors are announced; its config (tasmota/discovery/" + mac + "/config) is missing"})
			continue
		}
		var cfg tasmotaConfig
		_ = json.Unmarshal(n.config, &cfg) // checked in Add
		name := clean(cfg.DeviceName)
		if len(cfg.Friendly) > 0 && cfg.Friendly[0] != nil && (name == "" || strings.EqualFold(name, "Tasmota")) {
			name = clean(*cfg.Friendly[0])
		}
		cd := candidate{via: ViaTasmota, source: n.configTopic, name: cmpOr(name, cfg.Topic), ident: clean(cfg.MAC),
			model: clean(cfg.Module), vendor: "Tasmota", format: formatTasmota, topic: cfg.Topic, ownLogin: true, live: !n.configRetained}
		cd.idBase = cd.name
		if strings.EqualFold(cd.name, "Tasmota") {
			cd.idBase = cfg.Topic // every Tasmota is called Tasmota until renamed
		}
		switch {
		case cfg.Topic == "" || strings.Contains(cfg.Topic, "/") || !validTopic(cfg.Topic):
			cd.skipReason = fmt.Sprintf("topic %q is not usable as a device topic", cfg.Topic)
		case cfg.FullTopic != "" && cfg.FullTopic != "%prefix%/%topic%/":
			cd.skipReason = fmt.Sprintf("custom FullTopic %q: the tasmota format reads the default %%prefix%%/%%topic%%/", cfg.FullTopic)
		case len(cfg.Prefixes) == 3 && (cfg.Prefixes[1] != "stat" || cfg.Prefixes[2] != "tele"):
			cd.skipReason = fmt.Sprintf("custom prefixes %q: the tasmota format reads stat/ and tele/", cfg.Prefixes)
		}
		cd.things, cd.notes = tasmotaThings(cfg, n.sensors)
		if n.sensors == nil && len(cd.things) == 0 {
			cd.untrackedNotes = append(cd.untrackedNotes, "no sensors announced (tasmota/discovery/"+mac+"/sensors)")
		}
		out = append(out, cd)
	}
	return out
}

// tasmotaThings returns the sensors and switch inputs a Tasmota announces.
func tasmotaThings(cfg tasmotaConfig, sensors []byte) ([]Thing, []string) {
	var things []Thing
	var notes []string
	var s struct {
		SN map[string]json.RawMessage `json:"sn"`
	}
	_ = json.Unmarshal(sensors, &s)
	for _, key := range slices.Sorted(maps.Keys(s.SN)) {
		if key == "ESP32" || key == "ESP8266" {
			continue // the chip's own temperature; the decoder skips it
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(s.SN[key], &obj) != nil {
			var state string
			if json.Unmarshal(s.SN[key], &state) == nil && tasmotaSwitchKey(key) && validChannel(key) {
				things = addThing(things, Thing{Channel: key, Kinds: []reading.Kind{reading.KindDoor}, Notes: []string{switchNote}})
			}
			continue
		}
		var kinds []reading.Kind
		for q, k := range tasmotaQuantities {
			if _, ok := obj[q]; ok {
				kinds = append(kinds, k)
			}
		}
		if len(kinds) == 0 {
			continue // ENERGY, ANALOG, …: nothing the gateway tracks
		}
		if !validChannel(key) {
			notes = append(notes, fmt.Sprintf("sensor %q left out: not usable as a channel", clean(key)))
			continue
		}
		things = addThing(things, Thing{Channel: key, Kinds: kinds})
	}
	// Switches announced with SetOption114: the key in SENSOR is the
	// switch name (SwitchText), Switch<n> by default.
	for i, mode := range cfg.Switches {
		if mode < 0 {
			continue
		}
		key := "Switch" + strconv.Itoa(i+1)
		if i < len(cfg.SwitchName) && cfg.SwitchName[i] != nil && *cfg.SwitchName[i] != "" {
			key = *cfg.SwitchName[i]
		}
		if !validChannel(key) {
			notes = append(notes, fmt.Sprintf("switch %q left out: not usable as a channel", clean(key)))
			continue
		}
		things = addThing(things, Thing{Channel: key, Kinds: []reading.Kind{reading.KindDoor}, Notes: []string{switchNote}})
	}
	return things, notes
}

// switchNote goes with every switch input: what it is wired to is not
// announced.
const switchNote = "door guessed for a switch input: a panic button or leak probe needs its kind set by hand, " +
	"and a contact that is closed while the door is shut needs invert: true"

// tasmotaSwitchKey reports whether a SENSOR key is a switch input
// ("Switch1" … "Switch28").
func tasmotaSwitchKey(key string) bool {
	n, ok := strings.CutPrefix(key, "Switch")
	if !ok || n == "" || len(n) > 2 {
		return false
	}
	i, err := strconv.Atoi(n)
	return err == nil && i >= 1 && i <= 28
}
