package discover

import "testing"

// seeds are the announcements of the table tests.
var seeds = [][2]string{
	{"zigbee2mqtt/bridge/devices", z2mDevices},
	{esphomeSmokeTopic, esphomeSmoke}, {esphomeDoorTopic, esphomeDoor}, {esphomeWifiTopic, esphomeWifi}, {esphomeTildeTopic, esphomeTilde},
	{tasmotaHATempTopic, tasmotaHATemp}, {tasmotaHAHumTopic, tasmotaHAHum}, {tasmotaHAStateTopic, tasmotaHAState}, {tasmotaHAChipTopic, tasmotaHAChip},
	{z2mHATempTopic, z2mHATemp}, {z2mHAHumTopic, z2mHAHum}, {z2mHAChipTopic, z2mHAChip},
	{haDeviceTopic, haDevicePayload},
	{tasmotaBasicConfigTopic, tasmotaBasicConfig}, {tasmotaBasicSensorsTopic, tasmotaBasicSensors},
	{tasmotaBoardConfigTopic, tasmotaBoardConfig}, {tasmotaBoardSensorsTopic, tasmotaBoardSensors},
	{tasmotaClimateConfigTopic, tasmotaClimateConfig}, {tasmotaClimateSensorsTopic, tasmotaClimateSensors},
	{homieThermostatTopic, homieThermostat}, {homieBoardTopic, homieBoard},
}

// FuzzCollector feeds any message after the real announcements (so that
// it can replace one of them) and checks that nothing panics and every
// proposal could go into the gateway config.
func FuzzCollector(f *testing.F) {
	for _, s := range seeds {
		f.Add(s[0], []byte(s[1]))
	}
	f.Add("homeassistant/sensor/n/o/config", []byte(`{"~":"a","stat_t":"~/sensor/x/state~","avty_t":"~","dev_cla":"temperature","uniq_id":"ESPx"}`))
	f.Add("homeassistant/binary_sensor/n/o/config", []byte(`{"stat_t":"tele/t/SWITCH99","val_tpl":"{{value_json['","dev":{"ids":[1,"x"]}}`))
	f.Add("tasmota/discovery/AA/config", []byte(`{"mac":"aa","t":"x y","swc":[1,2,3],"swn":[null,"Switch 2"]}`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		c := NewCollector()
		for _, s := range seeds {
			_ = c.Add(Message{Topic: s[0], Payload: []byte(s[1]), Retained: true})
		}
		_ = c.Add(Message{Topic: topic, Payload: payload})
		if err := checkResult(c.Propose(Options{Configured: []Configured{{ID: "kitchen-smoke", Format: "zigbee2mqtt", Topic: "zigbee2mqtt/kitchen/smoke"}}})); err != nil {
			t.Fatalf("after %q %q: %v", topic, payload, err)
		}
		// The fuzzed message alone, too.
		c = NewCollector()
		_ = c.Add(Message{Topic: topic, Payload: payload})
		if err := checkResult(c.Propose(Options{})); err != nil {
			t.Fatalf("%q %q alone: %v", topic, payload, err)
		}
	})
}

// FuzzTemplateKeys checks the value-template reader alone.
func FuzzTemplateKeys(f *testing.F) {
	for _, s := range []string{"{{ value_json.temperature }}", "{{value_json['BME280']['Temperature']}}", "{{ value_json['a' ]", "value_json.", "value_json[\"x\"].y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tpl string) {
		if keys := templateKeys(tpl); len(keys) > 4 {
			t.Fatalf("%d keys from %q", len(keys), tpl)
		}
	})
}
