package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelterwatch/shelterwatch/internal/backoff"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Publisher publishes one MQTT message. The embedded broker
// (*broker.Broker of ingest/broker) has exactly this method; PahoPublisher
// adapts a client connected to an external broker.
type Publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// PahoPublisher publishes through a paho client and waits for the
// broker's acknowledgement (QoS 1) up to Timeout (default 10s).
type PahoPublisher struct {
	Client  paho.Client
	Timeout time.Duration
}

// Publish implements Publisher.
func (p PahoPublisher) Publish(topic string, payload []byte, retain bool, qos byte) error {
	t := p.Timeout
	if t <= 0 {
		t = 10 * time.Second
	}
	tok := p.Client.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(t) {
		return fmt.Errorf("mqtt: publish to %s not acknowledged within %v", topic, t)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: publish to %s: %w", topic, err)
	}
	return nil
}

// ZoneState is the retained QoS 1 message on
// <prefix>/<facility>/<zone>/alarm: the zone's worst active alarm, or a
// clear state. Gateway-wide alarms (no zone) use the zone "_facility".
type ZoneState struct {
	Facility string `json:"facility"`
	Zone     string `json:"zone"`
	// State is "alarm" while an alarm of the zone is firing or
	// acknowledged, else "clear".
	State string `json:"state"`
	// Severity is the worst active alarm's ("" when clear).
	Severity alarm.Severity `json:"severity,omitempty"`
	// Siren is true while a critical or fire alarm of the zone is not
	// acknowledged: what a siren should follow.
	Siren bool `json:"siren"`
	// Active and Unacknowledged count the zone's active alarms.
	Active         int `json:"active"`
	Unacknowledged int `json:"unacknowledged"`
	// Alarm is the worst active alarm: highest severity, unacknowledged
	// before acknowledged, then the oldest.
	Alarm   *ZoneAlarm `json:"alarm,omitempty"`
	Updated time.Time  `json:"updated"`
}

// ZoneAlarm is an active alarm as the zone state shows it.
type ZoneAlarm struct {
	ID       string         `json:"id"`
	Seq      uint64         `json:"seq"`
	Rule     string         `json:"rule"`
	Severity alarm.Severity `json:"severity"`
	Device   string         `json:"device,omitempty"`
	State    alarm.State    `json:"state"`
	Title    alarm.Text     `json:"title"`
	Since    time.Time      `json:"since"`
	AckedBy  string         `json:"acked_by,omitempty"`
}

// mqttChannel keeps every active alarm per zone, from the events it is
// sent, and publishes the zone's state after each. The state is persisted
// in the outbox's database, so after a restart (and a new embedded broker
// that lost its retained messages) every zone it knows is published again.
type mqttChannel struct {
	common
	pub    Publisher
	prefix string

	mu    sync.Mutex
	zones map[zoneKey]map[string]ZoneAlarm
	store *stateStore
}

type zoneKey struct{ facility, zone string }

const facilityZone = "_facility"

func newMQTT(c common, pub Publisher, prefix string) *mqttChannel {
	return &mqttChannel{common: c, pub: pub, prefix: prefix, zones: map[zoneKey]map[string]ZoneAlarm{}}
}

func (m *mqttChannel) Name() string { return m.name }

// Topic is the state topic of a zone.
func (m *mqttChannel) Topic(facility, zone string) string {
	if zone == "" {
		zone = facilityZone
	}
	return m.prefix + "/" + topicLevel(facility) + "/" + topicLevel(zone) + "/alarm"
}

// topicLevel makes s usable as one topic level.
func topicLevel(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#', 0:
			return '_'
		}
		return r
	}, s)
}

func (m *mqttChannel) Send(_ context.Context, ev alarm.Event) error {
	a := ev.Alarm
	k := zoneKey{a.Facility, a.Zone}
	m.mu.Lock()
	z := m.zones[k]
	if z == nil {
		z = map[string]ZoneAlarm{}
		m.zones[k] = z
	}
	prev, known := z[a.ID]
	// The outbox hands one alarm's events to a channel in order; an older
	// episode's event arriving late must not bring it back.
	if !known || a.Seq >= prev.Seq {
		if ev.Kind == alarm.EventResolved || a.State == alarm.StateResolved || a.Silenced {
			delete(z, a.ID)
		} else {
			st := a.State
			if st == "" {
				st = alarm.StateFiring
			}
			z[a.ID] = ZoneAlarm{ID: a.ID, Seq: a.Seq, Rule: a.Rule, Severity: a.Severity, Device: a.Device,
				State: st, Title: a.Title, Since: a.Since, AckedBy: a.AckedBy}
		}
	}
	state := m.stateLocked(k, ev.At)
	defer m.mu.Unlock()
	if err := m.persistLocked(k); err != nil {
		return fmt.Errorf("store zone state: %w", err)
	}
	// Publishing under the lock keeps a zone's states in order on the
	// broker even with several workers.
	return m.publish(k, state)
}

