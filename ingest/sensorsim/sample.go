package sensorsim

import "github.com/shelterwatch/shelterwatch/ingest/reading"

// SampleDevices returns a small relief station with one or more devices of
// every firmware: smoke detectors in the kitchen and a dormitory, doors of
// the secure ward, climate sensors in the dormitories and the kitchen, a
// water-leak sensor and a panic button. The names match the sample configs
// in firmware-configs/. Credentials are empty; set them to match the
// gateway config. Each call returns a fresh slice.
func SampleDevices() []Device {
	dorm := func(n string) (string, []string) { return "dorm-" + n, []string{TagDormitory} }
	z1, t1 := dorm("1")
	z2, t2 := dorm("2")
	z3, t3 := dorm("3")
	kitchen, tk := "kitchen", []string{TagKitchen}
	ward, tw := "secure-ward", []string{TagSecureWard}
	return []Device{
		// Zigbee2MQTT: friendly names as in firmware-configs/zigbee2mqtt/configuration.yaml.
		{ID: "kitchen-smoke", Format: formatZigbee2MQTT, Base: "zigbee2mqtt/kitchen/smoke", Kind: reading.KindSmoke, Zone: kitchen, ZoneTags: tk},
		{ID: "dorm-1-smoke", Format: formatZigbee2MQTT, Base: "zigbee2mqtt/dorm-1/smoke", Kind: reading.KindSmoke, Zone: z1, ZoneTags: t1},
		{ID: "dorm-1-climate", Format: formatZigbee2MQTT, Base: "zigbee2mqtt/dorm-1/climate", Kind: reading.KindTemperature, Zone: z1, ZoneTags: t1},
		{ID: "ward-door", Format: formatZigbee2MQTT, Base: "zigbee2mqtt/secure-ward/door", Kind: reading.KindDoor, Zone: ward, ZoneTags: tw},
		{ID: "washroom-leak", Format: formatZigbee2MQTT, Base: "zigbee2mqtt/washroom/leak", Kind: reading.KindWaterLeak, Zone: "washroom"},
		// Tasmota: a BME280 and a reed switch on the secure ward's fire exit.
		{ID: "dorm-2-climate", Format: formatTasmota, Base: "tasmota_A1B2C3", Kind: reading.KindTemperature, Zone: z2, ZoneTags: t2},
		{ID: "ward-exit-door", Format: formatTasmota, Base: "tasmota_D4E5F6", Kind: reading.KindDoor, Zone: ward, ZoneTags: tw},
		// ESPHome: firmware-configs/esphome/dorm-climate-node.yaml.
		{ID: "dorm-3-climate", Format: formatESPHome, Base: "shelter/dorm-3-climate", Kind: reading.KindTemperature, Zone: z3, ZoneTags: t3},
		// Shelly Plus H&T with its default topic prefix (the Shelly device id).
		{ID: "dorm-2-ht", Format: formatShelly, Base: "shellyplusht-08b61fcf4a2c", Kind: reading.KindTemperature, Zone: z2, ZoneTags: t2},
		// Homie 5.
		{ID: "kitchen-climate", Format: formatHomie, Base: "homie/5/kitchen-climate", Kind: reading.KindTemperature, Zone: kitchen, ZoneTags: tk},
		// Native JSON.
		{ID: "ward-panic", Format: formatNative, Base: "shelter/ward-panic", Kind: reading.KindPanic, Zone: ward, ZoneTags: tw},
		{ID: "corridor-motion", Format: formatNative, Base: "shelter/corridor-motion", Kind: reading.KindMotion, Zone: "corridor"},
	}
}
