package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

var t0 = time.Date(2025, 1, 15, 2, 4, 5, 0, time.UTC)

// event builds an event of a distinct alarm per id.
func event(id string, sev alarm.Severity, kind alarm.EventKind) alarm.Event {
	a := alarm.Alarm{ID: id, Seq: 1, Rule: strings.SplitN(id, "/", 2)[0], Severity: sev, Facility: "shelter-7",
		Zone: "dorm-3", Device: "dev-" + id, State: alarm.StateFiring, Since: t0, Updated: t0,
		Title:  alarm.Text{EN: "Alarm " + id, ZH: "报警 " + id},
		Body:   alarm.Text{EN: "Something happened at " + id, ZH: id + " 发生异常"},
		Labels: map[string]string{"team": "night"}}
	ev := alarm.Event{Kind: kind, At: t0.Add(time.Minute), Alarm: a}
	switch kind {
	case alarm.EventAcknowledged:
		ev.Alarm.State, ev.Alarm.AckedBy, ev.Alarm.AckedAt = alarm.StateAcknowledged, "li.na", ev.At
	case alarm.EventResolved:
		ev.Alarm.State, ev.Alarm.ResolvedAt = alarm.StateResolved, ev.At
	}
	return ev
}

// received is one request a test receiver got.
type received struct {
	header   http.Header
	query    url.Values
	rawQuery string
	path     string
	body     []byte
}

// receiver is an HTTP server that records what it is sent and answers
// with what respond says (200 when nil).
type receiver struct {
	*httptest.Server
	got     chan received
	mu      sync.Mutex
	respond func(n int, r received) (status int, header map[string]string, body string)
	n       int
}

func newReceiver(t testing.TB, respond func(n int, r received) (int, map[string]string, string)) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan received, 4096), respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rv := received{header: r.Header.Clone(), query: r.URL.Query(), rawQuery: r.URL.RawQuery, path: r.URL.Path, body: b}
		rc.mu.Lock()
		n := rc.n
		rc.n++
		f := rc.respond
		rc.mu.Unlock()
		status, hdr, body := 200, map[string]string(nil), `{"errcode":0,"errmsg":"ok"}`
		if f != nil {
			status, hdr, body = f(n, rv)
		}
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
		if status >= 200 && status < 300 {
			rc.got <- rv
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// next waits for the next accepted request.
func (rc *receiver) next(t testing.TB, within time.Duration) received {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(within):
		t.Fatalf("receiver %s got nothing within %v", rc.URL, within)
		return received{}
	}
}

// webhookEvent decodes a generic webhook body.
func webhookEvent(t testing.TB, b []byte) WebhookPayload {
	t.Helper()
	var p WebhookPayload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode webhook body %q: %v", b, err)
	}
	return p
}

// funcChannel is a Channel whose Send is a function: for outbox tests
// where the channel itself is not the subject.
type funcChannel struct {
	name string
	send func(ctx context.Context, ev alarm.Event) error
}

func (f funcChannel) Name() string                                   { return f.name }
func (f funcChannel) Send(ctx context.Context, ev alarm.Event) error { return f.send(ctx, ev) }

func mustOpen(t testing.TB, dir string, opts Options) *Outbox {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	o, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open outbox: %v", err)
	}
	run(t, o)
	return o
}

// run runs o until the test ends (or a test closes it).
func run(t testing.TB, o *Outbox) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- o.Run(context.Background()) }()
	t.Cleanup(func() {
		o.Close()
		<-done
	})
}

func deliveryStates(ds []Delivery) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%s/%s:%s(%d)", d.Channel, d.Kind, d.State, d.Attempts))
	}
	return strings.Join(parts, " ")
}
