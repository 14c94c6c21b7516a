package sensorsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// The facility is in UTC+8; 03:00:00.620 local is 19:00:00.620 UTC the day
// before.
var (
	testLoc = time.FixedZone("CST", 8*3600)
	testNow = time.Date(2026, 11, 30, 3, 0, 0, 620e6, testLoc)
)

func testState() State {
	return State{
		TempC:       21.37,
		HumidityPct: 44.7,
		PressureHPa: 1003.2,
		BatteryPct:  91,
		LinkQuality: 87,
		Boot:        testNow.Add(-90 * time.Minute),
	}
}

func msg(topic, payload string, retained bool) Message {
	return Message{Topic: topic, Payload: []byte(payload), Retained: retained}
}

// TestReportExact pins every format's periodic report byte for byte: these
// are the payloads the decoders must accept from real firmware.
func TestReportExact(t *testing.T) {
	ts := fmt.Sprintf("%d.62", testNow.Unix())
	tests := []struct {
		name   string
		dev    Device
		active bool
		want   []Message
	}{
		{
			name: "zigbee2mqtt climate (Aqara WSDCGQ11LM)",
			dev:  Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/dorm-1/climate", Kind: reading.KindTemperature},
			want: []Message{msg("zigbee2mqtt/dorm-1/climate",
				`{"temperature":21.37,"humidity":44.7,"pressure":1003,"battery":91,"voltage":2991,"linkquality":87,"last_seen":"2026-11-29T19:00:00.620Z"}`, false)},
		},
		{
			name: "zigbee2mqtt smoke (HEIMAN HS1SA)",
			dev:  Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/kitchen/smoke", Kind: reading.KindSmoke},
			want: []Message{msg("zigbee2mqtt/kitchen/smoke",
				`{"smoke":false,"battery_low":false,"battery":91,"linkquality":87,"last_seen":"2026-11-29T19:00:00.620Z"}`, false)},
		},
		{
			name: "zigbee2mqtt door closed (contact true)",
			dev:  Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/secure-ward/door", Kind: reading.KindDoor},
			want: []Message{msg("zigbee2mqtt/secure-ward/door",
				`{"contact":true,"battery":91,"voltage":2991,"linkquality":87,"last_seen":"2026-11-29T19:00:00.620Z"}`, false)},
		},
		{
			name:   "zigbee2mqtt door open (contact false)",
			dev:    Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/secure-ward/door", Kind: reading.KindDoor},
			active: true,
			want: []Message{msg("zigbee2mqtt/secure-ward/door",
				`{"contact":false,"battery":91,"voltage":2991,"linkquality":87,"last_seen":"2026-11-29T19:00:00.620Z"}`, false)},
		},
		{
			name: "zigbee2mqtt motion (SONOFF SNZB-03)",
			dev:  Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/corridor/motion", Kind: reading.KindMotion},
			want: []Message{msg("zigbee2mqtt/corridor/motion",
				`{"occupancy":false,"battery_low":false,"battery":91,"voltage":2991,"linkquality":87,"last_seen":"2026-11-29T19:00:00.620Z"}`, false)},
		},
		{
			name:   "zigbee2mqtt panic pressed (Tuya TS0215A)",
			dev:    Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/ward/sos", Kind: reading.KindPanic},
			active: true,
			want: []Message{msg("zigbee2mqtt/ward/sos",
				`{"action":"emergency","battery":91,"voltage":2991,"linkquality":87,"last_seen":"2026-11-29T19:00:00.620Z"}`, false)},
		},
		{
			name: "tasmota BME280 and STATE",
			dev:  Device{ID: "d", Format: "tasmota", Base: "tasmota_A1B2C3", Kind: reading.KindTemperature},
			want: []Message{
				msg("tele/tasmota_A1B2C3/SENSOR",
					`{"Time":"2026-11-30T03:00:00","BME280":{"Temperature":21.4,"Humidity":44.7,"DewPoint":8.8,"Pressure":1003.2},"PressureUnit":"hPa","TempUnit":"C"}`, false),
				msg("tele/tasmota_A1B2C3/STATE",
					`{"Time":"2026-11-30T03:00:00","Uptime":"0T01:30:00","UptimeSec":5400,"Heap":26,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"Wifi":{"AP":1,"SSId":"shelter-iot","BSSId":"30:B5:C2:5E:1A:04","Channel":6,"Mode":"11n","RSSI":50,"Signal":-75,"LinkCount":1,"Downtime":"0T00:00:03"}}`, false),
			},
		},
		{
			name:   "tasmota door open (Switch1 ON, SwitchMode 15)",
			dev:    Device{ID: "d", Format: "tasmota", Base: "tasmota_D4E5F6", Kind: reading.KindDoor},
			active: true,
			want: []Message{
				msg("tele/tasmota_D4E5F6/SENSOR", `{"Time":"2026-11-30T03:00:00","Switch1":"ON"}`, false),
				msg("tele/tasmota_D4E5F6/STATE",
					`{"Time":"2026-11-30T03:00:00","Uptime":"0T01:30:00","UptimeSec":5400,"Heap":26,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"Wifi":{"AP":1,"SSId":"shelter-iot","BSSId":"30:B5:C2:5E:1A:04","Channel":6,"Mode":"11n","RSSI":50,"Signal":-75,"LinkCount":1,"Downtime":"0T00:00:03"}}`, false),
			},
		},
		{
			name: "esphome climate",
			dev:  Device{ID: "d", Format: "esphome", Base: "shelter/dorm-3-climate", Kind: reading.KindTemperature},
			want: []Message{
				msg("shelter/dorm-3-climate/sensor/temperature/state", "21.4", true),
				msg("shelter/dorm-3-climate/sensor/humidity/state", "44.7", true),
			},
		},
		{
			name:   "esphome door open",
			dev:    Device{ID: "d", Format: "esphome", Base: "shelter/ward-door", Kind: reading.KindDoor},
			active: true,
			want:   []Message{msg("shelter/ward-door/binary_sensor/door/state", "ON", true)},
		},
		{
			name: "esphome water leak dry",
			dev:  Device{ID: "d", Format: "esphome", Base: "shelter/washroom", Kind: reading.KindWaterLeak},
			want: []Message{msg("shelter/washroom/binary_sensor/water_leak/state", "OFF", true)},
		},
		{
			name: "shelly plus h&t",
			dev:  Device{ID: "d", Format: "shelly", Base: "shellyplusht-08b61fcf4a2c", Kind: reading.KindTemperature},
			want: []Message{
				msg("shellyplusht-08b61fcf4a2c/status/temperature:0", `{"id":0,"tC":21.4,"tF":70.5}`, false),
				msg("shellyplusht-08b61fcf4a2c/status/humidity:0", `{"id":0,"rh":44.7}`, false),
				msg("shellyplusht-08b61fcf4a2c/status/devicepower:0", `{"id":0,"battery":{"V":5.97,"percent":91},"external":{"present":false}}`, false),
				msg("shellyplusht-08b61fcf4a2c/events/rpc",
					`{"src":"shellyplusht-08b61fcf4a2c","dst":"shellyplusht-08b61fcf4a2c/events","method":"NotifyStatus","params":{"ts":`+ts+`,"temperature:0":{"id":0,"tC":21.4,"tF":70.5},"humidity:0":{"id":0,"rh":44.7}}}`, false),
			},
		},
		{
			name:   "shelly plus smoke alarm",
			dev:    Device{ID: "d", Format: "shelly", Base: "shellyplussmoke-a1", Kind: reading.KindSmoke},
			active: true,
			want: []Message{
				msg("shellyplussmoke-a1/status/smoke:0", `{"id":0,"alarm":true,"mute":false}`, false),
				msg("shellyplussmoke-a1/status/devicepower:0", `{"id":0,"battery":{"V":5.97,"percent":91},"external":{"present":false}}`, false),
				msg("shellyplussmoke-a1/events/rpc",
					`{"src":"shellyplussmoke-a1","dst":"shellyplussmoke-a1/events","method":"NotifyStatus","params":{"ts":`+ts+`,"smoke:0":{"id":0,"alarm":true,"mute":false}}}`, false),
			},
		},
		{
			name:   "shelly input door open",
			dev:    Device{ID: "d", Format: "shelly", Base: "shellyplusi4-b1", Kind: reading.KindDoor},
			active: true,
			want: []Message{
				msg("shellyplusi4-b1/status/input:0", `{"id":0,"state":true}`, false),
				msg("shellyplusi4-b1/events/rpc",
					`{"src":"shellyplusi4-b1","dst":"shellyplusi4-b1/events","method":"NotifyStatus","params":{"ts":`+ts+`,"input:0":{"id":0,"state":true}}}`, false),
			},
		},
		{
			name: "homie climate",
			dev:  Device{ID: "d", Format: "homie", Base: "homie/5/kitchen-climate", Kind: reading.KindTemperature},
			want: []Message{
				msg("homie/5/kitchen-climate/climate/temperature", "21.4", true),
				msg("homie/5/kitchen-climate/climate/humidity", "44.7", true),
			},
		},
		{
			name:   "homie water leak wet",
			dev:    Device{ID: "d", Format: "homie", Base: "homie/5/washroom-leak", Kind: reading.KindWaterLeak},
			active: true,
			want:   []Message{msg("homie/5/washroom-leak/sensor/water-leak", "true", true)},
		},
		{
			name: "native climate with pressure",
			dev:  Device{ID: "d", Format: "native", Base: "shelter/office", Kind: reading.KindPressure},
			want: []Message{msg("shelter/office",
				`{"time":"2026-11-30T03:00:00+08:00","battery":91,"values":{"temperature":21.4,"humidity":44.7,"pressure":1003.2}}`, false)},
		},
		{
			name:   "native door open",
			dev:    Device{ID: "d", Format: "native", Base: "shelter/ward-door", Kind: reading.KindDoor},
			active: true,
			want: []Message{msg("shelter/ward-door",
				`{"time":"2026-11-30T03:00:00+08:00","battery":91,"values":{"door":true}}`, false)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.dev.Validate(); err != nil {
				t.Fatal(err)
			}
			st := testState()
			st.Active = tt.active
			assertMessages(t, Report(tt.dev, st, testNow, testLoc), tt.want)
		})
	}
}

