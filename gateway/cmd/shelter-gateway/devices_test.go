package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// Announcements as the firmware publishes them (the same sources as
// ingest/discover's tests cite): a Zigbee2MQTT bridge/devices list
// (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html),
// ESPHome's Home Assistant discovery (esphome/components/mqtt/
// mqtt_component.cpp), Tasmota's own discovery
// (tasmota/tasmota_xdrv_driver/xdrv_12_discovery.ino) and a Homie 5
// $description (https://homieiot.github.io/specification/).
var (
	bridgeAnnouncements = [][2]string{
		{"zigbee2mqtt/bridge/devices", `[
 {"ieee_address":"0x00124b00120144ae","type":"Coordinator","supported":false,"friendly_name":"Coordinator","definition":null},
 {"ieee_address":"0x00124b0000000001","type":"EndDevice","supported":true,"friendly_name":"kitchen/smoke",
  "definition":{"model":"HS1SA","vendor":"HEIMAN","description":"Smoke detector","exposes":[
   {"type":"binary","name":"smoke","property":"smoke","value_on":true,"value_off":false,"access":1},
   {"type":"binary","name":"battery_low","property":"battery_low","value_on":true,"value_off":false,"access":1},
   {"type":"numeric","name":"battery","property":"battery","unit":"%","access":1}]}},
 {"ieee_address":"0x00124b0000000004","type":"EndDevice","supported":true,"friendly_name":"secure-ward/door",
  "definition":{"model":"SNZB-04","vendor":"SONOFF","description":"Contact sensor","exposes":[
   {"type":"binary","name":"contact","property":"contact","value_on":false,"value_off":true,"access":1},
   {"type":"numeric","name":"battery","property":"battery","unit":"%","access":1}]}},
 {"ieee_address":"0x00124b0000000005","type":"EndDevice","supported":true,"friendly_name":"washroom/leak",
  "definition":{"model":"SNZB-05","vendor":"SONOFF","description":"Water leak sensor","exposes":[
   {"type":"binary","name":"water_leak","property":"water_leak","value_on":true,"value_off":false,"access":1},
   {"type":"binary","name":"battery_low","property":"battery_low","value_on":true,"value_off":false,"access":1}]}}
]`},
	}
	nodeAnnouncements = [][2]string{
		{"homeassistant/binary_sensor/dorm-2f-node/dorm_2f_smoke/config",
			`{"dev_cla":"smoke","name":"Dorm 2F Smoke","stat_t":"shelter/dorm-2f-node/binary_sensor/dorm_2f_smoke/state","avty_t":"shelter/dorm-2f-node/status","uniq_id":"ESPbinary_sensordorm_2f_smoke","dev":{"ids":"a4cf12b3c4d5","name":"Dorm 2F node","sw":"2024.6.1 (config hash 0x1a2b3c4d)","mdl":"esp32dev","mf":"Espressif"}}`},
		{"homeassistant/binary_sensor/dorm-2f-node/dorm_2f_door/config",
			`{"dev_cla":"door","name":"Dorm 2F Door","stat_t":"shelter/dorm-2f-node/binary_sensor/dorm_2f_door/state","avty_t":"shelter/dorm-2f-node/status","uniq_id":"ESPbinary_sensordorm_2f_door","dev":{"ids":"a4cf12b3c4d5","name":"Dorm 2F node","sw":"2024.6.1 (config hash 0x1a2b3c4d)","mdl":"esp32dev","mf":"Espressif"}}`},
		{"tasmota/discovery/A4CF12D4E5F6/config",
			`{"ip":"192.168.10.31","dn":"Kitchen board","fn":["Tasmota",null,null,null,null,null,null,null],"hn":"kitchen-board-5878","mac":"A4CF12D4E5F6","md":"Generic","ty":0,"if":0,"ofln":"Offline","onln":"Online","state":["OFF","ON","TOGGLE","HOLD"],"sw":"13.4.0","t":"tasmota_D4E5F6","ft":"%prefix%/%topic%/","tp":["cmnd","stat","tele"],"rl":[0,0,0,0,0,0,0,0],"swc":[15,-1,-1,-1,-1,-1,-1,-1],"swn":["Switch1",null,null,null,null,null,null,null],"btn":[0,0,0,0],"so":{"4":0,"11":0,"13":0,"17":0,"20":0,"30":0,"68":0,"73":0,"82":0,"114":1,"117":0},"lk":0,"lt_st":0,"sho":[],"ver":1}`},
		{"tasmota/discovery/A4CF12D4E5F6/sensors",
			`{"sn":{"Time":"2026-11-30T03:00:00","Switch1":"OFF","DS18B20-1":{"Id":"01144A0CB2AA","Temperature":4.1},"DS18B20-2":{"Id":"01144A0D31FF","Temperature":-18.2},"TempUnit":"C"},"ver":1}`},
		{"homie/5/dorm-5-climate/$description",
			`{"homie":"5.0","version":3,"name":"Dorm 5 climate","nodes":{"climate":{"name":"Climate","properties":{"temperature":{"name":"Temperature","datatype":"float","unit":"°C"}}}}}`},
	}
)

