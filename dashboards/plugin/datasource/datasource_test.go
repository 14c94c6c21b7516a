package datasource

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// fakeGW is a gateway stand-in: facility id, one open alarm, one series,
// and an event stream the test feeds.
type fakeGW struct {
	*httptest.Server
	id     string
	events chan string
}

func newFakeGW(t *testing.T, id string) *fakeGW {
	t.Helper()
	g := &fakeGW{id: id, events: make(chan string, 16)}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer tok-"+id {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthorized"}`)
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		return true
	}
	mux.HandleFunc("GET /api/v1/facility", func(w http.ResponseWriter, r *http.Request) {
		if ok(w, r) {
			fmt.Fprintf(w, `{"id":%q,"name":"F","timezone":"UTC","zones":[{"id":"kitchen","name":"Kitchen","tags":[]}],"version":"1.2.0"}`, id)
		}
	})
	mux.HandleFunc("GET /api/v1/alarms", func(w http.ResponseWriter, r *http.Request) {
		if ok(w, r) {
			fmt.Fprintf(w, `{"alarms":[{"id":"smoke@dev:k","rule":"smoke","severity":"fire","facility":%q,"zone":"kitchen","state":"firing","since":"2026-12-01T00:00:00Z"}]}`, id)
		}
	})
	mux.HandleFunc("GET /api/v1/readings", func(w http.ResponseWriter, r *http.Request) {
		if ok(w, r) {
			fmt.Fprintf(w, `{"bucket":"1m0s","series":[{"device":"t1","kind":"temperature","zone":"kitchen","buckets":[{"start":"2026-12-01T00:00:00Z","count":1,"mean":21.5},{"start":"2026-12-01T00:01:00Z","count":1,"mean":%s}]}]}`, r.URL.Query().Get("max_points"))
		}
	})
	mux.HandleFunc("GET /api/v1/reports/alarms", func(w http.ResponseWriter, r *http.Request) {
		if ok(w, r) {
			fmt.Fprint(w, `{"from":"2026-11-01T00:00:00Z","to":"2026-12-01T00:00:00Z","groups":[{"rule":"dorm-cold"}]}`)
		}
	})
	if id == "rules-1" {
		// A gateway with the rule list (the others are older: 404).
		mux.HandleFunc("GET /api/v1/rules", func(w http.ResponseWriter, r *http.Request) {
			if ok(w, r) {
				fmt.Fprint(w, `[{"id":"bridge-down","type":"state","scope":"device","severity":"critical","kinds":["fault"],"latched":false,"title":{"en":"x","zh":"x"}},{"id":"smoke","type":"state","scope":"device","severity":"critical","kinds":["smoke"],"latched":true,"title":{"en":"x","zh":"x"}}]`)
			}
		})
	}
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		if !ok(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\nevent: snapshot\ndata: {\"alarms\":[]}\n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case e := <-g.events:
				fmt.Fprintf(w, "event: alarm\ndata: %s\n\n", e)
				w.(http.Flusher).Flush()
			}
		}
	})
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func settings(t *testing.T, gws map[string]string, tokens map[string]string) backend.DataSourceInstanceSettings {
	t.Helper()
	var list []GatewaySettings
	for _, n := range []string{"north", "south", "west"} {
		if u, ok := gws[n]; ok {
			list = append(list, GatewaySettings{Name: n, URL: u})
		}
	}
	js, _ := json.Marshal(Settings{Gateways: list})
	sec := map[string]string{}
	for n, tok := range tokens {
		sec["token_"+n] = tok
	}
	return backend.DataSourceInstanceSettings{UID: "sw-uid", JSONData: js, DecryptedSecureJSONData: sec}
}

func newDS(t *testing.T, s backend.DataSourceInstanceSettings) *Datasource {
	t.Helper()
	d, err := New(s, Options{ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestParseSettings(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		secure     map[string]string
		want       string
	}{
		{"empty", ``, nil, "settings: gateways: configure at least one gateway"},
		{"unknown key", `{"gateway":[]}`, nil, `settings: jsonData: json: unknown field "gateway"`},
		{"duplicate", `{"gateways":[{"name":"a","url":"http://x"},{"name":"a","url":"http://y"}]}`, map[string]string{"token_a": "t"},
			`settings: gateways[1].name: "a" is used by another gateway`},
		{"bad url", `{"gateways":[{"name":"a","url":"ftp://x"}]}`, map[string]string{"token_a": "t"},
			`settings: gateways[0].url: "ftp://x" must be an http:// or https:// URL with a host`},
		{"no token", `{"gateways":[{"name":"a","url":"http://x"}]}`, nil,
			`settings: secureJsonData.token_a: the token of gateway "a" is missing`},
		{"bad name", `{"gateways":[{"name":"A B","url":"http://x"}]}`, nil,
			`settings: gateways[0].name: "A B" must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit`},
		{"ok", `{"gateways":[{"name":"a","url":"https://x:8443"}]}`, map[string]string{"token_a": "t"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSettings([]byte(tc.json), tc.secure)
			if tc.want == "" {
				if err != nil || s.Gateways[0].Token != "t" {
					t.Fatalf("ParseSettings = %+v, %v", s, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckHealth(t *testing.T) {
	n, s := newFakeGW(t, "north-1"), newFakeGW(t, "south-1")
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<html></html>")
	}))
	t.Cleanup(html.Close)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name        string
		gws, tokens map[string]string
		status      backend.HealthStatus
		message     string
	}{
		{"ok", map[string]string{"north": n.URL, "south": s.URL}, map[string]string{"north": "tok-north-1", "south": "tok-south-1"},
			backend.HealthStatusOk, "2 gateways OK: north (north-1, version 1.2.0); south (south-1, version 1.2.0)"},
		{"bad token", map[string]string{"north": n.URL, "south": s.URL}, map[string]string{"north": "tok-north-1", "south": "wrong"},
			backend.HealthStatusError, "1 of 2 gateways failing: south: the token was refused (401 Unauthorized)"},
		{"all wrong", map[string]string{"north": closed, "south": html.URL, "west": n.URL}, map[string]string{"north": "x", "south": "x", "west": "tok-north-1"},
			backend.HealthStatusError, "2 of 3 gateways failing: north: unreachable: connection refused; " +
				"south: not a ShelterWatch gateway: GET /api/v1/facility answered 200 with text/html, not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDS(t, settings(t, tc.gws, tc.tokens))
			res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status || res.Message != tc.message {
				t.Fatalf("CheckHealth = %v %q, want %v %q", res.Status, res.Message, tc.status, tc.message)
			}
		})
	}
}