func assertMessages(t *testing.T, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d:\n%s", len(got), len(want), dump(got))
	}
	for i := range want {
		if got[i].Topic != want[i].Topic || string(got[i].Payload) != string(want[i].Payload) || got[i].Retained != want[i].Retained {
			t.Errorf("message %d:\n got  %s %s retained=%v\n want %s %s retained=%v",
				i, got[i].Topic, got[i].Payload, got[i].Retained, want[i].Topic, want[i].Payload, want[i].Retained)
		}
	}
}

func dump(msgs []Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "  %s %s retained=%v\n", m.Topic, m.Payload, m.Retained)
	}
	return b.String()
}

func TestAvailabilityMessages(t *testing.T) {
	tests := []struct {
		dev      Device
		birth    []Message
		will     Message
		shutdown Message
	}{
		{
			dev:      Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/kitchen/smoke", Kind: reading.KindSmoke},
			birth:    []Message{msg("zigbee2mqtt/kitchen/smoke/availability", `{"state":"online"}`, true)},
			will:     msg("zigbee2mqtt/kitchen/smoke/availability", `{"state":"offline"}`, true),
			shutdown: msg("zigbee2mqtt/kitchen/smoke/availability", `{"state":"offline"}`, true),
		},
		{
			dev:      Device{ID: "d", Format: "tasmota", Base: "tasmota_A1B2C3", Kind: reading.KindTemperature},
			birth:    []Message{msg("tele/tasmota_A1B2C3/LWT", "Online", true)},
			will:     msg("tele/tasmota_A1B2C3/LWT", "Offline", true),
			shutdown: msg("tele/tasmota_A1B2C3/LWT", "Offline", true),
		},
		{
			dev:      Device{ID: "d", Format: "esphome", Base: "shelter/dorm-3-climate", Kind: reading.KindTemperature},
			birth:    []Message{msg("shelter/dorm-3-climate/status", "online", true)},
			will:     msg("shelter/dorm-3-climate/status", "offline", true),
			shutdown: msg("shelter/dorm-3-climate/status", "offline", true),
		},
		{
			dev:      Device{ID: "d", Format: "shelly", Base: "shellyplusht-08b61fcf4a2c", Kind: reading.KindTemperature},
			birth:    []Message{msg("shellyplusht-08b61fcf4a2c/online", "true", true)},
			will:     msg("shellyplusht-08b61fcf4a2c/online", "false", true),
			shutdown: msg("shellyplusht-08b61fcf4a2c/online", "false", true),
		},
		{
			dev: Device{ID: "kitchen-climate", Format: "homie", Base: "homie/5/kitchen-climate", Kind: reading.KindTemperature},
			birth: []Message{
				msg("homie/5/kitchen-climate/$description",
					`{"homie":"5.0","version":1,"name":"kitchen-climate","nodes":{"climate":{"name":"Climate","properties":{"temperature":{"name":"Temperature","datatype":"float","unit":"°C"},"humidity":{"name":"Humidity","datatype":"float","unit":"%"}}}}}`, true),
				msg("homie/5/kitchen-climate/$state", "ready", true),
			},
			will:     msg("homie/5/kitchen-climate/$state", "lost", true),
			shutdown: msg("homie/5/kitchen-climate/$state", "disconnected", true),
		},
		{
			dev:      Device{ID: "d", Format: "native", Base: "shelter/ward-panic", Kind: reading.KindPanic},
			birth:    []Message{msg("shelter/ward-panic/status", "online", true)},
			will:     msg("shelter/ward-panic/status", "offline", true),
			shutdown: msg("shelter/ward-panic/status", "offline", true),
		},
	}
	for _, tt := range tests {
		t.Run(tt.dev.Format, func(t *testing.T) {
			assertMessages(t, Birth(tt.dev), tt.birth)
			assertMessages(t, []Message{Will(tt.dev)}, []Message{tt.will})
			assertMessages(t, []Message{Shutdown(tt.dev)}, []Message{tt.shutdown})
		})
	}
}

