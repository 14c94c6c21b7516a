package facility

import (
	"slices"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Zone is a room or area of the facility (dormitory 3, kitchen, secure
// ward); rules select zones by their tags.
type Zone struct {
	ID, Name, NameZH string
	Tags             []string
}

// HasTag reports whether the zone carries tag.
func (z *Zone) HasTag(tag string) bool { return slices.Contains(z.Tags, tag) }

// Device is something that reports readings: a sensor, or one of the
// gateway's own parts (a built-in device).
type Device struct {
	ID   string
	Name string
	// Kind is the primary thing the device measures.
	Kind reading.Kind
	Zone string
	// OfflineAfter is the silence after which the device counts as
	// offline (0: never, for devices that report only on change).
	OfflineAfter time.Duration
	// Format is the payload format its firmware speaks (a decoder's
	// name) and Topic its base MQTT topic; Invert flips boolean states for
	// wiring that reports the opposite. Empty for built-in devices.
	Format string
	Topic  string
	Invert bool
	// Channel is the sub-sensor of a multi-sensor board the device is
	// (see decode.Observation.Channel); empty for a whole device.
	Channel string
	// Bridge is the base topic of the bridge (Zigbee2MQTT) the device
	// reaches the gateway through; empty when it has none.
	Bridge string
	// StatusTopic, OnlinePayload and OfflinePayload replace the topic and
	// payloads of the device's own availability message where its
	// firmware lets them be changed (ESPHome's birth and will messages);
	// "" keeps the format's default.
	StatusTopic, OnlinePayload, OfflinePayload string
	// Builtin marks a device of the gateway itself (a camera's video, an
	// InfluxDB target, the store): its readings say how the gateway is,
	// not how a room is. Sensor rules, absence rules and the gateway-wide
	// "no readings" watchdog ignore it; only rules of kind fault see it.
	Builtin bool
}

// Camera is an RTSP camera of the facility.
type Camera struct {
	ID, Name, NameZH string
	Zone             string
	// OnDemand cameras are pulled only while someone watches.
	OnDemand bool
	// DownAfter is how long an always-on camera may show no video before
	// it is a fault.
	DownAfter time.Duration
}

// DisplayName is the camera's name, or its id when it has none.
func (c *Camera) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// DefaultOfflineAfter returns the offline_after a device of kind gets when
// its configuration does not set one: 1h for kinds that report on a short period
// (temperature, humidity, pressure, co), 25h for the rest, which are mostly
// battery devices that only check in once a day when nothing happens (smoke,
// door, motion, water leak, panic, tamper, battery).
func DefaultOfflineAfter(kind reading.Kind) time.Duration {
	switch kind {
	case reading.KindTemperature, reading.KindHumidity, reading.KindPressure, reading.KindCO:
		return time.Hour
	}
	return 25 * time.Hour
}
