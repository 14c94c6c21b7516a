package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// t0 is the receive time of every test message unless a case says otherwise.
var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

const (
	facilityID = "shelter-north"
	maxPayload = 256 // bytes; small so that oversized dead letters are kept whole
)

// testDevices covers every format, nested native bases ("sw/a" inside
// "sw/a/b"), a Zigbee2MQTT friendly name with '/' and a Tasmota device
// whose one base owns two prefixes.
func testDevices() []facility.Device {
	return []facility.Device{
		{ID: "dorm3-temp", Zone: "dorm3", Kind: reading.KindTemperature, Format: "native", Topic: "sw/a"},
		{ID: "dorm3-door", Zone: "dorm3", Kind: reading.KindDoor, Format: "native", Topic: "sw/a/b"},
		{ID: "kitchen-smoke", Zone: "kitchen", Kind: reading.KindSmoke, Format: "zigbee2mqtt", Topic: "zigbee2mqtt/kitchen/smoke"},
		{ID: "hall-door", Zone: "hall", Kind: reading.KindDoor, Format: "tasmota", Topic: "x"},
		{ID: "dorm3-node", Zone: "dorm3", Kind: reading.KindTemperature, Format: "esphome", Topic: "dorm3-node"},
		{ID: "dorm3-ht", Zone: "dorm3", Kind: reading.KindTemperature, Format: "shelly", Topic: "shellyplusht-b8d61a8b17cc"},
		{ID: "dorm3-sensor", Zone: "dorm3", Kind: reading.KindTemperature, Format: "homie", Topic: "homie/5/dorm3-sensor"},
	}
}

var testIgnore = []string{"zigbee2mqtt/bridge", "homeassistant"}