// wantEntries are the entries the announcements above make, with the
// kitchen smoke detector already configured.
var wantEntries = []string{
	"  - id: secure-ward-door\n    name: secure-ward/door\n    kind: door\n    zone: \"\"  # TODO: set the zone\n    format: zigbee2mqtt\n    topic: zigbee2mqtt/secure-ward/door\n",
	"  - id: washroom-leak\n    name: washroom/leak\n    kind: water_leak\n",
	"  - id: dorm-2f-node-smoke\n    name: Dorm 2F Smoke\n    kind: smoke\n    zone: \"\"  # TODO: set the zone\n    format: esphome\n    topic: shelter/dorm-2f-node\n    channel: dorm_2f_smoke\n",
	"  - id: dorm-2f-node-door\n",
	"  - id: kitchen-board-ds18b20-1\n    name: Kitchen board DS18B20-1\n    kind: temperature\n    zone: \"\"  # TODO: set the zone\n    format: tasmota\n    topic: tasmota_D4E5F6\n    channel: DS18B20-1\n",
	"  - id: kitchen-board-ds18b20-2\n",
	"  - id: kitchen-board-switch1\n",
	"  - id: dorm-5-climate\n    name: Dorm 5 climate\n    kind: temperature\n    zone: \"\"  # TODO: set the zone\n    format: homie\n    topic: homie/5/dorm-5-climate\n",
}

// publishRetained publishes each announcement retained, as the firmware
// does, with a real MQTT client, and waits for each to be acknowledged.
func publishRetained(t *testing.T, url, user, password string, msgs [][2]string) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID("announcer-" + user).SetUsername(user).SetPassword(password).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s as %q: %v", url, user, tok.Error())
	}
	defer c.Disconnect(250)
	for _, m := range msgs {
		if tok := c.Publish(m[0], 1, true, m[1]); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", m[0], tok.Error())
		}
	}
}

// hashOf is a cheap bcrypt hash for test users.
func hashOf(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// configuredSmoke is the device the test configs already have.
const configuredSmoke = "  - {id: kitchen-smoke-1, name: Kitchen smoke, kind: smoke, zone: kitchen, format: zigbee2mqtt, topic: zigbee2mqtt/kitchen/smoke}\n"

// gatewayConfig is a config whose devices list ends the file, so that
// proposed entries can be appended to it.
func gatewayConfig(broker string) string {
	return `facility: {id: onboarding-test, name: Onboarding Test, timezone: Asia/Shanghai}
zones: [{id: kitchen}, {id: dorm-2}]
store: {dir: store}
alarms: {dir: alarms}
http: {listen: "127.0.0.1:0"}
` + broker + "devices:\n" + configuredSmoke
}

// entriesOf returns the list items of the devices: list printed by
// devices discover or import.
func entriesOf(t *testing.T, out string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "\ndevices:\n")
	if !ok {
		t.Fatalf("no devices: list in the output:\n%s", out)
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(rest, "\n") {
		if !strings.HasPrefix(l, "  ") {
			break
		}
		b.WriteString(l)
	}
	return b.String()
}

// validateWith appends the proposed entries to the config at cfgPath,
// first as printed (validate must refuse: no zones), then with every zone
// set, and runs shelter-gateway validate on both.
func validateWith(t *testing.T, cfgPath, cfgText, out string) {
	t.Helper()
	entries := entriesOf(t, out)
	writeFile(t, cfgPath, cfgText+entries)
	_, errOut, err := runCLI(t, "", "validate", "--config", cfgPath)
	if err == nil || !strings.Contains(errOut, ".zone: required") {
		t.Fatalf("validate accepted the proposals with empty zones (%v):\n%s", err, errOut)
	}
	filled := strings.ReplaceAll(entries, `zone: ""  # TODO: set the zone`, "zone: dorm-2")
	writeFile(t, cfgPath, cfgText+filled)
	if stdout, errOut, err := runCLI(t, "", "validate", "--config", cfgPath); err != nil || !strings.Contains(stdout, ": ok") {
		t.Fatalf("validate refused the proposals with zones set: %v\n%s\nconfig:\n%s", err, errOut, cfgText+filled)
	}
}

func checkEntries(t *testing.T, out string) {
	t.Helper()
	for _, want := range wantEntries {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks\n%s\nin:\n%s", want, out)
		}
	}
	if strings.Contains(entriesOf(t, out), "zigbee2mqtt/kitchen/smoke") {
		t.Errorf("the configured kitchen smoke detector is proposed again:\n%s", out)
	}
	if !strings.Contains(out, "#   kitchen-smoke-1: zigbee2mqtt zigbee2mqtt/kitchen/smoke") {
		t.Errorf("the output does not say kitchen-smoke-1 is already configured:\n%s", out)
	}
}

