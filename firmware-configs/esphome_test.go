package firmwareconfigs

import (
	"cmp"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// esphomeConfigs returns the ESPHome node configs (not the secrets).
func esphomeConfigs(t testing.TB) []string {
	var out []string
	for _, f := range files(t, filepath.Join("esphome", "*.yaml")) {
		if !strings.HasPrefix(filepath.Base(f), "secrets") {
			out = append(out, f)
		}
	}
	return out
}

// esphomePrefix is a node's MQTT topic prefix: topic_prefix, else the
// node name.
func esphomePrefix(doc *yaml.Node) string {
	if p := str(path(doc, "mqtt", "topic_prefix")); p != "" {
		return p
	}
	return str(path(doc, "esphome", "name"))
}

// entity is one sensor or binary sensor of a node.
type entity struct {
	component string // sensor, binary_sensor
	platform  string
	id        string // the config id, for lambdas
	name      string
	// kind is what it measures, from its device_class or its platform;
	// "" for entities that only prove the node alive (uptime).
	kind   reading.Kind
	item   *yaml.Node // the list item (its pin, filters, update_interval)
	entity *yaml.Node // the entity's own mapping (its name, filters)
	// stateTopic is the entity's custom state_topic; "" for the default.
	stateTopic string
}

// topic is the topic the entity's state is published on: its state_topic,
// else <prefix>/<component>/<object id>/state.
func (e entity) topic(prefix string) string {
	if e.stateTopic != "" {
		return e.stateTopic
	}
	return prefix + "/" + e.component + "/" + objectID(e.name) + "/state"
}

// channel is the channel the gateway gives the entity's readings: its
// object id on the default topic; on a custom one the topic below the
// prefix when a device has that channel, else its last level that is not
// state, status or value (the esphome row of the README's sensor formats).
func (e entity) channel(prefix string, byChannel map[string]config.Device) string {
	if e.stateTopic == "" {
		return objectID(e.name)
	}
	rest := strings.TrimPrefix(e.stateTopic, prefix+"/")
	if _, ok := byChannel[rest]; ok {
		return rest
	}
	levels := strings.Split(rest, "/")
	for i := len(levels) - 1; i >= 0; i-- {
		if l := levels[i]; l != "state" && l != "status" && l != "value" {
			return l
		}
	}
	return rest
}

// objectID is ESPHome's object id of an entity name: lower case, spaces as
// underscores, anything but [a-z0-9_-] as an underscore. It is the topic
// level of the entity's state and the gateway's channel.
func objectID(name string) string {
	b := []byte(strings.ToLower(strings.ReplaceAll(name, " ", "_")))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Device classes (Home Assistant's, which ESPHome uses) and the gateway
// kind they mean.
var (
	binaryClassKinds = map[string]reading.Kind{
		"smoke": reading.KindSmoke, "door": reading.KindDoor, "window": reading.KindDoor, "opening": reading.KindDoor,
		"moisture": reading.KindWaterLeak, "motion": reading.KindMotion, "occupancy": reading.KindMotion,
		"tamper": reading.KindTamper, "battery": reading.KindBatteryLow,
	}
	sensorClassKinds = map[string]reading.Kind{
		"temperature": reading.KindTemperature, "humidity": reading.KindHumidity, "pressure": reading.KindPressure,
		"atmospheric_pressure": reading.KindPressure, "battery": reading.KindBattery, "carbon_monoxide": reading.KindCO,
	}
	// platformKinds are the kinds of platforms whose entities need no
	// device_class; "" marks a heartbeat.
	platformKinds = map[string]reading.Kind{"dallas_temp": reading.KindTemperature, "uptime": ""}
	// sampleStates are plausible values to publish for each kind.
	sampleStates = map[reading.Kind]string{
		reading.KindTemperature: "21.5", reading.KindHumidity: "44.7", reading.KindPressure: "1002.5",
		reading.KindBattery: "90", reading.KindCO: "3",
	}
)

// esphomeEntities lists a node's sensors and binary sensors with the kind
// each is meant to report.
func esphomeEntities(t *testing.T, file string, doc *yaml.Node) []entity {
	t.Helper()
	var out []entity
	for _, comp := range []string{"sensor", "binary_sensor"} {
		for _, item := range items(get(doc, comp)) {
			platform := str(get(item, "platform"))
			add := func(n *yaml.Node, defClass string) {
				e := entity{component: comp, platform: platform, id: str(get(n, "id")), name: str(get(n, "name")), item: item, entity: n,
					stateTopic: str(get(n, "state_topic"))}
				class := str(get(n, "device_class"))
				if class == "" {
					class = defClass
				}
				var ok bool
				switch {
				case comp == "binary_sensor":
					e.kind, ok = binaryClassKinds[class]
				case class != "":
					e.kind, ok = sensorClassKinds[class]
				default:
					e.kind, ok = platformKinds[platform]
				}
				if !ok {
					t.Errorf("%s: %s %q (platform %s): say what it measures with a device_class the gateway knows", file, comp, e.name, platform)
				}
				out = append(out, e)
			}
			if get(item, "name") != nil {
				add(item, "")
			}
			// Multi-value platforms (sht3xd, dht, bme280_i2c) nest one
			// entity per quantity, whose key is its device class.
			for _, q := range []string{"temperature", "humidity", "pressure"} {
				if n := get(item, q); n != nil && n.Kind == yaml.MappingNode {
					add(n, q)
				}
			}
		}
	}
	return out
}

// espDuration parses an ESPHome time ("50ms", "10s", "5min", "1h").
func espDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"ms", time.Millisecond}, {"min", time.Minute}, {"s", time.Second}, {"h", time.Hour}, {"d", 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil {
				return 0, fmt.Errorf("time %q: %w", s, err)
			}
			return time.Duration(v * float64(u.d)), nil
		}
	}
	return 0, fmt.Errorf("time %q: want a unit (ms, s, min, h, d)", s)
}

