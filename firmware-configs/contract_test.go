package firmwareconfigs

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// TestGatewayConfigLoads proves that gateway-config.yaml, the devices of
// every firmware config here, is accepted by the gateway's own loader and
// validation, as `shelter-gateway validate` would.
func TestGatewayConfigLoads(t *testing.T) {
	cfg := loadSample(t)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: Validate: %v", sampleConfig, err)
	}
	if len(cfg.Devices) == 0 {
		t.Fatalf("%s: no devices", sampleConfig)
	}
}

// TestNamingConvention checks the ids against the guide's convention:
// <zone>-<kind>[-n], or an id the demo simulator already uses.
func TestNamingConvention(t *testing.T) {
	cfg := loadSample(t)
	// Ids of ingest/sensorsim's sample facility, kept so simulator and
	// hardware can be swapped one for one.
	simulator := []string{"ward-door", "ward-exit-door", "dorm-1-climate", "dorm-2-climate", "dorm-3-climate", "dorm-2-ht", "kitchen-climate", "ward-panic"}
	// Words a device id may use for its kind.
	kindWords := map[reading.Kind][]string{
		reading.KindTemperature: {"temperature", "climate"},
		reading.KindWaterLeak:   {"leak"},
		reading.KindBattery:     {"smoke-battery"},
		reading.KindDoor:        {"window"},
	}
	for _, d := range cfg.Devices {
		if slices.Contains(simulator, d.ID) {
			continue
		}
		words := append([]string{string(d.Kind)}, kindWords[d.Kind]...)
		ok := false
		for _, w := range words {
			re := regexp.MustCompile(`^` + regexp.QuoteMeta(d.Zone) + `-` + regexp.QuoteMeta(w) + `(-[0-9]+)?$`)
			// A secure-ward device may shorten its zone to "ward".
			re2 := regexp.MustCompile(`^ward-` + regexp.QuoteMeta(w) + `(-[0-9]+)?$`)
			if re.MatchString(d.ID) || (d.Zone == "secure-ward" && re2.MatchString(d.ID)) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("device %s (zone %s, kind %s): name it <zone>-<kind>[-n], e.g. %s-%s", d.ID, d.Zone, d.Kind, d.Zone, d.Kind)
		}
	}
}

