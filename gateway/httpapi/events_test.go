package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// liveAlarms is a rules engine's open alarms, changed by the test.
type liveAlarms struct {
	mu   sync.Mutex
	list []alarm.Alarm
}

func (l *liveAlarms) set(list ...alarm.Alarm) {
	l.mu.Lock()
	l.list = list
	l.mu.Unlock()
}

func (l *liveAlarms) Active(context.Context) ([]alarm.Alarm, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]alarm.Alarm(nil), l.list...), nil
}
func (l *liveAlarms) Acknowledge(context.Context, string, string, string) error { return nil }
func (l *liveAlarms) Reset(context.Context, string, string, string) error       { return nil }
func (l *liveAlarms) AddSilence(context.Context, engine.Silence) error          { return nil }

type sse struct {
	id, kind, data string
}

// stream opens /api/v1/events as the token with secret and returns its
// events as they arrive.
func stream(t *testing.T, url, secret, lastID string) (<-chan sse, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan sse, 256)
	if resp.StatusCode != 200 {
		close(ch)
		return ch, resp
	}
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var e sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.kind != "" {
					ch <- e
				}
				e = sse{}
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.data = line[6:]
			}
		}
	}()
	return ch, resp
}

// next waits for the next event of one of kinds, skipping others.
func next(t *testing.T, ch <-chan sse, kinds ...string) sse {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended waiting for %v", kinds)
			}
			for _, k := range kinds {
				if e.kind == k {
					return e
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within 5 s", kinds)
		}
	}
}

func TestEventsStreamChangesPerRole(t *testing.T) {
	al := &liveAlarms{}
	al.set(alarm.Alarm{ID: "heat@zone:kitchen", Rule: "heat", Severity: alarm.SeverityCritical, State: alarm.StateFiring})
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	state := devstate.New([]facility.Device{{ID: "kitchen-smoke", Zone: "kitchen", Kind: reading.KindSmoke, OfflineAfter: time.Hour}},
		func() time.Time { return now })
	var tokens []httpapi.Token
	for _, role := range []string{"manager", "supervisor", "inspector"} {
		tok, err := httpapi.ParseToken(role, role, sha256Hex(role+"-secret"))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{Tokens: tokens, Alarms: al, State: state,
		Gatherer: prometheus.NewRegistry(), EventsEvery: 20 * time.Millisecond}))
	t.Cleanup(srv.Close)

	mgr, _ := stream(t, srv.URL, "manager-secret", "")
	sup, _ := stream(t, srv.URL, "supervisor-secret", "")
	snap := next(t, mgr, "snapshot")
	var s struct{ Alarms, Devices, Cameras []json.RawMessage }
	if err := json.Unmarshal([]byte(snap.data), &s); err != nil || len(s.Alarms) != 1 || len(s.Devices) != 1 {
		t.Fatalf("manager's snapshot %s", snap.data)
	}
	supSnap := next(t, sup, "snapshot")
	if err := json.Unmarshal([]byte(supSnap.data), &s); err != nil || len(s.Alarms) != 1 || len(s.Devices) != 0 {
		t.Fatalf("supervisor's snapshot %s: alarms yes, devices no", supSnap.data)
	}

	// A smoke alarm opens; a reading changes the device.
	al.set(alarm.Alarm{ID: "heat@zone:kitchen", Rule: "heat", Severity: alarm.SeverityCritical, State: alarm.StateFiring},
		alarm.Alarm{ID: "smoke@dev:kitchen-smoke", Rule: "smoke", Severity: alarm.SeverityFire, State: alarm.StateFiring})
	state.Observe("kitchen-smoke", now, []reading.Reading{{Device: "kitchen-smoke", Kind: reading.KindSmoke, Time: now, Value: reading.Bool(true)}})
	e := next(t, mgr, "alarm")
	if !strings.Contains(e.data, `"smoke@dev:kitchen-smoke"`) {
		t.Fatalf("alarm event %s", e.data)
	}
	if d := next(t, mgr, "device"); !strings.Contains(d.data, `"kitchen-smoke"`) {
		t.Fatalf("device event %s", d.data)
	}
	if e := next(t, sup, "alarm", "device"); e.kind != "alarm" {
		t.Fatalf("supervisor got a %s event: devices are not theirs", e.kind)
	}

	// Resume: a reconnect with Last-Event-ID gets the change it missed,
	// not a snapshot. (The supervisor's stream keeps the hub running.)
	al.set(alarm.Alarm{ID: "smoke@dev:kitchen-smoke", Rule: "smoke", Severity: alarm.SeverityFire, State: alarm.StateAcknowledged})
	// One look finds both changes: the heat alarm closed, the smoke alarm
	// acknowledged, in either order.
	first, second := next(t, mgr, "alarm", "alarm_closed"), next(t, mgr, "alarm", "alarm_closed")
	closed, ack := first, second
	if first.kind == "alarm" {
		closed, ack = second, first
	}
	if closed.kind != "alarm_closed" || !strings.Contains(closed.data, "heat@zone:kitchen") || !strings.Contains(ack.data, `"acknowledged"`) {
		t.Fatalf("events %v %v: want the heat alarm closed and the smoke alarm acknowledged", first, second)
	}
	again, _ := stream(t, srv.URL, "manager-secret", first.id)
	if e := next(t, again, "snapshot", "alarm", "alarm_closed", "device"); e.id != second.id || e.kind != second.kind {
		t.Fatalf("resumed after %s: got %s %s, want the event %s %s it missed", first.id, e.kind, e.id, second.kind, second.id)
	}
	// An id the ring does not have: a snapshot.
	fresh, _ := stream(t, srv.URL, "manager-secret", "99999999")
	next(t, fresh, "snapshot")

	// Four streams per login at most.
	if _, resp := stream(t, srv.URL, "manager-secret", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("a 4th manager stream: %d, want 200", resp.StatusCode)
	}
	_, resp := stream(t, srv.URL, "manager-secret", "")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a 5th manager stream: %d, want 429", resp.StatusCode)
	}
	// And none without credentials.
	_, resp = stream(t, srv.URL, "not-a-token", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", resp.StatusCode)
	}
}

// TestEventsAlarmChangeWakesTheStream: with a tick of an hour, an alarm
// change still reaches the stream at once when the engine signals it.
func TestEventsAlarmChangeWakesTheStream(t *testing.T) {
	al := &liveAlarms{}
	tok, err := httpapi.ParseToken("manager", "manager", sha256Hex("manager-secret"))
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{Tokens: []httpapi.Token{tok}, Alarms: al,
		Gatherer: prometheus.NewRegistry(), EventsEvery: time.Hour, AlarmsChanged: changed}))
	t.Cleanup(srv.Close)
	mgr, _ := stream(t, srv.URL, "manager-secret", "")
	next(t, mgr, "snapshot")

	al.set(alarm.Alarm{ID: "smoke@dev:kitchen-smoke", Rule: "smoke", Severity: alarm.SeverityCritical, State: alarm.StateFiring})
	changed <- struct{}{}
	if e := next(t, mgr, "alarm"); !strings.Contains(e.data, `"smoke@dev:kitchen-smoke"`) {
		t.Fatalf("alarm event %s", e.data)
	}
	al.set()
	changed <- struct{}{}
	if e := next(t, mgr, "alarm_closed"); !strings.Contains(e.data, "smoke@dev:kitchen-smoke") {
		t.Fatalf("closed event %s", e.data)
	}
}