// silence is the longest an entity may go without publishing: its
// update interval unless its filters hold values back (delta alone: for
// ever; throttle or heartbeat: their period).
func silence(t *testing.T, e entity) time.Duration {
	t.Helper()
	every := time.Minute // ESPHome's default update_interval
	if s := str(get(e.item, "update_interval")); s != "" {
		d, err := espDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		every = d
	}
	var bound time.Duration
	holds := false
	var walk func(fs []*yaml.Node)
	walk = func(fs []*yaml.Node) {
		for _, f := range fs {
			for _, k := range []string{"throttle", "heartbeat", "throttle_average"} {
				if s := str(get(f, k)); s != "" {
					d, err := espDuration(s)
					if err != nil {
						t.Fatal(err)
					}
					bound = max(bound, d+every)
				}
			}
			if get(f, "delta") != nil {
				holds = true
			}
			walk(items(get(f, "or")))
		}
	}
	walk(items(get(e.entity, "filters")))
	switch {
	case bound > 0:
		return bound
	case holds:
		return time.Duration(1<<63 - 1)
	}
	return every
}

var gpioRE = regexp.MustCompile(`^GPIO(\d+)$`)

// TestESPHomeConfigs checks each ESPHome node config against what the
// gateway relies on: credentials from secrets.yaml, MQTT only under the
// node's topic prefix, birth and will as the decoder reads them (with the
// status_topic and payloads of the node's gateway devices), every entity
// named (or, on a custom state_topic, placed) so that its state decodes
// to the kind it measures and lands on a configured device, a heartbeat that keeps the devices within
// their offline_after, and inputs on pins that can carry them.
func TestESPHomeConfigs(t *testing.T) {
	cfg := loadSample(t)
	esp := decode.All()[config.FormatESPHome]
	for _, file := range esphomeConfigs(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			doc := yamlDoc(t, file)
			mqtt := get(doc, "mqtt")
			if mqtt == nil {
				t.Fatalf("%s: no mqtt section", file)
			}
			if get(doc, "api") != nil {
				t.Errorf("%s: has api: with MQTT and no Home Assistant the node reboots every 15 minutes (ESPHome MQTT docs)", file)
			}
			for _, k := range [][]string{{"wifi", "ssid"}, {"wifi", "password"}, {"mqtt", "broker"}, {"mqtt", "password"}} {
				if _, ok := isSecret(path(doc, k...)); !ok {
					t.Errorf("%s: %s must come from secrets.yaml (!secret)", file, strings.Join(k, "."))
				}
			}
			for _, ota := range items(get(doc, "ota")) {
				if p := get(ota, "password"); p != nil {
					if _, ok := isSecret(p); !ok {
						t.Errorf("%s: ota password must come from secrets.yaml (!secret)", file)
					}
				}
			}
			for _, k := range []string{"discovery", "discover_ip"} {
				if str(get(mqtt, k)) != "false" {
					t.Errorf("%s: mqtt.%s must be false: it publishes outside the topic prefix, which the gateway refuses", file, k)
				}
			}

			prefix := esphomePrefix(doc)
			devs := devicesOn(cfg, config.FormatESPHome, prefix)
			if len(devs) == 0 {
				t.Fatalf("%s: no esphome device in %s has topic %q", file, sampleConfig, prefix)
			}
			// The node's birth and will as its gateway devices set them
			// (on any one of them), else ESPHome's defaults.
			var st decode.Status
			for _, d := range devs {
				st.Topic = cmp.Or(d.StatusTopic, st.Topic)
				st.Online = cmp.Or(d.OnlinePayload, st.Online)
				st.Offline = cmp.Or(d.OfflinePayload, st.Offline)
			}
			status := cmp.Or(st.Topic, prefix+"/status")
			checkAccount(t, file, str(get(mqtt, "username")), config.FormatESPHome, prefix,
				[]string{status, prefix + "/sensor/x/state", prefix + "/binary_sensor/x/state"}, []string{status})

			// Birth, will and shutdown messages, when set, must be what the
			// decoder reads as the node's availability.
			for key, online := range map[string]bool{"birth_message": true, "will_message": false, "shutdown_message": false} {
				n := get(mqtt, key)
				if n == nil {
					continue
				}
				topic, payload := str(get(n, "topic")), str(get(n, "payload"))
				res, err := esp.Decode(decode.Device{ID: "x", Base: prefix, Status: st}, topic, []byte(payload))
				if err != nil || len(res.Observations) != 1 || res.Observations[0].Kind != reading.KindAvailability || res.Observations[0].Value.Bool != online {
					t.Errorf("%s: mqtt.%s %q on %s: the gateway reads it as %+v, %v; want availability %t (payload %s/%s on %s: set the devices' status_topic, online_payload and offline_payload to the node's)",
						file, key, payload, topic, res.Observations, err, online, cmp.Or(st.Online, "online"), cmp.Or(st.Offline, "offline"), status)
				}
			}
			if lt := get(mqtt, "log_topic"); lt != nil && lt.Tag != "!!null" {
				topic := str(lt)
				if lt.Kind == yaml.MappingNode {
					topic = str(get(lt, "topic"))
				}
				if topic != "" && !strings.HasPrefix(topic, prefix+"/") {
					t.Errorf("%s: log_topic %q is outside the topic prefix", file, topic)
				}
			}

			minOffline := time.Duration(1<<63 - 1)
			byChannel := map[string]config.Device{}
			var def *config.Device
			for i, d := range devs {
				minOffline = min(minOffline, d.OfflineAfter.Std())
				if d.Channel == "" {
					def = &devs[i]
				} else {
					byChannel[d.Channel] = d
				}
			}

			// Each entity's object id must decode, through the pipeline,
			// to the kind its device class says, on the right device.
			ents := esphomeEntities(t, file, doc)
			g := newGateway(t)
			nodeSilence := time.Duration(1<<63 - 1)
			for i, e := range ents {
				ch := e.channel(prefix, byChannel)
				if e.name == "" {
					t.Errorf("%s: %s of platform %s has no name, so no object id", file, e.component, e.platform)
					continue
				}
				if e.component == "sensor" {
					nodeSilence = min(nodeSilence, silence(t, e))
				}
				state := "ON"
				if e.component == "sensor" {
					state = sampleStates[e.kind]
					if state == "" {
						state = "1"
					}
				}
				topic := e.topic(prefix)
				if !strings.HasPrefix(topic, prefix+"/") {
					t.Errorf("%s: %s %q: state_topic %s is outside the topic prefix, where the gateway does not hear it", file, e.component, e.name, topic)
					continue
				}
				got, dead := g.handle(t, topic, state, t0.Add(time.Duration(i)*time.Second))
				for _, dl := range dead {
					t.Errorf("%s: %s %q: %s on %s is dead-lettered (%s): %s", file, e.component, e.name, state, topic, dl.Reason, dl.Error)
				}
				if e.kind == "" {
					if len(got) != 0 {
						t.Errorf("%s: %s %q should be a heartbeat, the gateway stores %s", file, e.component, e.name, describeAll(got))
					}
					continue
				}
				owner, claimed := byChannel[ch]
				if !claimed {
					if def == nil {
						t.Errorf("%s: %s %q (channel %q): no device of %s takes it: add one with this channel", file, e.component, e.name, ch, prefix)
						continue
					}
					owner = *def
				} else if owner.Kind != e.kind {
					t.Errorf("%s: %s %q measures %s, its device %s is of kind %s", file, e.component, e.name, e.kind, owner.ID, owner.Kind)
				}
				if len(got) != 1 || got[0].Kind != e.kind || got[0].Device != owner.ID || got[0].Channel != ch {
					t.Errorf("%s: %s %q (channel %s, %s): stored %s, want one %s reading of %s on channel %s",
						file, e.component, e.name, ch, e.kind, describeAll(got), e.kind, owner.ID, ch)
				}
			}
			if nodeSilence > minOffline/2 {
				t.Errorf("%s: the node may be silent for %v, more than half the shortest offline_after of its devices (%v): add a heartbeat", file, nodeSilence, minOffline)
			}

			checkRepublish(t, file, doc, prefix, ents, byChannel)
			checkPins(t, file, doc, ents)
		})
	}
}

