// Package sensorsim simulates the sensors of a facility: it publishes
// realistic traffic over real MQTT, on the topics and in the payload formats
// real sensor firmware uses (Zigbee2MQTT, Tasmota, ESPHome, Shelly Gen2,
// Homie 5 and our native JSON). The gateway's demo command, integration
// tests and benchmarks use it in place of a building full of hardware.
//
// Booleans follow the firmware: an open door is Zigbee2MQTT "contact":false,
// Tasmota "Switch1":"ON" (SwitchMode 15, contact that closes when the door
// opens), ESPHome ON, Shelly input "state":true, Homie "true" and native
// "door":true.
//
// There are two layers:
//
//   - Pure payload builders (Birth, Report, Change, Will, Shutdown) turn a
//     Device and its simulated State into the Messages its firmware would
//     publish at a given time. They do no I/O, so tests and benchmark tools
//     can generate traffic without a broker.
//   - Run connects one MQTT client per device, publishes periodic reports
//     with jitter, and optionally plays out events a facility manager would
//     care about (a secure-ward door opened at night, a dormitory heating
//     failure, smoke in the kitchen).
//
// Concurrency: Run starts one goroutine per device, which owns that device's
// State, MQTT client and timers, plus one event scheduler goroutine; Run
// waits for all of them before it returns. Options.Clock is the wall clock
// written into payloads and used to decide whether it is night; waiting uses
// real timers.
//
// Backpressure: a device publishes at QoS 1 and waits (bounded) for the
// broker's acknowledgement before its next message, so a slow broker slows
// only that device. While a device is disconnected its readings are not
// queued: like real battery sensors it keeps measuring, reports nothing, and
// publishes its current state when it is back. An event picked for a device
// that is disconnected or already in an event is skipped and logged at Debug.
package sensorsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Payload formats, as named in the gateway config.
const (
	formatNative      = "native"
	formatZigbee2MQTT = "zigbee2mqtt"
	formatTasmota     = "tasmota"
	formatESPHome     = "esphome"
	formatShelly      = "shelly"
	formatHomie       = "homie"
)

// Zone tags that drive events.
const (
	TagSecureWard = "secure-ward"
	TagKitchen    = "kitchen"
	TagDormitory  = "dormitory"
)

// Device is one simulated sensor. Each has its own MQTT connection, even a
// Zigbee2MQTT one: in a real facility all Zigbee devices share the bridge's
// connection, which makes no difference to the topics and payloads.
type Device struct {
	// ID is the gateway's device id; the MQTT client id is "sim-"+ID, and ID
	// is the MQTT username when Password is set and Username is empty.
	ID string
	// Format is the firmware the device imitates: native, zigbee2mqtt,
	// tasmota, esphome, shelly or homie.
	Format string
	// Base is the base topic as configured for the device in the gateway:
	//   - zigbee2mqtt: "zigbee2mqtt/<friendly name>" (state on Base,
	//     availability on Base+"/availability");
	//   - tasmota: the %topic%, e.g. "tasmota_A1B2C3" (publishes
	//     tele/<topic>/SENSOR, tele/<topic>/STATE, tele/<topic>/LWT);
	//   - esphome: the topic_prefix (<base>/sensor/<name>/state,
	//     <base>/binary_sensor/<name>/state, <base>/status);
	//   - shelly: the topic_prefix (<base>/status/<component>:0,
	//     <base>/events/rpc, <base>/online);
	//   - homie: "homie/5/<device id>" (<base>/$state, <base>/<node>/<prop>);
	//   - native: JSON on Base, availability online/offline on Base+"/status".
	Base string
	// Kind is what the device primarily measures. Climate kinds
	// (temperature, humidity, pressure) report temperature and humidity (and
	// pressure where the hardware has a barometer); smoke, door, motion,
	// water_leak and panic report one boolean.
	Kind reading.Kind
	Zone string
	// ZoneTags (secure-ward, kitchen, dormitory, …) decide which events the
	// device takes part in.
	ZoneTags []string
	// Username and Password are the MQTT credentials; both empty means an
	// anonymous connection.
	Username, Password string
}

// Options configures Run.
type Options struct {
	// Broker is the MQTT broker URL, e.g. "tcp://127.0.0.1:1883".
	Broker  string
	Devices []Device
	// Interval is the mean period between a device's periodic reports; each
	// wait is drawn uniformly from [Interval/2, 3*Interval/2). Default 10s.
	Interval time.Duration
	// Events enables occasional events, roughly one every EventEvery
	// (default 2m): a door opened at night in a secure-ward zone, a heating
	// failure in a dormitory (the temperature falls for half an hour), smoke
	// in the kitchen (cleared after about a minute).
	Events     bool
	EventEvery time.Duration
	// Location is the facility time zone: Tasmota writes local time without
	// an offset, and "night" (22:00–06:00) is local. Default time.Local.
	Location *time.Location
	// Logger receives connection problems (Warn), events (Info) and details
	// (Debug). Default: discard.
	Logger *slog.Logger
	// Seed makes the simulated values and delays deterministic when non-zero
	// (the interleaving of devices still depends on the scheduler).
	Seed int64
	// Clock is the wall clock written into payloads. Default time.Now.
	Clock func() time.Time
}

