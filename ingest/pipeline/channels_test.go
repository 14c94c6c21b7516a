package pipeline_test

import (
	"slices"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// boardDevices: one Tasmota board ("board") with three DS18B20, a door
// on Switch1 (normally closed, so inverted) and a smoke detector's relay
// on Switch2, configured as channels, plus the board itself for the rest;
// an ESPHome node whose only configured entity is a smoke detector; and
// two Zigbee devices behind the bridge "zigbee2mqtt".
func boardDevices() []facility.Device {
	return []facility.Device{
		{ID: "board", Zone: "dorm3", Kind: reading.KindTemperature, Format: "tasmota", Topic: "board"},
		{ID: "dorm3-floor", Zone: "dorm3", Kind: reading.KindTemperature, Format: "tasmota", Topic: "board", Channel: "DS18B20-1"},
		{ID: "boiler", Zone: "cellar", Kind: reading.KindTemperature, Format: "tasmota", Topic: "board", Channel: "DS18B20-2"},
		{ID: "dorm3-door", Zone: "dorm3", Kind: reading.KindDoor, Format: "tasmota", Topic: "board", Channel: "Switch1", Invert: true},
		{ID: "dorm3-smoke", Zone: "dorm3", Kind: reading.KindSmoke, Format: "tasmota", Topic: "board", Channel: "Switch2"},
		{ID: "hall-smoke", Zone: "hall", Kind: reading.KindSmoke, Format: "esphome", Topic: "hall-node", Channel: "hall_smoke"},
		{ID: "kitchen-smoke", Zone: "kitchen", Kind: reading.KindSmoke, Format: "zigbee2mqtt", Topic: "zigbee2mqtt/kitchen/smoke", Bridge: "zigbee2mqtt"},
		{ID: "ward-door", Zone: "ward", Kind: reading.KindDoor, Format: "zigbee2mqtt", Topic: "zigbee2mqtt/ward/door", Bridge: "zigbee2mqtt"},
	}
}

func newBoardHarness(t *testing.T) *harness {
	var states []facility.Device
	for _, d := range boardDevices() {
		d.OfflineAfter = time.Hour
		states = append(states, d)
	}
	tracker := devstate.New(states, func() time.Time { return t0 })
	h := newHarness(t, func(o *pipeline.Options) {
		o.Devices = boardDevices()
		o.State = tracker
	})
	h.state = tracker
	return h
}

type got struct {
	device, channel string
	kind            reading.Kind
	value           reading.Value
}

func storedSince(t *testing.T, h *harness, from int) []got {
	t.Helper()
	var out []got
	for _, r := range h.stored(t)[from:] {
		out = append(out, got{r.Device, r.Channel, r.Kind, r.Value})
	}
	return out
}

func TestBoardChannelsGoToTheirDevices(t *testing.T) {
	h := newBoardHarness(t)
	h.handle(t, "tele/board/SENSOR", `{"Time":"2026-11-30T03:00:00","Switch1":"OFF","Switch2":"ON","DS18B20-1":{"Id":"01144A0CB2AA","Temperature":17.5},"DS18B20-2":{"Id":"0316A2794D4F","Temperature":61.0},"DS18B20-3":{"Id":"031683E2FBFF","Temperature":20.0},"TempUnit":"C"}`)
	want := []got{
		{"board", "DS18B20-3", reading.KindTemperature, reading.Number(20)},
		{"dorm3-floor", "DS18B20-1", reading.KindTemperature, reading.Number(17.5)},
		{"boiler", "DS18B20-2", reading.KindTemperature, reading.Number(61)},
		{"dorm3-door", "Switch1", reading.KindDoor, reading.Bool(true)}, // inverted: OFF = open
		{"dorm3-smoke", "Switch2", reading.KindSmoke, reading.Bool(true)},
	}
	if g := storedSince(t, h, 0); !slices.Equal(g, want) {
		t.Fatalf("stored\n got %v\nwant %v", g, want)
	}
	// The board's LWT is about every device of the board.
	h.handle(t, "tele/board/LWT", "Offline")
	g := storedSince(t, h, len(want))
	if len(g) != 5 {
		t.Fatalf("LWT stored %v, want one availability reading per device of the board", g)
	}
	for _, d := range []string{"board", "dorm3-floor", "boiler", "dorm3-door", "dorm3-smoke"} {
		st, _ := h.state.Get(d)
		if st.Online || st.OfflineReason != "availability" {
			t.Errorf("%s after the board's LWT: online=%v reason=%q, want offline by availability", d, st.Online, st.OfflineReason)
		}
	}
}

func TestUnclaimedChannelIsDroppedAndCounted(t *testing.T) {
	h := newBoardHarness(t)
	// The node's temperature entity is nobody's: the node has no device
	// without a channel. Its message is not the smoke detector's: a
	// sibling sensor cannot keep a dead detector looking alive.
	h.handle(t, "hall-node/sensor/hall_temperature/state", "21.5")
	if g := storedSince(t, h, 0); len(g) != 0 {
		t.Fatalf("stored %v, want nothing", g)
	}
	if n := metric(t, h.reg, "shelterwatch_ingest_unmapped_readings_total"); n != 1 {
		t.Fatalf("unmapped readings = %v, want 1", n)
	}
	if st, _ := h.state.Get("hall-smoke"); st.OfflineReason != "never_seen" {
		t.Fatalf("hall-smoke after another entity of its node spoke: %+v, want never seen", st)
	}
	h.handle(t, "hall-node/status", "online") // the node's birth is about all of it
	if st, _ := h.state.Get("hall-smoke"); !st.Online {
		t.Fatalf("hall-smoke after its node's birth: %+v, want online", st)
	}
	h.handle(t, "hall-node/binary_sensor/hall_smoke/state", "ON")
	if g := storedSince(t, h, 1); len(g) != 1 || g[0].device != "hall-smoke" || g[0].kind != reading.KindSmoke || !g[0].value.Bool {
		t.Fatalf("stored %v, want hall-smoke smoke=true", g)
	}
}

func TestSensorFaultIsASignOfLife(t *testing.T) {
	h := newBoardHarness(t)
	h.handle(t, "tele/board/SENSOR", `{"Time":"2026-11-30T03:00:00","DS18B20-2":{"Id":"0316A2794D4F","Temperature":null},"TempUnit":"C"}`)
	want := []got{{"boiler", "DS18B20-2", reading.KindSensorFault, reading.Bool(true)}}
	if g := storedSince(t, h, 0); !slices.Equal(g, want) {
		t.Fatalf("stored %v, want %v", g, want)
	}
	if dl := h.barrier(t); len(dl) != 0 {
		t.Fatalf("dead letters %+v, want none", dl)
	}
}

func TestBridgeOfflineMakesItsDevicesUnknown(t *testing.T) {
	h := newBoardHarness(t)
	h.handle(t, "zigbee2mqtt/kitchen/smoke", `{"smoke":false,"battery":90}`)
	h.handle(t, "zigbee2mqtt/ward/door", `{"contact":true}`)
	n := len(h.stored(t))

	// The bridge's last will, as Zigbee2MQTT sets it (lib/mqtt.ts).
	h.handle(t, "zigbee2mqtt/bridge/state", `{"state":"offline"}`)
	g := storedSince(t, h, n)
	want := []got{
		{pipeline.BridgeDevice("zigbee2mqtt"), "", reading.KindFault, g[0].value},
		{"kitchen-smoke", "", reading.KindReach, reading.State(reading.ReachBridgeOffline)},
		{"ward-door", "", reading.KindReach, reading.State(reading.ReachBridgeOffline)},
	}
	if !slices.Equal(g, want) || g[0].value.State == "ok" {
		t.Fatalf("bridge offline stored\n got %v\nwant %v (fault not ok)", g, want)
	}
	for _, d := range []string{"kitchen-smoke", "ward-door"} {
		st, _ := h.state.Get(d)
		if st.Online || st.OfflineReason != "bridge_offline" {
			t.Fatalf("%s behind an offline bridge: %+v, want unknown because of the bridge", d, st)
		}
	}
	if st, _ := h.state.Get("board"); st.OfflineReason != "never_seen" {
		t.Fatalf("a Tasmota board is not behind the bridge: %+v", st)
	}

	// Back: the fault clears and both devices are online at once.
	n = len(h.stored(t))
	h.handle(t, "zigbee2mqtt/bridge/state", `{"state":"online"}`)
	g = storedSince(t, h, n)
	want = []got{
		{pipeline.BridgeDevice("zigbee2mqtt"), "", reading.KindFault, reading.State("ok")},
		{"kitchen-smoke", "", reading.KindReach, reading.State(reading.ReachOK)},
		{"ward-door", "", reading.KindReach, reading.State(reading.ReachOK)},
	}
	if !slices.Equal(g, want) {
		t.Fatalf("bridge online stored\n got %v\nwant %v", g, want)
	}
	for _, d := range []string{"kitchen-smoke", "ward-door"} {
		if st, _ := h.state.Get(d); !st.Online {
			t.Fatalf("%s after the bridge came back: %+v, want online", d, st)
		}
	}

	// A retained "online" delivered again (a reconnect) touches no device.
	n = len(h.stored(t))
	h.handle(t, "zigbee2mqtt/bridge/state", "online") // v1's plain form
	if g := storedSince(t, h, n); len(g) != 1 || g[0].kind != reading.KindFault {
		t.Fatalf("repeated online stored %v, want only the bridge's ok", g)
	}
	// Other bridge chatter is ignored, not dead-lettered.
	h.handle(t, "zigbee2mqtt/bridge/logging", `{"level":"info","message":"hello"}`)
	h.handle(t, "zigbee2mqtt/bridge/state", `{"state":"sleepy"}`)
	dl := h.barrier(t)
	if len(dl) != 1 || dl[0].Reason != decode.ReasonMalformed {
		t.Fatalf("dead letters %+v, want one malformed bridge state", dl)
	}
}

func TestCommandsAndRemovalAreNotSignsOfLife(t *testing.T) {
	h := newHarness(t, nil)
	h.handle(t, "zigbee2mqtt/kitchen/smoke/set", `{"state":"ON"}`)
	h.handle(t, "dorm3-node/switch/relay/command", "ON")
	if st, _ := h.state.Get("kitchen-smoke"); st.Online {
		t.Fatalf("a command to the detector made it look alive: %+v", st)
	}
	if n := metric(t, h.reg, "shelterwatch_ingest_ignored_total"); n != 2 {
		t.Fatalf("ignored = %v, want 2", n)
	}
	h.handle(t, "homie/5/dorm3-sensor/$state", "ready")
	h.handle(t, "homie/5/dorm3-sensor/$state", "")
	g := storedSince(t, h, 1)
	if len(g) != 1 || g[0].kind != reading.KindReach || g[0].value.State != reading.ReachRemoved {
		t.Fatalf("empty $state stored %v, want reach=removed", g)
	}
	if st, _ := h.state.Get("dorm3-sensor"); st.Online || st.OfflineReason != "removed" {
		t.Fatalf("removed device: %+v, want unknown (removed)", st)
	}
	if dl := h.barrier(t); len(dl) != 0 {
		t.Fatalf("dead letters %+v, want none", dl)
	}
}

// TestESPHomeBirthWillAndCustomTopics: an ESPHome node whose mqtt: section
// moves birth_message / will_message to <prefix>/availability with the
// payloads connected / disconnected (set on one of its devices only) and
// whose door entity has state_topic dorm5-node/door/state.
func TestESPHomeBirthWillAndCustomTopics(t *testing.T) {
	devs := []facility.Device{
		{ID: "dorm5-smoke", Zone: "dorm5", Kind: reading.KindSmoke, Format: "esphome", Topic: "dorm5-node", Channel: "smoke"},
		{ID: "dorm5-door", Zone: "dorm5", Kind: reading.KindDoor, Format: "esphome", Topic: "dorm5-node", Channel: "door",
			StatusTopic: "dorm5-node/availability", OnlinePayload: "connected", OfflinePayload: "disconnected"},
	}
	var states []facility.Device
	for _, d := range devs {
		d.OfflineAfter = time.Hour
		states = append(states, d)
	}
	tracker := devstate.New(states, func() time.Time { return t0 })
	h := newHarness(t, func(o *pipeline.Options) { o.Devices = devs; o.State = tracker })
	h.state = tracker

	h.handle(t, "dorm5-node/availability", "connected")
	for _, d := range []string{"dorm5-smoke", "dorm5-door"} {
		if st, _ := h.state.Get(d); !st.Online {
			t.Fatalf("%s after the node's birth: %+v, want online", d, st)
		}
	}
	h.handle(t, "dorm5-node/door/state", "ON")
	h.handle(t, "dorm5-node/binary_sensor/smoke/state", "OFF")
	want := []got{
		{"dorm5-smoke", "", reading.KindAvailability, reading.Bool(true)},
		{"dorm5-door", "", reading.KindAvailability, reading.Bool(true)},
		{"dorm5-door", "door", reading.KindDoor, reading.Bool(true)},
		{"dorm5-smoke", "smoke", reading.KindSmoke, reading.Bool(false)},
	}
	if g := storedSince(t, h, 0); !slices.Equal(g, want) {
		t.Fatalf("stored\n got %v\nwant %v", g, want)
	}
	h.handle(t, "dorm5-node/availability", "disconnected")
	for _, d := range []string{"dorm5-smoke", "dorm5-door"} {
		if st, _ := h.state.Get(d); st.Online || st.OfflineReason != "availability" {
			t.Fatalf("%s after the node's will: %+v, want offline by availability", d, st)
		}
	}
	// ESPHome's default shutdown_message is still heard.
	h.handle(t, "dorm5-node/status", "online")
	if st, _ := h.state.Get("dorm5-smoke"); !st.Online {
		t.Fatalf("dorm5-smoke after online on <prefix>/status: %+v, want online", st)
	}
	if dl := h.barrier(t); len(dl) != 0 {
		t.Fatalf("dead letters %+v, want none", dl)
	}
}

// TestZigbee2MQTTAttributeOutput: with advanced.output attribute each
// field comes on <friendly name>/<field>; nested friendly names route to
// the longest.
func TestZigbee2MQTTAttributeOutput(t *testing.T) {
	devs := []facility.Device{
		{ID: "hall-door", Zone: "hall", Kind: reading.KindDoor, Format: "zigbee2mqtt", Topic: "zigbee2mqtt/hall"},
		{ID: "hall-smoke", Zone: "hall", Kind: reading.KindSmoke, Format: "zigbee2mqtt", Topic: "zigbee2mqtt/hall/smoke"},
	}
	h := newHarness(t, func(o *pipeline.Options) { o.Devices = devs; o.State = nil })
	h.handle(t, "zigbee2mqtt/hall/contact", "false")
	h.handle(t, "zigbee2mqtt/hall/battery", "91")
	h.handle(t, "zigbee2mqtt/hall/linkquality", "87")
	// zigbee2mqtt/hall/smoke is the smoke detector's base, so its smoke
	// attribute is its own; a smoke field of "hall" would land there too
	// (the decoder's doc warns against such friendly names).
	h.handle(t, "zigbee2mqtt/hall/smoke/smoke", "true")
	want := []got{
		{"hall-door", "", reading.KindDoor, reading.Bool(true)},
		{"hall-door", "", reading.KindBattery, reading.Number(91)},
		{"hall-smoke", "", reading.KindSmoke, reading.Bool(true)},
	}
	if g := storedSince(t, h, 0); !slices.Equal(g, want) {
		t.Fatalf("stored\n got %v\nwant %v", g, want)
	}
	if dl := h.barrier(t); len(dl) != 0 {
		t.Fatalf("dead letters %+v, want none", dl)
	}
}