func query(refID string, model string) backend.DataQuery {
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	return backend.DataQuery{RefID: refID, JSON: json.RawMessage(model), MaxDataPoints: 500,
		TimeRange: backend.TimeRange{From: from, To: from.Add(time.Hour)}}
}

func TestQueryData(t *testing.T) {
	n, s := newFakeGW(t, "north-1"), newFakeGW(t, "south-1")
	d := newDS(t, settings(t, map[string]string{"north": n.URL, "south": s.URL}, map[string]string{"north": "tok-north-1", "south": "wrong"}))
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		query("A", `{"queryType":"alarms"}`),
		query("B", `{"queryType":"readings","zone":"kitchen","gateways":["north"]}`),
		query("C", `{"queryType":"alarms","gateways":["south"]}`),
		query("D", `{"queryType":"alarms","live":true}`),
		query("E", `{"queryType":"nope"}`),
		query("F", `{"queryType":"alarms","gateways":["east"]}`),
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.Responses["A"]
	if a.Error != nil || len(a.Frames) != 1 || a.Frames[0].Rows() != 1 {
		t.Fatalf("A: %v %v", a.Error, a.Frames)
	}
	if gw, _ := a.Frames[0].Fields[1].ConcreteAt(0); gw != "north" {
		t.Errorf("A's row is of gateway %v, want only north's (south's token is refused)", gw)
	}
	if ns := a.Frames[0].Meta.Notices; len(ns) != 1 || ns[0].Text != "gateway south: the token was refused (401 Unauthorized)" {
		t.Errorf("A's notices %+v", ns)
	}
	b := resp.Responses["B"]
	if b.Error != nil || len(b.Frames) != 1 || b.Frames[0].Rows() != 2 {
		t.Fatalf("B: %v %v", b.Error, b.Frames)
	}
	if v := b.Frames[0].Fields[1]; v.Labels["facility"] != "north-1" || v.At(1).(float64) != 500 {
		t.Errorf("B: labels %v, second value %v (want max_points 500 echoed)", v.Labels, v.At(1))
	}
	if c := resp.Responses["C"]; c.Error == nil || c.Status != backend.StatusUnauthorized || c.Error.Error() != "gateway south: the token was refused (401 Unauthorized)" {
		t.Errorf("C: %v %v", c.Status, c.Error)
	}
	if dd := resp.Responses["D"]; dd.Error != nil || dd.Frames[0].Meta.Channel != "ds/sw-uid/alarms" {
		t.Errorf("D: %v %+v", dd.Error, dd.Frames[0].Meta)
	}
	if e := resp.Responses["E"]; e.Error == nil || !strings.HasPrefix(e.Error.Error(), `unknown queryType "nope"`) {
		t.Errorf("E: %v", e.Error)
	}
	if f := resp.Responses["F"]; f.Error == nil || f.Error.Error() != `no gateway named "east"; configured: north, south` {
		t.Errorf("F: %v", f.Error)
	}
}

