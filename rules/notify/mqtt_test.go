package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/ingest/broker"
	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// startBroker starts the gateway's embedded broker with a "panel" account
// that may subscribe to the alarm states. stop closes it (once: the
// broker's Close is not idempotent).
func startBroker(t *testing.T) (b *broker.Broker, stop func()) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("panel-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b, err = broker.New(broker.Options{
		Listen:   "127.0.0.1:0",
		Handle:   func(context.Context, pipeline.Message) error { return nil },
		Accounts: []broker.Account{{Username: "panel", PasswordHash: string(hash), Subscribe: []string{"shelterwatch/#"}}},
		Logger:   testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { b.Close() }) }
	t.Cleanup(stop)
	return b, stop
}

var clientSeq atomic.Int64

// subscribe connects a panel and returns the zone states it receives.
func subscribe(t *testing.T, addr, filter string) <-chan paho.Message {
	t.Helper()
	msgs := make(chan paho.Message, 64)
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("panel-%d", clientSeq.Add(1))).SetUsername("panel").SetPassword("panel-pw").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect panel: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { msgs <- m })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return msgs
}

// awaitState waits for a state on topic that satisfies ok.
func awaitState(t *testing.T, msgs <-chan paho.Message, topic string, what string, ok func(ZoneState, paho.Message) bool) ZoneState {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-msgs:
			if m.Topic() != topic {
				continue
			}
			var s ZoneState
			if err := json.Unmarshal(m.Payload(), &s); err != nil {
				t.Fatalf("zone state %q: %v", m.Payload(), err)
			}
			if ok(s, m) {
				return s
			}
		case <-timeout:
			t.Fatalf("no zone state on %s with %s within 5s", topic, what)
		}
	}
}

func zoneEvent(id, zone string, sev alarm.Severity, kind alarm.EventKind) alarm.Event {
	ev := event(id, sev, kind)
	ev.Alarm.Zone = zone
	return ev
}