func deviceByID(t testing.TB, id string) facility.Device {
	t.Helper()
	for _, d := range testDevices() {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no test device %q", id)
	return facility.Device{}
}

// harness is a pipeline wired to a real store, the real decoders, a device
// state tracker and a fresh metrics registry.
type harness struct {
	p     *pipeline.Pipeline
	st    *store.Store
	state *devstate.Tracker
	reg   *prometheus.Registry
}

func newHarness(t testing.TB, modify func(*pipeline.Options)) *harness {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	devs := testDevices()
	states := make([]facility.Device, 0, len(devs))
	for _, d := range devs {
		states = append(states, facility.Device{ID: d.ID, Zone: d.Zone, Kind: d.Kind, OfflineAfter: time.Hour})
	}
	h := &harness{st: st, state: devstate.New(states, func() time.Time { return t0 }), reg: prometheus.NewRegistry()}
	opts := pipeline.Options{
		Facility:     facilityID,
		Devices:      devs,
		Decoders:     decode.All(),
		Store:        st,
		State:        h.state,
		MaxPayload:   maxPayload,
		MaxClockSkew: 10 * time.Minute,
		Ignore:       testIgnore,
	}
	if modify != nil {
		modify(&opts)
	}
	h.p, err = pipeline.New(opts)
	if err != nil {
		t.Fatalf("pipeline.New: %v", err)
	}
	if err := h.p.Register(h.reg); err != nil {
		t.Fatalf("register metrics: %v", err)
	}
	return h
}

// handle delivers one message received at t0 and fails the test if the
// pipeline says it must not be acknowledged.
func (h *harness) handle(t testing.TB, topic, payload string) {
	t.Helper()
	if err := h.p.Handle(context.Background(), pipeline.Message{Topic: topic, Payload: []byte(payload), Received: t0, Client: "test-client"}); err != nil {
		t.Fatalf("Handle(%q, %q) = %v, want nil (message acknowledged)", topic, payload, err)
	}
}

// stored returns every reading in the store's log.
func (h *harness) stored(t testing.TB) []reading.Reading {
	t.Helper()
	rs, err := h.st.ReadLog(0, 100000)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	return rs
}

// metric returns the value of a counter (or the sample count of a
// histogram) gathered from reg, summed over every series whose labels
// include the given name/value pairs; 0 when there is none.
func metric(t testing.TB, reg prometheus.Gatherer, name string, labelPairs ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labelPairs); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labelPairs[i] && l.GetValue() == labelPairs[i+1])
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// waitDeadLetters polls the store until it holds at least n dead letters
// (they are written asynchronously) and returns them, newest first.
func waitDeadLetters(t testing.TB, st *store.Store, n int) []store.DeadLetter {
	t.Helper()
	const limit = 5 * time.Second
	deadline := time.Now().Add(limit)
	for {
		dls, err := st.DeadLetters(1000)
		if err != nil {
			t.Fatalf("list dead letters: %v", err)
		}
		if len(dls) >= n {
			return dls
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the store holds %d dead letters, want %d: %+v", limit, len(dls), n, dls)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// barrier dead-letters a marker message and waits for it. The store writes
// dead letters in the order they were queued, so once the marker is there
// every dead letter queued before it is too: the returned list (without the
// marker) is complete.
func (h *harness) barrier(t testing.TB) []store.DeadLetter {
	t.Helper()
	const marker = "no-such-device/barrier"
	h.handle(t, marker, "marker")
	const limit = 5 * time.Second
	deadline := time.Now().Add(limit)
	for {
		dls, err := h.st.DeadLetters(1000)
		if err != nil {
			t.Fatalf("list dead letters: %v", err)
		}
		if len(dls) > 0 && dls[0].Topic == marker {
			return dls[1:]
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the marker dead letter is not in the store: %+v", limit, dls)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// jsonRoundTrip returns s as it comes back from encoding/json.
func jsonRoundTrip(t testing.TB, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type want struct {
	device string
	kind   reading.Kind
	value  reading.Value
}

func num(device string, k reading.Kind, v float64) want { return want{device, k, reading.Number(v)} }
func flag(device string, k reading.Kind, v bool) want   { return want{device, k, reading.Bool(v)} }

// checkStored compares the store's readings (device, zone, kind, value)
// with ws, in log order.
func checkStored(t *testing.T, h *harness, ws []want) {
	t.Helper()
	got := h.stored(t)
	zones := map[string]string{}
	for _, d := range testDevices() {
		zones[d.ID] = d.Zone
	}
	var gotW []want
	for _, r := range got {
		gotW = append(gotW, want{r.Device, r.Kind, r.Value})
		if r.Zone != zones[r.Device] {
			t.Errorf("reading of %s has zone %q, want %q", r.Device, r.Zone, zones[r.Device])
		}
	}
	if !slices.Equal(gotW, ws) {
		t.Fatalf("stored readings:\n got  %+v\n want %+v", gotW, ws)
	}
}

// msgCase is one message and what the pipeline must make of it: the
// readings stored, or the reason and device of the dead letter.
type msgCase struct {
	name    string
	topic   string
	payload string
	stored  []want
	reason  string // dead-letter reason; "" when the message is accepted
	device  string // device on the dead letter
}

var routingCases = []msgCase{
	{name: "topic equal to a prefix", topic: "sw/a", payload: `{"values":{"temperature":21.5}}`,
		stored: []want{num("dorm3-temp", reading.KindTemperature, 21.5)}},
	{name: "topic below a prefix", topic: "sw/a/status", payload: "offline",
		stored: []want{flag("dorm3-temp", reading.KindAvailability, false)}},
	{name: "longer prefix wins on its own topic", topic: "sw/a/b", payload: `{"values":{"door":true}}`,
		stored: []want{flag("dorm3-door", reading.KindDoor, true)}},
	{name: "longer prefix wins below it", topic: "sw/a/b/status", payload: "online",
		stored: []want{flag("dorm3-door", reading.KindAvailability, true)}},
	{name: "sibling of the longer prefix belongs to the shorter", topic: "sw/a/c", payload: `{"values":{"door":true}}`,
		reason: decode.ReasonUnknownTopic, device: "dorm3-temp"},
	{name: "shared string prefix is not a match", topic: "sw/ab", payload: `{"values":{"temperature":21.5}}`,
		reason: pipeline.ReasonUnknownDevice},
	{name: "parent of a prefix is not a match", topic: "sw", payload: `{"values":{"temperature":21.5}}`,
		reason: pipeline.ReasonUnknownDevice},
	{name: "payload at the size limit", topic: "sw/a", payload: `{"values":{"temperature":21.5}}` + strings.Repeat(" ", maxPayload-len(`{"values":{"temperature":21.5}}`)),
		stored: []want{num("dorm3-temp", reading.KindTemperature, 21.5)}},
	{name: "tasmota tele prefix", topic: "tele/x/SENSOR", payload: `{"Time":"2026-11-30T03:00:00","Switch1":"ON"}`,
		stored: []want{flag("hall-door", reading.KindDoor, true)}},
	{name: "tasmota stat prefix", topic: "stat/x/RESULT", payload: `{"Switch1":{"Action":"OFF"}}`,
		stored: []want{flag("hall-door", reading.KindDoor, false)}},
	{name: "tasmota base is a whole level", topic: "tele/xy/SENSOR", payload: `{"Switch1":"ON"}`,
		reason: pipeline.ReasonUnknownDevice},
	{name: "tasmota base without prefix", topic: "x/SENSOR", payload: `{"Switch1":"ON"}`,
		reason: pipeline.ReasonUnknownDevice},
	{name: "zigbee2mqtt friendly name with a slash", topic: "zigbee2mqtt/kitchen/smoke", payload: `{"smoke":true,"battery":90,"linkquality":120}`,
		stored: []want{flag("kitchen-smoke", reading.KindSmoke, true)}},
	{name: "zigbee2mqtt availability", topic: "zigbee2mqtt/kitchen/smoke/availability", payload: `{"state":"offline"}`,
		stored: []want{flag("kitchen-smoke", reading.KindAvailability, false)}},
	{name: "zigbee2mqtt attribute output", topic: "zigbee2mqtt/kitchen/smoke/smoke", payload: "true",
		stored: []want{flag("kitchen-smoke", reading.KindSmoke, true)}},
	{name: "esphome custom state topic", topic: "dorm3-node/dorm3/humidity/state", payload: "40.2",
		stored: []want{num("dorm3-node", reading.KindHumidity, 40.2)}},
	{name: "zigbee2mqtt first level of a friendly name", topic: "zigbee2mqtt/kitchen", payload: `{"smoke":true}`,
		reason: pipeline.ReasonUnknownDevice},
	{name: "esphome sensor", topic: "dorm3-node/sensor/dorm3_humidity/state", payload: "40.2",
		stored: []want{num("dorm3-node", reading.KindHumidity, 40.2)}},
	{name: "shelly status", topic: "shellyplusht-b8d61a8b17cc/status/temperature:0", payload: `{"id":0,"tC":19.8,"tF":67.6}`,
		stored: []want{num("dorm3-ht", reading.KindTemperature, 19.8)}},
	{name: "homie property", topic: "homie/5/dorm3-sensor/env/temperature", payload: "21.5",
		stored: []want{num("dorm3-sensor", reading.KindTemperature, 21.5)}},
}

// rejectionCases has one case per rejection reason.
var rejectionCases = []msgCase{
	{name: "oversized", topic: "sw/a", payload: `{"values":{"temperature":21.5}}` + strings.Repeat(" ", maxPayload+1-len(`{"values":{"temperature":21.5}}`)),
		reason: pipeline.ReasonOversized, device: "dorm3-temp"},
	{name: "unknown device", topic: "sw/zz", payload: `{"values":{"temperature":21.5}}`,
		reason: pipeline.ReasonUnknownDevice},
	{name: "topic not UTF-8", topic: "sw/\xff\xfe", payload: `{"values":{"temperature":21.5}}`,
		reason: pipeline.ReasonBadTopic},
	{name: "routed topic not UTF-8", topic: "dorm3-node/sensor/dorm3_\xfftemperature/state", payload: "21.5",
		reason: pipeline.ReasonBadTopic, device: "dorm3-node"},
	{name: "malformed JSON", topic: "sw/a", payload: `{"values":{"temperature":21.5}`,
		reason: decode.ReasonMalformed, device: "dorm3-temp"},
	{name: "wrong type", topic: "sw/a", payload: `{"values":{"temperature":"warm"}}`,
		reason: decode.ReasonWrongType, device: "dorm3-temp"},
	{name: "not finite", topic: "sw/a", payload: `{"values":{"temperature":1e999}}`,
		reason: decode.ReasonNotFinite, device: "dorm3-temp"},
	{name: "out of range", topic: "sw/a", payload: `{"values":{"temperature":-300}}`,
		reason: decode.ReasonOutOfRange, device: "dorm3-temp"},
	{name: "payload not UTF-8", topic: "sw/a", payload: "{\"values\":{\"temperature\":21.5}}\xff",
		reason: decode.ReasonInvalidUTF8, device: "dorm3-temp"},
	{name: "unknown topic", topic: "zigbee2mqtt/kitchen/smoke/config/x", payload: `{"smoke":true}`,
		reason: decode.ReasonUnknownTopic, device: "kitchen-smoke"},
	{name: "empty", topic: "sw/a", payload: "",
		reason: decode.ReasonEmpty, device: "dorm3-temp"},
	{name: "bad device time", topic: "sw/a", payload: `{"time":"yesterday"}`,
		reason: decode.ReasonBadTime, device: "dorm3-temp"},
}

func TestRouting(t *testing.T) {
	for _, tc := range routingCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.handle(t, tc.topic, tc.payload)
			if tc.reason == "" {
				checkStored(t, h, tc.stored)
				if n := metric(t, h.reg, "shelterwatch_ingest_dead_lettered_total"); n != 0 {
					t.Errorf("dead_lettered_total = %v, want 0", n)
				}
				return
			}
			checkStored(t, h, nil)
			dl := waitDeadLetters(t, h.st, 1)[0]
			if dl.Reason != tc.reason || dl.Device != tc.device {
				t.Fatalf("dead letter reason %q device %q, want %q %q (error: %s)", dl.Reason, dl.Device, tc.reason, tc.device, dl.Error)
			}
		})
	}
}

func TestSubscriptionsAndPrefixes(t *testing.T) {
	h := newHarness(t, nil)
	wantPrefixes := []string{"sw/a", "sw/a/b", "zigbee2mqtt/kitchen/smoke", "tele/x", "stat/x", "dorm3-node",
		"shellyplusht-b8d61a8b17cc", "homie/5/dorm3-sensor"}
	var want []string
	for _, p := range wantPrefixes {
		want = append(want, p, p+"/#")
	}
	got := h.p.Subscriptions()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Subscriptions() =\n %q\nwant\n %q", got, want)
	}

	for _, tc := range []struct {
		device string
		want   []string
	}{
		{"dorm3-temp", []string{"sw/a"}},
		{"dorm3-door", []string{"sw/a/b"}},
		{"hall-door", []string{"tele/x", "stat/x"}},
		{"kitchen-smoke", []string{"zigbee2mqtt/kitchen/smoke"}},
		{"no-such-device", nil},
	} {
		t.Run(tc.device, func(t *testing.T) {
			if got := h.p.Prefixes(tc.device); !slices.Equal(got, tc.want) {
				t.Errorf("Prefixes(%q) = %q, want %q", tc.device, got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadDevices(t *testing.T) {
	for _, tc := range []struct {
		name    string
		devices []facility.Device
		want    []string // substrings of the error
	}{
		{
			name:    "unknown format",
			devices: []facility.Device{{ID: "dorm3-temp", Format: "lorawan", Topic: "sw/a"}},
			want:    []string{`"dorm3-temp"`, `"lorawan"`},
		},
		{
			name: "same base twice",
			devices: []facility.Device{
				{ID: "dorm3-temp", Format: "native", Topic: "sw/a"},
				{ID: "dorm3-hum", Format: "zigbee2mqtt", Topic: "sw/a"},
			},
			want: []string{`"dorm3-temp"`, `"dorm3-hum"`, `"sw/a"`},
		},
		{
			name: "tasmota base collides with a native tele prefix",
			devices: []facility.Device{
				{ID: "hall-door", Format: "tasmota", Topic: "x"},
				{ID: "hall-script", Format: "native", Topic: "stat/x"},
			},
			want: []string{`"hall-door"`, `"hall-script"`, `"stat/x"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pipeline.New(pipeline.Options{Devices: tc.devices, Decoders: decode.All()})
			if err == nil {
				t.Fatalf("New accepted %+v (subscriptions %q), want an error", tc.devices, p.Subscriptions())
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %s", err, s)
				}
			}
		})
	}

	t.Run("nested bases are allowed", func(t *testing.T) {
		_, err := pipeline.New(pipeline.Options{Decoders: decode.All(), Devices: []facility.Device{
			{ID: "outer", Format: "native", Topic: "sw/a"},
			{ID: "inner", Format: "native", Topic: "sw/a/b"},
		}})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
	})
}

func TestRejections(t *testing.T) {
	for _, tc := range rejectionCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.handle(t, tc.topic, tc.payload)

			if got := metric(t, h.reg, "shelterwatch_ingest_dead_lettered_total", "reason", tc.reason); got != 1 {
				t.Errorf("dead_lettered_total{reason=%q} = %v, want 1", tc.reason, got)
			}
			if got := metric(t, h.reg, "shelterwatch_ingest_readings_total"); got != 0 {
				t.Errorf("readings_total = %v, want 0", got)
			}
			if rs := h.stored(t); len(rs) != 0 {
				t.Errorf("a rejected message stored %+v", rs)
			}
			if got := metric(t, h.reg, "shelterwatch_ingest_dead_lettered_total"); got != 1 {
				t.Fatalf("dead_lettered_total over all reasons = %v, want 1", got)
			}

			dls := waitDeadLetters(t, h.st, 1)
			if len(dls) != 1 {
				t.Fatalf("store holds %d dead letters, want 1: %+v", len(dls), dls)
			}
			dl := dls[0]
			// The store keeps dead letters as JSON, which replaces bytes
			// that are not UTF-8 in the topic with U+FFFD.
			wantTopic := jsonRoundTrip(t, tc.topic)
			if dl.Reason != tc.reason || dl.Topic != wantTopic || dl.Device != tc.device || string(dl.Payload) != tc.payload ||
				dl.Size != len(tc.payload) || !dl.Time.Equal(t0) || dl.Error == "" {
				t.Errorf("dead letter = reason %q topic %q device %q payload %q size %d time %v error %q\n"+
					"want         reason %q topic %q device %q payload %q size %d time %v and an error",
					dl.Reason, dl.Topic, dl.Device, dl.Payload, dl.Size, dl.Time, dl.Error,
					tc.reason, wantTopic, tc.device, tc.payload, len(tc.payload), t0)
			}
		})
	}
}

func TestPartialRejectionStoresTheRest(t *testing.T) {
	h := newHarness(t, nil)
	h.handle(t, "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"temperature":-300}`)

	checkStored(t, h, []want{flag("kitchen-smoke", reading.KindSmoke, true)})
	if got := metric(t, h.reg, "shelterwatch_ingest_readings_total"); got != 1 {
		t.Errorf("readings_total = %v, want 1", got)
	}
	if got := metric(t, h.reg, "shelterwatch_ingest_dead_lettered_total", "reason", decode.ReasonOutOfRange); got != 1 {
		t.Errorf("dead_lettered_total{reason=out_of_range} = %v, want 1", got)
	}
	dl := waitDeadLetters(t, h.st, 1)[0]
	if dl.Reason != decode.ReasonOutOfRange || dl.Device != "kitchen-smoke" || !strings.Contains(dl.Error, "temperature") {
		t.Errorf("dead letter = %+v, want out_of_range for kitchen-smoke naming temperature", dl)
	}
	if st, _ := h.state.Get("kitchen-smoke"); !st.Last[reading.KindSmoke].Value.Bool {
		t.Errorf("device state after smoke=true: %+v", st)
	}
}

func TestIgnoredTopics(t *testing.T) {
	h := newHarness(t, nil)
	ignored := []string{"zigbee2mqtt/bridge", "zigbee2mqtt/bridge/log", "zigbee2mqtt/bridge/state", "homeassistant/sensor/dorm3/config"}
	for _, topic := range ignored {
		t.Run(topic, func(t *testing.T) { h.handle(t, topic, `{"type":"device_announced"}`) })
	}
	// Sharing a string prefix with an ignored topic is not enough.
	h.handle(t, "zigbee2mqtt/bridgehead", `{}`)

	if got := metric(t, h.reg, "shelterwatch_ingest_ignored_total"); got != float64(len(ignored)) {
		t.Errorf("ignored_total = %v, want %d", got, len(ignored))
	}
	dls := h.barrier(t)
	if len(dls) != 1 || dls[0].Topic != "zigbee2mqtt/bridgehead" || dls[0].Reason != pipeline.ReasonUnknownDevice {
		t.Errorf("dead letters = %+v, want only zigbee2mqtt/bridgehead as unknown_device", dls)
	}
	if rs := h.stored(t); len(rs) != 0 {
		t.Errorf("ignored topics stored %+v", rs)
	}
}

func TestNormalisation(t *testing.T) {
	const skew = 10 * time.Minute
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name      string
		device    string
		topic     string
		payload   string
		wantTime  time.Time
		wantSkews float64
	}{
		{name: "no device time", device: "dorm3-temp", topic: "sw/a", payload: `{"battery":87,"link_quality":200,"values":{"temperature":21.5}}`,
			wantTime: t0},
		{name: "device time a minute ago", device: "dorm3-temp", topic: "sw/a", payload: `{"time":"2026-11-30T02:59:00Z","battery":87,"link_quality":200,"values":{"temperature":21.5}}`,
			wantTime: t0.Add(-time.Minute)},
		{name: "device time with offset", device: "dorm3-temp", topic: "sw/a", payload: `{"time":"2026-11-30T04:02:00+01:00","battery":87,"link_quality":200,"values":{"temperature":21.5}}`,
			wantTime: t0.Add(2 * time.Minute)},
		{name: "device time just inside the future skew", device: "dorm3-temp", topic: "sw/a", payload: `{"time":"2026-11-30T03:09:59Z","battery":87,"link_quality":200,"values":{"temperature":21.5}}`,
			wantTime: t0.Add(skew - time.Second)},
		{name: "buffered reading from yesterday", device: "dorm3-temp", topic: "sw/a", payload: `{"time":"2026-11-29T03:05:00Z","battery":87,"link_quality":200,"values":{"temperature":21.5}}`,
			wantTime: t0.Add(-24*time.Hour + 5*time.Minute)},
		{name: "device time an hour ahead", device: "dorm3-temp", topic: "sw/a", payload: `{"time":"2026-11-30T04:00:00Z","battery":87,"link_quality":200,"values":{"temperature":21.5}}`,
			wantTime: t0, wantSkews: 1},
		{name: "device time three days behind", device: "dorm3-temp", topic: "sw/a", payload: `{"time":"2026-11-27T03:00:00Z","battery":87,"link_quality":200,"values":{"temperature":21.5}}`,
			wantTime: t0, wantSkews: 1},
		{name: "unset device clock", device: "dorm3-temp", topic: "sw/a", payload: `{"time":"1970-01-01T00:00:00Z","battery":87,"link_quality":200,"values":{"temperature":21.5}}`,
			wantTime: t0, wantSkews: 1},
		{name: "tasmota local time in the facility zone", device: "hall-door", topic: "tele/x/SENSOR", payload: `{"Time":"2026-11-30T03:58:00","Switch1":"ON"}`,
			wantTime: t0.Add(-2 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(o *pipeline.Options) {
				o.Location = cet
				o.MaxClockSkew = skew
			})
			h.handle(t, tc.topic, tc.payload)
			rs := h.stored(t)
			if len(rs) != 1 {
				t.Fatalf("stored %d readings, want 1: %+v", len(rs), rs)
			}
			r := rs[0]
			dev := deviceByID(t, tc.device)
			if r.Facility != facilityID || r.Device != dev.ID || r.Zone != dev.Zone || r.Format != dev.Format {
				t.Errorf("reading facility/device/zone/format = %q/%q/%q/%q, want %q/%q/%q/%q",
					r.Facility, r.Device, r.Zone, r.Format, facilityID, dev.ID, dev.Zone, dev.Format)
			}
			if !r.Received.Equal(t0) {
				t.Errorf("Received = %v, want %v", r.Received, t0)
			}
			if !r.Time.Equal(tc.wantTime) {
				t.Errorf("Time = %v, want %v", r.Time, tc.wantTime)
			}
			if got := metric(t, h.reg, "shelterwatch_ingest_clock_skew_total"); got != tc.wantSkews {
				t.Errorf("clock_skew_total = %v, want %v", got, tc.wantSkews)
			}
			if dev.Format == "native" && (r.Battery == nil || *r.Battery != 87 || r.LinkQuality == nil || *r.LinkQuality != 200) {
				t.Errorf("Battery/LinkQuality = %v/%v, want 87/200", r.Battery, r.LinkQuality)
			}
			if r.Seq == 0 {
				t.Errorf("stored reading has no log position: %+v", r)
			}
			if got := metric(t, h.reg, "shelterwatch_ingest_readings_total"); got != 1 {
				t.Errorf("readings_total = %v, want 1", got)
			}
			if got := metric(t, h.reg, "shelterwatch_ingest_receive_to_stored_seconds"); got != 1 {
				t.Errorf("receive_to_stored_seconds observations = %v, want 1", got)
			}
			if got := metric(t, h.reg, "shelterwatch_ingest_messages_total", "format", dev.Format); got != 1 {
				t.Errorf("messages_total{format=%q} = %v, want 1", dev.Format, got)
			}
		})
	}
}

func TestHeartbeats(t *testing.T) {
	for _, tc := range []struct {
		name, device, topic, payload string
	}{
		{"tasmota STATE", "hall-door", "tele/x/STATE", `{"Time":"2026-11-30T04:00:00","Uptime":"0T01:00:00","Wifi":{"RSSI":80}}`},
		{"native keep-alive", "dorm3-temp", "sw/a", `{}`},
		{"zigbee2mqtt untracked fields", "kitchen-smoke", "zigbee2mqtt/kitchen/smoke", `{"voltage":3000,"linkquality":120}`},
		{"esphome uptime", "dorm3-node", "dorm3-node/sensor/uptime/state", "3600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			if st, _ := h.state.Get(tc.device); st.Online {
				t.Fatalf("device online before any message: %+v", st)
			}
			h.handle(t, tc.topic, tc.payload)
			if rs := h.stored(t); len(rs) != 0 {
				t.Errorf("a heartbeat stored %+v", rs)
			}
			if got := metric(t, h.reg, "shelterwatch_ingest_heartbeats_total"); got != 1 {
				t.Errorf("heartbeats_total = %v, want 1", got)
			}
			if got := metric(t, h.reg, "shelterwatch_ingest_dead_lettered_total"); got != 0 {
				t.Errorf("dead_lettered_total = %v, want 0", got)
			}
			st, ok := h.state.Get(tc.device)
			if !ok || !st.LastSeen.Equal(t0) || !st.Online {
				t.Errorf("device state = %+v, want last seen %v and online", st, t0)
			}
		})
	}
}

// failingStore is a store whose disk has failed.
type failingStore struct {
	mu          sync.Mutex
	deadLetters []store.DeadLetter
}

var errDiskFull = errors.New("no space left on device")

func (*failingStore) Append(context.Context, []reading.Reading) error { return errDiskFull }

func (f *failingStore) AddDeadLetter(dl store.DeadLetter) {
	f.mu.Lock()
	f.deadLetters = append(f.deadLetters, dl)
	f.mu.Unlock()
}

func TestStoreFailureIsNotAcknowledged(t *testing.T) {
	fs := &failingStore{}
	h := newHarness(t, func(o *pipeline.Options) { o.Store = fs })
	err := h.p.Handle(context.Background(), pipeline.Message{Topic: "sw/a", Payload: []byte(`{"values":{"smoke":true}}`), Received: t0})
	if err == nil {
		t.Fatal("Handle returned nil although the store failed: the message would be acknowledged and lost")
	}
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "dorm3-temp") {
		t.Errorf("error %q should wrap the store error and name the device", err)
	}
	if got := metric(t, h.reg, "shelterwatch_ingest_store_failures_total"); got != 1 {
		t.Errorf("store_failures_total = %v, want 1", got)
	}
	if got := metric(t, h.reg, "shelterwatch_ingest_readings_total"); got != 0 {
		t.Errorf("readings_total = %v, want 0", got)
	}

	// Rejections do not touch the failing write path: still acknowledged.
	if err := h.p.Handle(context.Background(), pipeline.Message{Topic: "sw/a", Payload: []byte(`{`), Received: t0}); err != nil {
		t.Errorf("malformed message with a failing store: Handle = %v, want nil", err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.deadLetters) != 1 || fs.deadLetters[0].Reason != decode.ReasonMalformed {
		t.Errorf("dead letters = %+v, want one malformed", fs.deadLetters)
	}
}

func TestBadInputDoesNotBlockGoodInput(t *testing.T) {
	h := newHarness(t, nil)
	const (
		good    = 100
		bad     = 1000
		workers = 8
	)
	bads := []pipeline.Message{
		{Topic: "sw/a", Payload: []byte(`{"values":`)},
		{Topic: "sw/a", Payload: []byte("\xff\xfe")},
		{Topic: "sw/a", Payload: []byte(strings.Repeat("x", maxPayload+1))},
		{Topic: "no/such/device", Payload: []byte(`{}`)},
		{Topic: "sw/a/nope", Payload: []byte(`{}`)},
		{Topic: "sw/a", Payload: []byte(`{"values":{"temperature":1e999}}`)},
	}
	msgs := make([]pipeline.Message, 0, good+bad)
	for i := range good + bad {
		if i%11 == 0 {
			// Readings 0.0, 0.5, ... 49.5 °C: distinct, all plausible.
			msgs = append(msgs, pipeline.Message{Topic: "sw/a", Payload: fmt.Appendf(nil, `{"values":{"temperature":%g}}`, float64(i/11)/2)})
		} else {
			msgs = append(msgs, bads[i%len(bads)])
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(msgs))
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(msgs); i += workers {
				m := msgs[i]
				m.Received = t0
				if err := h.p.Handle(context.Background(), m); err != nil {
					errs <- fmt.Errorf("message %d (%q): %w", i, m.Topic, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Handle returned an error: %v", err)
	}

	rs := h.stored(t)
	var got []float64
	for _, r := range rs {
		got = append(got, r.Value.Num)
	}
	slices.Sort(got)
	var want []float64
	for i := range good {
		want = append(want, float64(i)/2)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stored %d temperatures %v, want the %d good ones %v", len(got), got, good, want)
	}
	if got := metric(t, h.reg, "shelterwatch_ingest_dead_lettered_total"); got != bad {
		t.Errorf("dead_lettered_total = %v, want %d", got, bad)
	}
	if got := metric(t, h.reg, "shelterwatch_ingest_readings_total"); got != good {
		t.Errorf("readings_total = %v, want %d", got, good)
	}
}

// FuzzHandle feeds arbitrary topics and payloads to a pipeline with a
// working store: it must never panic or refuse a message, and whatever it
// stores must be a reading the rest of the gateway can trust.
func FuzzHandle(f *testing.F) {
	for _, tcs := range [][]msgCase{routingCases, rejectionCases} {
		for _, tc := range tcs {
			f.Add(tc.topic, []byte(tc.payload))
		}
	}
	f.Add("tele/x/STATE", []byte(`{"Time":"2026-11-30T04:00:00","Wifi":{"RSSI":80}}`))
	f.Add("zigbee2mqtt/kitchen/smoke", []byte(`{"smoke":true,"temperature":-300}`))
	f.Add("zigbee2mqtt/bridge/log", []byte(`{}`))
	f.Add("sw/a", []byte(`{"time":"2026-11-30T04:00:00Z","values":{"temperature":21.5}}`))

	const skew = 10 * time.Minute
	h := newHarness(f, func(o *pipeline.Options) { o.MaxClockSkew = skew })
	devices := map[string]facility.Device{}
	for _, d := range testDevices() {
		devices[d.ID] = d
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		before := h.st.LastSeq()
		if err := h.p.Handle(context.Background(), pipeline.Message{Topic: topic, Payload: payload, Received: t0}); err != nil {
			t.Fatalf("Handle(%q, %q) = %v, want nil with a working store", topic, payload, err)
		}
		rs, err := h.st.ReadLog(before, 1000)
		if err != nil {
			t.Fatalf("read log: %v", err)
		}
		if len(rs) > 0 && !utf8.ValidString(topic) {
			t.Fatalf("stored %+v from topic %q, which is not UTF-8 (want a bad_topic dead letter)", rs, topic)
		}
		for _, r := range rs {
			typ, ok := r.Kind.Known()
			if !ok {
				t.Fatalf("stored a reading of unknown kind %q from %q %q", r.Kind, topic, payload)
			}
			if r.Value.Type != typ {
				t.Fatalf("stored a %s reading with a %s value from %q %q", r.Kind, r.Value.Type, topic, payload)
			}
			if f := r.Value.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				t.Fatalf("stored a non-finite %s reading %v from %q %q", r.Kind, r.Value, topic, payload)
			}
			for name, p := range map[string]*float64{"battery": r.Battery, "link quality": r.LinkQuality} {
				if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
					t.Fatalf("stored a non-finite %s %v from %q %q", name, *p, topic, payload)
				}
			}
			d, ok := devices[r.Device]
			if !ok || r.Zone != d.Zone || r.Format != d.Format || r.Facility != facilityID {
				t.Fatalf("stored reading %+v does not belong to a configured device (from %q)", r, topic)
			}
			if r.Time.After(t0.Add(skew)) || r.Time.Before(t0.Add(-24*time.Hour-skew)) {
				t.Fatalf("stored reading time %v outside the accepted clock skew of receive time %v", r.Time, t0)
			}
		}
	})
}
