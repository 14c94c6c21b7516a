package discover

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// collect feeds topic/payload pairs to a new Collector and fails on any
// error.
func collect(t *testing.T, pairs ...string) *Collector {
	t.Helper()
	c := NewCollector()
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := c.Add(Message{Topic: pairs[i], Payload: []byte(pairs[i+1]), Retained: true}); err != nil {
			t.Fatalf("Add(%s): %v", pairs[i], err)
		}
	}
	return c
}

// row is a proposal as a test expects it.
type row struct {
	id, kind, format, topic, channel, configured string
	reports                                      string // kinds, comma-separated
}

func rowsOf(ps []Proposal) []row {
	var out []row
	for _, p := range ps {
		var rep []string
		for _, k := range p.Reports {
			rep = append(rep, string(k))
		}
		out = append(out, row{id: p.ID, kind: string(p.Kind), format: p.Format, topic: p.Topic, channel: p.Channel,
			configured: p.Configured, reports: strings.Join(rep, ",")})
	}
	return out
}

func checkRows(t *testing.T, got []Proposal, want []row) {
	t.Helper()
	g := rowsOf(got)
	if !slices.Equal(g, want) {
		t.Errorf("proposals:\n got  %+v\n want %+v", g, want)
	}
}

func skippedReasons(s []Skipped) map[string]string {
	out := map[string]string{}
	for _, x := range s {
		out[x.Name] = x.Reason
	}
	return out
}

func TestZigbee2MQTTDevices(t *testing.T) {
	c := collect(t, "zigbee2mqtt/bridge/devices", z2mDevices)
	res := c.Propose(Options{})
	checkRows(t, res.Proposals, []row{
		{id: "dorm-1-climate", kind: "temperature", format: "zigbee2mqtt", topic: "zigbee2mqtt/dorm-1/climate", reports: "temperature,humidity,pressure,battery"},
		{id: "kitchen-smoke", kind: "smoke", format: "zigbee2mqtt", topic: "zigbee2mqtt/kitchen/smoke", reports: "smoke,battery_low,battery"},
		{id: "secure-ward-door", kind: "door", format: "zigbee2mqtt", topic: "zigbee2mqtt/secure-ward/door", reports: "door,battery_low,battery"},
		// Its temperature is the chip's: the kind stays water_leak and
		// temperature is not claimed.
		{id: "washroom-leak", kind: "water_leak", format: "zigbee2mqtt", topic: "zigbee2mqtt/washroom/leak", reports: "water_leak,battery"},
		// A Chinese friendly name gives no letters for an id: the IEEE
		// address does.
		{id: "0x00124b0000000006", kind: "panic", format: "zigbee2mqtt", topic: "zigbee2mqtt/入口紧急按钮", reports: "panic,battery"},
	})
	p := res.Proposals[0]
	if p.Name != "dorm-1/climate" || p.Model != "WSDCGQ11LM" || p.Vendor != "Aqara" || p.Ident != "0x00158d0000000003" ||
		p.Via != ViaZigbee2MQTT || p.Source != "zigbee2mqtt/bridge/devices" || p.OwnLogin {
		t.Errorf("first proposal's details: %+v", p)
	}
	if leak := res.Proposals[3]; !slices.ContainsFunc(leak.Notes, func(n string) bool { return strings.Contains(n, "chip") }) {
		t.Errorf("the leak sensor's notes %q do not say its temperature is the chip's", leak.Notes)
	}
	skipped := skippedReasons(res.Skipped)
	for name, want := range map[string]string{
		"my_plug":   "nothing the gateway tracks",
		"my_sensor": "not supported",
		"old/door":  "disabled",
	} {
		if !strings.Contains(skipped[name], want) {
			t.Errorf("%s: skipped for %q, want a reason with %q", name, skipped[name], want)
		}
	}
	if _, ok := skipped["Coordinator"]; ok || len(res.Skipped) != 3 {
		t.Errorf("skipped %+v: want the plug, the unsupported and the disabled device, not the coordinator", res.Skipped)
	}
}