// checkRepublish checks the interval that republishes binary sensors: each
// binary sensor with a device of its own is republished often enough for
// that device's offline_after, and every republished topic is the state
// topic of the entity whose state its payload reads.
func checkRepublish(t *testing.T, file string, doc *yaml.Node, prefix string, ents []entity, byChannel map[string]config.Device) {
	t.Helper()
	every := map[string]time.Duration{} // state topic → republish period
	for _, iv := range items(get(doc, "interval")) {
		period, err := espDuration(str(get(iv, "interval")))
		if err != nil {
			t.Fatalf("%s: interval: %v", file, err)
		}
		for _, action := range items(get(iv, "then")) {
			pub := get(action, "mqtt.publish")
			if pub == nil {
				continue
			}
			topic := str(get(pub, "topic"))
			var target *entity
			for i := range ents {
				if ents[i].topic(prefix) == topic {
					target = &ents[i]
				}
			}
			if target == nil {
				t.Errorf("%s: interval republishes %s, which is no entity's state topic", file, topic)
				continue
			}
			if p := get(pub, "payload"); target.id == "" || p == nil || p.Tag != "!lambda" || !strings.Contains(p.Value, "id("+target.id+")") {
				t.Errorf("%s: interval republishes %s with a payload that does not read id(%s)", file, topic, target.id)
			}
			if str(get(pub, "retain")) != "true" {
				t.Errorf("%s: interval republishes %s without retain, unlike the entity's own state", file, topic)
			}
			every[topic] = period
		}
	}
	for _, e := range ents {
		if e.component != "binary_sensor" {
			continue
		}
		d, own := byChannel[e.channel(prefix, byChannel)]
		if !own {
			continue
		}
		topic := e.topic(prefix)
		p, ok := every[topic]
		switch {
		case !ok:
			t.Errorf("%s: binary sensor %q publishes only on change: republish %s in an interval so that device %s is seen alive", file, e.name, topic, d.ID)
		case p > d.OfflineAfter.Std()/2:
			t.Errorf("%s: %s is republished every %v, more than half of device %s's offline_after %v", file, topic, p, d.ID, d.OfflineAfter)
		}
	}
}