// Defaults for Options.
const (
	DefaultInterval   = 10 * time.Second
	DefaultEventEvery = 2 * time.Minute
)

// withDefaults returns a copy of o with zero fields filled in.
func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.EventEvery <= 0 {
		o.EventEvery = DefaultEventEvery
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// validate checks everything Run needs before it connects anything.
func (o Options) validate() error {
	u, err := url.Parse(o.Broker)
	if err != nil {
		return fmt.Errorf("sensorsim: broker %q: %w", o.Broker, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("sensorsim: broker %q: want a URL like tcp://127.0.0.1:1883", o.Broker)
	}
	if u.Host == "" {
		return fmt.Errorf("sensorsim: broker %q: missing host", o.Broker)
	}
	if len(o.Devices) == 0 {
		return errors.New("sensorsim: no devices")
	}
	ids := make(map[string]bool, len(o.Devices))
	bases := make(map[string]string, len(o.Devices))
	for _, d := range o.Devices {
		if err := d.Validate(); err != nil {
			return err
		}
		if ids[d.ID] {
			return fmt.Errorf("sensorsim: device %q: duplicate id (MQTT client ids must be unique)", d.ID)
		}
		ids[d.ID] = true
		if other, ok := bases[d.Base]; ok {
			return fmt.Errorf("sensorsim: device %q: base topic %q already used by device %q", d.ID, d.Base, other)
		}
		bases[d.Base] = d.ID
	}
	return nil
}

// Validate reports whether d can be simulated.
func (d Device) Validate() error {
	if d.ID == "" {
		return errors.New("sensorsim: device with empty id")
	}
	switch d.Format {
	case formatNative, formatZigbee2MQTT, formatTasmota, formatESPHome, formatShelly, formatHomie:
	default:
		return fmt.Errorf("sensorsim: device %q: unknown format %q (want native, zigbee2mqtt, tasmota, esphome, shelly or homie)", d.ID, d.Format)
	}
	if d.Base == "" {
		return fmt.Errorf("sensorsim: device %q: empty base topic", d.ID)
	}
	if strings.ContainsAny(d.Base, "+#") {
		return fmt.Errorf("sensorsim: device %q: base topic %q contains an MQTT wildcard", d.ID, d.Base)
	}
	if strings.HasPrefix(d.Base, "/") || strings.HasSuffix(d.Base, "/") || strings.Contains(d.Base, "//") {
		return fmt.Errorf("sensorsim: device %q: base topic %q has an empty level", d.ID, d.Base)
	}
	if d.Format == formatTasmota && strings.Contains(d.Base, "/") {
		return fmt.Errorf("sensorsim: device %q: tasmota base %q must be the %%topic%% alone (no '/')", d.ID, d.Base)
	}
	if !isClimate(d.Kind) && !isBinary(d.Kind) {
		return fmt.Errorf("sensorsim: device %q: kind %q cannot be simulated (want temperature, humidity, pressure, smoke, door, motion, water_leak or panic)", d.ID, d.Kind)
	}
	if d.Format == formatShelly && d.Kind == reading.KindPressure {
		return fmt.Errorf("sensorsim: device %q: shelly devices have no pressure sensor", d.ID)
	}
	return nil
}

// hasTag reports whether the device's zone carries tag.
func (d Device) hasTag(tag string) bool {
	for _, t := range d.ZoneTags {
		if t == tag {
			return true
		}
	}
	return false
}

func isClimate(k reading.Kind) bool {
	return k == reading.KindTemperature || k == reading.KindHumidity || k == reading.KindPressure
}

func isBinary(k reading.Kind) bool {
	switch k {
	case reading.KindSmoke, reading.KindDoor, reading.KindMotion, reading.KindWaterLeak, reading.KindPanic:
		return true
	}
	return false
}

// Run simulates opts.Devices until ctx is done, then publishes each device's
// clean-shutdown availability, disconnects, and returns nil. It returns an
// error only for invalid options; broker problems are logged and retried
// with capped, jittered backoff.
func Run(ctx context.Context, opts Options) error {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return err
	}
	seed := uint64(opts.Seed)
	if seed == 0 {
		seed = rand.Uint64()
	}

	runners := make([]*deviceRunner, len(opts.Devices))
	for i, d := range opts.Devices {
		runners[i] = newDeviceRunner(d, &opts, rand.New(rand.NewPCG(seed, uint64(i)+1)))
	}

	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Go(func() { r.run(ctx) })
	}
	if opts.Events {
		sched := &scheduler{opts: &opts, runners: runners, rng: rand.New(rand.NewPCG(seed, 0))}
		wg.Go(func() { sched.run(ctx) })
	}
	wg.Wait()
	return nil
}
