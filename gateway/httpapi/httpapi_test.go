package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// t0 is on an hour boundary so that 1h buckets start at t0, t0+1h, ...
var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

// The API tokens of the test server. Only their SHA-256 digests are
// configured, as in the gateway config.
const (
	viewerSecret  = "viewer-secret-5d1c9a"
	managerSecret = "manager-secret-83be07"
	adminSecret   = "admin-secret-f02c44"
	metricsSecret = "metrics-secret-4e01b7"
	wrongSecret   = "not-a-configured-token-77aa"
)

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// syncBuffer collects log output written from server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	url   string
	st    *store.Store
	state *devstate.Tracker
	ready atomic.Pointer[string]    // what Ready returns
	now   atomic.Pointer[time.Time] // what the API's clock reads
	log   *syncBuffer
}

// newServer starts the API over loopback with a real store, a device state
// tracker whose clock reads t0+5m, an API clock that reads s.now (t0+5m
// until a test sets it), devices that go offline after 10 minutes of
// silence, and viewer, manager and admin tokens.
func newServer(t *testing.T) *testServer {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reg := prometheus.NewRegistry()
	if err := st.Register(reg); err != nil {
		t.Fatalf("register store metrics: %v", err)
	}
	var tokens []httpapi.Token
	for _, tc := range []struct{ name, role, secret string }{
		{"console", "viewer", viewerSecret},
		{"shift-lead", "manager", managerSecret},
		{"ops", "admin", adminSecret},
		{"prometheus", "metrics", metricsSecret},
	} {
		tok, err := httpapi.ParseToken(tc.name, tc.role, sha256Hex(tc.secret))
		if err != nil {
			t.Fatalf("ParseToken(%q, %q): %v", tc.name, tc.role, err)
		}
		tokens = append(tokens, tok)
	}
	s := &testServer{st: st, log: &syncBuffer{}}
	s.state = devstate.New([]facility.Device{
		{ID: "dorm3-temp", Zone: "dorm3", Kind: reading.KindTemperature, OfflineAfter: 10 * time.Minute},
		{ID: "kitchen-smoke", Zone: "kitchen", Kind: reading.KindSmoke, OfflineAfter: 10 * time.Minute},
		{ID: "hall-door", Zone: "hall", Kind: reading.KindDoor, OfflineAfter: 10 * time.Minute},
	}, func() time.Time { return t0.Add(5 * time.Minute) })
	notReady := ""
	s.ready.Store(&notReady)
	now := t0.Add(5 * time.Minute)
	s.now.Store(&now)
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{
		Store:    st,
		State:    s.state,
		Gatherer: reg,
		Tokens:   tokens,
		Ready:    func() string { return *s.ready.Load() },
		OfflineAfter: func(device string) time.Duration {
			if _, ok := s.state.Get(device); ok {
				return 10 * time.Minute
			}
			return 0
		},
		Clock: func() time.Time { return *s.now.Load() },
		Forwarders: func() []forward.Status {
			return []forward.Status{{Target: "province", State: "retrying", BacklogPoints: 1200, BacklogAge: 90 * time.Second, LastError: "network: connection refused"}}
		},
		Logger: slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// get requests path with the Authorization header auth ("" for none) and
// returns the response and its body.
func (s *testServer) get(t *testing.T, path, auth string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp, body
}

// getOK is get with the viewer token, failing unless the status is 200.
func (s *testServer) getOK(t *testing.T, path string) []byte {
	t.Helper()
	resp, body := s.get(t, path, "Bearer "+viewerSecret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	return body
}

func TestProbes(t *testing.T) {
	s := newServer(t)

	resp, body := s.get(t, "/healthz", "")
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: %s %q, want 200 ok", resp.Status, body)
	}

	starting := "starting"
	s.ready.Store(&starting)
	resp, body = s.get(t, "/readyz", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "starting") {
		t.Errorf("/readyz while starting: %s %q, want 503 naming the reason", resp.Status, body)
	}
	ready := ""
	s.ready.Store(&ready)
	resp, body = s.get(t, "/readyz", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz when ready: %s %q, want 200", resp.Status, body)
	}

	rs := []reading.Reading{temp("dorm3-temp", "dorm3", 5*time.Minute, 20), temp("dorm3-temp", "dorm3", 6*time.Minute, 21)}
	if err := s.st.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	resp, body = s.get(t, "/metrics", "Bearer "+metricsSecret)
	if resp.StatusCode != http.StatusOK || !regexp.MustCompile(`(?m)^shelterwatch_store_appends_total 2$`).Match(body) {
		t.Errorf("/metrics: %s, want 200 with shelterwatch_store_appends_total 2 in:\n%s", resp.Status, body)
	}
}

func TestAuth(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		name       string
		path       string
		auth       string
		wantStatus int
		wantChalln string // substring of WWW-Authenticate; "" when none is expected
	}{
		{"no header", "/api/v1/devices", "", http.StatusUnauthorized, `Bearer realm="shelterwatch"`},
		{"basic auth", "/api/v1/devices", "Basic dmlld2VyOnNlY3JldA==", http.StatusUnauthorized, `Bearer realm="shelterwatch"`},
		{"empty bearer", "/api/v1/devices", "Bearer ", http.StatusUnauthorized, `Bearer realm="shelterwatch"`},
		{"token without scheme", "/api/v1/devices", viewerSecret, http.StatusUnauthorized, `Bearer realm="shelterwatch"`},
		{"wrong token", "/api/v1/devices", "Bearer " + wrongSecret, http.StatusUnauthorized, `invalid_token`},
		{"digest instead of token", "/api/v1/devices", "Bearer " + sha256Hex(viewerSecret), http.StatusUnauthorized, `invalid_token`},
		{"wrong token on a manager endpoint", "/api/v1/dead-letters", "Bearer " + wrongSecret, http.StatusUnauthorized, `invalid_token`},
		{"viewer on devices", "/api/v1/devices", "Bearer " + viewerSecret, http.StatusOK, ""},
		{"viewer on readings", "/api/v1/readings", "Bearer " + viewerSecret, http.StatusOK, ""},
		{"viewer on dead letters", "/api/v1/dead-letters", "Bearer " + viewerSecret, http.StatusForbidden, ""},
		{"manager on devices", "/api/v1/devices", "Bearer " + managerSecret, http.StatusOK, ""},
		{"manager on dead letters", "/api/v1/dead-letters", "Bearer " + managerSecret, http.StatusOK, ""},
		{"admin on dead letters", "/api/v1/dead-letters", "Bearer " + adminSecret, http.StatusOK, ""},
		{"metrics without a token", "/metrics", "", http.StatusUnauthorized, `Bearer realm="shelterwatch"`},
		{"metrics with a wrong token", "/metrics", "Bearer " + wrongSecret, http.StatusUnauthorized, `invalid_token`},
		{"metrics with a viewer token", "/metrics", "Bearer " + viewerSecret, http.StatusForbidden, ""},
		{"metrics with a manager token", "/metrics", "Bearer " + managerSecret, http.StatusForbidden, ""},
		{"metrics with the metrics token", "/metrics", "Bearer " + metricsSecret, http.StatusOK, ""},
		{"metrics with an admin token", "/metrics", "Bearer " + adminSecret, http.StatusOK, ""},
		{"the metrics token on devices", "/api/v1/devices", "Bearer " + metricsSecret, http.StatusForbidden, ""},
		{"the metrics token on the audit log", "/api/v1/audit", "Bearer " + metricsSecret, http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.get(t, tc.path, tc.auth)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("GET %s: %s %s, want %d", tc.path, resp.Status, body, tc.wantStatus)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, tc.wantChalln) || (tc.wantChalln == "") != (got == "") {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.wantChalln)
			}
			if resp.StatusCode == http.StatusOK {
				return
			}
			for _, secret := range []string{viewerSecret, managerSecret, adminSecret, metricsSecret, wrongSecret} {
				if bytes.Contains(body, []byte(secret)) {
					t.Errorf("%d response echoes the token: %s", resp.StatusCode, body)
				}
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("%d body %q is not a JSON error", resp.StatusCode, body)
			}
		})
	}
	logs := s.log.String()
	for _, secret := range []string{viewerSecret, managerSecret, adminSecret, wrongSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token was logged:\n%s", logs)
		}
	}
	if !strings.Contains(logs, "token=console") {
		t.Errorf("the forbidden request was not logged with the token's name:\n%s", logs)
	}
}