func TestMQTTZoneStateThroughTheEmbeddedBroker(t *testing.T) {
	b, stopBroker := startBroker(t)
	dir := t.TempDir()
	cfg := Config{Channels: []ChannelConfig{{Name: "panels", Type: TypeMQTT}, {Name: "chat", Type: TypeWebhook,
		Webhook: WebhookConfig{URL: newReceiver(t, nil).URL}}}}
	open := func(pub Publisher) *Outbox {
		o, err := New(cfg, Env{Dir: dir, Publisher: pub, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		run(t, o)
		return o
	}
	o := open(b)
	ctx := context.Background()
	enqueue := func(ev alarm.Event) {
		t.Helper()
		if err := o.Enqueue(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	kitchen := "shelterwatch/shelter-7/kitchen/alarm"

	smoke := zoneEvent("kitchen-smoke/1", "kitchen", alarm.SeverityFire, alarm.EventFiring)
	enqueue(smoke)
	// A panel that connects afterwards gets the retained state at once.
	late := subscribe(t, b.Addr(), "shelterwatch/shelter-7/+/alarm")
	s := awaitState(t, late, kitchen, "a retained fire state", func(s ZoneState, m paho.Message) bool {
		return m.Retained() && s.State == "alarm"
	})
	if s.Severity != alarm.SeverityFire || !s.Siren || s.Active != 1 || s.Alarm == nil || s.Alarm.ID != "kitchen-smoke/1" ||
		s.Facility != "shelter-7" || s.Zone != "kitchen" {
		t.Fatalf("state %+v", s)
	}

	steps := []struct {
		name string
		ev   alarm.Event
		want func(ZoneState) bool
	}{
		{"a warning does not hide the fire", zoneEvent("kitchen-leak/2", "kitchen", alarm.SeverityWarning, alarm.EventFiring),
			func(s ZoneState) bool { return s.Active == 2 && s.Severity == alarm.SeverityFire && s.Siren }},
		{"acknowledging the fire stops the siren", zoneEvent("kitchen-smoke/1", "kitchen", alarm.SeverityFire, alarm.EventAcknowledged),
			func(s ZoneState) bool {
				return s.Active == 2 && s.Unacknowledged == 1 && !s.Siren && s.Alarm.State == alarm.StateAcknowledged && s.Alarm.AckedBy == "li.na"
			}},
		{"resolving the fire leaves the warning", zoneEvent("kitchen-smoke/1", "kitchen", alarm.SeverityFire, alarm.EventResolved),
			func(s ZoneState) bool {
				return s.Active == 1 && s.Severity == alarm.SeverityWarning && s.Alarm.ID == "kitchen-leak/2"
			}},
		{"resolving the warning clears the zone", zoneEvent("kitchen-leak/2", "kitchen", alarm.SeverityWarning, alarm.EventResolved),
			func(s ZoneState) bool {
				return s.State == "clear" && s.Active == 0 && s.Alarm == nil && s.Severity == ""
			}},
	}
	for _, st := range steps {
		enqueue(st.ev)
		awaitState(t, late, kitchen, st.name, func(s ZoneState, _ paho.Message) bool { return st.want(s) })
	}
	// The retained message was replaced: a new panel sees the zone clear.
	fresh := subscribe(t, b.Addr(), kitchen)
	awaitState(t, fresh, kitchen, "a retained clear state", func(s ZoneState, m paho.Message) bool {
		return m.Retained() && s.State == "clear"
	})

	// A silenced alarm pages nobody but leaves the panels.
	dorm := "shelterwatch/shelter-7/dorm-3/alarm"
	wander := zoneEvent("night-door/3", "dorm-3", alarm.SeverityCritical, alarm.EventFiring)
	enqueue(wander)
	awaitState(t, late, dorm, "the door alarm", func(s ZoneState, _ paho.Message) bool { return s.Severity == alarm.SeverityCritical })
	cold := zoneEvent("dorm-cold/4", "dorm-3", alarm.SeverityWarning, alarm.EventFiring)
	enqueue(cold)
	awaitState(t, late, dorm, "two alarms", func(s ZoneState, _ paho.Message) bool { return s.Active == 2 })
	muted := cold
	muted.Kind, muted.At = alarm.EventRepeat, cold.At.Add(time.Minute)
	muted.Alarm.Silenced = true
	if chans := o.Route(muted); len(chans) != 1 || chans[0] != "panels" {
		t.Fatalf("silenced event routed to %v, want only the panels", chans)
	}
	enqueue(muted)
	awaitState(t, late, dorm, "the silenced alarm gone", func(s ZoneState, _ paho.Message) bool {
		return s.Active == 1 && s.Alarm.ID == "night-door/3"
	})

	// Restart the gateway: a new embedded broker has no retained messages;
	// the outbox publishes every zone it knows again.
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	stopBroker()
	b2, _ := startBroker(t)
	open(b2)
	again := subscribe(t, b2.Addr(), "shelterwatch/shelter-7/+/alarm")
	got := map[string]ZoneState{}
	for len(got) < 2 {
		select {
		case m := <-again:
			var s ZoneState
			if err := json.Unmarshal(m.Payload(), &s); err != nil {
				t.Fatal(err)
			}
			got[m.Topic()] = s
		case <-time.After(5 * time.Second):
			t.Fatalf("after the restart the panel got only %v", got)
		}
	}
	if s := got[dorm]; s.State != "alarm" || s.Severity != alarm.SeverityCritical || !s.Siren {
		t.Fatalf("dorm-3 after restart: %+v", s)
	}
	if s := got[kitchen]; s.State != "clear" {
		t.Fatalf("kitchen after restart: %+v", s)
	}
}

func TestMQTTTopics(t *testing.T) {
	m := newMQTT(common{}, nil, "sw")
	for _, tc := range []struct{ facility, zone, want string }{
		{"shelter-7", "kitchen", "sw/shelter-7/kitchen/alarm"},
		{"shelter-7", "", "sw/shelter-7/_facility/alarm"},
		{"a/b", "x+y#", "sw/a_b/x_y_/alarm"},
	} {
		if got := m.Topic(tc.facility, tc.zone); got != tc.want {
			t.Errorf("Topic(%q, %q) = %q, want %q", tc.facility, tc.zone, got, tc.want)
		}
	}
}