// TestDoorOpenIsContactFalse checks the convention that trips people up:
// Zigbee2MQTT's contact is true when the door is CLOSED.
func TestDoorOpenIsContactFalse(t *testing.T) {
	d := Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/secure-ward/door", Kind: reading.KindDoor}
	for _, open := range []bool{false, true} {
		st := testState()
		st.Active = open
		msgs := Change(d, st, testNow, testLoc)
		if len(msgs) != 1 {
			t.Fatalf("open=%v: got %d messages, want 1", open, len(msgs))
		}
		var p map[string]any
		if err := json.Unmarshal(msgs[0].Payload, &p); err != nil {
			t.Fatalf("open=%v: payload is not JSON: %v", open, err)
		}
		if p["contact"] != !open {
			t.Errorf("open=%v: contact = %v, want %v", open, p["contact"], !open)
		}
	}
}

// TestTasmotaTimeIsLocalWithoutOffset checks that Tasmota's "Time" is the
// facility's wall clock, with no zone, whatever zone now is given in.
func TestTasmotaTimeIsLocalWithoutOffset(t *testing.T) {
	d := Device{ID: "d", Format: "tasmota", Base: "tasmota_A1B2C3", Kind: reading.KindTemperature}
	for _, tt := range []struct {
		loc  *time.Location
		want string
	}{
		{testLoc, "2026-11-30T03:00:00"},
		{time.UTC, "2026-11-29T19:00:00"},
		{time.FixedZone("CET", 3600), "2026-11-29T20:00:00"},
	} {
		t.Run(tt.loc.String(), func(t *testing.T) {
			msgs := Report(d, testState(), testNow.UTC(), tt.loc)
			var p struct {
				Time   string
				BME280 map[string]float64
			}
			if err := json.Unmarshal(msgs[0].Payload, &p); err != nil {
				t.Fatal(err)
			}
			if p.Time != tt.want {
				t.Errorf("Time = %q, want %q", p.Time, tt.want)
			}
			if _, err := time.ParseInLocation("2006-01-02T15:04:05", p.Time, tt.loc); err != nil {
				t.Errorf("Time %q is not offset-free local time: %v", p.Time, err)
			}
			for _, k := range []string{"Temperature", "Humidity", "Pressure"} {
				if _, ok := p.BME280[k]; !ok {
					t.Errorf("BME280 lacks %s: %s", k, msgs[0].Payload)
				}
			}
		})
	}
}