// TestZigbee2MQTTConfig checks zigbee2mqtt/configuration.yaml: the bridge
// logs in as a broker user allowed on its base topic, availability is on,
// last_seen is ISO 8601, output is JSON (attribute in the fragment that
// shows attribute output), and its friendly names are exactly
// the topics of the zigbee2mqtt devices in the gateway config, named
// <zone>/<kind> after the device's zone.
func TestZigbee2MQTTConfig(t *testing.T) {
	const file = "zigbee2mqtt/configuration.yaml"
	cfg := loadSample(t)
	doc := yamlDoc(t, file)
	base := str(path(doc, "mqtt", "base_topic"))
	if base == "" {
		t.Fatalf("%s: mqtt.base_topic is not set", file)
	}
	if pw := str(path(doc, "mqtt", "password")); !regexp.MustCompile(`^!\S+ \S+$`).MatchString(pw) {
		t.Errorf("%s: mqtt.password must be a reference into secret.yaml ('!secret.yaml password'), not the password", file)
	}
	if !strings.HasPrefix(str(path(doc, "mqtt", "server")), "mqtt") {
		t.Errorf("%s: mqtt.server must be the gateway's broker URL (mqtt:// or mqtts://)", file)
	}
	for _, c := range []struct {
		keys []string
		want string
		why  string
	}{
		{[]string{"availability", "enabled"}, "true", "the gateway's offline alarms need the availability topics"},
		{[]string{"advanced", "last_seen"}, "ISO_8601", "the gateway reads last_seen as an RFC 3339 time"},
		{[]string{"advanced", "output"}, "json", "with one JSON object per device message each reading carries its battery, link quality and last_seen"},
		{[]string{"homeassistant", "enabled"}, "false", "discovery messages are not device data"},
	} {
		if got := str(path(doc, c.keys...)); got != c.want {
			t.Errorf("%s: %s is %q, want %s: %s", file, strings.Join(c.keys, "."), got, c.want, c.why)
		}
	}

	// The attribute output fragment: attribute alone, since
	// attribute_and_json would store every value twice.
	if got := str(path(yamlDoc(t, "zigbee2mqtt/attribute-output.yaml"), "advanced", "output")); got != "attribute" {
		t.Errorf("zigbee2mqtt/attribute-output.yaml: advanced.output is %q, want attribute", got)
	}

	names := map[string]bool{}
	devs := get(doc, "devices")
	for i := 0; devs != nil && i+1 < len(devs.Content); i += 2 {
		names[base+"/"+str(get(devs.Content[i+1], "friendly_name"))] = true
	}
	var topics []string
	for _, d := range cfg.Devices {
		if d.Format != config.FormatZigbee2MQTT {
			continue
		}
		topics = append(topics, d.Topic)
		if !names[d.Topic] {
			t.Errorf("device %s: topic %s is no friendly name in %s", d.ID, d.Topic, file)
		}
		if zone, _, _ := strings.Cut(strings.TrimPrefix(d.Topic, base+"/"), "/"); zone != d.Zone {
			t.Errorf("device %s: friendly name %s does not start with its zone %s", d.ID, strings.TrimPrefix(d.Topic, base+"/"), d.Zone)
		}
	}
	for n := range names {
		if !slices.Contains(topics, n) {
			t.Errorf("%s: %s has no zigbee2mqtt device in %s", file, n, sampleConfig)
		}
	}
	publish := []string{base + "/bridge/state"}
	retain := []string{base + "/bridge/state"}
	for _, tp := range topics {
		publish = append(publish, tp, tp+"/availability")
		retain = append(retain, tp+"/availability")
	}
	checkAccount(t, file, str(path(doc, "mqtt", "user")), config.FormatZigbee2MQTT, "", publish, retain)
}

// tasmotaCommand is one command of a Backlog line.
type tasmotaCommand struct{ name, arg string }

// tasmotaBacklogs returns the Backlog lines of the Tasmota guide, each as
// its commands, and its Rule definitions.
func tasmotaBacklogs(t *testing.T) (backlogs [][]tasmotaCommand, rules []string) {
	t.Helper()
	for _, block := range codeBlocks(readFile(t, "tasmota/README.md")) {
		for _, line := range strings.Split(block, "\n") {
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "Backlog "):
				if strings.Contains(strings.ToUpper(line), " ENDON") {
					t.Errorf("tasmota/README.md: %q: a rule inside Backlog is cut at its first ';'; enter it as its own command", line)
				}
				var cmds []tasmotaCommand
				for _, c := range strings.Split(strings.TrimPrefix(line, "Backlog "), ";") {
					name, arg, _ := strings.Cut(strings.TrimSpace(c), " ")
					cmds = append(cmds, tasmotaCommand{name, strings.TrimSpace(arg)})
				}
				backlogs = append(backlogs, cmds)
			case regexp.MustCompile(`^Rule\d `).MatchString(line) && strings.Contains(strings.ToUpper(line), " ENDON"):
				rules = append(rules, line)
			}
		}
	}
	if len(backlogs) == 0 {
		t.Fatal("tasmota/README.md: no Backlog lines")
	}
	return backlogs, rules
}

var ruleRE = regexp.MustCompile(`(?i)ON (\S+) DO Publish (\S+) (\{.*?\}) ENDON`)

