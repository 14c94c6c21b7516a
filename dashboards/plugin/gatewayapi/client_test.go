package gatewayapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const facilityJSON = `{"id":"north-1","name":"North","name_zh":"","timezone":"Asia/Shanghai","zones":[{"id":"dorm3","name":"Dormitory 3","name_zh":"","tags":[]}],"version":"%s"}`

// fakeGateway answers like a gateway whose only token is "good" (role with
// alarms) or "metrics" (no alarms).
func fakeGateway(t *testing.T, version string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc, needAlarms bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			switch r.Header.Get("Authorization") {
			case "Bearer good":
			case "Bearer metrics":
				if needAlarms {
					w.WriteHeader(http.StatusForbidden)
					fmt.Fprint(w, `{"error":"forbidden"}`)
					return
				}
			default:
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"unauthorized"}`)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /api/v1/facility", auth(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, facilityJSON, version)
	}, false))
	mux.HandleFunc("GET /api/v1/alarms", auth(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"alarms":[{"id":"smoke@dev:k","seq":1,"rule":"smoke","severity":"fire","facility":"north-1","zone":"kitchen","state":"acknowledged","since":"2026-12-01T00:00:00Z","acked_at":"2026-12-01T00:01:30Z","acked_by":"ana"}]}`)
	}, true))
	mux.HandleFunc("GET /api/v1/readings", auth(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("max_points") != "10000" || r.URL.Query().Get("zone") != "dorm3" || r.URL.Query().Get("from") != "2026-12-01T00:00:00Z" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"unexpected query %s"}`, r.URL.RawQuery)
			return
		}
		fmt.Fprint(w, `{"bucket":"1h0m0s","bucket_seconds":3600,"series":[{"device":"d","kind":"temperature","zone":"dorm3","buckets":[{"start":"2026-12-01T00:00:00Z","count":2,"min":1,"max":3,"mean":2,"last":3}]}]}`)
	}, false))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, url, token string) *Client {
	t.Helper()
	c, err := New(Options{URL: url, Token: token, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFacilityErrors(t *testing.T) {
	gw := fakeGateway(t, "1.4.0")
	gw2 := fakeGateway(t, "2.0.0")
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>hello</html>")
	}))
	t.Cleanup(html.Close)
	otherJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	t.Cleanup(otherJSON.Close)
	tlsGW := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsGW.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name, url, token string
		kind             Kind
		detail           string
	}{
		{"ok", gw.URL, "good", 0, ""},
		{"bad token", gw.URL, "wrong", KindUnauthorized, "the token was refused (401 Unauthorized)"},
		{"connection refused", closed, "good", KindUnreachable, "unreachable: connection refused"},
		{"html", html.URL, "good", KindNotGateway, "not a ShelterWatch gateway: GET /api/v1/facility answered 200 with text/html, not JSON"},
		{"other json", otherJSON.URL, "good", KindNotGateway, "not a ShelterWatch gateway: GET /api/v1/facility answered JSON without a facility id, time zone and version"},
		{"version", gw2.URL, "good", KindVersion, "the gateway's version 2.0.0 is not supported; this plugin needs a 1.x gateway"},
		{"tls", tlsGW.URL, "good", KindTLS, "TLS: the certificate is signed by an unknown authority"},
		{"plain http to tls", strings.Replace(gw.URL, "http:", "https:", 1), "good", KindTLS, "TLS: the server does not speak TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newClient(t, tc.url, tc.token).Facility(context.Background())
			if tc.kind == 0 {
				if err != nil || f.ID != "north-1" || f.Version != "1.4.0" {
					t.Fatalf("Facility = %+v, %v", f, err)
				}
				return
			}
			if KindOf(err) != tc.kind || Detail(err) != tc.detail {
				t.Fatalf("error = %v (kind %v, detail %q), want kind %v detail %q", err, KindOf(err), Detail(err), tc.kind, tc.detail)
			}
		})
	}
}

func TestForbiddenAndData(t *testing.T) {
	gw := fakeGateway(t, "dev")
	_, err := newClient(t, gw.URL, "metrics").Alarms(context.Background())
	if KindOf(err) != KindForbidden || Detail(err) != "the token's role may not GET /api/v1/alarms (403 Forbidden)" {
		t.Fatalf("Alarms with a metrics token: %v", err)
	}
	c := newClient(t, gw.URL, "good")
	alarms, err := c.Alarms(context.Background())
	if err != nil || len(alarms) != 1 {
		t.Fatalf("Alarms = %v, %v", alarms, err)
	}
	if s, ok := alarms[0].SecondsToAck(); !ok || s != 90 {
		t.Errorf("SecondsToAck = %v, %v, want 90", s, ok)
	}
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rd, err := c.Readings(context.Background(), ReadingsQuery{Zone: "dorm3", From: from, To: from.Add(time.Hour), MaxPoints: 50000})
	if err != nil || len(rd.Series) != 1 || rd.Series[0].Buckets[0].Mean != 2 {
		t.Fatalf("Readings = %+v, %v", rd, err)
	}
	_, err = c.Readings(context.Background(), ReadingsQuery{Zone: "kitchen"})
	if KindOf(err) != KindStatus || !strings.HasPrefix(Detail(err), "GET /api/v1/readings answered 400: unexpected query") {
		t.Fatalf("bad readings query: %v", err)
	}
}

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{"dev": true, "1.4.0": true, "v1.0": true, "1.5.0-rc1": true, "2.0.0": false, "0.9.1": false, "": false, "banana": false} {
		if err := CheckVersion(v); (err == nil) != ok {
			t.Errorf("CheckVersion(%q) = %v", v, err)
		}
	}
}

func TestEvents(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\nevent: snapshot\ndata: {\"alarms\":[]}\n\n: keep-alive\n\nid: 2\nevent: alarm\ndata: {\"id\":\"a\",\"rule\":\"smoke\"}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []string
	done := errors.New("done")
	err := newClient(t, s.URL, "good").Events(ctx, func(e Event) error {
		got = append(got, e.ID+"/"+e.Type+"/"+string(e.Data))
		if e.Type == "alarm" {
			return done
		}
		return nil
	})
	if !errors.Is(err, done) {
		t.Fatalf("Events = %v", err)
	}
	want := []string{`1/snapshot/{"alarms":[]}`, `2/alarm/{"id":"a","rule":"smoke"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	err = newClient(t, s.URL, "bad").Events(ctx, func(Event) error { return nil })
	if KindOf(err) != KindUnauthorized {
		t.Fatalf("Events with a bad token = %v", err)
	}
	// Cancelling ends a quiet stream.
	ctx2, cancel2 := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- newClient(t, s.URL, "good").Events(ctx2, func(e Event) error {
			if e.Type == "alarm" {
				cancel2()
			}
			return nil
		})
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Events after cancel = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events did not return within 5s of its context ending")
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{{URL: "ftp://x", Token: "t"}, {URL: "http://", Token: "t"}, {URL: "http://x"}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
