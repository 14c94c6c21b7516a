package discover

// Announcements as the firmware publishes them. Each is taken from the
// project's own docs or source, cited above it; where a document shows
// only the shape, the values are those of the devices in
// firmware-configs/ and say so.

// z2mDevices is a Zigbee2MQTT bridge/devices list. The shape, the Router
// plug, the unsupported sensor and the Coordinator are the example of
// https://github.com/Koenkk/zigbee2mqtt.io/blob/master/docs/guide/usage/mqtt_topics_and_messages.md
// (zigbee2mqtt/bridge/devices); the exposes follow
// https://github.com/Koenkk/zigbee2mqtt.io/blob/master/docs/guide/usage/exposes.md
// with the exposes the device pages list: HEIMAN HS1SA
// (https://www.zigbee2mqtt.io/devices/HS1SA.html: smoke, battery_low,
// battery), SONOFF SNZB-04 (contact, battery_low, battery, voltage), Aqara
// WSDCGQ11LM (battery, temperature, humidity, pressure, voltage), a Tuya
// water-leak detector that also reports temperature, and Tuya TS0215A_sos
// (battery, voltage, action "emergency"; zigbee-herdsman-converters
// src/devices/tuya.ts).
const z2mDevices = `[
 {"ieee_address":"0x00158d00018255df","type":"Router","network_address":29159,"supported":true,"friendly_name":"my_plug",
  "definition":{"model":"ZNCZ02LM","vendor":"Xiaomi","description":"Mi power plug ZigBee","options":[],
   "exposes":[{"type":"switch","features":[{"type":"binary","name":"state","property":"state","value_on":"ON","value_off":"OFF","value_toggle":"TOGGLE","access":7}]},
              {"type":"numeric","name":"power","property":"power","unit":"W","access":5}]},
  "power_source":"Mains (single phase)","date_code":"02-28-2017","model_id":"lumi.plug","interviewing":false,"interview_completed":true},
 {"ieee_address":"0x00169a00022256da","type":"Router","network_address":22160,"supported":false,"friendly_name":"my_sensor",
  "definition":null,"power_source":"Battery","date_code":"04-28-2019","model_id":null,"interviewing":false,"interview_completed":true},
 {"ieee_address":"0x00124b00120144ae","type":"Coordinator","network_address":0,"supported":false,"friendly_name":"Coordinator",
  "definition":null,"power_source":null,"date_code":null,"model_id":null,"interviewing":false,"interview_completed":true},
 {"ieee_address":"0x00124b0000000001","type":"EndDevice","supported":true,"disabled":false,"friendly_name":"kitchen/smoke",
  "definition":{"model":"HS1SA","vendor":"HEIMAN","description":"Smoke detector",
   "exposes":[{"type":"binary","name":"smoke","property":"smoke","value_on":true,"value_off":false,"access":1},
              {"type":"binary","name":"battery_low","property":"battery_low","value_on":true,"value_off":false,"access":1},
              {"type":"numeric","name":"battery","property":"battery","unit":"%","value_min":0,"value_max":100,"access":1},
              {"type":"numeric","name":"linkquality","property":"linkquality","unit":"lqi","value_min":0,"value_max":255,"access":1}]},
  "power_source":"Battery"},
 {"ieee_address":"0x00124b0000000004","type":"EndDevice","supported":true,"friendly_name":"secure-ward/door",
  "definition":{"model":"SNZB-04","vendor":"SONOFF","description":"Contact sensor",
   "exposes":[{"type":"binary","name":"contact","property":"contact","value_on":false,"value_off":true,"access":1},
              {"type":"binary","name":"battery_low","property":"battery_low","value_on":true,"value_off":false,"access":1},
              {"type":"numeric","name":"battery","property":"battery","unit":"%","access":1},
              {"type":"numeric","name":"voltage","property":"voltage","unit":"mV","access":1}]},
  "power_source":"Battery"},
 {"ieee_address":"0x00158d0000000003","type":"EndDevice","supported":true,"friendly_name":"dorm-1/climate",
  "definition":{"model":"WSDCGQ11LM","vendor":"Aqara","description":"Temperature, humidity and pressure sensor",
   "exposes":[{"type":"numeric","name":"battery","property":"battery","unit":"%","access":1},
              {"type":"numeric","name":"temperature","property":"temperature","unit":"°C","access":1},
              {"type":"numeric","name":"humidity","property":"humidity","unit":"%","access":1},
              {"type":"numeric","name":"pressure","property":"pressure","unit":"hPa","access":1},
              {"type":"numeric","name":"voltage","property":"voltage","unit":"mV","access":1}]},
  "power_source":"Battery"},
 {"ieee_address":"0x00124b0000000005","type":"EndDevice","supported":true,"friendly_name":"washroom/leak",
  "definition":{"model":"TS0207_water_leak_detector","vendor":"Tuya","description":"Water leak detector",
   "exposes":[{"type":"binary","name":"water_leak","property":"water_leak","value_on":true,"value_off":false,"access":1},
              {"type":"numeric","name":"temperature","property":"temperature","unit":"°C","access":1},
              {"type":"numeric","name":"battery","property":"battery","unit":"%","access":1}]},
  "power_source":"Battery"},
 {"ieee_address":"0x00124b0000000006","type":"EndDevice","supported":true,"friendly_name":"入口紧急按钮",
  "definition":{"model":"TS0215A_sos","vendor":"Tuya","description":"SOS button",
   "exposes":[{"type":"numeric","name":"battery","property":"battery","unit":"%","access":1},
              {"type":"numeric","name":"voltage","property":"voltage","unit":"mV","access":1},
              {"type":"enum","name":"action","property":"action","values":["emergency"],"access":1}]},
  "power_source":"Battery"},
 {"ieee_address":"0x00124b0000000007","type":"EndDevice","supported":true,"disabled":true,"friendly_name":"old/door",
  "definition":{"model":"SNZB-04","vendor":"SONOFF","description":"Contact sensor",
   "exposes":[{"type":"binary","name":"contact","property":"contact","value_on":false,"value_off":true,"access":1}]},
  "power_source":"Battery"}
]`