// TestTasmotaCommands checks every Backlog line of the Tasmota guide: the
// Topic is a configured tasmota topic, the MQTT user may publish it, the
// password is a placeholder, telemetry comes often enough for the devices'
// offline_after, the time zone is the facility's, and every switch a device
// reads is in a mode that reports it (15/16, or a rule) with relays
// detached. The rules must publish what the gateway decodes; their payloads
// are among the payload testdata.
func TestTasmotaCommands(t *testing.T) {
	cfg := loadSample(t)
	backlogs, rules := tasmotaBacklogs(t)
	ruleSwitches := map[string]bool{}
	for _, r := range rules {
		ms := ruleRE.FindAllStringSubmatch(r, -1)
		if len(ms) == 0 {
			t.Errorf("tasmota/README.md: rule %q publishes nothing the gateway reads", r)
		}
		for _, m := range ms {
			trigger, topic, payload := m[1], m[2], m[3]
			sw, _, _ := strings.Cut(trigger, "#")
			ruleSwitches[sw] = true
			parts := strings.Split(topic, "/")
			if len(parts) != 3 || parts[0] != "tele" || parts[2] != "SENSOR" || len(devicesOn(cfg, config.FormatTasmota, parts[1])) == 0 {
				t.Errorf("tasmota/README.md: rule publishes on %s: want tele/<a configured tasmota topic>/SENSOR", topic)
			}
			if !json.Valid([]byte(payload)) {
				t.Errorf("tasmota/README.md: rule publishes %s, which is not JSON", payload)
			}
			if !inTestdata(t, "tasmota.yaml", topic, payload) {
				t.Errorf("tasmota/README.md: rule publishes %s on %s: add it to testdata/payloads/tasmota.yaml", payload, topic)
			}
		}
	}
	for _, cmds := range backlogs {
		args := map[string]string{}
		for _, c := range cmds {
			args[strings.ToLower(c.name)] = c.arg
		}
		topic := args["topic"]
		where := "tasmota/README.md: Backlog for " + topic
		for _, k := range []string{"mqtthost", "mqttuser", "mqttpassword", "topic", "teleperiod", "timezone"} {
			if args[k] == "" {
				t.Errorf("%s: no %s", where, k)
			}
		}
		if !isPlaceholder(args["mqttpassword"]) {
			t.Errorf("%s: MqttPassword must be a placeholder like <device-password>", where)
		}
		if _, ok := args["fulltopic"]; ok {
			t.Errorf("%s: leave FullTopic at its default %%prefix%%/%%topic%%/", where)
		}
		devs := devicesOn(cfg, config.FormatTasmota, topic)
		if len(devs) == 0 {
			t.Errorf("%s: no tasmota device in %s has this topic", where, sampleConfig)
			continue
		}
		checkAccount(t, where, args["mqttuser"], config.FormatTasmota, topic,
			[]string{"tele/" + topic + "/SENSOR", "tele/" + topic + "/STATE", "tele/" + topic + "/LWT", "stat/" + topic + "/RESULT"},
			[]string{"tele/" + topic + "/LWT"})
		tele, err := strconv.Atoi(args["teleperiod"])
		if err != nil || tele < 10 {
			t.Errorf("%s: TelePeriod %q: want seconds, at least 10", where, args["teleperiod"])
		}
		if tz, err := strconv.Atoi(args["timezone"]); err != nil || tz != facilityOffset(cfg, t0) {
			t.Errorf("%s: Timezone %s: Tasmota's Time has no offset, so it must be the facility's (%s, UTC%+d)", where, args["timezone"], cfg.Facility.Timezone, facilityOffset(cfg, t0))
		}
		switches := map[string]bool{}
		for _, d := range devs {
			if tele > 0 && time.Duration(tele)*time.Second > d.OfflineAfter.Std()/2 {
				t.Errorf("%s: TelePeriod %ds is more than half of device %s's offline_after %v", where, tele, d.ID, d.OfflineAfter)
			}
			switch {
			case strings.HasPrefix(d.Channel, "Switch"):
				switches[d.Channel] = true
			case d.Channel == "" && d.Kind != reading.KindBattery && isBoolKind(d.Kind):
				switches["Switch1"] = true
			}
		}
		for sw := range switches {
			mode := args["switchmode"+strings.TrimPrefix(sw, "Switch")]
			switch {
			case ruleSwitches[sw]:
			case mode != "15" && mode != "16":
				t.Errorf("%s: %s is read by the gateway: set SwitchMode%s 15 or 16 (reports every change at once, no relay), got %q", where, sw, strings.TrimPrefix(sw, "Switch"), mode)
			}
		}
		if len(switches) > 0 && args["setoption114"] != "1" {
			t.Errorf("%s: set SetOption114 1, so that no input can ever switch a relay", where)
		}
	}
}