// Mosquitto as the facility's broker (external mode): devices discover
// takes the broker from the config, hears the retained announcements and
// proposes entries that validate once their zones are set.
func TestDevicesDiscoverWithMosquitto(t *testing.T) {
	m := testpeer.StartMosquitto(t, "")
	publishRetained(t, m.URL(), "bridge", "", bridgeAnnouncements)
	publishRetained(t, m.URL(), "nodes", "", nodeAnnouncements)

	dir := t.TempDir()
	cfgText := gatewayConfig(fmt.Sprintf("broker: {mode: external, external: {url: %q}}\n", m.URL()))
	cfgPath := writeFile(t, filepath.Join(dir, "gw.yaml"), cfgText)
	out, errOut, err := runCLI(t, "", "devices", "discover", "--seconds", "2", "--config", cfgPath)
	if err != nil {
		t.Fatalf("devices discover: %v\n%s", err, errOut)
	}
	checkEntries(t, out)
	for _, want := range []string{"8 entries to add, 1 already configured", "skipped"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("summary lacks %q:\n%s", want, errOut)
		}
	}
	before, _ := os.ReadFile(cfgPath)
	if string(before) != cfgText {
		t.Fatal("devices discover changed the config file")
	}
	validateWith(t, cfgPath, cfgText, out)
}

