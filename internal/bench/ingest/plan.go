package ingest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/sensorsim"
	"github.com/shelterwatch/shelterwatch/internal/bench/influxd"
)

// benchZones are the zones of the generated facility: a handful, as in a
// real relief station.
var benchZones = []struct{ id, tag string }{
	{"dorm-1", "dormitory"},
	{"dorm-2", "dormitory"},
	{"dorm-3", "dormitory"},
	{"kitchen", "kitchen"},
	{"secure-ward", "secure-ward"},
	{"corridor", "corridor"},
}

// formatZigbee2MQTT is the payload format of most of a real installation's
// devices, and the only one of the scenario the CPU goal is stated for.
const formatZigbee2MQTT = "zigbee2mqtt"

// mixEntry is one device of the mix: its payload format and kind.
type mixEntry struct {
	format string
	kind   reading.Kind
}

// deviceMix is one cycle of 20 devices: mostly Zigbee2MQTT climate sensors
// and smoke detectors (the bulk of a real installation), then Tasmota,
// ESPHome and native devices.
var deviceMix = []mixEntry{
	{"zigbee2mqtt", reading.KindTemperature}, {"zigbee2mqtt", reading.KindTemperature},
	{"zigbee2mqtt", reading.KindTemperature}, {"zigbee2mqtt", reading.KindTemperature},
	{"zigbee2mqtt", reading.KindTemperature}, {"zigbee2mqtt", reading.KindTemperature},
	{"zigbee2mqtt", reading.KindTemperature}, {"zigbee2mqtt", reading.KindTemperature},
	{"zigbee2mqtt", reading.KindSmoke}, {"zigbee2mqtt", reading.KindSmoke},
	{"zigbee2mqtt", reading.KindSmoke}, {"zigbee2mqtt", reading.KindSmoke},
	{"zigbee2mqtt", reading.KindDoor},
	{"tasmota", reading.KindTemperature}, {"tasmota", reading.KindTemperature},
	{"tasmota", reading.KindDoor},
	{"esphome", reading.KindTemperature}, {"esphome", reading.KindDoor},
	{"native", reading.KindMotion}, {"native", reading.KindPanic},
}

// mixOf is the cycle of devices of one payload format in deviceMix, in the
// mix's order and proportions; "" is the whole mix.
func mixOf(format string) ([]mixEntry, error) {
	if format == "" {
		return deviceMix, nil
	}
	var mix []mixEntry
	for _, m := range deviceMix {
		if m.format == format {
			mix = append(mix, m)
		}
	}
	if len(mix) == 0 {
		return nil, fmt.Errorf("no device of format %q in the bench's device mix", format)
	}
	return mix, nil
}

// benchDevices returns n simulated devices of the mix of format (see
// mixOf). It is deterministic: the orchestrator writes the gateway config
// from it and the publisher process rebuilds the same list to publish for
// them.
func benchDevices(n int, format string) ([]sensorsim.Device, error) {
	mix, err := mixOf(format)
	if err != nil {
		return nil, err
	}
	devs := make([]sensorsim.Device, n)
	for i := range devs {
		m := mix[i%len(mix)]
		z := benchZones[i%len(benchZones)]
		id := fmt.Sprintf("dev-%05d", i)
		var base string
		switch m.format {
		case "zigbee2mqtt":
			base = "zigbee2mqtt/" + z.id + "/" + id
		case "tasmota":
			base = fmt.Sprintf("tasmota_%06X", i)
		case "esphome":
			base = "esphome/" + id
		default:
			base = "shelter/" + id
		}
		devs[i] = sensorsim.Device{ID: id, Format: m.format, Base: base, Kind: m.kind, Zone: z.id, ZoneTags: []string{z.tag}}
	}
	return devs, nil
}

// planMessage is one publication prepared in advance, with the number of
// readings the gateway will store for it.
type planMessage struct {
	topic    string
	payload  []byte
	readings int
}

// planVariants is how many distinct states each device cycles through
// unless a scenario asks for more (publishSpec.Variants).
const planVariants = 2

// planStep is the time between a device's successive reports when they
// are stamped apart (publishSpec.Variants).
const planStep = time.Minute

