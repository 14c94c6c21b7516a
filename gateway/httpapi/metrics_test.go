package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
)

// MetricsHandler serves /metrics alone: open to anyone (the gateway binds
// it only on loopback) or behind the metrics or admin token; the API is
// not there.
func TestMetricsHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "shelterwatch_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var tokens []httpapi.Token
	for _, tc := range []struct{ name, role, secret string }{{"prometheus", "metrics", metricsSecret}, {"console", "viewer", viewerSecret}} {
		tok, err := httpapi.ParseToken(tc.name, tc.role, sha256Hex(tc.secret))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	opts := httpapi.Options{Gatherer: reg, Tokens: tokens}
	open := httptest.NewServer(httpapi.MetricsHandler(opts, true))
	t.Cleanup(open.Close)
	guarded := httptest.NewServer(httpapi.MetricsHandler(opts, false))
	t.Cleanup(guarded.Close)
	for _, tc := range []struct {
		name, url, path, auth string
		want                  int
	}{
		{"open, no token", open.URL, "/metrics", "", http.StatusOK},
		{"open, no API", open.URL, "/api/v1/devices", "Bearer " + viewerSecret, http.StatusNotFound},
		{"token, none given", guarded.URL, "/metrics", "", http.StatusUnauthorized},
		{"token, a viewer's", guarded.URL, "/metrics", "Bearer " + viewerSecret, http.StatusForbidden},
		{"token, the metrics token", guarded.URL, "/metrics", "Bearer " + metricsSecret, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tc.url+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s: %s %s, want %d", tc.path, resp.Status, body, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(string(body), "shelterwatch_test_total 3") {
				t.Fatalf("GET %s: the registry's metrics are missing:\n%s", tc.path, body)
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
}
