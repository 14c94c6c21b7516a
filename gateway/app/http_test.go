package app

import (
	"bufio"
	"io"
	"net"
	"net/http"
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