// ESPHome's Home Assistant discovery, as esphome/components/mqtt
// (mqtt_component.cpp: MQTTComponent::send_discovery_, with
// USE_MQTT_ABBREVIATIONS, mqtt_const.h) builds it: topic
// <discovery_prefix>/<component>/<node name>/<object_id>/config; stat_t
// <topic_prefix>/<component>/<object_id>/state; avty_t
// <topic_prefix>/status; uniq_id "ESP" + component + object_id; dev with
// ids (the MAC), name, sw, mdl (the board), mf.
// https://github.com/esphome/esphome/blob/dev/esphome/components/mqtt/mqtt_component.cpp
// The node is a dormitory board with a smoke input and a door input.
const (
	esphomeSmokeTopic = "homeassistant/binary_sensor/dorm-2f-node/dorm_2f_smoke/config"
	esphomeSmoke      = `{"dev_cla":"smoke","name":"Dorm 2F Smoke","stat_t":"shelter/dorm-2f-node/binary_sensor/dorm_2f_smoke/state","avty_t":"shelter/dorm-2f-node/status","uniq_id":"ESPbinary_sensordorm_2f_smoke","dev":{"ids":"a4cf12b3c4d5","name":"Dorm 2F node","sw":"2024.6.1 (config hash 0x1a2b3c4d)","mdl":"esp32dev","mf":"Espressif","cns":[["mac","a4cf12b3c4d5"]]}}`
	esphomeDoorTopic  = "homeassistant/binary_sensor/dorm-2f-node/dorm_2f_door/config"
	esphomeDoor       = `{"dev_cla":"door","name":"Dorm 2F Door","stat_t":"shelter/dorm-2f-node/binary_sensor/dorm_2f_door/state","avty_t":"shelter/dorm-2f-node/status","uniq_id":"ESPbinary_sensordorm_2f_door","dev":{"ids":"a4cf12b3c4d5","name":"Dorm 2F node","sw":"2024.6.1 (config hash 0x1a2b3c4d)","mdl":"esp32dev","mf":"Espressif","cns":[["mac","a4cf12b3c4d5"]]}}`
	esphomeWifiTopic  = "homeassistant/sensor/dorm-2f-node/dorm_2f_wifi_signal/config"
	esphomeWifi       = `{"dev_cla":"signal_strength","unit_of_meas":"dBm","stat_cla":"measurement","name":"Dorm 2F WiFi Signal","ent_cat":"diagnostic","stat_t":"shelter/dorm-2f-node/sensor/dorm_2f_wifi_signal/state","avty_t":"shelter/dorm-2f-node/status","uniq_id":"ESPsensordorm_2f_wifi_signal","dev":{"ids":"a4cf12b3c4d5","name":"Dorm 2F node","sw":"2024.6.1 (config hash 0x1a2b3c4d)","mdl":"esp32dev","mf":"Espressif"}}`
	// A node with one temperature sensor and the base topic "~"
	// (https://www.home-assistant.io/integrations/mqtt/#using-abbreviations-and-base-topic).
	esphomeTildeTopic = "homeassistant/sensor/office-temp/temperature/config"
	esphomeTilde      = `{"~":"office-temp","dev_cla":"temperature","unit_of_meas":"°C","stat_cla":"measurement","name":"Temperature","stat_t":"~/sensor/temperature/state","avty_t":"~/status","uniq_id":"ESPsensortemperature","dev":{"ids":"a4cf12000001","name":"office-temp","mdl":"esp01_1m","mf":"Espressif"}}`
)