func TestDevices(t *testing.T) {
	s := newServer(t)
	s.state.Observe("dorm3-temp", t0, []reading.Reading{
		{Device: "dorm3-temp", Zone: "dorm3", Kind: reading.KindTemperature, Time: t0.Add(-time.Minute), Received: t0, Value: reading.Number(21.5), Battery: reading.Ptr(87)},
		{Device: "dorm3-temp", Zone: "dorm3", Kind: reading.KindHumidity, Time: t0.Add(-time.Minute), Received: t0, Value: reading.Number(40), Battery: reading.Ptr(87)},
	})
	s.state.Observe("kitchen-smoke", t0.Add(-20*time.Minute), []reading.Reading{
		{Device: "kitchen-smoke", Zone: "kitchen", Kind: reading.KindSmoke, Time: t0.Add(-20 * time.Minute), Received: t0.Add(-20 * time.Minute), Value: reading.Bool(true)},
	})

	type value struct {
		Value any       `json:"value"`
		Time  time.Time `json:"time"`
	}
	type device struct {
		Device        string           `json:"device"`
		Zone          string           `json:"zone"`
		Kind          string           `json:"kind"`
		LastSeen      time.Time        `json:"last_seen"`
		Online        bool             `json:"online"`
		OfflineReason string           `json:"offline_reason"`
		Battery       *float64         `json:"battery"`
		Values        map[string]value `json:"values"`
	}
	var got struct{ Devices []device }
	if err := json.Unmarshal(s.getOK(t, "/api/v1/devices"), &got); err != nil {
		t.Fatalf("decode devices: %v", err)
	}
	bat := 87.0
	want := []device{
		{Device: "dorm3-temp", Zone: "dorm3", Kind: "temperature", LastSeen: t0, Online: true, Battery: &bat, Values: map[string]value{
			"temperature": {21.5, t0.Add(-time.Minute)},
			"humidity":    {40.0, t0.Add(-time.Minute)},
		}},
		{Device: "hall-door", Zone: "hall", Kind: "door", OfflineReason: "never_seen", Values: map[string]value{}},
		{Device: "kitchen-smoke", Zone: "kitchen", Kind: "smoke", LastSeen: t0.Add(-20 * time.Minute), OfflineReason: "silent", Values: map[string]value{
			"smoke": {true, t0.Add(-20 * time.Minute)},
		}},
	}
	if len(got.Devices) != len(want) {
		t.Fatalf("got %d devices, want %d: %+v", len(got.Devices), len(want), got.Devices)
	}
	for i, w := range want {
		g := got.Devices[i]
		t.Run(w.Device, func(t *testing.T) {
			if g.Device != w.Device || g.Zone != w.Zone || g.Kind != w.Kind || !g.LastSeen.Equal(w.LastSeen) ||
				g.Online != w.Online || g.OfflineReason != w.OfflineReason {
				t.Errorf("got %+v\nwant %+v", g, w)
			}
			if (g.Battery == nil) != (w.Battery == nil) || (g.Battery != nil && *g.Battery != *w.Battery) {
				t.Errorf("battery = %v, want %v", g.Battery, w.Battery)
			}
			if len(g.Values) != len(w.Values) {
				t.Errorf("values = %+v, want %+v", g.Values, w.Values)
			}
			for k, wv := range w.Values {
				if gv, ok := g.Values[k]; !ok || gv.Value != wv.Value || !gv.Time.Equal(wv.Time) {
					t.Errorf("values[%s] = %+v, want %+v", k, gv, wv)
				}
			}
		})
	}
}

