package decode

// All returns a fresh map of every decoder, keyed by its Format name
// ("native", "zigbee2mqtt", "tasmota", "esphome", "shelly", "homie",
// "shellygen1", "openmqttgateway", "zigbee2tasmota"). The
// map is built on each call so that no caller can change another's view;
// the decoders themselves are stateless values and safe for concurrent use.
func All() map[string]Decoder {
	ds := [...]Decoder{Native{}, Zigbee2MQTT{}, Tasmota{}, ESPHome{}, Shelly{}, Homie{},
		ShellyGen1{}, OpenMQTTGateway{}, Zigbee2Tasmota{}}
	m := make(map[string]Decoder, len(ds))
	for _, d := range ds {
		m[d.Format()] = d
	}
	return m
}