// Tasmota's older Home Assistant discovery (SetOption19 1), as
// tasmota/xdrv_12_home_assistant.ino builds it (HASS_DISCOVER_BASE,
// HASS_DISCOVER_SENSOR_LWT, HASS_DISCOVER_DEVICE_INFO_SHORT,
// HASS_DISCOVER_SENSOR; HAssAnnounceSensor): topic
// homeassistant/sensor/<chip id>_<sensor>_<quantity>/config, stat_t
// tele/<topic>/SENSOR, val_tpl {{value_json['<sensor>']['<quantity>']}}.
// https://github.com/arendst/Tasmota/blob/development/tasmota/tasmota_xdrv_driver/xdrv_12_home_assistant.ino
const (
	tasmotaHATempTopic  = "homeassistant/sensor/A1B2C3_BME280_Temperature/config"
	tasmotaHATemp       = `{"name":"Dorm 2 climate BME280 Temperature","stat_t":"tele/tasmota_A1B2C3/SENSOR","avty_t":"tele/tasmota_A1B2C3/LWT","pl_avail":"Online","pl_not_avail":"Offline","uniq_id":"A1B2C3_BME280_Temperature","dev":{"ids":["A1B2C3"]},"unit_of_meas":"°C","dev_cla":"temperature","frc_upd":true,"val_tpl":"{{value_json['BME280']['Temperature']}}"}`
	tasmotaHAHumTopic   = "homeassistant/sensor/A1B2C3_BME280_Humidity/config"
	tasmotaHAHum        = `{"name":"Dorm 2 climate BME280 Humidity","stat_t":"tele/tasmota_A1B2C3/SENSOR","avty_t":"tele/tasmota_A1B2C3/LWT","pl_avail":"Online","pl_not_avail":"Offline","uniq_id":"A1B2C3_BME280_Humidity","dev":{"ids":["A1B2C3"]},"unit_of_meas":"%","dev_cla":"humidity","frc_upd":true,"val_tpl":"{{value_json['BME280']['Humidity']}}"}`
	tasmotaHAStateTopic = "homeassistant/sensor/A1B2C3_status/config"
	tasmotaHAState      = `{"name":"Dorm 2 climate status","stat_t":"tele/tasmota_A1B2C3/HASS_STATE","avty_t":"tele/tasmota_A1B2C3/LWT","pl_avail":"Online","pl_not_avail":"Offline","json_attr_t":"tele/tasmota_A1B2C3/HASS_STATE","unit_of_meas":"%","val_tpl":"{{value_json['RSSI']}}","ic":"mdi:information-outline","uniq_id":"A1B2C3_status","dev":{"ids":["A1B2C3"],"name":"Dorm 2 climate","mdl":"Generic","sw":"9.1.0(tasmota)","mf":"Tasmota"}}`
	tasmotaHAChipTopic  = "homeassistant/sensor/A1B2C3_ESP32_Temperature/config"
	tasmotaHAChip       = `{"name":"Dorm 2 climate ESP32 Temperature","stat_t":"tele/tasmota_A1B2C3/SENSOR","avty_t":"tele/tasmota_A1B2C3/LWT","pl_avail":"Online","pl_not_avail":"Offline","uniq_id":"A1B2C3_ESP32_Temperature","dev":{"ids":["A1B2C3"]},"unit_of_meas":"°C","dev_cla":"temperature","frc_upd":true,"val_tpl":"{{value_json['ESP32']['Temperature']}}"}`
)

