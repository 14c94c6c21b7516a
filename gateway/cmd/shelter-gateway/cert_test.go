package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
)

// serialIn is the serial number of the certificate in a PEM file.
func serialIn(t *testing.T, certFile, keyFile string) *big.Int {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf.SerialNumber
}

// HTTPS end to end: `cert ca` and `cert server` make the files, the
// gateway serves the API over HTTPS with them to a client that trusts only
// the facility CA, and a certificate renewed on disk (`cert server
// --force`) is what the next connection gets, without a restart.
func TestHTTPSWithCertificatesFromTheCertCommand(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if out, errOut, err := runCLI(t, "", "cert", "ca", "--dir", tlsDir, "--host", "gateway"); err != nil {
		t.Fatalf("cert ca: %v\n%s%s", err, out, errOut)
	} else if !strings.Contains(out, filepath.Join(tlsDir, "ca.crt")) || !strings.Contains(out, "fingerprint") {
		t.Fatalf("cert ca does not say where the CA went and its fingerprint:\n%s", out)
	}
	if out, errOut, err := runCLI(t, "", "cert", "server", "--dir", tlsDir, "--host", "gateway,127.0.0.1"); err != nil {
		t.Fatalf("cert server: %v\n%s%s", err, out, errOut)
	} else if !strings.Contains(out, "tls_cert_file: "+filepath.Join(tlsDir, "server.crt")) {
		t.Fatalf("cert server does not say what to put in the config:\n%s", out)
	}
	for _, key := range []string{"ca.key", "server.key"} {
		if st, err := os.Stat(filepath.Join(tlsDir, key)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", key, err, st.Mode().Perm())
		}
	}
	for _, args := range [][]string{{"cert", "ca", "--dir", tlsDir}, {"cert", "server", "--dir", tlsDir, "--host", "127.0.0.1"}} {
		if _, _, err := runCLI(t, "", args...); err == nil || !strings.Contains(err.Error(), "without --force") {
			t.Fatalf("%v over existing files: %v, want a refusal", args, err)
		}
	}

	certFile, keyFile := filepath.Join(tlsDir, "server.crt"), filepath.Join(tlsDir, "server.key")
	cfgPath := filepath.Join(dir, "gw.yaml")
	cfgText := `facility: {id: tls-test, name: TLS Test, timezone: UTC}
zones: [{id: z}]
broker: {embedded: {listen: "127.0.0.1:0"}}
store: {dir: store}
alarms: {dir: alarms}
http:
  listen: 127.0.0.1:0
  tls_cert_file: tls/server.crt
  tls_key_file: tls/server.key
`
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a := runInProcess(t, cfg)

	caPEM, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	// A new connection per request: each one is a new handshake.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	url := "https://" + a.HTTPAddr() + "/readyz"
	served := func() *big.Int {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s trusting only the facility CA: %v", url, err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", url, resp.Status, b)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber
	}
	first := serialIn(t, certFile, keyFile)
	if got := served(); got.Cmp(first) != 0 {
		t.Fatalf("served certificate %x, want %x from %s", got, first, certFile)
	}
	if resp, err := http.Get("http://" + a.HTTPAddr() + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered on the HTTPS port")
		}
	}

	if out, errOut, err := runCLI(t, "", "cert", "server", "--dir", tlsDir, "--host", "gateway,127.0.0.1", "--force"); err != nil {
		t.Fatalf("cert server --force: %v\n%s%s", err, out, errOut)
	}
	renewed := serialIn(t, certFile, keyFile)
	if renewed.Cmp(first) == 0 {
		t.Fatal("the renewed certificate has the same serial number")
	}
	deadline := time.Now().Add(15 * time.Second)
	for served().Cmp(renewed) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("15s after the renewal new connections still get certificate %x, not %x", first, renewed)
		}
		time.Sleep(100 * time.Millisecond)
	}
	http.DefaultClient.CloseIdleConnections()
}

// runInProcess runs a gateway with cfg inside the test until it ends and
// returns it once it is ready.
func runInProcess(t *testing.T, cfg *config.Config) *app.App {
	t.Helper()
	a, err := app.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("gateway stopped before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("gateway not ready within 20s")
	}
	return a
}