func TestDeadLetters(t *testing.T) {
	s := newServer(t)
	for _, topic := range []string{"sw/a", "sw/b"} {
		s.st.AddDeadLetter(store.DeadLetter{Time: t0, Topic: topic, Device: "dorm3-temp", Reason: "malformed", Error: "native: payload is not a JSON object", Payload: []byte("{")})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		dls, err := s.st.DeadLetters(10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the store holds %d dead letters, want 2", len(dls))
		}
		time.Sleep(2 * time.Millisecond)
	}

	for _, tc := range []struct {
		query      string
		wantTopics []string
		wantErr    string
	}{
		{"", []string{"sw/b", "sw/a"}, ""},
		{"?limit=1", []string{"sw/b"}, ""},
		{"?limit=0", nil, "limit"},
		{"?limit=many", nil, "limit"},
		{"?limit=10001", nil, "limit"},
	} {
		t.Run("query="+tc.query, func(t *testing.T) {
			resp, body := s.get(t, "/api/v1/dead-letters"+tc.query, "Bearer "+managerSecret)
			if tc.wantErr != "" {
				checkParamError(t, resp, body, tc.wantErr)
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s", resp.Status, body)
			}
			var got struct {
				DeadLetters []store.DeadLetter `json:"dead_letters"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			var topics []string
			for _, dl := range got.DeadLetters {
				topics = append(topics, dl.Topic)
				if dl.Reason != "malformed" || string(dl.Payload) != "{" || dl.Device != "dorm3-temp" || !dl.Time.Equal(t0) {
					t.Errorf("dead letter %+v does not show what was stored", dl)
				}
			}
			if !slices.Equal(topics, tc.wantTopics) {
				t.Errorf("topics newest first = %q, want %q", topics, tc.wantTopics)
			}
		})
	}
}

func temp(device, zone string, at time.Duration, c float64) reading.Reading {
	return reading.Reading{Facility: "shelter-north", Device: device, Zone: zone, Kind: reading.KindTemperature, Format: "native",
		Time: t0.Add(at), Received: t0.Add(at), Value: reading.Number(c)}
}

func humidity(at time.Duration, pct float64) reading.Reading {
	r := temp("dorm3-temp", "dorm3", at, pct)
	r.Kind = reading.KindHumidity
	return r
}

func smoke(at time.Duration, on bool) reading.Reading {
	r := temp("kitchen-smoke", "kitchen", at, 0)
	r.Kind, r.Value, r.Format = reading.KindSmoke, reading.Bool(on), "zigbee2mqtt"
	return r
}

// seedHistory stores the history the readings tests query, appended out of
// time order (as buffered device readings arrive) to show that the API
// answers in time order:
//
//	dorm3-temp    temperature  dorm3    +5m 20  +35m 21  +65m 22.5  +95m 19.5  +125m 23
//	dorm3-temp    humidity     dorm3    +5m 40  +65m 45
//	kitchen-smoke smoke        kitchen  +10m false  +70m true
//	kitchen-temp  temperature  kitchen  +15m 25
func seedHistory(t *testing.T, s *testServer) {
	t.Helper()
	m := time.Minute
	for _, batch := range [][]reading.Reading{
		{temp("dorm3-temp", "dorm3", 95*m, 19.5), temp("dorm3-temp", "dorm3", 5*m, 20)},
		{temp("dorm3-temp", "dorm3", 125*m, 23), temp("dorm3-temp", "dorm3", 65*m, 22.5)},
		{humidity(65*m, 45), smoke(70*m, true), temp("kitchen-temp", "kitchen", 15*m, 25)},
		{temp("dorm3-temp", "dorm3", 35*m, 21), humidity(5*m, 40), smoke(10*m, false)},
	} {
		if err := s.st.Append(context.Background(), batch); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
}

type point struct {
	at    time.Duration // after t0
	value any
}

func (p point) String() string { return fmt.Sprintf("+%v %v", p.at, p.value) }

type series struct {
	device, kind, zone string
	points             []point
}

func at(d time.Duration) string { return url.QueryEscape(t0.Add(d).Format(time.RFC3339)) }

func TestReadingsRaw(t *testing.T) {
	s := newServer(t)
	seedHistory(t, s)
	m := time.Minute
	dorm3Temps := series{"dorm3-temp", "temperature", "dorm3", []point{{5 * m, 20.0}, {35 * m, 21.0}, {65 * m, 22.5}, {95 * m, 19.5}, {125 * m, 23.0}}}
	dorm3Hum := series{"dorm3-temp", "humidity", "dorm3", []point{{5 * m, 40.0}, {65 * m, 45.0}}}
	kitchenSmoke := series{"kitchen-smoke", "smoke", "kitchen", []point{{10 * m, false}, {70 * m, true}}}
	kitchenTemp := series{"kitchen-temp", "temperature", "kitchen", []point{{15 * m, 25.0}}}
	for _, tc := range []struct {
		name  string
		query string
		want  []series
	}{
		{"everything", "", []series{dorm3Hum, dorm3Temps, kitchenSmoke, kitchenTemp}},
		{"one series in time order", "device=dorm3-temp&kind=temperature", []series{dorm3Temps}},
		{"every kind of a device", "device=dorm3-temp", []series{dorm3Hum, dorm3Temps}},
		{"one kind across devices", "kind=temperature", []series{dorm3Temps, kitchenTemp}},
		{"zone", "zone=kitchen", []series{kitchenSmoke, kitchenTemp}},
		{"zone and kind", "zone=kitchen&kind=smoke", []series{kitchenSmoke}},
		{"from inclusive, to exclusive", "device=dorm3-temp&kind=temperature&from=" + at(35*m) + "&to=" + at(95*m),
			[]series{{"dorm3-temp", "temperature", "dorm3", []point{{35 * m, 21.0}, {65 * m, 22.5}}}}},
		{"from only", "device=dorm3-temp&kind=temperature&from=" + at(95*m),
			[]series{{"dorm3-temp", "temperature", "dorm3", []point{{95 * m, 19.5}, {125 * m, 23.0}}}}},
		{"to only", "device=dorm3-temp&kind=temperature&to=" + at(35*m),
			[]series{{"dorm3-temp", "temperature", "dorm3", []point{{5 * m, 20.0}}}}},
		{"from with a zone offset", "device=dorm3-temp&kind=temperature&from=" + url.QueryEscape("2026-11-30T05:35:00+01:00"),
			[]series{{"dorm3-temp", "temperature", "dorm3", []point{{95 * m, 19.5}, {125 * m, 23.0}}}}},
		{"range with no points", "device=dorm3-temp&kind=temperature&from=" + at(10*time.Hour),
			[]series{{"dorm3-temp", "temperature", "dorm3", []point{}}}},
		{"unknown device", "device=nobody", []series{}},
		{"unknown kind", "kind=radiation", []series{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := s.getOK(t, "/api/v1/readings?"+tc.query)
			var got struct {
				Series []struct {
					Device, Kind, Zone string
					Points             []struct {
						Time  time.Time
						Value any
					}
				}
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if got.Series == nil {
				t.Fatalf("series is not a list: %s", body)
			}
			var gs []series
			for _, sr := range got.Series {
				if sr.Points == nil {
					t.Errorf("points of %s/%s are not a list: %s", sr.Device, sr.Kind, body)
				}
				g := series{sr.Device, sr.Kind, sr.Zone, []point{}}
				for _, p := range sr.Points {
					g.points = append(g.points, point{p.Time.Sub(t0), p.Value})
				}
				gs = append(gs, g)
			}
			if !equalSeries(gs, tc.want) {
				t.Errorf("got  %v\nwant %v", gs, tc.want)
			}
		})
	}
}

func equalSeries(a, b []series) bool {
	return slices.EqualFunc(a, b, func(x, y series) bool {
		return x.device == y.device && x.kind == y.kind && x.zone == y.zone && slices.Equal(x.points, y.points)
	})
}

func TestReadingsBuckets(t *testing.T) {
	s := newServer(t)
	seedHistory(t, s)
	h := time.Hour
	for _, tc := range []struct {
		name  string
		query string
		want  []store.SeriesBuckets
	}{
		{"hourly temperature", "device=dorm3-temp&kind=temperature&bucket=1h", []store.SeriesBuckets{{
			Series: store.Series{Device: "dorm3-temp", Kind: "temperature", Zone: "dorm3"},
			Buckets: []store.Bucket{
				{Start: t0, Count: 2, Min: 20, Max: 21, Mean: 20.5, Last: 21},
				// Last is the latest by time (+95m), not the last to arrive (+65m).
				{Start: t0.Add(h), Count: 2, Min: 19.5, Max: 22.5, Mean: 21, Last: 19.5},
				{Start: t0.Add(2 * h), Count: 1, Min: 23, Max: 23, Mean: 23, Last: 23},
			},
		}}},
		{"smoke as 0 and 1", "zone=kitchen&kind=smoke&bucket=1h", []store.SeriesBuckets{{
			Series: store.Series{Device: "kitchen-smoke", Kind: "smoke", Zone: "kitchen"},
			Buckets: []store.Bucket{
				{Start: t0, Count: 1, Min: 0, Max: 0, Mean: 0, Last: 0},
				{Start: t0.Add(h), Count: 1, Min: 1, Max: 1, Mean: 1, Last: 1},
			},
		}}},
		// Buckets are aligned to the epoch (02:00, 04:00 UTC), not to the first point.
		{"two-hour buckets up to to", "device=dorm3-temp&kind=temperature&bucket=2h&to=" + at(2*h), []store.SeriesBuckets{{
			Series: store.Series{Device: "dorm3-temp", Kind: "temperature", Zone: "dorm3"},
			Buckets: []store.Bucket{
				{Start: t0.Add(-h), Count: 2, Min: 20, Max: 21, Mean: 20.5, Last: 21},
				{Start: t0.Add(h), Count: 2, Min: 19.5, Max: 22.5, Mean: 21, Last: 19.5},
			},
		}}},
		{"half hours within from and to", "device=dorm3-temp&kind=temperature&bucket=30m&from=" + at(30*time.Minute) + "&to=" + at(95*time.Minute), []store.SeriesBuckets{{
			Series: store.Series{Device: "dorm3-temp", Kind: "temperature", Zone: "dorm3"},
			Buckets: []store.Bucket{
				{Start: t0.Add(30 * time.Minute), Count: 1, Min: 21, Max: 21, Mean: 21, Last: 21},
				{Start: t0.Add(h), Count: 1, Min: 22.5, Max: 22.5, Mean: 22.5, Last: 22.5},
			},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got struct{ Series []store.SeriesBuckets }
			if err := json.Unmarshal(s.getOK(t, "/api/v1/readings?"+tc.query), &got); err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got.Series, tc.want, func(a, b store.SeriesBuckets) bool {
				return a.Series == b.Series && slices.EqualFunc(a.Buckets, b.Buckets, func(x, y store.Bucket) bool {
					return x.Start.Equal(y.Start) && x.Count == y.Count && x.Min == y.Min && x.Max == y.Max && x.Mean == y.Mean && x.Last == y.Last
				})
			}) {
				t.Errorf("got  %+v\nwant %+v", got.Series, tc.want)
			}
		})
	}
}

// TestReadingsEmptyResultsAreLists: a dashboard iterates over "series" and
// each series' "points" or "buckets"; null instead of [] breaks it.
func TestReadingsEmptyResultsAreLists(t *testing.T) {
	s := newServer(t)
	seedHistory(t, s)
	for _, tc := range []struct {
		name, query, want string
	}{
		{"unknown device", "device=nobody", `{"series":[]}`},
		{"unknown device, buckets", "device=nobody&bucket=1h", `{"bucket":"1h0m0s","bucket_seconds":3600,"series":[]}`},
		{"range with no points, buckets", "device=kitchen-temp&bucket=1h&from=" + at(10*time.Hour),
			`{"bucket":"1h0m0s","bucket_seconds":3600,"series":[{"device":"kitchen-temp","kind":"temperature","zone":"kitchen","buckets":[]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := s.getOK(t, "/api/v1/readings?"+tc.query)
			if got := strings.TrimSpace(string(body)); got != tc.want {
				t.Errorf("body = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestReadingsCSV(t *testing.T) {
	s := newServer(t)
	seedHistory(t, s)
	for _, tc := range []struct {
		name, query string
		want        [][]string
	}{
		{"points", "device=dorm3-temp&kind=temperature&format=csv", [][]string{
			{"device", "kind", "zone", "time", "value"},
			{"dorm3-temp", "temperature", "dorm3", "2026-11-30T03:05:00Z", "20"},
			{"dorm3-temp", "temperature", "dorm3", "2026-11-30T03:35:00Z", "21"},
			{"dorm3-temp", "temperature", "dorm3", "2026-11-30T04:05:00Z", "22.5"},
			{"dorm3-temp", "temperature", "dorm3", "2026-11-30T04:35:00Z", "19.5"},
			{"dorm3-temp", "temperature", "dorm3", "2026-11-30T05:05:00Z", "23"},
		}},
		{"points of several series", "zone=kitchen&format=csv", [][]string{
			{"device", "kind", "zone", "time", "value"},
			{"kitchen-smoke", "smoke", "kitchen", "2026-11-30T03:10:00Z", "false"},
			{"kitchen-smoke", "smoke", "kitchen", "2026-11-30T04:10:00Z", "true"},
			{"kitchen-temp", "temperature", "kitchen", "2026-11-30T03:15:00Z", "25"},
		}},
		{"buckets", "device=dorm3-temp&kind=temperature&bucket=1h&format=csv", [][]string{
			{"device", "kind", "zone", "start", "count", "min", "max", "mean", "last"},
			{"dorm3-temp", "temperature", "dorm3", "2026-11-30T03:00:00Z", "2", "20", "21", "20.5", "21"},
			{"dorm3-temp", "temperature", "dorm3", "2026-11-30T04:00:00Z", "2", "19.5", "22.5", "21", "19.5"},
			{"dorm3-temp", "temperature", "dorm3", "2026-11-30T05:00:00Z", "1", "23", "23", "23", "23"},
		}},
		{"no points", "device=nobody&format=csv", [][]string{
			{"device", "kind", "zone", "time", "value"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.get(t, "/api/v1/readings?"+tc.query, "Bearer "+viewerSecret)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
				t.Fatalf("%s Content-Type %q: %s", resp.Status, resp.Header.Get("Content-Type"), body)
			}
			got, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
			if err != nil {
				t.Fatalf("parse CSV %q: %v", body, err)
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// checkParamError asserts a 400 with a JSON error that names the parameter.
func checkParamError(t *testing.T, resp *http.Response, body []byte, param string) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%s %s, want 400", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("400 body %q is not JSON: %v", body, err)
	}
	if !regexp.MustCompile(`\b` + param + `\b`).MatchString(e.Error) {
		t.Errorf("error %q does not name the parameter %q", e.Error, param)
	}
}

func TestReadingsBadParameters(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		name, query, param string
	}{
		{"from not RFC 3339", "from=yesterday", "from"},
		{"from without zone", "from=2026-11-30T03:00:00", "from"},
		{"to not RFC 3339", "to=1764471600", "to"},
		{"from equal to to", "from=" + at(0) + "&to=" + at(0), "from"},
		{"from after to", "from=" + at(time.Hour) + "&to=" + at(0), "from"},
		{"zero bucket", "bucket=0s", "bucket"},
		{"negative bucket", "bucket=-1h", "bucket"},
		{"sub-second bucket", "bucket=500ms", "bucket"},
		{"bucket not a duration", "bucket=banana", "bucket"},
		{"unknown format", "format=xml", "format"},
		{"unknown format with buckets", "bucket=1h&format=xml", "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.get(t, "/api/v1/readings?"+tc.query, "Bearer "+viewerSecret)
			checkParamError(t, resp, body, tc.param)
		})
	}
}

func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    httpapi.Role
		wantErr bool
	}{
		{"viewer", httpapi.RoleViewer, false},
		{"manager", httpapi.RoleManager, false},
		{"admin", httpapi.RoleAdmin, false},
		{"", 0, true},
		{"root", 0, true},
		{"Admin", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := httpapi.ParseRole(tc.in)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
					t.Fatalf("ParseRole(%q) = %v, %v; want an error naming the role", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRole(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
	if !(httpapi.RoleViewer < httpapi.RoleManager && httpapi.RoleManager < httpapi.RoleAdmin) {
		t.Error("roles are not ordered viewer < manager < admin")
	}
}

func TestParseToken(t *testing.T) {
	digest := sha256Hex(viewerSecret)
	for _, tc := range []struct {
		name, role, hex string
		wantErr         string // substring; "" for success
	}{
		{"lower-case digest", "viewer", digest, ""},
		{"upper-case digest", "viewer", strings.ToUpper(digest), ""},
		{"unknown role", "superuser", digest, `"superuser"`},
		{"short digest", "viewer", digest[:62], "64 hex digits"},
		{"long digest", "viewer", digest + "00", "64 hex digits"},
		{"odd length", "viewer", digest[:63], "64 hex digits"},
		{"not hex", "viewer", strings.Repeat("zz", 32), "64 hex digits"},
		{"empty digest", "viewer", "", "64 hex digits"},
		{"the token itself", "viewer", viewerSecret, "64 hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := httpapi.ParseToken("console", tc.role, tc.hex)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseToken = %+v, %v; want an error containing %s", tok, err, tc.wantErr)
				}
				if tc.role == "viewer" && !strings.Contains(err.Error(), `"console"`) {
					t.Errorf("error %q does not name the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseToken: %v", err)
			}
			if tok.Name != "console" || tok.Role != httpapi.RoleViewer || tok.Digest != sha256.Sum256([]byte(viewerSecret)) {
				t.Errorf("ParseToken = %+v, want console, viewer, the digest of the token", tok)
			}
		})
	}
}

func TestForwardersAndNoSelfAlarmEndpoint(t *testing.T) {
	s := newServer(t)
	var fw struct {
		Forwarders []struct {
			Target         string  `json:"target"`
			BacklogPoints  uint64  `json:"backlog_points"`
			BacklogSeconds float64 `json:"backlog_seconds"`
			LastError      string  `json:"last_error"`
		} `json:"forwarders"`
	}
	if err := json.Unmarshal(s.getOK(t, "/api/v1/forwarders"), &fw); err != nil {
		t.Fatal(err)
	}
	if len(fw.Forwarders) != 1 || fw.Forwarders[0].Target != "province" || fw.Forwarders[0].BacklogPoints != 1200 ||
		fw.Forwarders[0].BacklogSeconds != 90 || fw.Forwarders[0].LastError == "" {
		t.Fatalf("forwarders: %+v", fw)
	}

	// Gateway faults are alarms like any other, served by /api/v1/alarms;
	// the separate self-alarm endpoints are gone.
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/self-alarms", nil)
	req.Header.Set("Authorization", "Bearer "+viewerSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /api/v1/self-alarms: %d, want 404", resp.StatusCode)
	}
}
