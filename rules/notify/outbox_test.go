package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

func testWebhook(name, url string) *webhookChannel {
	return &webhookChannel{common: common{name: name, http: newHTTPPoster(nil), now: time.Now, loc: time.UTC}, url: url}
}

func TestOutboxResumesPendingAfterRestart(t *testing.T) {
	var up atomic.Bool
	rc := newReceiver(t, func(n int, r received) (int, map[string]string, string) {
		if !up.Load() {
			return http.StatusServiceUnavailable, nil, "maintenance"
		}
		return 200, nil, ""
	})
	dir := t.TempDir()
	opts := Options{Channels: []Channel{testWebhook("hook", rc.URL)}, RetryMin: time.Hour, RetryMax: time.Hour}
	o := mustOpen(t, dir, opts)
	evs := []alarm.Event{
		event("kitchen-smoke/a", alarm.SeverityFire, alarm.EventFiring),
		event("dorm-cold/b", alarm.SeverityWarning, alarm.EventFiring),
		event("battery/c", alarm.SeverityTrouble, alarm.EventFiring),
	}
	for _, ev := range evs {
		if err := o.Enqueue(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	testpeer.WaitFor(t, "a first attempt of each delivery", 5*time.Second, func() bool {
		for _, ev := range evs {
			ds := o.Deliveries(ev.Alarm.ID)
			if len(ds) != 1 || ds[0].Attempts != 1 {
				return false
			}
		}
		return true
	})
	for _, ev := range evs {
		d := o.Deliveries(ev.Alarm.ID)[0]
		if d.State != DeliveryPending || !strings.Contains(d.LastError, "HTTP 503") || d.NextAttempt.IsZero() {
			t.Fatalf("before restart %s: %+v, want pending after a 503 with a next attempt", ev.Alarm.ID, d)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	up.Store(true)
	o = mustOpen(t, dir, opts)
	ids := map[string]bool{}
	for range evs {
		r := rc.next(t, 5*time.Second)
		ids[r.header.Get(HeaderEventID)] = true
	}
	for _, ev := range evs {
		if !ids[EventID(ev)] {
			t.Errorf("event %s not delivered after the restart", ev.Alarm.ID)
		}
	}
	testpeer.WaitFor(t, "deliveries recorded as delivered", 5*time.Second, func() bool {
		for _, ev := range evs {
			if ds := o.Deliveries(ev.Alarm.ID); len(ds) != 1 || ds[0].State != DeliveryDelivered {
				return false
			}
		}
		return true
	})
	d := o.Deliveries(evs[0].Alarm.ID)[0]
	if d.Attempts != 2 || d.Channel != "hook" || d.Kind != alarm.EventFiring || d.Severity != alarm.SeverityFire ||
		d.Finished.IsZero() || d.EventID != EventID(evs[0]) {
		t.Fatalf("delivery after restart: %+v", d)
	}
	if o.Pending() != 0 {
		t.Fatalf("%d deliveries still pending", o.Pending())
	}
}

// gateChannel records the alarm ids it is sent, in the order the Sends
// start, and holds every Send until the gate opens.
type gateChannel struct {
	name    string
	started chan string
	gate    chan struct{}
	mu      sync.Mutex
	order   []string
}

func newGateChannel(name string) *gateChannel {
	return &gateChannel{name: name, started: make(chan string, 4096), gate: make(chan struct{})}
}

func (g *gateChannel) Name() string { return g.name }
func (g *gateChannel) Send(ctx context.Context, ev alarm.Event) error {
	g.mu.Lock()
	g.order = append(g.order, ev.Alarm.ID)
	g.mu.Unlock()
	g.started <- ev.Alarm.ID
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateChannel) sent() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.order)
}

func (g *gateChannel) awaitStart(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-g.started:
		if got != id {
			t.Fatalf("Send started for %s, want %s", got, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no Send started for %s", id)
	}
}

func TestOutboxFireGoesFirst(t *testing.T) {
	ch := newGateChannel("siren")
	o := mustOpen(t, t.TempDir(), Options{Channels: []Channel{ch}, Concurrency: 1})
	ctx := context.Background()
	// Occupy both workers: the regular one and the one kept for urgent
	// deliveries.
	if err := o.Enqueue(ctx, event("trouble/first", alarm.SeverityTrouble, alarm.EventFiring)); err != nil {
		t.Fatal(err)
	}
	ch.awaitStart(t, "trouble/first")
	if err := o.Enqueue(ctx, event("fire/busy", alarm.SeverityFire, alarm.EventFiring)); err != nil {
		t.Fatal(err)
	}
	ch.awaitStart(t, "fire/busy")

	var evs []alarm.Event
	for i := range 1000 {
		evs = append(evs, event(fmt.Sprintf("trouble/%04d", i), alarm.SeverityTrouble, alarm.EventFiring))
	}
	evs = append(evs,
		event("warn/a", alarm.SeverityWarning, alarm.EventFiring),
		event("info/b", alarm.SeverityInfo, alarm.EventFiring),
		event("critical/c", alarm.SeverityCritical, alarm.EventFiring),
		event("fire/d", alarm.SeverityFire, alarm.EventFiring),
		event("warn/e", alarm.SeverityWarning, alarm.EventFiring))
	if err := o.EnqueueAll(ctx, evs); err != nil {
		t.Fatal(err)
	}
	close(ch.gate)
	testpeer.WaitFor(t, "every delivery", 10*time.Second, func() bool { return o.Pending() == 0 })
	got := ch.sent()
	if len(got) != 1007 {
		t.Fatalf("%d sends, want 1007", len(got))
	}
	// The two freed workers take the fire and the critical alarm, in
	// either order; then the rest goes by severity, oldest first.
	if next := []string{got[2], got[3]}; !slices.Contains(next, "fire/d") || !slices.Contains(next, "critical/c") {
		t.Fatalf("after the busy ones came %v, want fire/d and critical/c", next)
	}
	if want := []string{"warn/a", "warn/e"}; !slices.Equal(got[4:6], want) {
		t.Fatalf("then %v, want %v", got[4:6], want)
	}
	for i := range 1000 {
		if w := fmt.Sprintf("trouble/%04d", i); got[6+i] != w {
			t.Fatalf("send %d is %s, want %s (FIFO within a severity)", 6+i, got[6+i], w)
		}
	}
	if got[1006] != "info/b" {
		t.Fatalf("last send %s, want info/b", got[1006])
	}
}

func TestOutboxFireDoesNotWaitForASlowReceiver(t *testing.T) {
	ch := newGateChannel("mail")
	o := mustOpen(t, t.TempDir(), Options{Channels: []Channel{ch}, Concurrency: 2})
	ctx := context.Background()
	for _, id := range []string{"trouble/1", "trouble/2"} {
		if err := o.Enqueue(ctx, event(id, alarm.SeverityTrouble, alarm.EventFiring)); err != nil {
			t.Fatal(err)
		}
		ch.awaitStart(t, id)
	}
	// Both regular workers are stuck on a slow receiver.
	if err := o.Enqueue(ctx, event("fire/1", alarm.SeverityFire, alarm.EventFiring)); err != nil {
		t.Fatal(err)
	}
	ch.awaitStart(t, "fire/1")
	if err := o.Enqueue(ctx, event("warn/3", alarm.SeverityWarning, alarm.EventFiring)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ch.started:
		t.Fatalf("%s started while every regular worker was busy", id)
	case <-time.After(50 * time.Millisecond):
	}
	close(ch.gate)
	ch.awaitStart(t, "warn/3")
}

func TestOutboxRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     int
		status   int
		header   map[string]string
		minGap   time.Duration
		attempts int
	}{
		{"500 twice then 200", 2, http.StatusInternalServerError, nil, 0, 3},
		{"502 once then 200", 1, http.StatusBadGateway, nil, 0, 2},
		{"429 with Retry-After", 1, http.StatusTooManyRequests, map[string]string{"Retry-After": "1"}, 900 * time.Millisecond, 2},
		{"408 then 200", 1, http.StatusRequestTimeout, nil, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var times []time.Time
			var ids []string
			var mu sync.Mutex
			rc := newReceiver(t, func(n int, r received) (int, map[string]string, string) {
				mu.Lock()
				times = append(times, time.Now())
				ids = append(ids, r.header.Get(HeaderEventID))
				mu.Unlock()
				if n < tc.fail {
					return tc.status, tc.header, "try later"
				}
				return 200, nil, ""
			})
			o := mustOpen(t, t.TempDir(), Options{Channels: []Channel{testWebhook("hook", rc.URL)},
				RetryMin: 10 * time.Millisecond, RetryMax: 2 * time.Second})
			ev := event("retry/x", alarm.SeverityWarning, alarm.EventFiring)
			if err := o.Enqueue(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			rc.next(t, 10*time.Second)
			testpeer.WaitFor(t, "the delivered state", 5*time.Second, func() bool {
				ds := o.Deliveries(ev.Alarm.ID)
				return len(ds) == 1 && ds[0].State == DeliveryDelivered
			})
			d := o.Deliveries(ev.Alarm.ID)[0]
			if d.Attempts != tc.attempts {
				t.Fatalf("attempts %d, want %d", d.Attempts, tc.attempts)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if id != EventID(ev) {
					t.Fatalf("a retry carried event id %s, want %s", id, EventID(ev))
				}
			}
			if gap := times[1].Sub(times[0]); gap < tc.minGap {
				t.Fatalf("retried after %v, want at least %v", gap, tc.minGap)
			}
		})
	}
}

func TestOutboxDeadChannelDoesNotBlockOthers(t *testing.T) {
	alive := newReceiver(t, nil)
	refusing := newReceiver(t, func(int, received) (int, map[string]string, string) {
		return http.StatusBadRequest, nil, `{"error":"unknown schema"}`
	})
	hangStop := make(chan struct{})
	hanging := newReceiver(t, func(int, received) (int, map[string]string, string) {
		<-hangStop
		return 200, nil, ""
	})
	t.Cleanup(func() { close(hangStop) })
	down := newReceiver(t, nil)
	down.Close() // connection refused from now on

	o := mustOpen(t, t.TempDir(), Options{
		Channels: []Channel{testWebhook("refusing", refusing.URL), testWebhook("hanging", hanging.URL),
			testWebhook("down", down.URL), testWebhook("alive", alive.URL)},
		Settings: map[string]ChannelSettings{"hanging": {Timeout: 200 * time.Millisecond}},
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	})
	const n = 20
	start := time.Now()
	for i := range n {
		if err := o.Enqueue(context.Background(), event(fmt.Sprintf("smoke/%d", i), alarm.SeverityFire, alarm.EventFiring)); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		alive.next(t, 5*time.Second)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("the live channel took %v for %d alarms", el, n)
	}
	testpeer.WaitFor(t, "the refused deliveries to fail", 5*time.Second, func() bool {
		for i := range n {
			for _, d := range o.Deliveries(fmt.Sprintf("smoke/%d", i)) {
				if d.Channel == "refusing" && d.State != DeliveryFailed {
					return false
				}
			}
		}
		return true
	})
	for _, d := range o.Deliveries("smoke/0") {
		switch d.Channel {
		case "refusing":
			if d.Attempts != 1 || !strings.Contains(d.LastError, "HTTP 400") {
				t.Errorf("refused delivery: %+v, want failed after one attempt with the 400", d)
			}
		case "down", "hanging":
			if d.State != DeliveryPending {
				t.Errorf("%s delivery of a fire alarm: %+v, want still pending", d.Channel, d)
			}
		case "alive":
			if d.State != DeliveryDelivered {
				t.Errorf("alive delivery: %+v", d)
			}
		}
	}
}

// clock is a real clock that tests can move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestOutboxExpiry(t *testing.T) {
	for _, tc := range []struct {
		name        string
		sev         alarm.Severity
		maxAttempts int
		advance     time.Duration
		wantFailed  bool
	}{
		{"warning fails after max_attempts", alarm.SeverityWarning, 3, 0, true},
		{"warning fails after max_age", alarm.SeverityWarning, 0, 25 * time.Hour, true},
		{"fire never expires by attempts", alarm.SeverityFire, 3, 0, false},
		{"critical never expires by age", alarm.SeverityCritical, 0, 25 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			ch := funcChannel{"broken", func(context.Context, alarm.Event) error {
				calls.Add(1)
				return errors.New("connection refused")
			}}
			clk := &clock{}
			o := mustOpen(t, t.TempDir(), Options{Channels: []Channel{ch}, MaxAttempts: tc.maxAttempts,
				MaxAge: 24 * time.Hour, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, Now: clk.now})
			ev := event("exp/1", tc.sev, alarm.EventFiring)
			if err := o.Enqueue(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			testpeer.WaitFor(t, "two attempts", 5*time.Second, func() bool { return calls.Load() >= 2 })
			clk.advance(tc.advance)
			if tc.wantFailed {
				testpeer.WaitFor(t, "the delivery to expire", 5*time.Second, func() bool {
					ds := o.Deliveries(ev.Alarm.ID)
					return len(ds) == 1 && ds[0].State == DeliveryFailed
				})
				d := o.Deliveries(ev.Alarm.ID)[0]
				if !strings.Contains(d.LastError, "expired") || !strings.Contains(d.LastError, "connection refused") {
					t.Fatalf("expired delivery error %q", d.LastError)
				}
				return
			}
			testpeer.WaitFor(t, "attempts past the limits", 5*time.Second, func() bool { return calls.Load() >= 6 })
			if ds := o.Deliveries(ev.Alarm.ID); ds[0].State != DeliveryPending {
				t.Fatalf("urgent delivery %+v, want pending", ds[0])
			}
		})
	}
}