// buildPlan prepares, for every device, the messages it publishes: its
// firmware's periodic report, built by sensorsim's pure payload builders,
// keeping only messages that carry readings (a Tasmota STATE heartbeat is
// real traffic but stores nothing, and the bench counts stored readings).
// Each message is decoded here with the gateway's own decoders to know how
// many readings it yields, so that "every acknowledged publish is stored"
// can be checked exactly.
//
// Payloads are built once: building JSON per publish would spend the
// machine's two cores on the load generator rather than the gateway. With
// variants 0 each device cycles through planVariants states, all with the
// device timestamps of the start of the run. With variants > 0 it has
// that many successive reports, each planStep of its life after the one
// before and stamped so, the last at now: a device publishing each once
// sends readings that InfluxDB, which keys a point by series and
// timestamp, keeps apart, so its count can be held to the store's.
func buildPlan(devs []sensorsim.Device, now time.Time, variants int) ([][]planMessage, error) {
	stamp := func(int) time.Time { return now }
	if variants > 0 {
		n := variants
		stamp = func(v int) time.Time { return now.Add(-time.Duration(n-1-v) * planStep) }
	} else {
		variants = planVariants
	}
	decoders := decode.All()
	plan := make([][]planMessage, len(devs))
	for i, d := range devs {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(1, uint64(i)))
		st := sensorsim.NewState(d, stamp(0), rng)
		dec := decoders[d.Format]
		ddev := decode.Device{ID: d.ID, Kind: d.Kind, Base: d.Base, Location: time.UTC}
		for v := range variants {
			if v > 0 {
				st.Step(rng, planStep)
				// Doors and motion come and go; smoke, panic buttons and
				// leaks stay quiet, as in a facility on a normal day (an
				// alarm storm at 10,000 messages/s measures something else).
				switch d.Kind {
				case reading.KindSmoke, reading.KindPanic, reading.KindWaterLeak:
				default:
					st.Active = !st.Active
				}
			}
			for _, m := range sensorsim.Report(d, st, stamp(v), time.UTC) {
				res, err := dec.Decode(ddev, m.Topic, m.Payload)
				if err != nil {
					return nil, fmt.Errorf("plan: device %s: the gateway's decoder rejects the simulated %s payload on %q: %w", d.ID, d.Format, m.Topic, err)
				}
				if len(res.Observations) == 0 {
					continue
				}
				plan[i] = append(plan[i], planMessage{topic: m.Topic, payload: m.Payload, readings: len(res.Observations)})
			}
		}
		if len(plan[i]) == 0 {
			return nil, fmt.Errorf("plan: device %s (%s %s) publishes nothing that carries a reading", d.ID, d.Format, d.Kind)
		}
	}
	return plan, nil
}

// configYAML writes the gateway config for a scenario as the operator would:
// YAML text, loaded and validated by config.Load like any other file.
func configYAML(devs []sensorsim.Device, g gatewayConfig) string {
	var b strings.Builder
	b.WriteString("facility:\n  id: bench\n  name: Bench facility\n  timezone: UTC\n")
	b.WriteString("zones:\n")
	for _, z := range benchZones {
		fmt.Fprintf(&b, "  - id: %s\n    tags: [%s]\n", z.id, z.tag)
	}
	b.WriteString("devices:\n")
	for _, d := range devs {
		fmt.Fprintf(&b, "  - id: %s\n    kind: %s\n    zone: %s\n    format: %s\n    topic: %q\n", d.ID, d.Kind, d.Zone, d.Format, d.Base)
	}
	b.WriteString("broker:\n")
	if g.externalURL != "" {
		fmt.Fprintf(&b, "  mode: external\n  external:\n    url: %q\n    client_id: shelterwatch-bench\n", g.externalURL)
		if g.maxInFlight > 0 {
			fmt.Fprintf(&b, "    max_in_flight: %d\n", g.maxInFlight)
		}
	} else {
		// Every publisher connects from loopback: lift the per-address cap.
		fmt.Fprintf(&b, "  mode: embedded\n  embedded:\n    listen: \"127.0.0.1:0\"\n    max_clients_per_address: 2000\n    users:\n")
		// One account per publisher connection, as every device has its
		// own: the broker caps the sessions of one user.
		for i := range max(g.users, 1) {
			fmt.Fprintf(&b, "      - username: %s\n        password_hash: %q\n        publish: [\"#\"]\n", publisherUser(g.username, i), g.passwordHash)
		}
	}
	if g.influxURL != "" {
		// The shipped defaults otherwise (gzip, batch size, linger): the
		// figures are those of a gateway as installed.
		fmt.Fprintf(&b, "influxdb:\n  - id: bench\n    url: %q\n    version: 1\n    database: %s\n", g.influxURL, influxd.Database)
	}
	fmt.Fprintf(&b, "store:\n  dir: %q\n", g.storeDir)
	fmt.Fprintf(&b, "http:\n  listen: %q\n", g.httpListen)
	b.WriteString("log:\n  level: warn\n")
	return b.String()
}

// gatewayConfig is what configYAML needs besides the devices.
type gatewayConfig struct {
	storeDir   string
	httpListen string
	// Embedded mode: the publishers' accounts, users of them named
	// publisherUser(username, i), all with the same password.
	username, passwordHash string
	users                  int
	// External mode.
	externalURL string
	maxInFlight int // 0: the gateway's default
	// influxURL, when set, is an InfluxDB 1.8 every reading is forwarded
	// to (database influxd.Database).
	influxURL string
}

// publisherUser is the account of publisher connection i.
func publisherUser(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
