package decode

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// decodeCase is one row of a format's table: a real (or deliberately
// broken) message and exactly what the decoder must make of it.
type decodeCase struct {
	name    string
	dev     *Device // nil: the format's default device
	topic   string
	payload string
	want    Result
	reason  string // non-empty: the message must be rejected with this reason
	// channels: compare every observation's Channel too (cases written
	// before channels existed leave it out).
	channels bool
}

func num(k reading.Kind, v float64) Observation {
	return Observation{Kind: k, Value: reading.Number(v)}
}
func flag(k reading.Kind, v bool) Observation { return Observation{Kind: k, Value: reading.Bool(v)} }

// on puts an observation on a channel.
func on(ch string, o Observation) Observation { o.Channel = ch; return o }

// fault is a sensor_fault observation of channel ch.
func fault(ch string) Observation { return on(ch, flag(reading.KindSensorFault, true)) }

var ign = Result{Ignored: true}

func rej(reason string) []error          { return []error{&Error{Reason: reason}} }
func ptr(v float64) *float64             { return &v }
func obs(o ...Observation) []Observation { return o }

func online(v bool) Result {
	return Result{Observations: obs(flag(reading.KindAvailability, v))}
}

var hb = Result{Heartbeat: true}

// runCases decodes every case and compares the result exactly (numbers to
// 1e-9), and checks the invariants every successful result must hold.
func runCases(t *testing.T, d Decoder, def Device, cases []decodeCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			dev := def
			if c.dev != nil {
				dev = *c.dev
			}
			got, err := d.Decode(dev, c.topic, []byte(c.payload))
			if c.reason != "" {
				if err == nil {
					t.Fatalf("Decode(%q, %q) = %+v, want error with reason %q", c.topic, c.payload, got, c.reason)
				}
				if r := ReasonOf(err); r != c.reason {
					t.Fatalf("Decode(%q, %q) reason = %q (%v), want %q", c.topic, c.payload, r, err, c.reason)
				}
				if !resultEqual(got, Result{}) {
					t.Errorf("Decode returned %+v alongside an error, want the zero Result", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%q, %q): %v", c.topic, c.payload, err)
			}
			if !resultEqual(got, c.want) || (c.channels && !channelsEqual(got, c.want)) {
				t.Fatalf("Decode(%q, %q)\n got: %s\nwant: %s", c.topic, c.payload, fmtResult(got), fmtResult(c.want))
			}
			if msg := invariantViolation(got); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

func approx(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func ptrEqual(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return approx(*a, *b)
}

func resultEqual(a, b Result) bool {
	if len(a.Rejected) != len(b.Rejected) {
		return false
	}
	for i := range a.Rejected {
		if ReasonOf(a.Rejected[i]) != ReasonOf(b.Rejected[i]) {
			return false
		}
	}
	if len(a.Observations) != len(b.Observations) || a.Heartbeat != b.Heartbeat || a.Ignored != b.Ignored || a.Removed != b.Removed ||
		!a.Time.Equal(b.Time) || !ptrEqual(a.Battery, b.Battery) || !ptrEqual(a.LinkQuality, b.LinkQuality) {
		return false
	}
	for i := range a.Observations {
		x, y := a.Observations[i], b.Observations[i]
		if x.Kind != y.Kind || x.Value.Type != y.Value.Type || x.Value.Bool != y.Value.Bool ||
			x.Value.State != y.Value.State || !approx(x.Value.Num, y.Value.Num) {
			return false
		}
	}
	return true
}

func channelsEqual(a, b Result) bool {
	for i := range a.Observations {
		if a.Observations[i].Channel != b.Observations[i].Channel {
			return false
		}
	}
	return true
}

func fmtResult(r Result) string {
	var sb strings.Builder
	sb.WriteString("{obs:[")
	for i, o := range r.Observations {
		if i > 0 {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%s=%v", o.Kind, o.Value)
		if o.Channel != "" {
			fmt.Fprintf(&sb, "@%s", o.Channel)
		}
	}
	sb.WriteString("]")
	if !r.Time.IsZero() {
		fmt.Fprintf(&sb, " time:%s", r.Time.UTC().Format(time.RFC3339Nano))
	}
	if r.Battery != nil {
		fmt.Fprintf(&sb, " battery:%g", *r.Battery)
	}
	if r.LinkQuality != nil {
		fmt.Fprintf(&sb, " lq:%g", *r.LinkQuality)
	}
	if r.Heartbeat {
		sb.WriteString(" heartbeat")
	}
	if r.Ignored {
		sb.WriteString(" ignored")
	}
	if r.Removed {
		sb.WriteString(" removed")
	}
	for _, err := range r.Rejected {
		fmt.Fprintf(&sb, " rejected:%s", ReasonOf(err))
	}
	sb.WriteString("}")
	return sb.String()
}

var allReasons = []string{
	ReasonMalformed, ReasonWrongType, ReasonNotFinite, ReasonOutOfRange,
	ReasonInvalidUTF8, ReasonUnknownTopic, ReasonEmpty, ReasonBadTime,
}

// invariantViolation returns what is wrong with a successful Result, or "".
// These are the promises the store, rules and forwarder rely on.
func invariantViolation(r Result) string {
	others := 0
	for _, o := range r.Observations {
		t, ok := o.Kind.Known()
		if !ok {
			return fmt.Sprintf("observation of unknown kind %q", o.Kind)
		}
		if o.Value.Type != t {
			return fmt.Sprintf("%s has a %s value, want %s", o.Kind, o.Value.Type, t)
		}
		if o.Kind != reading.KindBattery {
			others++
		}
		if t == reading.TypeNumber {
			v := o.Value.Num
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Sprintf("%s is %v", o.Kind, v)
			}
			if lo, hi, ok := plausibleRange(o.Kind); ok && (v < lo || v > hi) {
				return fmt.Sprintf("%s %g outside %g..%g", o.Kind, v, lo, hi)
			}
		}
	}
	if others > 0 && others != len(r.Observations) {
		return "battery observation next to other readings (it belongs in the Battery attribute)"
	}
	if others == 0 && len(r.Observations) > 0 && r.Battery == nil {
		return "battery-only message without the Battery attribute"
	}
	if r.Ignored || r.Removed {
		if r.Heartbeat || len(r.Observations) > 0 || r.Ignored == r.Removed {
			return fmt.Sprintf("Ignored=%v Removed=%v with Heartbeat=%v and %d observations", r.Ignored, r.Removed, r.Heartbeat, len(r.Observations))
		}
		return ""
	}
	if r.Heartbeat != (len(r.Observations) == 0) {
		return fmt.Sprintf("Heartbeat=%v with %d observations", r.Heartbeat, len(r.Observations))
	}
	if r.Battery != nil && (math.IsNaN(*r.Battery) || *r.Battery < 0 || *r.Battery > 100) {
		return fmt.Sprintf("battery attribute %v", *r.Battery)
	}
	if r.LinkQuality != nil && (math.IsNaN(*r.LinkQuality) || *r.LinkQuality < 0 || *r.LinkQuality > 255) {
		return fmt.Sprintf("link quality attribute %v", *r.LinkQuality)
	}
	if !slices.IsSortedFunc(r.Observations, compareObservations) {
		return "observations not sorted"
	}
	return ""
}

// fuzzDecode is the body of every fuzz target: whatever the input, the
// decoder must not panic, must return either a valid Result or an *Error
// with a known reason (never both), and must be deterministic.
func fuzzDecode(t *testing.T, d Decoder, dev Device, topic string, payload []byte) {
	got, err := d.Decode(dev, topic, payload)
	if err != nil {
		if r := ReasonOf(err); !slices.Contains(allReasons, r) {
			t.Fatalf("Decode(%q, %q): reason %q (%v) is not a Reason constant", topic, payload, r, err)
		}
		if !resultEqual(got, Result{}) {
			t.Fatalf("Decode(%q, %q) returned %s alongside error %v", topic, payload, fmtResult(got), err)
		}
		return
	}
	if msg := invariantViolation(got); msg != "" {
		t.Fatalf("Decode(%q, %q) = %s: %s", topic, payload, fmtResult(got), msg)
	}
	again, err := d.Decode(dev, topic, payload)
	if err != nil || !resultEqual(got, again) {
		t.Fatalf("Decode(%q, %q) is not deterministic: %s then %s, %v", topic, payload, fmtResult(got), fmtResult(again), err)
	}
}

// seedFuzz adds every table case to the corpus, with and without Invert.
func seedFuzz(f *testing.F, cases []decodeCase) {
	for _, c := range cases {
		f.Add(c.topic, []byte(c.payload), false)
		if c.dev != nil && c.dev.Invert {
			f.Add(c.topic, []byte(c.payload), true)
		}
	}
}

func TestAll(t *testing.T) {
	want := []string{"esphome", "homie", "native", "openmqttgateway", "shelly", "shellygen1", "tasmota", "zigbee2mqtt", "zigbee2tasmota"}
	m := All()
	var got []string
	for name, d := range m {
		if d.Format() != name {
			t.Errorf("All()[%q].Format() = %q", name, d.Format())
		}
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("All() formats = %v, want %v", got, want)
	}
	delete(m, "native")
	if _, ok := All()["native"]; !ok {
		t.Fatal("All() returns a shared map: deleting from one result changed the next")
	}
}

func TestPrefixes(t *testing.T) {
	cases := []struct {
		d    Decoder
		base string
		want []string
	}{
		{Native{}, "shelterwatch/dorm3-temp", []string{"shelterwatch/dorm3-temp"}},
		{Zigbee2MQTT{}, "zigbee2mqtt/hall/smoke", []string{"zigbee2mqtt/hall/smoke"}},
		{Tasmota{}, "tasmota_A1B2C3", []string{"tele/tasmota_A1B2C3", "stat/tasmota_A1B2C3"}},
		{ESPHome{}, "dorm3-node", []string{"dorm3-node"}},
		{Shelly{}, "shellyplusht-b8d61a8b17cc", []string{"shellyplusht-b8d61a8b17cc"}},
		{Homie{}, "homie/5/dorm3-sensor", []string{"homie/5/dorm3-sensor"}},
	}
	for _, c := range cases {
		t.Run(c.d.Format(), func(t *testing.T) {
			if got := c.d.Prefixes(c.base); !slices.Equal(got, c.want) {
				t.Fatalf("Prefixes(%q) = %q, want %q", c.base, got, c.want)
			}
		})
	}
}

func TestInferKind(t *testing.T) {
	cases := []struct {
		name string
		kind reading.Kind
		inf  inference
	}{
		{"dorm3_temperature", reading.KindTemperature, inferFound},
		{"probe_temp", reading.KindTemperature, inferFound},
		{"water_temperature", reading.KindTemperature, inferFound},
		{"template_value", "", inferNone},
		{"humidity", reading.KindHumidity, inferFound},
		{"bme280_pressure", reading.KindPressure, inferFound},
		{"battery_level", reading.KindBattery, inferFound},
		{"battery-low", reading.KindBatteryLow, inferFound},
		{"battery_voltage", "", inferOther},
		{"co", reading.KindCO, inferFound},
		{"carbon_monoxide", reading.KindCO, inferFound},
		{"co2", "", inferOther},
		{"scd40_co2", "", inferOther},
		{"kitchen_smoke", reading.KindSmoke, inferFound},
		{"front_door", reading.KindDoor, inferFound},
		{"indoor_motion", reading.KindMotion, inferFound},
		{"indoor", "", inferNone},
		{"window_contact", reading.KindDoor, inferFound},
		{"door_tamper", reading.KindTamper, inferFound},
		{"door_status", reading.KindDoor, inferFound},
		{"status", "", inferOther},
		{"pir", reading.KindMotion, inferFound},
		{"occupancy", reading.KindMotion, inferFound},
		{"water-leak", reading.KindWaterLeak, inferFound},
		{"sos_button", reading.KindPanic, inferFound},
		{"panic", reading.KindPanic, inferFound},
		{"internal_temperature", "", inferOther},
		{"uptime", "", inferOther},
		{"wifi_signal", "", inferOther},
		{"", "", inferNone},
		{"Dorm3 Temperature", reading.KindTemperature, inferFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, inf := inferKind(c.name)
			if k != c.kind || inf != c.inf {
				t.Fatalf("inferKind(%q) = %q, %d; want %q, %d", c.name, k, inf, c.kind, c.inf)
			}
		})
	}
}

func TestErrorsNameTheField(t *testing.T) {
	// A rejected message is debugged from its error text, so the text must
	// say which field was wrong.
	cases := []struct {
		d       Decoder
		dev     Device
		topic   string
		payload string
		field   string
	}{
		{Native{}, nativeDev, "shelterwatch/dorm3-temp", `{"values":{},"colour":"red"}`, "colour"},
		{Native{}, nativeDev, "shelterwatch/dorm3-temp", `{"values":{"temprature":21}}`, "temprature"},
		{Native{}, nativeDev, "shelterwatch/dorm3-temp", `{"values":{"smoke":"no"}}`, "values.smoke"},
		{Zigbee2MQTT{}, z2mDev, "zigbee2mqtt/hall/smoke", `{"smoke":"yes"}`, "smoke"},
		{Zigbee2MQTT{}, z2mDev, "zigbee2mqtt/hall/smoke", `{"temperature":"hot"}`, "temperature"},
		{Tasmota{}, tasmotaDev, "tele/tasmota_A1B2C3/SENSOR", `{"BME280":{"Temperature":"hot"}}`, "BME280.Temperature"},
		{Shelly{}, shellyDev, "shellyplusht-b8d61a8b17cc/status/temperature:0", `{"id":0,"tC":"hot"}`, "temperature:0.tC"},
	}
	for _, c := range cases {
		t.Run(c.d.Format()+"/"+c.field, func(t *testing.T) {
			_, err := c.d.Decode(c.dev, c.topic, []byte(c.payload))
			if err == nil {
				t.Fatalf("Decode(%q) succeeded", c.payload)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %q does not name field %q", err, c.field)
			}
		})
	}
}
