package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// A bridge is a program that speaks MQTT for many radio devices: the
// Zigbee2MQTT bridge and its USB coordinator. When it dies, every smoke
// detector behind it goes silent at once, but each would look healthy
// until its own offline timeout (25 h for a battery detector). The bridge
// says so itself: <base>/bridge/state is "offline" when it stops, and the
// same payload is its MQTT last will, so the broker says it when the
// bridge crashes or its host loses power.
//
// On "offline" the pipeline writes, in one append, a reach reading
// (reading.KindReach, "bridge_offline") for every device behind the
// bridge, which makes each unknown (facility's availability rules: no
// offline alarm of its own), and a fault reading of the bridge's built-in
// device (BridgeDevice), which raises the one bridge-down alarm. On
// "online" the fault clears, and the devices that were unknown because of
// the bridge get a reach "ok": they count as online again at once,
// without waiting for each device's next message. A retained "online"
// delivered again on every reconnect does not touch devices that were
// never cut off, so it cannot hide a detector that died on its own.

// bridge is one bridge and the devices behind it.
type bridge struct {
	base  string
	devs  []*facility.Device
	fault *facility.Device // the bridge's built-in device
	route *route           // for accounting: its members are devs
}

// BridgeDevice returns the id of the built-in device whose fault readings
// say whether the bridge with base topic base is up. Slashes become dots:
// ids appear in URL paths.
func BridgeDevice(base string) string {
	return "gateway.bridge." + strings.ReplaceAll(base, "/", ".")
}

// Bridges returns the base topics of the bridges the configured devices
// are behind.
func (p *Pipeline) Bridges() []string {
	out := make([]string, 0, len(p.bridges))
	for base := range p.bridges {
		out = append(out, base)
	}
	return out
}

func (p *Pipeline) addBridge(d *facility.Device) {
	if p.bridges == nil {
		p.bridges = map[string]*bridge{}
	}
	b := p.bridges[d.Bridge]
	if b == nil {
		id := BridgeDevice(d.Bridge)
		b = &bridge{base: d.Bridge, fault: &facility.Device{ID: id, Name: d.Bridge, Kind: reading.KindFault, Builtin: true},
			route: &route{bridge: true}}
		b.route.dev = b.fault
		p.bridges[d.Bridge] = b
	}
	b.devs = append(b.devs, d)
	b.route.members = append(b.route.members, d)
	b.route.safety = true // the fault reading may use the reserve
}

// bridgeOf returns the bridge whose state topic topic is, or nil.
func (p *Pipeline) bridgeOf(topic string) *bridge {
	base, ok := strings.CutSuffix(topic, "/bridge/state")
	if !ok {
		return nil
	}
	return p.bridges[base]
}

// Unreachable is what the pipeline asks the device state about a device
// behind a bridge that comes back (devstate.Tracker implements it).
type Unreachable interface {
	Unreachable(id string) bool
}

// bridgeState handles a bridge/state message: see the comment at the top.
func (p *Pipeline) bridgeState(b *bridge, msg *Message) (*route, []reading.Reading) {
	online, err := bridgeOnline(msg.Payload)
	if err != nil {
		p.reject(*msg, b.fault, decode.ReasonOf(err), fmt.Errorf("bridge %q: %w", b.base, err))
		return nil, nil
	}
	at := msg.Received
	state := "online"
	fault := "ok"
	if !online {
		state = "offline"
		fault = fmt.Sprintf("Zigbee2MQTT bridge %q is offline (bridge/state, its last will): %d devices behind it cannot be heard", b.base, len(b.devs))
	}
	p.m.bridgeEvents.WithLabelValues(state).Inc()
	rs := make([]reading.Reading, 0, len(b.devs)+1)
	rs = append(rs, reading.Reading{Facility: p.opts.Facility, Device: b.fault.ID, Kind: reading.KindFault,
		Format: decode.Zigbee2MQTT{}.Format(), Time: at, Received: at, Value: reading.State(fault)})
	un, _ := any(p.opts.State).(Unreachable)
	for _, d := range b.devs {
		v := reading.ReachBridgeOffline
		if online {
			if un != nil && p.opts.State != nil && !un.Unreachable(d.ID) {
				continue
			}
			v = reading.ReachOK
		}
		rs = append(rs, reading.Reading{Facility: p.opts.Facility, Device: d.ID, Zone: d.Zone, Kind: reading.KindReach,
			Format: d.Format, Time: at, Received: at, Value: reading.State(v)})
	}
	if n, ok := p.limiter.AllowCount("bridge:" + b.base + ":" + state); ok {
		p.log.Warn("pipeline: bridge state", "bridge", b.base, "state", state, "devices", len(b.devs), "suppressed_since_last", n)
	}
	return b.route, rs
}

// bridgeOnline reads a bridge/state payload: {"state":"online"} (v2), or
// the plain online/offline of v1.
func bridgeOnline(payload []byte) (bool, error) {
	s := strings.TrimSpace(string(payload))
	if strings.HasPrefix(s, "{") {
		var v struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal(payload, &v); err != nil {
			return false, decode.Errorf(decode.ReasonMalformed, "bridge/state: %v", err)
		}
		s = v.State
	}
	switch s {
	case "online":
		return true, nil
	case "offline":
		return false, nil
	}
	return false, decode.Errorf(decode.ReasonMalformed, "bridge/state %q: want online or offline", s)
}
