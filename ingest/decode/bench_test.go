package decode

import (
	"testing"
)

// BenchmarkDecode measures one typical message per format. The gateway's
// budget is 50,000 messages/s on one core, i.e. 20 µs per message for
// decoding and everything after it.
func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		format  string
		d       Decoder
		dev     Device
		topic   string
		payload string
	}{
		{"native", Native{}, nativeDev, nativeTopic,
			`{"time":"2026-11-30T03:00:00Z","battery":87,"link_quality":200,"values":{"temperature":21.5,"humidity":40.2,"smoke":false,"door":true}}`},
		{"zigbee2mqtt", Zigbee2MQTT{}, z2mDev, z2mTopic,
			`{"smoke":false,"battery_low":false,"tamper":false,"battery":100,"sensitivity":"medium","smoke_density":0,"voltage":3100,"device_temperature":25,"power_outage_count":3,"linkquality":60}`},
		{"tasmota", Tasmota{}, tasmotaDev, "tele/tasmota_A1B2C3/SENSOR",
			`{"Time":"2019-11-03T19:34:28","BME280":{"Temperature":21.7,"Humidity":66.6,"Pressure":988.6},"PressureUnit":"hPa","TempUnit":"C"}`},
		{"esphome", ESPHome{}, esphomeDev, esp + "sensor/dorm3_temperature/state", "21.5"},
		{"shelly", Shelly{}, shellyDev, shp + "events/rpc",
			`{"src":"shellyplusht-b8d61a8b17cc","dst":"shellyplusht-b8d61a8b17cc/events","method":"NotifyStatus","params":{"ts":1680962879.62,"temperature:0":{"id":0,"tC":20.1,"tF":68.2}}}`},
		{"homie", Homie{}, homieDev, hm + "env/temperature", "21.5"},
	}
	for _, c := range cases {
		payload := []byte(c.payload)
		b.Run("format="+c.format, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := c.d.Decode(c.dev, c.topic, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
