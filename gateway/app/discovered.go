package app

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/discover"
)

// discovered keeps what devices announce about themselves on the
// gateway's broker (ingest/discover), so that an admin sees in the
// console which devices are there but not configured yet. It only
// proposes: the config file is the installer's to change.
//
// The pipeline offers it every message no configured device publishes
// under (pipeline.Options.Unrouted) from the broker's goroutines; a
// mutex guards the collector, which keeps the latest message per
// discovery topic, so memory is bounded by the number of announcing
// topics.
type discovered struct {
	opts discover.Options

	mu  sync.Mutex
	col *discover.Collector

	bad prometheus.Counter
}

func newDiscovered(cfg *config.Config) *discovered {
	d := &discovered{col: discover.NewCollector(),
		bad: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_discovery_unreadable_total",
			Help: "Device announcements (Zigbee2MQTT bridge/devices, Home Assistant, Tasmota or Homie discovery) that could not be read."})}
	for _, dev := range cfg.Devices {
		d.opts.Configured = append(d.opts.Configured, discover.Configured{ID: dev.ID, Format: dev.Format, Topic: dev.Topic, Channel: dev.Channel})
	}
	// A device id is its MQTT user name: it must not be a broker user's.
	for _, u := range cfg.Broker.Embedded.Users {
		d.opts.Reserved = append(d.opts.Reserved, u.Username)
	}
	return d
}

// offer is pipeline.Options.Unrouted: it takes discovery announcements.
func (d *discovered) offer(topic string, payload []byte) bool {
	if !discover.Relevant(topic) {
		return false
	}
	d.mu.Lock()
	err := d.col.Add(discover.Message{Topic: topic, Payload: payload})
	d.mu.Unlock()
	if err != nil {
		d.bad.Inc()
	}
	return true
}

// Discovered implements httpapi.Discovered.
func (d *discovered) Discovered() discover.Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.col.Propose(d.opts)
}
