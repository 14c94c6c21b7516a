package decode

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
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
