package sensorsim

import (
	"math"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// everyCombination returns a device for every format and simulated kind.
func everyCombination() []Device {
	bases := map[string]string{
		formatZigbee2MQTT: "zigbee2mqtt/sim/",
		formatTasmota:     "tasmota_",
		formatESPHome:     "shelter/",
		formatShelly:      "shellyplus-",
		formatHomie:       "homie/5/",
		formatNative:      "shelter/",
	}
	kinds := []reading.Kind{
		reading.KindTemperature, reading.KindHumidity, reading.KindPressure,
		reading.KindSmoke, reading.KindDoor, reading.KindMotion, reading.KindWaterLeak, reading.KindPanic,
	}
	var out []Device
	for _, f := range []string{formatNative, formatZigbee2MQTT, formatTasmota, formatESPHome, formatShelly, formatHomie} {
		for _, k := range kinds {
			d := Device{ID: f + "-" + homieID(string(k)), Format: f, Base: bases[f] + homieID(string(k)), Kind: k}
			if d.Validate() == nil {
				out = append(out, d)
			}
		}
	}
	return out
}

// TestGatewayDecodesEverything feeds every message the simulator can produce
// (birth, reports with the boolean off and on, will, shutdown; every format
// and kind) through the gateway's own decoders: the simulator is only useful
// if the gateway understands it as it understands the real firmware.
func TestGatewayDecodesEverything(t *testing.T) {
	decoders := decode.All()
	for _, d := range everyCombination() {
		t.Run(d.ID, func(t *testing.T) {
			dec, ok := decoders[d.Format]
			if !ok {
				t.Fatalf("no decoder for format %q", d.Format)
			}
			dd := decode.Device{ID: d.ID, Kind: d.Kind, Base: d.Base, Location: testLoc}
			belongs := func(topic string) bool {
				for _, p := range dec.Prefixes(d.Base) {
					if topic == p || len(topic) > len(p) && topic[:len(p)+1] == p+"/" {
						return true
					}
				}
				return false
			}
			decodeAll := func(msgs []Message) []decode.Result {
				t.Helper()
				var out []decode.Result
				for _, m := range msgs {
					if !belongs(m.Topic) {
						t.Errorf("%s is not under the device's prefixes %q", m.Topic, dec.Prefixes(d.Base))
						continue
					}
					res, err := dec.Decode(dd, m.Topic, m.Payload)
					if err != nil {
						t.Errorf("decode %s %s: %v", m.Topic, m.Payload, err)
						continue
					}
					out = append(out, res)
				}
				return out
			}

			st := testState()
			decodeAll(Birth(d))
			decodeAll([]Message{Will(d), Shutdown(d)})
			off := decodeAll(Report(d, st, testNow, testLoc))
			st.Active = true
			on := decodeAll(Change(d, st, testNow, testLoc))

			if isClimate(d.Kind) {
				if v, ok := find(off, reading.KindTemperature); !ok || math.Abs(v.Num-st.TempC) > 0.05 {
					t.Errorf("temperature decoded as %v (found %v), want about %.2f", v, ok, st.TempC)
				}
				if v, ok := find(off, reading.KindHumidity); !ok || math.Abs(v.Num-st.HumidityPct) > 0.05 {
					t.Errorf("humidity decoded as %v (found %v), want about %.1f", v, ok, st.HumidityPct)
				}
				return
			}
			// The Zigbee SOS button's "action":"emergency" is an event: an
			// idle button reports only its battery.
			if v, ok := find(off, d.Kind); d.Kind == reading.KindPanic && d.Format == formatZigbee2MQTT {
				if ok {
					t.Errorf("idle Zigbee SOS button decoded as panic %v, want no panic reading", v)
				}
			} else if !ok || v.Bool {
				t.Errorf("idle %s decoded as %v (found %v), want false", d.Kind, v, ok)
			}
			if v, ok := find(on, d.Kind); !ok || !v.Bool {
				t.Errorf("active %s decoded as %v (found %v), want true", d.Kind, v, ok)
			}
		})
	}
}

// TestGatewayDecodesDeviceTime checks that the device clock in a payload
// comes out as the simulated instant, time zones included.
func TestGatewayDecodesDeviceTime(t *testing.T) {
	decoders := decode.All()
	for _, d := range everyCombination() {
		for _, m := range Report(d, testState(), testNow, testLoc) {
			res, err := decoders[d.Format].Decode(decode.Device{ID: d.ID, Kind: d.Kind, Base: d.Base, Location: testLoc}, m.Topic, m.Payload)
			if err != nil || res.Time.IsZero() {
				continue
			}
			if diff := res.Time.Sub(testNow).Abs(); diff >= time.Second {
				t.Errorf("%s %s: device time %v, want %v", d.ID, m.Topic, res.Time, testNow)
			}
		}
	}
}

func find(results []decode.Result, k reading.Kind) (reading.Value, bool) {
	for _, r := range results {
		for _, o := range r.Observations {
			if o.Kind == k {
				return o.Value, true
			}
		}
	}
	return reading.Value{}, false
}