// TestJSONPayloadsParse checks that every JSON payload of every sample
// device parses and carries the fields its format defines.
func TestJSONPayloadsParse(t *testing.T) {
	for _, d := range SampleDevices() {
		t.Run(d.ID, func(t *testing.T) {
			for _, m := range append(Birth(d), Report(d, testState(), testNow, testLoc)...) {
				if !strings.HasPrefix(string(m.Payload), "{") {
					continue // plain-string formats
				}
				var p map[string]any
				if err := json.Unmarshal(m.Payload, &p); err != nil {
					t.Fatalf("%s: invalid JSON %s: %v", m.Topic, m.Payload, err)
				}
				var want []string
				switch {
				case d.Format == "zigbee2mqtt" && strings.HasSuffix(m.Topic, "/availability"):
					want = []string{"state"}
				case d.Format == "zigbee2mqtt":
					want = []string{"battery", "linkquality", "last_seen"}
				case d.Format == "tasmota":
					want = []string{"Time"}
				case d.Format == "shelly" && strings.HasSuffix(m.Topic, "/events/rpc"):
					want = []string{"src", "dst", "method", "params"}
				case d.Format == "shelly":
					want = []string{"id"}
				case d.Format == "native":
					want = []string{"time", "battery", "values"}
					if _, err := time.Parse(time.RFC3339, p["time"].(string)); err != nil {
						t.Errorf("%s: time: %v", m.Topic, err)
					}
					values := p["values"].(map[string]any)
					for k := range values {
						if _, ok := reading.Kind(k).Known(); !ok {
							t.Errorf("%s: values key %q is not a reading kind", m.Topic, k)
						}
					}
				}
				for _, k := range want {
					if _, ok := p[k]; !ok {
						t.Errorf("%s: payload %s lacks %q", m.Topic, m.Payload, k)
					}
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Device{ID: "d", Format: "zigbee2mqtt", Base: "zigbee2mqtt/a/b", Kind: reading.KindDoor}
	tests := []struct {
		name string
		edit func(*Device)
		want string // substring of the error; "" = valid
	}{
		{"valid", func(*Device) {}, ""},
		{"empty id", func(d *Device) { d.ID = "" }, "empty id"},
		{"unknown format", func(d *Device) { d.Format = "zwave" }, `unknown format "zwave"`},
		{"empty base", func(d *Device) { d.Base = "" }, "empty base topic"},
		{"wildcard", func(d *Device) { d.Base = "zigbee2mqtt/+" }, "wildcard"},
		{"empty level", func(d *Device) { d.Base = "zigbee2mqtt//x" }, "empty level"},
		{"tasmota with slash", func(d *Device) { d.Format, d.Base = "tasmota", "tele/x" }, "%topic%"},
		{"kind not simulated", func(d *Device) { d.Kind = reading.KindCO }, `kind "co" cannot be simulated`},
		{"unknown kind", func(d *Device) { d.Kind = "vibes" }, `kind "vibes" cannot be simulated`},
		{"shelly pressure", func(d *Device) { d.Format, d.Base, d.Kind = "shelly", "shellyplusht-1", reading.KindPressure }, "no pressure sensor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.edit(&d)
			err := d.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSampleDevicesAreValid(t *testing.T) {
	opts := Options{Broker: "tcp://127.0.0.1:1883", Devices: SampleDevices()}
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	formats := map[string]bool{}
	for _, d := range opts.Devices {
		formats[d.Format] = true
	}
	for _, f := range []string{"native", "zigbee2mqtt", "tasmota", "esphome", "shelly", "homie"} {
		if !formats[f] {
			t.Errorf("no sample device speaks %s", f)
		}
	}
}

func BenchmarkReport(b *testing.B) {
	seen := map[string]bool{}
	for _, d := range SampleDevices() {
		if seen[d.Format] {
			continue
		}
		seen[d.Format] = true
		b.Run("format="+d.Format, func(b *testing.B) {
			b.ReportAllocs()
			st := testState()
			n := 0
			for b.Loop() {
				n += len(Report(d, st, testNow, testLoc))
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