func isBoolKind(k reading.Kind) bool {
	tp, ok := k.Known()
	return ok && tp == reading.TypeBool
}

// inTestdata reports whether the payload testdata file holds a message with
// this topic and payload.
func inTestdata(t *testing.T, file, topic, payload string) bool {
	t.Helper()
	sc := loadScenario(t, filepath.Join("testdata", "payloads", file))
	return slices.ContainsFunc(sc.Messages, func(m message) bool { return m.Topic == topic && m.Payload == payload })
}

var curlBodyRE = regexp.MustCompile(`(?s)-d '(.*?)'`)

// TestShellyRPC checks the RPC calls of the Shelly guide: MQTT on with both
// notification kinds, the prefix a configured shelly topic, the user allowed
// to publish it, the password a placeholder; inputs the gateway reads set to
// type switch; and every shelly device's prefix set up somewhere.
func TestShellyRPC(t *testing.T) {
	const file = "shelly/README.md"
	cfg := loadSample(t)
	prefixes := map[string]bool{}
	for _, block := range codeBlocks(readFile(t, file)) {
		prefix := ""
		for _, m := range curlBodyRE.FindAllStringSubmatch(block, -1) {
			var call struct {
				Method string `json:"method"`
				Params struct {
					ID     *int           `json:"id"`
					Config map[string]any `json:"config"`
				} `json:"params"`
			}
			if err := json.Unmarshal([]byte(m[1]), &call); err != nil {
				t.Errorf("%s: %s: %v", file, m[1], err)
				continue
			}
			c := call.Params.Config
			switch call.Method {
			case "MQTT.SetConfig":
				prefix, _ = c["topic_prefix"].(string)
				prefixes[prefix] = true
				where := file + ": MQTT.SetConfig for " + prefix
				for _, k := range []string{"enable", "rpc_ntf", "status_ntf"} {
					if c[k] != true {
						t.Errorf("%s: %s must be true", where, k)
					}
				}
				if pass, _ := c["pass"].(string); !isPlaceholder(pass) {
					t.Errorf("%s: pass must be a placeholder like <device-password>", where)
				}
				if len(devicesOn(cfg, config.FormatShelly, prefix)) == 0 {
					t.Errorf("%s: no shelly device in %s has this topic", where, sampleConfig)
					continue
				}
				user, _ := c["user"].(string)
				checkAccount(t, where, user, config.FormatShelly, prefix,
					[]string{prefix + "/online", prefix + "/status/input:0", prefix + "/events/rpc"}, []string{prefix + "/online"})
			case "Input.SetConfig":
				if call.Params.ID == nil {
					t.Errorf("%s: Input.SetConfig without an id", file)
					continue
				}
				ch := "input:" + strconv.Itoa(*call.Params.ID)
				if c["type"] != "switch" {
					t.Errorf("%s: %s of %s: type must be switch, so that its state is reported", file, ch, prefix)
				}
				if !slices.ContainsFunc(devicesOn(cfg, config.FormatShelly, prefix), func(d config.Device) bool { return d.Channel == ch }) {
					t.Errorf("%s: %s of %s is set up, but no device of %s has that channel", file, ch, prefix, sampleConfig)
				}
			}
		}
	}
	for _, d := range cfg.Devices {
		if d.Format == config.FormatShelly && !prefixes[d.Topic] {
			t.Errorf("device %s: no MQTT.SetConfig in %s sets up its prefix %s", d.ID, file, d.Topic)
		}
	}
}

