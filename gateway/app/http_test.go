package app

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/config"
)

// closedWithin reads from conn until the gateway closes it, and fails the
// test when that takes longer than within. It returns what was read.
func closedWithin(t *testing.T, conn net.Conn, within time.Duration) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the gateway kept the connection open for %v (read so far: %q)", within, b)
	}
	return string(b)
}

// The HTTP port faces the LAN: a request that declares a body and never
// sends it is cut off, and an idle keep-alive connection is closed, each
// at its configured time; the API keeps working for everyone else.
func TestHTTPTimeoutsCutOffSlowAndIdleClients(t *testing.T) {
	cfg := testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n")
	cfg.HTTP.ReadTimeout, cfg.HTTP.IdleTimeout = config.Duration(time.Second), config.Duration(time.Second)
	a := startApp(t, cfg)

	t.Run("a declared body that never comes", func(t *testing.T) {
		conn, err := net.Dial("tcp", a.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST /api/v1/alarms/x/ack HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, conn, 10*time.Second)
	})
	t.Run("an idle keep-alive connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", a.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %v %v", resp, err)
		}
		resp.Body.Close()
		closedWithin(t, conn, 10*time.Second)
	})
	t.Run("the API still answers", func(t *testing.T) {
		if code, b := api(t, a, http.MethodGet, "/api/v1/alarms", ""); code != http.StatusOK || !strings.Contains(string(b), "alarms") {
			t.Fatalf("GET /api/v1/alarms: %d %s", code, b)
		}
	})
}

// get requests url with the bearer token (none when "") and returns the
// status and body.
func get(t *testing.T, client *http.Client, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /metrics is closed to anyone on the LAN without a token of role metrics
// or admin; moved to a loopback listener of its own, it is served there
// without one and no longer on the API's port.
func TestMetricsByTokenOrOnLoopback(t *testing.T) {
	const promToken = "prometheus-token-0123456789"
	sum := sha256.Sum256([]byte(promToken))
	promTok := fmt.Sprintf("    - {name: prometheus, role: metrics, sha256: %s}\n", hex.EncodeToString(sum[:]))
	const scraped = "shelterwatch_store_appends_total"

	t.Run("token", func(t *testing.T) {
		a := startApp(t, testConfigTokens(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n", promTok))
		url := "http://" + a.HTTPAddr() + "/metrics"
		if code, body := get(t, http.DefaultClient, url, ""); code != http.StatusUnauthorized {
			t.Fatalf("GET /metrics without a token: %d %s", code, body)
		}
		if code, body := get(t, http.DefaultClient, url, promToken); code != http.StatusOK || !strings.Contains(body, scraped) {
			t.Fatalf("GET /metrics with the metrics token: %d %.200s", code, body)
		}
		if code, body := get(t, http.DefaultClient, "http://"+a.HTTPAddr()+"/api/v1/alarms", promToken); code != http.StatusForbidden {
			t.Fatalf("the metrics token on the alarms: %d %s", code, body)
		}
	})
	t.Run("loopback listener", func(t *testing.T) {
		cfg := testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n")
		cfg.HTTP.MetricsListen, cfg.HTTP.MetricsAuth = "127.0.0.1:0", config.MetricsNone
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		a := startApp(t, cfg)
		if code, body := get(t, http.DefaultClient, "http://"+a.MetricsAddr()+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, scraped) {
			t.Fatalf("GET /metrics on the loopback listener: %d %.200s", code, body)
		}
		if code, _ := get(t, http.DefaultClient, "http://"+a.HTTPAddr()+"/metrics", testToken); code != http.StatusNotFound {
			t.Fatalf("GET /metrics on the API's listener: %d, want 404 (it moved)", code)
		}
		if code, _ := get(t, http.DefaultClient, "http://"+a.MetricsAddr()+"/api/v1/alarms", testToken); code != http.StatusNotFound {
			t.Fatalf("the API on the metrics listener: %d, want 404", code)
		}
		if !slices.Contains(a.StageNames(), "metrics") {
			t.Fatalf("no metrics stage in %v", a.StageNames())
		}
	})
}