func TestHomeAssistantESPHome(t *testing.T) {
	c := collect(t, esphomeSmokeTopic, esphomeSmoke, esphomeDoorTopic, esphomeDoor, esphomeWifiTopic, esphomeWifi,
		esphomeTildeTopic, esphomeTilde)
	res := c.Propose(Options{})
	// The dormitory node reports two things: one entry each, with the
	// object id as channel. The office node reports one: no channel.
	checkRows(t, res.Proposals, []row{
		{id: "office-temp", kind: "temperature", format: "esphome", topic: "office-temp", reports: "temperature"},
		{id: "dorm-2f-node-door", kind: "door", format: "esphome", topic: "shelter/dorm-2f-node", channel: "dorm_2f_door", reports: "door"},
		{id: "dorm-2f-node-smoke", kind: "smoke", format: "esphome", topic: "shelter/dorm-2f-node", channel: "dorm_2f_smoke", reports: "smoke"},
	})
	for _, p := range res.Proposals {
		if !p.OwnLogin || p.Via != ViaHomeAssistant {
			t.Errorf("%s: OwnLogin %t, via %q; an ESPHome node logs in itself", p.ID, p.OwnLogin, p.Via)
		}
	}
	if p := res.Proposals[2]; p.Name != "Dorm 2F Smoke" || p.Model != "esp32dev" || p.Vendor != "Espressif" || p.Ident != "a4cf12b3c4d5" {
		t.Errorf("smoke entry: %+v", p)
	}
}

func TestHomeAssistantTasmota(t *testing.T) {
	c := collect(t, tasmotaHATempTopic, tasmotaHATemp, tasmotaHAHumTopic, tasmotaHAHum,
		tasmotaHAStateTopic, tasmotaHAState, tasmotaHAChipTopic, tasmotaHAChip)
	res := c.Propose(Options{})
	// One BME280 is one thing (the chip's ESP32 temperature and the
	// status sensor are not): one entry, no channel.
	checkRows(t, res.Proposals, []row{
		{id: "dorm-2-climate", kind: "temperature", format: "tasmota", topic: "tasmota_A1B2C3", reports: "temperature,humidity"},
	})
	if p := res.Proposals[0]; p.Name != "Dorm 2 climate" || p.Vendor != "Tasmota" {
		t.Errorf("entry: %+v", p)
	}
}

func TestHomeAssistantZigbee2MQTT(t *testing.T) {
	c := collect(t, z2mHATempTopic, z2mHATemp, z2mHAHumTopic, z2mHAHum, z2mHAChipTopic, z2mHAChip)
	res := c.Propose(Options{})
	checkRows(t, res.Proposals, []row{
		{id: "weather_sensor", kind: "temperature", format: "zigbee2mqtt", topic: "zigbee2mqtt/weather_sensor", reports: "temperature,humidity"},
	})
	if p := res.Proposals[0]; p.OwnLogin || p.Vendor != "Aqara" {
		t.Errorf("entry: %+v", p)
	}

	// With the bridge's own list as well, the device is proposed once,
	// from the list.
	c = collect(t, z2mHATempTopic, z2mHATemp, "zigbee2mqtt/bridge/devices",
		`[{"ieee_address":"0x0017880104e45522","type":"EndDevice","supported":true,"friendly_name":"weather_sensor",
		  "definition":{"model":"WSDCGQ11LM","vendor":"Aqara","description":"Temperature, humidity and pressure sensor",
		  "exposes":[{"type":"numeric","name":"temperature","property":"temperature","unit":"°C","access":1}]}}]`)
	res = c.Propose(Options{})
	if len(res.Proposals) != 1 || res.Proposals[0].Via != ViaZigbee2MQTT {
		t.Errorf("proposals %+v: want one, from the bridge's list", rowsOf(res.Proposals))
	}
}

