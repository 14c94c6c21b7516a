package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// scanCases are payloads the one-pass scanner must read as encoding/json
// does, or leave to it (the seed corpus of FuzzScanAgreesWithEncodingJSON).
var scanCases = []string{
	`{"temperature":21.5,"humidity":40,"battery":97,"linkquality":120}`,
	` { "smoke" : true , "battery_low" : false } `,
	"{\n\t\"contact\": false\r\n}",
	`{}`,
	`{"a":null,"smoke":null}`,
	`{"smoke":true,"smoke":false}`,
	`{"Smoke":true}`,
	`{"ſmoke":true}`,
	`{"sm\u006fke":true}`,
	`{"action":"single","x":"a\"b\\c\/d\b\f\n\r\t\u00e9"}`,
	`{"update":{"state":"idle","installed_version":-1,"x":[1,2.5e3,-0.0,1E+2,{"y":[]}]}}`,
	`{"temperature":01}`, `{"temperature":1.}`, `{"temperature":.5}`, `{"temperature":-}`, `{"temperature":1e}`,
	`{"temperature":+1}`, `{"temperature":NaN}`, `{"smoke":tru}`, `{"smoke":True}`, `{"smoke":nul}`,
	`{"action":"unterminated}`, `{"action":"bad \x escape"}`, `{"action":"\u12"}`, "{\"action\":\"tab\tin string\"}",
	`{"smoke":true,}`, `{,"smoke":true}`, `{"smoke" true}`, `{"smoke":true}}`, `{"smoke":true} x`, `{"smoke":true`,
	`[{"smoke":true}]`, `"smoke"`, `42`, `null`, ``, `   `, `{"x":[1,2}`, `{"x":{"y" 1}}`, `{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
}

// FuzzScanAgreesWithEncodingJSON: whenever scan answers, encoding/json
// accepts the payload and gives every field the same bytes; a payload
// encoding/json refuses is never answered by scan.
func FuzzScanAgreesWithEncodingJSON(f *testing.F) {
	for _, c := range scanCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var fast z2mState
		ok := fast.scan(payload)
		var want z2mState
		err := json.Unmarshal(payload, &want)
		if !ok {
			return // encoding/json decides, as in Decode
		}
		if err != nil {
			t.Fatalf("scan accepted %q, encoding/json refuses it: %v", payload, err)
		}
		for _, name := range z2mFieldNames {
			if g, w := *fast.field(name), *want.field(name); !bytes.Equal(g, w) || (g == nil) != (w == nil) {
				t.Fatalf("%q: field %s: scan %q, encoding/json %q", payload, name, g, w)
			}
		}
	})
}

// z2mFieldNames are the JSON names of z2mState's fields, from its tags,
// so that a field missing from z2mState.field shows here as a nil pointer.
var z2mFieldNames = func() []string {
	var names []string
	t := reflect.TypeFor[z2mState]()
	for i := range t.NumField() {
		names = append(names, t.Field(i).Tag.Get("json"))
	}
	return names
}()

// TestScanTakesTheCommonPayloads: the payloads Zigbee2MQTT sends are read
// by the one pass, not handed back to encoding/json.
func TestScanTakesTheCommonPayloads(t *testing.T) {
	for _, c := range scanCases[:11] {
		if c == `{"Smoke":true}` || c == `{"ſmoke":true}` || c == `{"sm\u006fke":true}` {
			continue
		}
		var s z2mState
		if !s.scan([]byte(c)) {
			t.Errorf("scan left %s to encoding/json", c)
		}
	}
	for _, c := range []string{`{"Smoke":true}`, `{"ſmoke":true}`, `{"sm\u006fke":true}`, `{"smoke":true`, `[1]`} {
		var s z2mState
		if s.scan([]byte(c)) {
			t.Errorf("scan answered %s, which it must leave to encoding/json", c)
		}
	}
}

// FuzzNativeAgreesWithEncodingJSON: a readings payload read in one pass
// decodes to exactly what encoding/json alone makes of it: the same
// observations, to the bit, and the same error texts.
func FuzzNativeAgreesWithEncodingJSON(f *testing.F) {
	for _, c := range nativeCases {
		f.Add([]byte(c.payload))
	}
	for _, c := range scanCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		agree(t, Native{}, Native{encodingJSON: true}, nativeDev, nativeTopic, payload)
	})
}

// FuzzTasmotaAgreesWithEncodingJSON is FuzzNativeAgreesWithEncodingJSON
// for the Tasmota messages read as JSON objects (msg picks which).
func FuzzTasmotaAgreesWithEncodingJSON(f *testing.F) {
	for _, c := range tasmotaCases {
		for msg := range uint8(len(tasmotaJSONTopics)) {
			f.Add(msg, false, []byte(c.payload))
		}
	}
	for _, c := range scanCases {
		f.Add(uint8(0), false, []byte(c))
	}
	f.Add(uint8(0), true, []byte(`{"Switch1":"ON","Switch2":"OFF"}`))
	f.Fuzz(func(t *testing.T, msg uint8, invert bool, payload []byte) {
		dev := tasmotaDev
		dev.Invert = invert
		dev.Location = cet
		dev.Channels = map[string]Channel{"Switch2": {Kind: reading.KindMotion, Invert: true}}
		topic := tasmotaJSONTopics[int(msg)%len(tasmotaJSONTopics)]
		agree(t, Tasmota{}, Tasmota{encodingJSON: true}, dev, topic, payload)
	})
}

var tasmotaJSONTopics = []string{tasmotaSensorTopic, "tele/tasmota_A1B2C3/STATE", tasmotaResultTopic}

// agree fails unless fast and reference decode the message the same way.
func agree(t *testing.T, fast, reference Decoder, dev Device, topic string, payload []byte) {
	t.Helper()
	got, want := exactResult(fast.Decode(dev, topic, payload)), exactResult(reference.Decode(dev, topic, payload))
	if got != want {
		t.Fatalf("%s %q:\none pass:\n%s\nencoding/json:\n%s", topic, payload, got, want)
	}
}

// exactResult spells out everything a decoder returns, numbers to the bit
// and errors word for word.
func exactResult(r Result, err error) string {
	var sb strings.Builder
	if err != nil {
		fmt.Fprintf(&sb, "error %s: %v\n", ReasonOf(err), err)
	}
	for _, o := range r.Observations {
		fmt.Fprintf(&sb, "%s@%q %#v\n", o.Kind, o.Channel, o.Value)
	}
	num := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	fmt.Fprintf(&sb, "time %s %s, battery %s, lq %s, heartbeat %t, ignored %t, removed %t\n",
		r.Time.Format(time.RFC3339Nano), r.Time.Location(), num(r.Battery), num(r.LinkQuality), r.Heartbeat, r.Ignored, r.Removed)
	for _, e := range r.Rejected {
		fmt.Fprintf(&sb, "rejected %s: %v\n", ReasonOf(e), e)
	}
	return sb.String()
}

// TestOnePassTakesFirmwarePayloads: what the firmware sends, as the
// tables and the simulator have it, is read in one pass, not handed to
// encoding/json.
func TestOnePassTakesFirmwarePayloads(t *testing.T) {
	var msgs []benchCase
	for _, c := range nativeCases {
		if c.reason == "" && c.topic == nativeTopic {
			msgs = append(msgs, benchCase{c.name, Native{}, nativeDev, c.topic, []byte(c.payload)})
		}
	}
	for _, c := range tasmotaCases {
		if c.reason == "" && slices.Contains(tasmotaJSONTopics, c.topic) {
			msgs = append(msgs, benchCase{c.name, Tasmota{}, tasmotaDev, c.topic, []byte(c.payload)})
		}
	}
	msgs = append(msgs, simCases()...)
	var skipped json.RawMessage
	field := rawField{"x", &skipped}
	for _, m := range msgs {
		ok := true
		switch {
		case m.d.Format() == nativeFormat:
			_, _, ok = scanNative(m.payload, nil)
		case strings.HasSuffix(m.topic, "/STATE"):
			var s tasmotaState
			ok = scanStruct(m.payload, rawField{"Wifi", &s.Wifi}) && (absent(s.Wifi) || scanStruct(s.Wifi, field))
		default: // SENSOR and RESULT: a map of sensors or switches
			var ms []jsonMember
			ms, ok = scanMap(m.payload, nil)
			for _, mb := range ms {
				if mb.value[0] == '{' {
					ok = ok && scanStruct(mb.value, field)
				}
			}
		}
		if !ok {
			t.Errorf("%s: %s %s was left to encoding/json", m.name, m.topic, m.payload)
		}
	}
}

// TestInternKindKnowsEveryKind: every kind a payload may name becomes its
// constant without a copy, so a new kind in reading must be added to
// internKind too.
func TestInternKindKnowsEveryKind(t *testing.T) {
	for _, k := range append(reading.Kinds(), reading.KindFault, reading.KindReach) {
		key := []byte(k)
		var got reading.Kind
		if n := testing.AllocsPerRun(10, func() { got = internKind(key) }); n != 0 || got != k {
			t.Errorf("internKind(%q) = %q with %v allocations, want the constant", key, got, n)
		}
	}
}