// Zigbee2MQTT's Home Assistant discovery, from its own test
// (test/extensions/homeassistant.test.ts, "weather_sensor"):
// https://github.com/Koenkk/zigbee2mqtt/blob/master/test/extensions/homeassistant.test.ts
const (
	z2mHATempTopic = "homeassistant/sensor/0x0017880104e45522/temperature/config"
	z2mHATemp      = `{"unit_of_measurement":"°C","device_class":"temperature","state_class":"measurement","value_template":"{{ value_json.temperature }}","state_topic":"zigbee2mqtt/weather_sensor","object_id":"weather_sensor_temperature","default_entity_id":"sensor.weather_sensor_temperature","unique_id":"0x0017880104e45522_temperature_zigbee2mqtt","origin":{"name":"Zigbee2MQTT","sw":"2.1.0","url":"https://www.zigbee2mqtt.io"},"device":{"identifiers":["zigbee2mqtt_0x0017880104e45522"],"name":"weather_sensor","model":"Temperature and humidity sensor","model_id":"WSDCGQ11LM","manufacturer":"Aqara","via_device":"zigbee2mqtt_bridge_0x00124b00120144ae"},"availability":[{"topic":"zigbee2mqtt/bridge/state","value_template":"{{ value_json.state }}"}],"enabled_by_default":true}`
	z2mHAHumTopic  = "homeassistant/sensor/0x0017880104e45522/humidity/config"
	z2mHAHum       = `{"unit_of_measurement":"%","device_class":"humidity","state_class":"measurement","value_template":"{{ value_json.humidity }}","state_topic":"zigbee2mqtt/weather_sensor","object_id":"weather_sensor_humidity","default_entity_id":"sensor.weather_sensor_humidity","unique_id":"0x0017880104e45522_humidity_zigbee2mqtt","origin":{"name":"Zigbee2MQTT","sw":"2.1.0","url":"https://www.zigbee2mqtt.io"},"device":{"identifiers":["zigbee2mqtt_0x0017880104e45522"],"name":"weather_sensor","model":"Temperature and humidity sensor","model_id":"WSDCGQ11LM","manufacturer":"Aqara","via_device":"zigbee2mqtt_bridge_0x00124b00120144ae"},"availability":[{"topic":"zigbee2mqtt/bridge/state","value_template":"{{ value_json.state }}"}],"enabled_by_default":true}`
	// A device temperature (the chip's) has device_class temperature too.
	z2mHAChipTopic = "homeassistant/sensor/0x0017880104e45522/device_temperature/config"
	z2mHAChip      = `{"unit_of_measurement":"°C","device_class":"temperature","state_class":"measurement","value_template":"{{ value_json.device_temperature }}","state_topic":"zigbee2mqtt/weather_sensor","unique_id":"0x0017880104e45522_device_temperature_zigbee2mqtt","origin":{"name":"Zigbee2MQTT"},"device":{"identifiers":["zigbee2mqtt_0x0017880104e45522"],"name":"weather_sensor"},"enabled_by_default":false}`
)