// The gateway's embedded broker: the Zigbee2MQTT bridge and the Wi-Fi
// nodes announce through users allowed to retain there, and the
// installer's user, allowed only to subscribe to the discovery topics,
// hears them.
func TestDevicesDiscoverWithEmbeddedBroker(t *testing.T) {
	dir := t.TempDir()
	broker := fmt.Sprintf(`broker:
  embedded:
    listen: "127.0.0.1:0"
    users:
      - username: z2m-bridge
        password_hash: %q
        publish: ["zigbee2mqtt/#"]
        subscribe: ["zigbee2mqtt/#"]
        retain: ["zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge/devices", "zigbee2mqtt/+/availability"]
      - username: onboarding
        password_hash: %q
        publish: ["homeassistant/#", "tasmota/discovery/#", "homie/5/+/$description"]
        retain: ["homeassistant/#", "tasmota/discovery/#", "homie/5/+/$description"]
      - username: installer
        password_hash: %q
        subscribe: ["+/bridge/devices", "homeassistant/#", "tasmota/discovery/#", "homie/5/+/$description"]
      - username: panel
        password_hash: %q
        subscribe: ["shelterwatch/#"]
      - username: east-bridge
        password_hash: %q
        publish: ["z2m-east/#"]
`, hashOf(t, "bridge-password"), hashOf(t, "onboarding-password"), hashOf(t, "installer-password"), hashOf(t, "panel-password"),
		hashOf(t, "east-password"))
	cfgText := gatewayConfig(broker)
	cfgPath := writeFile(t, filepath.Join(dir, "gw.yaml"), cfgText)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a := runInProcess(t, cfg)
	url := "tcp://" + a.BrokerAddr()
	publishRetained(t, url, "z2m-bridge", "bridge-password", bridgeAnnouncements)
	publishRetained(t, url, "onboarding", "onboarding-password", nodeAnnouncements)

	pwFile := writeFile(t, filepath.Join(dir, "installer.pw"), "installer-password\n")
	out, errOut, err := runCLI(t, "", "devices", "discover", "--seconds", "2", "--config", cfgPath,
		"--broker", url, "--username", "installer", "--password-file", pwFile)
	if err != nil {
		t.Fatalf("devices discover: %v\n%s", err, errOut)
	}
	checkEntries(t, out)
	validateWith(t, cfgPath, cfgText, out)

	t.Run("a bridge that may not retain is not heard later", func(t *testing.T) {
		// east-bridge has no retain filters: its bridge/devices is passed
		// on as a plain publish and not kept for later subscribers.
		publishRetained(t, url, "east-bridge", "east-password", [][2]string{{"z2m-east/bridge/devices", bridgeAnnouncements[0][1]}})
		out, _, err := runCLI(t, "", "devices", "discover", "--seconds", "1", "--broker", url, "--username", "installer", "--password-file", pwFile)
		if err != nil || strings.Contains(out, "z2m-east/") || !strings.Contains(out, "zigbee2mqtt/secure-ward/door") {
			t.Fatalf("devices discover: %v\n%s", err, out)
		}
	})
	t.Run("a user without subscribe rights is told so", func(t *testing.T) {
		pw := writeFile(t, filepath.Join(dir, "panel.pw"), "panel-password")
		_, _, err := runCLI(t, "", "devices", "discover", "--seconds", "1", "--config", cfgPath,
			"--broker", url, "--username", "panel", "--password-file", pw)
		if err == nil || !strings.Contains(err.Error(), "refused every subscription") {
			t.Fatalf("devices discover as a user without rights: %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		pw := writeFile(t, filepath.Join(dir, "wrong.pw"), "not-the-password")
		_, _, err := runCLI(t, "", "devices", "discover", "--seconds", "1", "--broker", url, "--username", "installer", "--password-file", pw)
		if err == nil || !strings.Contains(err.Error(), "connect to "+url) {
			t.Fatalf("devices discover with a wrong password: %v", err)
		}
	})
}

func TestDevicesImportZigbee2MQTT(t *testing.T) {
	dir := t.TempDir()
	cfgText := gatewayConfig("")
	cfgPath := writeFile(t, filepath.Join(dir, "gw.yaml"), cfgText)
	file := writeFile(t, filepath.Join(dir, "devices.json"), bridgeAnnouncements[0][1])
	out, errOut, err := runCLI(t, "", "devices", "import", "--from", "zigbee2mqtt", file, "--config", cfgPath)
	if err != nil {
		t.Fatalf("devices import: %v\n%s", err, errOut)
	}
	for _, want := range wantEntries[:2] {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks\n%s\nin:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "2 entries to add, 1 already configured") {
		t.Errorf("summary: %s", errOut)
	}
	validateWith(t, cfgPath, cfgText, out)

	// From stdin, under another base topic, without a config.
	out, _, err = runCLI(t, bridgeAnnouncements[0][1], "devices", "import", "--from", "zigbee2mqtt", "--base-topic", "z2m-east", "-")
	if err != nil || !strings.Contains(out, "topic: z2m-east/kitchen/smoke") {
		t.Errorf("import from stdin: %v\n%s", err, out)
	}

	for _, args := range [][]string{
		{"devices", "import", "--from", "tasmota", file},
		{"devices", "import", "--from", "zigbee2mqtt", "--base-topic", "a/b", file},
		{"devices", "import", "--from", "zigbee2mqtt", filepath.Join(dir, "missing.json")},
	} {
		if _, _, err := runCLI(t, "", args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	bad := writeFile(t, filepath.Join(dir, "bad.json"), `{"not": "a list"}`)
	out, errOut, err = runCLI(t, "", "devices", "import", "--from", "zigbee2mqtt", bad)
	if err != nil || !strings.Contains(out, "devices: []") || !strings.Contains(errOut, "unreadable") {
		t.Errorf("a file that is no device list: %v\n%s%s", err, out, errOut)
	}
}

func TestDevicesDiscoverNeedsABroker(t *testing.T) {
	dir := t.TempDir()
	embedded := writeFile(t, filepath.Join(dir, "gw.yaml"), gatewayConfig("broker: {embedded: {listen: \"127.0.0.1:0\"}}\n"))
	fixed := writeFile(t, filepath.Join(dir, "fixed.yaml"), gatewayConfig("broker: {embedded: {listen: \"0.0.0.0:1883\"}}\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--seconds", "1"}, "give --broker, or --config"},
		{[]string{"--seconds", "0", "--broker", "tcp://127.0.0.1:1"}, "--seconds"},
		{[]string{"--seconds", "1", "--config", embedded}, "give --broker with its address"},
		{[]string{"--seconds", "1", "--config", fixed}, "give --username and --password-file"},
	} {
		_, _, err := runCLI(t, "", append([]string{"devices", "discover"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	cfg, err := config.Load(fixed)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := discoverBroker(cfg, discoverFlags{username: "installer"})
	if err != nil || conn.url != "tcp://127.0.0.1:1883" {
		t.Errorf("embedded broker on 0.0.0.0:1883: %+v, %v; want tcp://127.0.0.1:1883", conn, err)
	}
}