func TestHomeAssistantDeviceDiscoveryOfUnknownFirmware(t *testing.T) {
	res := collect(t, haDeviceTopic, haDevicePayload).Propose(Options{})
	if len(res.Proposals) != 0 {
		t.Fatalf("proposals %+v for a device the gateway has no format for", rowsOf(res.Proposals))
	}
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, `"sensorBedroom/state"`) || res.Skipped[0].Name != "Kitchen" {
		t.Errorf("skipped %+v: want the Kitchen device, naming its state topic", res.Skipped)
	}
}

func TestTasmotaDiscovery(t *testing.T) {
	c := collect(t,
		tasmotaBasicConfigTopic, tasmotaBasicConfig, tasmotaBasicSensorsTopic, tasmotaBasicSensors,
		tasmotaBoardConfigTopic, tasmotaBoardConfig, tasmotaBoardSensorsTopic, tasmotaBoardSensors,
		tasmotaClimateConfigTopic, tasmotaClimateConfig, tasmotaClimateSensorsTopic, tasmotaClimateSensors)
	res := c.Propose(Options{})
	checkRows(t, res.Proposals, []row{
		// A device still called "Tasmota" gets its topic as id.
		{id: "tasmota_a1b2c3", kind: "temperature", format: "tasmota", topic: "tasmota_A1B2C3", reports: "temperature,humidity,pressure"},
		// Two thermometers and a switch: one entry each, the sensor key
		// as channel; the ESP32's own temperature is not one.
		{id: "kitchen-board-ds18b20-1", kind: "temperature", format: "tasmota", topic: "tasmota_D4E5F6", channel: "DS18B20-1", reports: "temperature"},
		{id: "kitchen-board-ds18b20-2", kind: "temperature", format: "tasmota", topic: "tasmota_D4E5F6", channel: "DS18B20-2", reports: "temperature"},
		{id: "kitchen-board-switch1", kind: "door", format: "tasmota", topic: "tasmota_D4E5F6", channel: "Switch1", reports: "door"},
	})
	if p := res.Proposals[1]; p.Name != "Kitchen board DS18B20-1" || p.Model != "Generic" || p.Vendor != "Tasmota" ||
		p.Ident != "A4CF12D4E5F6" || !p.OwnLogin || len(p.Notes) != 0 {
		t.Errorf("board entry: %+v", p)
	}
	// What a switch input is wired to is not announced: the installer
	// must check it.
	if p := res.Proposals[3]; !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "door guessed") }) {
		t.Errorf("switch entry's notes: %q", p.Notes)
	}
	if r := skippedReasons(res.Skipped)["x3"]; !strings.Contains(r, "nothing the gateway tracks") {
		t.Errorf("the Sonoff Basic relay: skipped for %q", r)
	}

	t.Run("custom FullTopic", func(t *testing.T) {
		cfg := strings.Replace(tasmotaClimateConfig, `"ft":"%prefix%/%topic%/"`, `"ft":"%topic%/%prefix%/"`, 1)
		res := collect(t, tasmotaClimateConfigTopic, cfg, tasmotaClimateSensorsTopic, tasmotaClimateSensors).Propose(Options{})
		if len(res.Proposals) != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "FullTopic") {
			t.Errorf("proposals %+v, skipped %+v: want it skipped for its FullTopic", rowsOf(res.Proposals), res.Skipped)
		}
	})
	t.Run("sensors without config", func(t *testing.T) {
		res := collect(t, tasmotaClimateSensorsTopic, tasmotaClimateSensors).Propose(Options{})
		if len(res.Proposals) != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "config") {
			t.Errorf("proposals %+v, skipped %+v", rowsOf(res.Proposals), res.Skipped)
		}
	})
	t.Run("MAC of the payload differs from the topic's", func(t *testing.T) {
		c := NewCollector()
		err := c.Add(Message{Topic: "tasmota/discovery/000000000000/config", Payload: []byte(tasmotaClimateConfig)})
		if err == nil || !strings.Contains(err.Error(), "MAC") {
			t.Errorf("Add: %v, want a MAC mismatch", err)
		}
	})
}