func (m *mqttChannel) stateLocked(k zoneKey, at time.Time) ZoneState {
	zone := k.zone
	if zone == "" {
		zone = facilityZone
	}
	s := ZoneState{Facility: k.facility, Zone: zone, State: "clear", Updated: at}
	var worst *ZoneAlarm
	for _, za := range m.zones[k] {
		s.Active++
		if za.State != alarm.StateAcknowledged {
			s.Unacknowledged++
			if urgent(za.Severity) {
				s.Siren = true
			}
		}
		if worst == nil || worse(za, *worst) {
			w := za
			worst = &w
		}
	}
	if worst != nil {
		s.State, s.Severity, s.Alarm = "alarm", worst.Severity, worst
	}
	return s
}

// worse orders alarms for the zone state.
func worse(a, b ZoneAlarm) bool {
	if c := cmp.Compare(a.Severity.Rank(), b.Severity.Rank()); c != 0 {
		return c > 0
	}
	if ua, ub := a.State != alarm.StateAcknowledged, b.State != alarm.StateAcknowledged; ua != ub {
		return ua
	}
	if !a.Since.Equal(b.Since) {
		return a.Since.Before(b.Since)
	}
	return a.ID < b.ID
}

func (m *mqttChannel) publish(k zoneKey, s ZoneState) error {
	payload, err := json.Marshal(s)
	if err != nil {
		return Permanent(err)
	}
	if m.pub == nil {
		return errors.New("no MQTT publisher")
	}
	if err := m.pub.Publish(m.Topic(k.facility, k.zone), payload, true, 1); err != nil {
		return fmt.Errorf("publish zone state: %w", err)
	}
	return nil
}

// Zone state persistence: one key per zone, the JSON list of its active
// alarms (an empty list for a zone that is clear, so that it is published
// as clear after a restart).
func (m *mqttChannel) persistLocked(k zoneKey) error {
	if m.store == nil {
		return nil
	}
	list := make([]ZoneAlarm, 0, len(m.zones[k]))
	for _, za := range m.zones[k] {
		list = append(list, za)
	}
	slices.SortFunc(list, func(a, b ZoneAlarm) int { return cmp.Compare(a.ID, b.ID) })
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return m.store.put(k.facility+"\x00"+k.zone, b)
}

// loadState implements stateful.
func (m *mqttChannel) loadState(st *stateStore) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store = st
	return st.each(func(key string, val []byte) error {
		f, z, ok := strings.Cut(key, "\x00")
		if !ok {
			return nil
		}
		var list []ZoneAlarm
		if err := json.Unmarshal(val, &list); err != nil {
			return fmt.Errorf("zone %s/%s: %w", f, z, err)
		}
		zm := make(map[string]ZoneAlarm, len(list))
		for _, za := range list {
			zm[za.ID] = za
		}
		m.zones[zoneKey{f, z}] = zm
		return nil
	})
}

// run implements runner: it publishes every known zone's state once, with
// backoff until the broker takes them all, because retained messages may
// have been lost with a restarted broker.
func (m *mqttChannel) run(ctx context.Context) {
	m.mu.Lock()
	todo := make(map[zoneKey]bool, len(m.zones))
	for k := range m.zones {
		todo[k] = true
	}
	m.mu.Unlock()
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		for k := range todo {
			if err := m.publish(k, m.stateLocked(k, m.now())); err != nil {
				if m.log != nil && m.limiter.Allow(m.name+":republish") {
					m.log.Warn("notify: republishing zone state", "channel", m.name, "zone", k.zone, "err", err)
				}
				continue
			}
			delete(todo, k)
		}
		m.mu.Unlock()
		if len(todo) == 0 {
			return
		}
		t := time.NewTimer(backoff.Delay(attempt, 500*time.Millisecond, 30*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