func TestOutboxEnqueueIsIdempotent(t *testing.T) {
	rc := newReceiver(t, nil)
	dir := t.TempDir()
	opts := Options{Channels: []Channel{testWebhook("hook", rc.URL)}}
	o := mustOpen(t, dir, opts)
	ev := event("dup/1", alarm.SeverityCritical, alarm.EventFiring)
	ctx := context.Background()
	for range 3 {
		if err := o.Enqueue(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.EnqueueAll(ctx, []alarm.Event{ev, ev}); err != nil {
		t.Fatal(err)
	}
	rc.next(t, 5*time.Second)
	testpeer.WaitFor(t, "the delivered state", 5*time.Second, func() bool { return o.Pending() == 0 })
	o.Close()
	o = mustOpen(t, dir, opts)
	if err := o.Enqueue(ctx, ev); err != nil {
		t.Fatal(err)
	}
	other := ev
	other.Kind = alarm.EventRepeat
	other.At = ev.At.Add(time.Minute)
	if err := o.Enqueue(ctx, other); err != nil {
		t.Fatal(err)
	}
	r := rc.next(t, 5*time.Second)
	if id := r.header.Get(HeaderEventID); id != EventID(other) {
		t.Fatalf("second request carries event %s, want the repeat event %s", id, EventID(other))
	}
	if ds := o.Deliveries(ev.Alarm.ID); len(ds) != 2 {
		t.Fatalf("deliveries %s, want one per distinct event", deliveryStates(ds))
	}
}

func TestOutboxKeepsOneAlarmsEventsInOrder(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	failedOnce := false
	ch := funcChannel{"chat", func(_ context.Context, ev alarm.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if ev.Alarm.ID == "door/1" && ev.Kind == alarm.EventFiring && !failedOnce {
			failedOnce = true
			return errors.New("HTTP 502")
		}
		sent = append(sent, ev.Alarm.ID+":"+string(ev.Kind))
		return nil
	}}
	o := mustOpen(t, t.TempDir(), Options{Channels: []Channel{ch}, Concurrency: 4,
		RetryMin: 50 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	ctx := context.Background()
	for _, ev := range []alarm.Event{
		event("door/1", alarm.SeverityCritical, alarm.EventFiring),
		event("door/1", alarm.SeverityCritical, alarm.EventAcknowledged),
		event("door/1", alarm.SeverityCritical, alarm.EventResolved),
		event("cold/2", alarm.SeverityWarning, alarm.EventFiring),
	} {
		if err := o.Enqueue(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	testpeer.WaitFor(t, "four deliveries", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(sent) == 4 })
	mu.Lock()
	defer mu.Unlock()
	if sent[0] != "cold/2:firing" {
		t.Fatalf("sent %v: another alarm waited behind door/1's retry", sent)
	}
	if want := []string{"door/1:firing", "door/1:acknowledged", "door/1:resolved"}; !slices.Equal(sent[1:], want) {
		t.Fatalf("door/1 events sent as %v, want %v", sent[1:], want)
	}
}

func TestOutboxRoutes(t *testing.T) {
	chans := []Channel{}
	for _, n := range []string{"mail", "chat", "panel", "director"} {
		chans = append(chans, funcChannel{n, func(context.Context, alarm.Event) error { return nil }})
	}
	o := mustOpen(t, t.TempDir(), Options{Channels: chans, Routes: []Route{
		{Channels: []string{"panel"}},
		{Channels: []string{"mail", "chat"}, MinSeverity: alarm.SeverityWarning, Levels: []int{0}},
		{Channels: []string{"director"}, MinSeverity: alarm.SeverityCritical, Levels: []int{1, 2},
			Kinds: []alarm.EventKind{alarm.EventEscalated, alarm.EventResolved, alarm.EventAcknowledged}},
	}})
	at := func(ev alarm.Event, level int) alarm.Event { ev.Level = level; return ev }
	silenced := event("s/1", alarm.SeverityFire, alarm.EventFiring)
	silenced.Alarm.Silenced = true
	silencedEnd := event("s/1", alarm.SeverityFire, alarm.EventResolved)
	silencedEnd.Alarm.Silenced = true
	for _, tc := range []struct {
		name string
		ev   alarm.Event
		want string
	}{
		{"info goes to the panel only", event("a/1", alarm.SeverityInfo, alarm.EventFiring), "panel"},
		{"warning at level 0", event("a/1", alarm.SeverityWarning, alarm.EventFiring), "mail chat panel"},
		{"critical escalated to level 1", at(event("a/1", alarm.SeverityCritical, alarm.EventEscalated), 1), "panel director"},
		{"repeat at level 1 is not a director kind", at(event("a/1", alarm.SeverityCritical, alarm.EventRepeat), 1), "panel"},
		{"resolved at level 1 reaches level 0 too", at(event("a/1", alarm.SeverityFire, alarm.EventResolved), 1), "mail chat panel director"},
		{"acknowledged at level 0 skips the director", event("a/1", alarm.SeverityFire, alarm.EventAcknowledged), "mail chat panel"},
		{"silenced alarms page nobody", silenced, ""},
		{"nor do their resolutions", silencedEnd, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(o.Route(tc.ev), " "); got != tc.want {
				t.Fatalf("Route = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOutboxPurgesFinishedDeliveries(t *testing.T) {
	clk := &clock{}
	var fail atomic.Bool
	ch := funcChannel{"c", func(_ context.Context, ev alarm.Event) error {
		if fail.Load() {
			return errors.New("down")
		}
		return nil
	}}
	o := mustOpen(t, t.TempDir(), Options{Channels: []Channel{ch}, KeepFinished: time.Hour, Now: clk.now,
		RetryMin: time.Hour, RetryMax: time.Hour})
	done := event("old/1", alarm.SeverityWarning, alarm.EventFiring)
	if err := o.Enqueue(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "delivery", 5*time.Second, func() bool { return o.Pending() == 0 })
	fail.Store(true)
	stuck := event("stuck/2", alarm.SeverityFire, alarm.EventFiring)
	if err := o.Enqueue(context.Background(), stuck); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "an attempt", 5*time.Second, func() bool {
		ds := o.Deliveries(stuck.Alarm.ID)
		return len(ds) == 1 && ds[0].Attempts == 1
	})
	clk.advance(2 * time.Hour)
	o.purge()
	if ds := o.Deliveries(done.Alarm.ID); len(ds) != 0 {
		t.Fatalf("finished delivery still listed after keep_finished: %s", deliveryStates(ds))
	}
	if ds := o.Deliveries(stuck.Alarm.ID); len(ds) != 1 {
		t.Fatalf("pending delivery purged: %s", deliveryStates(ds))
	}
	// A purged event may be enqueued again (a new delivery).
	if err := o.Enqueue(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	if ds := o.Deliveries(done.Alarm.ID); len(ds) != 1 {
		t.Fatalf("re-enqueued after purge: %s", deliveryStates(ds))
	}
}

func TestOutboxMetrics(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	ch := funcChannel{"hook", func(context.Context, alarm.Event) error {
		if fail.Load() {
			return &DeliveryError{Err: errors.New("HTTP 503")}
		}
		return nil
	}}
	o := mustOpen(t, t.TempDir(), Options{Channels: []Channel{ch}, RetryMin: 20 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	reg := prometheus.NewPedanticRegistry()
	if err := o.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(context.Background(), event("m/1", alarm.SeverityFire, alarm.EventFiring)); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "a retry", 5*time.Second, func() bool {
		return testutil.ToFloat64(o.metrics.deliveries.WithLabelValues("hook", outcomeRetry)) >= 1
	})
	if v := testutil.ToFloat64(o.metrics.depth.WithLabelValues("hook", "fire")); v != 1 {
		t.Fatalf("queue depth of fire deliveries %v, want 1", v)
	}
	fail.Store(false)
	testpeer.WaitFor(t, "the delivery", 5*time.Second, func() bool { return o.Pending() == 0 })
	if v := testutil.ToFloat64(o.metrics.deliveries.WithLabelValues("hook", outcomeDelivered)); v != 1 {
		t.Fatalf("delivered %v, want 1", v)
	}
	if v := testutil.ToFloat64(o.metrics.depth.WithLabelValues("hook", "fire")); v != 0 {
		t.Fatalf("queue depth %v after delivery, want 0", v)
	}
	if n, err := testutil.GatherAndCount(reg, "shelterwatch_notify_delivery_latency_seconds"); err != nil || n != 1 {
		t.Fatalf("latency histogram series %d (%v), want 1", n, err)
	}
}

func TestOutboxCloseRefusesEnqueue(t *testing.T) {
	o := mustOpen(t, t.TempDir(), Options{Channels: []Channel{funcChannel{"c", func(context.Context, alarm.Event) error { return nil }}}})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(context.Background(), event("x/1", alarm.SeverityFire, alarm.EventFiring)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close: %v, want ErrClosed", err)
	}
	if ds := o.Deliveries("x/1"); ds != nil {
		t.Fatalf("Deliveries after Close: %v", ds)
	}
}

func TestOutboxChannelRemovedFromConfig(t *testing.T) {
	dir := t.TempDir()
	down := funcChannel{"old", func(context.Context, alarm.Event) error { return errors.New("down") }}
	o := mustOpen(t, dir, Options{Channels: []Channel{down}, RetryMin: time.Hour, RetryMax: time.Hour})
	ev := event("r/1", alarm.SeverityFire, alarm.EventFiring)
	if err := o.Enqueue(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	o.Close()
	o = mustOpen(t, dir, Options{Channels: []Channel{funcChannel{"new", func(context.Context, alarm.Event) error { return nil }}}})
	ds := o.Deliveries(ev.Alarm.ID)
	if len(ds) != 1 || ds[0].State != DeliveryFailed || !strings.Contains(ds[0].LastError, `"old" is not configured`) {
		t.Fatalf("delivery to a removed channel: %s %+v", deliveryStates(ds), ds)
	}
}