func TestHomie(t *testing.T) {
	res := collect(t, homieThermostatTopic, homieThermostat, homieBoardTopic, homieBoard).Propose(Options{})
	checkRows(t, res.Proposals, []row{
		{id: "dorm-5-sensors-climate-humidity", kind: "humidity", format: "homie", topic: "homie/5/dorm-5-sensors", channel: "climate/humidity", reports: "humidity"},
		{id: "dorm-5-sensors-climate-temperature", kind: "temperature", format: "homie", topic: "homie/5/dorm-5-sensors", channel: "climate/temperature", reports: "temperature"},
		{id: "dorm-5-sensors-door-open", kind: "door", format: "homie", topic: "homie/5/dorm-5-sensors", channel: "door/open", reports: "door"},
	})
	// The thermostat's only property is settable: an actuator, nothing
	// to track.
	if r := skippedReasons(res.Skipped)["My device"]; !strings.Contains(r, "nothing the gateway tracks") {
		t.Errorf("thermostat: skipped for %q", r)
	}
}

func TestConfiguredDevicesAreMarked(t *testing.T) {
	c := collect(t, "zigbee2mqtt/bridge/devices", z2mDevices,
		tasmotaBoardConfigTopic, tasmotaBoardConfig, tasmotaBoardSensorsTopic, tasmotaBoardSensors,
		esphomeSmokeTopic, esphomeSmoke, esphomeDoorTopic, esphomeDoor)
	res := c.Propose(Options{
		Configured: []Configured{
			{ID: "kitchen-smoke-1", Format: "zigbee2mqtt", Topic: "zigbee2mqtt/kitchen/smoke"},
			// A board configured without channels covers all of it.
			{ID: "kitchen-board", Format: "tasmota", Topic: "tasmota_D4E5F6"},
			// One channel of a board covers that channel only.
			{ID: "dorm-2f-smoke", Format: "esphome", Topic: "shelter/dorm-2f-node", Channel: "dorm_2f_smoke"},
			// The same topic in another format is a conflict, not a match.
			{ID: "dorm-1-native", Format: "native", Topic: "zigbee2mqtt/dorm-1/climate"},
		},
		// The bridge's MQTT user: no device may take its name.
		Reserved: []string{"washroom-leak"},
	})
	byTopic := map[string][]row{}
	for _, r := range rowsOf(res.Proposals) {
		byTopic[r.topic+"#"+r.channel] = append(byTopic[r.topic+"#"+r.channel], r)
	}
	for key, want := range map[string]string{
		"zigbee2mqtt/kitchen/smoke#":         "kitchen-smoke-1",
		"tasmota_D4E5F6#DS18B20-1":           "kitchen-board",
		"tasmota_D4E5F6#Switch1":             "kitchen-board",
		"shelter/dorm-2f-node#dorm_2f_smoke": "dorm-2f-smoke",
		"shelter/dorm-2f-node#dorm_2f_door":  "",
		"zigbee2mqtt/secure-ward/door#":      "",
	} {
		rs := byTopic[key]
		if len(rs) != 1 || rs[0].configured != want || (want != "" && rs[0].id != want) {
			t.Errorf("%s: %+v, want configured %q", key, rs, want)
		}
	}
	if rs := byTopic["zigbee2mqtt/washroom/leak#"]; len(rs) != 1 || rs[0].id != "washroom-leak-2" {
		t.Errorf("washroom leak: %+v, want id washroom-leak-2 (washroom-leak is reserved)", rs)
	}
	if _, ok := byTopic["zigbee2mqtt/dorm-1/climate#"]; ok {
		t.Error("dorm-1/climate proposed although its topic is a native device's")
	}
	if r := skippedReasons(res.Skipped)["dorm-1/climate"]; !strings.Contains(r, "dorm-1-native") {
		t.Errorf("dorm-1/climate: skipped for %q, want it to name the device holding its topic", r)
	}
	for _, p := range res.New() {
		if p.Configured != "" {
			t.Errorf("New() returned configured %s", p.ID)
		}
	}
	if n := len(res.New()); n != len(res.Proposals)-5 {
		t.Errorf("New() has %d of %d proposals, want all but the 5 configured", n, len(res.Proposals))
	}
}