// checkPins checks the ESP32 pins of inputs: a contact needs a pin with an
// internal pull-up (GPIO34–39 have none) that is not a boot strapping pin
// (a closed contact on GPIO0, 2 or 12 at power-up stops the board from
// booting), and the ADC reads only on ADC1 (GPIO32–39) while Wi-Fi is on.
func checkPins(t *testing.T, file string, doc *yaml.Node, ents []entity) {
	t.Helper()
	if get(doc, "esp32") == nil {
		return
	}
	pinOf := func(n *yaml.Node) (int, *yaml.Node) {
		p := get(n, "pin")
		num := str(p)
		if p != nil && p.Kind == yaml.MappingNode {
			num = str(get(p, "number"))
		}
		m := gpioRE.FindStringSubmatch(num)
		if m == nil {
			return -1, p
		}
		v, _ := strconv.Atoi(m[1])
		return v, p
	}
	for _, e := range ents {
		pin, p := pinOf(e.item)
		switch {
		case e.platform == "gpio":
			if pin < 0 {
				t.Errorf("%s: %q: pin must be written GPIOnn", file, e.name)
				continue
			}
			if str(path(p, "mode", "pullup")) == "true" && pin >= 34 && pin <= 39 {
				t.Errorf("%s: %q on GPIO%d: GPIO34–39 have no internal pull-up; the input would float", file, e.name, pin)
			}
			if pin == 0 || pin == 2 || pin == 12 {
				t.Errorf("%s: %q on GPIO%d, a boot strapping pin: a closed contact at power-up stops the board from booting", file, e.name, pin)
			}
		case e.platform == "adc":
			if pin < 32 || pin > 39 {
				t.Errorf("%s: %q on GPIO%d: on the ESP32 only ADC1 (GPIO32–39) reads while Wi-Fi is on", file, e.name, pin)
			}
		}
	}
	if ow := items(get(doc, "one_wire")); len(ow) > 0 {
		for _, bus := range ow {
			if pin, _ := pinOf(bus); pin >= 34 && pin <= 39 {
				t.Errorf("%s: 1-Wire bus on GPIO%d, an input-only pin: the bus needs to drive the line", file, pin)
			}
		}
	}
}

// TestESPHomeSecretsExample checks secrets.example.yaml: it has every key
// the configs read with !secret, no other, and placeholders only.
func TestESPHomeSecretsExample(t *testing.T) {
	const example = "esphome/secrets.example.yaml"
	doc := yamlDoc(t, example)
	have := map[string]bool{}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i].Value, doc.Content[i+1]
		have[k] = true
		if v.Kind != yaml.ScalarNode || !isPlaceholder(v.Value) {
			t.Errorf("%s: %s must be a placeholder like \"<wifi password>\", never a real value", example, k)
		}
	}
	used := map[string]bool{}
	for _, file := range esphomeConfigs(t) {
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			if k, ok := isSecret(n); ok {
				used[k] = true
				if !have[k] {
					t.Errorf("%s: !secret %s is missing from %s", file, k, example)
				}
			}
			for _, c := range n.Content {
				walk(c)
			}
		}
		walk(yamlDoc(t, file))
	}
	for k := range have {
		if !used[k] {
			t.Errorf("%s: %s is not used by any config", example, k)
		}
	}
}