// Home Assistant's device discovery example
// (https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload):
// its state topic belongs to no firmware the gateway reads.
const (
	haDeviceTopic   = "homeassistant/device/0AFFD2/config"
	haDevicePayload = `{"dev":{"ids":"ea334450945afc","name":"Kitchen","mf":"Bla electronics","mdl":"xya","sw":"1.0","sn":"ea334450945afc","hw":"1.0rev2"},"o":{"name":"bla2mqtt","sw":"2.1","url":"https://bla2mqtt.example.com/support"},"cmps":{"some_unique_component_id1":{"p":"sensor","device_class":"temperature","unit_of_measurement":"°C","value_template":"{{ value_json.temperature}}","unique_id":"temp01ae_t"},"some_unique_id2":{"p":"sensor","device_class":"humidity","unit_of_measurement":"%","value_template":"{{ value_json.humidity}}","unique_id":"temp01ae_h"}},"state_topic":"sensorBedroom/state","qos":2}`
)

// Tasmota's own discovery, as tasmota/tasmota_xdrv_driver/xdrv_12_discovery.ino
// (TasDiscoverMessage, TasDiscovery) builds it:
// https://github.com/arendst/Tasmota/blob/development/tasmota/tasmota_xdrv_driver/xdrv_12_discovery.ino
// tasmotaBasic is a Sonoff Basic on 9.2.0 (a relay, no sensors), as
// captured in a public tool's tests of that version.
const (
	tasmotaBasicConfigTopic  = "tasmota/discovery/84F3EB487D21/config"
	tasmotaBasicConfig       = `{"ip":"10.211.10.103","dn":"x3","fn":["Basic-3 x3",null,null,null,null,null,null,null],"hn":"ESP-Basic-3","mac":"84F3EB487D21","md":"Sonoff Basic","ty":0,"if":0,"ofln":"Offline","onln":"Online","state":["OFF","ON","TOGGLE","HOLD"],"sw":"9.2.0","t":"Basic-3","ft":"%prefix%/%topic%/","tp":["cmnd","stat","tele"],"rl":[1,0,0,0,0,0,0,0],"swc":[-1,-1,-1,-1,-1,-1,-1,-1],"swn":[null,null,null,null,null,null,null,null],"btn":[0,0,0,0],"so":{"4":0,"11":0,"13":0,"17":1,"20":0,"30":0,"68":0,"73":0,"82":0,"114":0},"lk":1,"lt_st":0,"sho":[0,0,0,0],"ver":1}`
	tasmotaBasicSensorsTopic = "tasmota/discovery/84F3EB487D21/sensors"
	tasmotaBasicSensors      = `{"sn":{"Time":"2021-02-24T08:50:09"},"ver":1}`

	// A kitchen board: two DS18B20 and a door contact on Switch1
	// (SwitchMode1 15, SetOption114 1, as firmware-configs/tasmota).
	tasmotaBoardConfigTopic  = "tasmota/discovery/A4CF12D4E5F6/config"
	tasmotaBoardConfig       = `{"ip":"192.168.10.31","dn":"Kitchen board","fn":["Tasmota",null,null,null,null,null,null,null],"hn":"kitchen-board-5878","mac":"A4CF12D4E5F6","md":"Generic","ty":0,"if":0,"ofln":"Offline","onln":"Online","state":["OFF","ON","TOGGLE","HOLD"],"sw":"13.4.0","t":"tasmota_D4E5F6","ft":"%prefix%/%topic%/","tp":["cmnd","stat","tele"],"rl":[0,0,0,0,0,0,0,0],"swc":[15,-1,-1,-1,-1,-1,-1,-1],"swn":["Switch1",null,null,null,null,null,null,null],"btn":[0,0,0,0],"so":{"4":0,"11":0,"13":0,"17":0,"20":0,"30":0,"68":0,"73":0,"82":0,"114":1,"117":0},"lk":0,"lt_st":0,"bat":0,"dslp":0,"sho":[],"sht":[],"ver":1}`
	tasmotaBoardSensorsTopic = "tasmota/discovery/A4CF12D4E5F6/sensors"
	tasmotaBoardSensors      = `{"sn":{"Time":"2026-11-30T03:00:00","Switch1":"OFF","DS18B20-1":{"Id":"01144A0CB2AA","Temperature":4.1},"DS18B20-2":{"Id":"01144A0D31FF","Temperature":-18.2},"ESP32":{"Temperature":41.7},"TempUnit":"C"},"ver":1}`

	// A climate sensor: one BME280 (docs/BME280.md's SENSOR).
	tasmotaClimateConfigTopic  = "tasmota/discovery/A4CF12A1B2C3/config"
	tasmotaClimateConfig       = `{"ip":"192.168.10.32","dn":"Tasmota","fn":["Tasmota",null,null,null,null,null,null,null],"hn":"tasmota-A1B2C3-0707","mac":"A4CF12A1B2C3","md":"Generic","ty":0,"if":0,"ofln":"Offline","onln":"Online","state":["OFF","ON","TOGGLE","HOLD"],"sw":"13.4.0","t":"tasmota_A1B2C3","ft":"%prefix%/%topic%/","tp":["cmnd","stat","tele"],"rl":[0,0,0,0,0,0,0,0],"swc":[-1,-1,-1,-1,-1,-1,-1,-1],"swn":[null,null,null,null,null,null,null,null],"btn":[0,0,0,0],"so":{"4":0,"11":0,"13":0,"17":0,"20":0,"30":0,"68":0,"73":0,"82":0,"114":0,"117":0},"lk":0,"lt_st":0,"sho":[],"ver":1}`
	tasmotaClimateSensorsTopic = "tasmota/discovery/A4CF12A1B2C3/sensors"
	tasmotaClimateSensors      = `{"sn":{"Time":"2019-11-03T19:34:28","BME280":{"Temperature":21.7,"Humidity":66.6,"Pressure":988.6},"PressureUnit":"hPa","TempUnit":"C"},"ver":1}`
)

// Homie 5 descriptions. The thermostat is the convention's own example
// (https://github.com/homieiot/convention/blob/develop/convention.md,
// "$description"); its only property is settable, so it is an actuator.
// The sensor board follows the same shape.
const (
	homieThermostatTopic = "homie/5/device123/$description"
	homieThermostat      = `{"id":"device123","homie":"5.0","version":"12","name":"My device","nodes":{"mythermostat":{"name":"My thermostat","type":"thermostat","properties":{"temperature":{"name":"Temperature","unit":"°C","datatype":"integer","settable":true}}}}}`
	homieBoardTopic      = "homie/5/dorm-5-sensors/$description"
	homieBoard           = `{"homie":"5.0","version":3,"name":"Dorm 5 sensors","nodes":{"climate":{"name":"Climate","properties":{"temperature":{"name":"Temperature","datatype":"float","unit":"°C"},"humidity":{"name":"Humidity","datatype":"float","unit":"%"}}},"door":{"name":"Dorm 5 door","properties":{"open":{"name":"Open","datatype":"boolean"}}},"led":{"name":"LED","properties":{"on":{"datatype":"boolean","settable":true}}}}}`
)