func TestIDsAreUniqueAndValid(t *testing.T) {
	devs := `[{"ieee_address":"0x01","type":"EndDevice","friendly_name":"Hall/Smoke","definition":{"exposes":[{"type":"binary","property":"smoke","access":1}]}},
	          {"ieee_address":"0x02","type":"EndDevice","friendly_name":"hall smoke","definition":{"exposes":[{"type":"binary","property":"smoke","access":1}]}},
	          {"ieee_address":"0x03","type":"EndDevice","friendly_name":"` + strings.Repeat("long-name-", 10) + `","definition":{"exposes":[{"type":"binary","property":"smoke","access":1}]}},
	          {"ieee_address":"0x04","type":"EndDevice","friendly_name":"` + strings.Repeat("long-name-", 10) + `/2","definition":{"exposes":[{"type":"binary","property":"smoke","access":1}]}}]`
	res := collect(t, "zigbee2mqtt/bridge/devices", devs).Propose(Options{Reserved: []string{"hall-smoke"}})
	var ids []string
	for _, p := range res.Proposals {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	want := []string{"hall-smoke-2", "hall-smoke-3"}
	for _, id := range ids {
		if !idRE.MatchString(id) || len(id) > maxIDLen {
			t.Errorf("id %q is not a valid device id", id)
		}
	}
	if len(ids) != 4 || !slices.Equal(ids[:2], want) || ids[2] == ids[3] {
		t.Errorf("ids %q: want %q and two distinct long ones", ids, want)
	}
}

func TestEmptyPayloadForgets(t *testing.T) {
	c := collect(t, esphomeSmokeTopic, esphomeSmoke, "zigbee2mqtt/bridge/devices", z2mDevices,
		tasmotaClimateConfigTopic, tasmotaClimateConfig, tasmotaClimateSensorsTopic, tasmotaClimateSensors,
		homieBoardTopic, homieBoard)
	for _, topic := range []string{esphomeSmokeTopic, "zigbee2mqtt/bridge/devices", tasmotaClimateConfigTopic, tasmotaClimateSensorsTopic, homieBoardTopic} {
		if err := c.Add(Message{Topic: topic, Retained: true}); err != nil {
			t.Fatalf("Add(%s, empty): %v", topic, err)
		}
	}
	if res := c.Propose(Options{}); len(res.Proposals)+len(res.Skipped) != 0 {
		t.Errorf("after clearing every topic: %+v, %+v", rowsOf(res.Proposals), res.Skipped)
	}
}

func TestBadPayloads(t *testing.T) {
	// A device discovery whose entity's state topic is ESPHome's.
	const deviceTopic = "homeassistant/device/hall-node/config"
	const device = `{"dev":{"ids":"a4cf12000002","name":"hall-node"},"stat_t":"hall-node/sensor/temperature/state","avty_t":"hall-node/status",` +
		`"cmps":{"temperature":{"p":"sensor","dev_cla":"temperature","unit_of_meas":"°C"}}}`
	for _, tc := range []struct{ topic, payload, want string }{
		{"zigbee2mqtt/bridge/devices", `{"not":"a list"}`, "zigbee2mqtt device list"},
		{"zigbee2mqtt/bridge/devices", `[{`, "zigbee2mqtt device list"},
		{esphomeSmokeTopic, `ON`, "Home Assistant discovery"},
		{esphomeSmokeTopic, `null`, "not a JSON object"},
		{deviceTopic, `{"cmps":[1,2]}`, "components"},
		{tasmotaClimateConfigTopic, `[]`, "Tasmota discovery"},
		{tasmotaClimateSensorsTopic, `{"sn":[]}`, "Tasmota discovery"},
		{homieBoardTopic, `{"nodes":"none"}`, "Homie description"},
	} {
		t.Run(tc.topic+" "+tc.payload, func(t *testing.T) {
			c := collect(t, esphomeSmokeTopic, esphomeSmoke, "zigbee2mqtt/bridge/devices", z2mDevices, deviceTopic, device,
				tasmotaClimateConfigTopic, tasmotaClimateConfig, tasmotaClimateSensorsTopic, tasmotaClimateSensors, homieBoardTopic, homieBoard)
			before := len(c.Propose(Options{}).Proposals)
			err := c.Add(Message{Topic: tc.topic, Payload: []byte(tc.payload)})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.topic) {
				t.Fatalf("Add: %v, want an error with %q and the topic", err, tc.want)
			}
			// What the topic announced before is forgotten; the rest stays.
			if after := len(c.Propose(Options{}).Proposals); after >= before || after == 0 {
				t.Errorf("%d proposals before, %d after: want fewer, but some", before, after)
			}
		})
	}
	if err := NewCollector().Add(Message{Topic: "zigbee2mqtt/kitchen/smoke", Payload: []byte(`{"smoke":false}`)}); !errors.Is(err, ErrNotDiscovery) {
		t.Errorf("a state topic: %v, want ErrNotDiscovery", err)
	}
}