type resourceRecorder struct{ resp *backend.CallResourceResponse }

func (r *resourceRecorder) Send(resp *backend.CallResourceResponse) error { r.resp = resp; return nil }

func TestCallResource(t *testing.T) {
	n, s := newFakeGW(t, "north-1"), newFakeGW(t, "south-1")
	d := newDS(t, settings(t, map[string]string{"north": n.URL, "south": s.URL}, map[string]string{"north": "tok-north-1", "south": "wrong"}))
	var rec resourceRecorder
	if err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: "GET", Path: "zones", URL: "zones"}, &rec); err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"gateway":"north","facility":"north-1","zone":"kitchen","name":"Kitchen"}],"errors":[{"gateway":"south","error":"the token was refused (401 Unauthorized)"}]}`
	if rec.resp.Status != 200 || strings.TrimSpace(string(rec.resp.Body)) != want {
		t.Fatalf("zones: %d %s", rec.resp.Status, rec.resp.Body)
	}
}

// The rules pick list comes from a gateway's rule list; an older gateway
// without one gives the rules of its open alarms and alarm report.
func TestRulesPickList(t *testing.T) {
	n, o := newFakeGW(t, "rules-1"), newFakeGW(t, "old-1")
	d := newDS(t, settings(t, map[string]string{"north": n.URL, "south": o.URL}, map[string]string{"north": "tok-rules-1", "south": "tok-old-1"}))
	var rec resourceRecorder
	if err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: "GET", Path: "rules", URL: "rules"}, &rec); err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"gateway":"north","facility":"rules-1","rule":"bridge-down"},{"gateway":"north","facility":"rules-1","rule":"smoke"},` +
		`{"gateway":"south","facility":"old-1","rule":"dorm-cold"},{"gateway":"south","facility":"old-1","rule":"smoke"}],"errors":[]}`
	if rec.resp.Status != 200 || strings.TrimSpace(string(rec.resp.Body)) != want {
		t.Fatalf("rules: %d %s", rec.resp.Status, rec.resp.Body)
	}
}

type packetRecorder struct {
	frames chan *data.Frame
}

func (p *packetRecorder) Send(pk *backend.StreamPacket) error {
	var f data.Frame
	if err := json.Unmarshal(pk.Data, &f); err != nil {
		return err
	}
	p.frames <- &f
	return nil
}

func TestStream(t *testing.T) {
	n, s := newFakeGW(t, "north-1"), newFakeGW(t, "south-1")
	d := newDS(t, settings(t, map[string]string{"north": n.URL, "south": s.URL}, map[string]string{"north": "tok-north-1", "south": "wrong"}))
	for p, want := range map[string]backend.SubscribeStreamStatus{"alarms": backend.SubscribeStreamStatusOK, "readings": backend.SubscribeStreamStatusNotFound} {
		r, err := d.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: p})
		if err != nil || r.Status != want {
			t.Errorf("SubscribeStream(%s) = %v, %v", p, r, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	rec := &packetRecorder{frames: make(chan *data.Frame, 4)}
	done := make(chan error, 1)
	go func() {
		done <- d.RunStream(ctx, &backend.RunStreamRequest{Path: "alarms"}, backend.NewStreamSender(rec))
	}()
	// Nothing of south may come (its token is refused); its event, if
	// fetched with north's token, would show.
	s.events <- `{"id":"leak@zone:x","rule":"leak","facility":"south-1"}`
	n.events <- `{"id":"smoke@dev:k","rule":"smoke","severity":"fire","facility":"north-1","zone":"kitchen","state":"firing","updated":"2026-12-07T00:00:00Z"}`
	select {
	case f := <-rec.frames:
		if gw, _ := f.Fields[1].ConcreteAt(0); gw != "north" || f.Fields[4].At(0) != "smoke" {
			t.Fatalf("frame %v", f.Fields)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alarm frame within 5s")
	}
	select {
	case f := <-rec.frames:
		t.Fatalf("unexpected frame %v", f.Fields)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunStream did not return within 5s of its context ending")
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	for attempt, want := range map[int]time.Duration{0: 100 * time.Millisecond, 1: 200 * time.Millisecond, 3: 800 * time.Millisecond, 10: time.Second} {
		got := b.delay(attempt)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("delay(%d) = %v, want %v ±20%%", attempt, got, want)
		}
	}
}