// TestEveryDeviceHasAFirmwareConfig checks that each device of the gateway
// config belongs to a firmware config of this folder, so the sample and the
// configs cannot drift apart.
func TestEveryDeviceHasAFirmwareConfig(t *testing.T) {
	cfg := loadSample(t)
	esphome := map[string]bool{}
	for _, f := range esphomeConfigs(t) {
		esphome[esphomePrefix(yamlDoc(t, f))] = true
	}
	tasmota := map[string]bool{}
	backlogs, _ := tasmotaBacklogs(t)
	for _, cmds := range backlogs {
		for _, c := range cmds {
			if strings.EqualFold(c.name, "Topic") {
				tasmota[c.arg] = true
			}
		}
	}
	homie := readFile(t, "homie/README.md")
	native := readFile(t, "README.md")
	for _, d := range cfg.Devices {
		var ok bool
		switch d.Format {
		case config.FormatESPHome:
			ok = esphome[d.Topic]
		case config.FormatTasmota:
			ok = tasmota[d.Topic]
		case config.FormatHomie:
			ok = strings.Contains(homie, d.Topic+"/")
		case config.FormatNative:
			ok = strings.Contains(native, d.Topic+" ")
		default:
			ok = true // zigbee2mqtt and shelly: their own tests match both ways
		}
		if !ok {
			t.Errorf("device %s: no %s config in this folder publishes on %s", d.ID, d.Format, d.Topic)
		}
	}
}

var (
	secretValueRE = regexp.MustCompile(`^(!secret \S+|'?!\S+ \S+'?|"<[^"<>]+>"|<[^<>]+>|"?\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}"?)$`)
	yamlPassRE    = regexp.MustCompile(`(?i)^\s*-?\s*([a-z_]*pass(word)?[a-z_]*)\s*:\s*(.+?)\s*(#.*)?$`)
	cmdPassRE     = regexp.MustCompile(`(?i)MqttPassword\s+([^;\s]+)`)
	jsonPassRE    = regexp.MustCompile(`"pass(word)?"\s*:\s*"([^"]*)"`)
	urlCredRE     = regexp.MustCompile(`[a-z]+://[^/\s:@]+:[^/\s@]+@`)
)

// TestNoPlainPasswords scans every file of this folder for a password
// written out: YAML password keys must be !secret references, placeholders
// or bcrypt hashes; Tasmota's MqttPassword and Shelly's pass placeholders;
// URLs carry no credentials.
func TestNoPlainPasswords(t *testing.T) {
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			at := func(what string) { t.Errorf("%s:%d: %s: %s", p, i+1, what, strings.TrimSpace(line)) }
			if m := yamlPassRE.FindStringSubmatch(line); m != nil && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				v := m[3]
				if !secretValueRE.MatchString(v) && !strings.HasPrefix(v, "{") && !strings.HasPrefix(v, "|") {
					at("a password key with a plain value; use !secret, a placeholder or a bcrypt hash")
				}
			}
			if m := cmdPassRE.FindStringSubmatch(line); m != nil && !isPlaceholder(m[1]) {
				at("MqttPassword must be a placeholder")
			}
			for _, m := range jsonPassRE.FindAllStringSubmatch(line, -1) {
				if !isPlaceholder(m[2]) {
					at(`"pass" must be a placeholder`)
				}
			}
			if urlCredRE.MatchString(line) {
				at("credentials in a URL")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var mdLinkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestGuideLinks checks that the relative links of the guides lead to files
// that exist.
func TestGuideLinks(t *testing.T) {
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".md") {
			return err
		}
		for _, m := range mdLinkRE.FindAllStringSubmatch(readFile(t, p), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), target)); err != nil {
				t.Errorf("%s: link %s: %v", p, m[1], err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