func TestRelevantMatchesFilters(t *testing.T) {
	for topic, want := range map[string]bool{
		"zigbee2mqtt/bridge/devices":                       true,
		"z2m-east/bridge/devices":                          true,
		"zigbee2mqtt/bridge/state":                         false,
		"a/b/bridge/devices":                               false,
		"homeassistant/sensor/x/config":                    true,
		"homeassistant/sensor/node/x/config":               true,
		"homeassistant/status":                             false,
		"homeassistant/sensor/x/state":                     false,
		"tasmota/discovery/A4CF12A1B2C3/config":            true,
		"tasmota/discovery/A4CF12A1B2C3/sensors":           true,
		"tasmota/discovery/A4CF12A1B2C3/other":             false,
		"homie/5/dorm-5-sensors/$description":              true,
		"homie/5/dorm-5-sensors/$state":                    false,
		"homie/5/dorm-5-sensors/climate/temperature":       false,
		"homie/dorm/$description":                          false,
		string([]byte{'h', 'o', 'm', 'e', 0xff, '/', 'x'}): false,
	} {
		if got := Relevant(topic); got != want {
			t.Errorf("Relevant(%q) = %t, want %t", topic, got, want)
		}
	}
	if len(Filters()) != 4 {
		t.Errorf("Filters() = %q", Filters())
	}
}

func TestKindPriority(t *testing.T) {
	for _, tc := range []struct {
		in   []reading.Kind
		want reading.Kind
	}{
		{[]reading.Kind{"battery", "temperature", "water_leak"}, "water_leak"},
		{[]reading.Kind{"battery", "tamper"}, "tamper"},
		{[]reading.Kind{"humidity", "door", "smoke"}, "smoke"},
		{[]reading.Kind{"motion", "temperature"}, "motion"},
	} {
		if got := sortKinds(tc.in); len(got) == 0 || got[0] != tc.want {
			t.Errorf("sortKinds(%q) = %q, want %s first", tc.in, got, tc.want)
		}
	}
}

func TestChannelID(t *testing.T) {
	for _, tc := range []struct{ board, channel, want string }{
		{"Dorm 2F node", "dorm_2f_smoke", "dorm-2f-node-smoke"},
		{"Kitchen board", "DS18B20-2", "kitchen-board-ds18b20-2"},
		{"Dorm 5 sensors", "climate/temperature", "dorm-5-sensors-climate-temperature"},
		{"door", "door", "door-door"},
		{"", "Switch1", "switch1"},
		{"厨房", "Switch1", "switch1"},
	} {
		if got := channelID(tc.board, tc.channel); got != tc.want {
			t.Errorf("channelID(%q, %q) = %q, want %q", tc.board, tc.channel, got, tc.want)
		}
	}
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// checkResult holds for every result: ids valid and unique, topics and
// channels usable in the gateway config, a known kind first in Reports.
func checkResult(res Result) error {
	seen := map[string]bool{}
	for _, p := range res.Proposals {
		switch {
		case !idRE.MatchString(p.ID) || len(p.ID) > maxIDLen:
			return fmt.Errorf("invalid id %q", p.ID)
		case p.Configured == "" && seen[p.ID]:
			return fmt.Errorf("id %q twice", p.ID)
		case !validTopic(p.Topic):
			return fmt.Errorf("%s: invalid topic %q", p.ID, p.Topic)
		case p.Channel != "" && !validChannel(p.Channel):
			return fmt.Errorf("%s: invalid channel %q", p.ID, p.Channel)
		case len(p.Reports) == 0 || p.Reports[0] != p.Kind:
			return fmt.Errorf("%s: kind %q, reports %q", p.ID, p.Kind, p.Reports)
		}
		if _, ok := p.Kind.Known(); !ok {
			return fmt.Errorf("%s: unknown kind %q", p.ID, p.Kind)
		}
		seen[p.ID] = true
	}
	return nil
}

func TestResultsAreValid(t *testing.T) {
	c := collect(t, "zigbee2mqtt/bridge/devices", z2mDevices, esphomeSmokeTopic, esphomeSmoke, esphomeDoorTopic, esphomeDoor,
		esphomeTildeTopic, esphomeTilde, tasmotaHATempTopic, tasmotaHATemp, z2mHATempTopic, z2mHATemp,
		tasmotaBoardConfigTopic, tasmotaBoardConfig, tasmotaBoardSensorsTopic, tasmotaBoardSensors, homieBoardTopic, homieBoard)
	res := c.Propose(Options{})
	if err := checkResult(res); err != nil {
		t.Fatal(err)
	}
	if len(res.Proposals) < 14 {
		t.Errorf("%d proposals from every kind of announcement", len(res.Proposals))
	}
}

func TestNotRetainedAnnouncementsAreFlagged(t *testing.T) {
	c := NewCollector()
	for _, m := range []Message{
		{Topic: "zigbee2mqtt/bridge/devices", Payload: []byte(z2mDevices), Retained: false},
		{Topic: esphomeTildeTopic, Payload: []byte(esphomeTilde), Retained: true},
	} {
		if err := c.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range c.Propose(Options{}).Proposals {
		live := slices.Contains(p.Notes, liveNote)
		if live != (p.Format == "zigbee2mqtt") {
			t.Errorf("%s: notes %q; only what was announced without retain should say so", p.ID, p.Notes)
		}
	}
}

// A device the bridge lists as disabled stays out even when its Home
// Assistant discovery is still retained.
func TestSkippedDeviceIsNotProposedFromAnotherAnnouncement(t *testing.T) {
	const ha = `{"device_class":"door","value_template":"{{ value_json.contact }}","state_topic":"zigbee2mqtt/old/door",` +
		`"unique_id":"0x00124b0000000007_contact_zigbee2mqtt","origin":{"name":"Zigbee2MQTT"},"device":{"identifiers":["zigbee2mqtt_0x00124b0000000007"],"name":"old/door"}}`
	res := collect(t, "zigbee2mqtt/bridge/devices", z2mDevices, "homeassistant/binary_sensor/0x00124b0000000007/contact/config", ha).Propose(Options{})
	for _, p := range res.Proposals {
		if p.Topic == "zigbee2mqtt/old/door" {
			t.Errorf("the disabled device is proposed: %+v", p)
		}
	}
}
