package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// facilityCA makes a CA for tests; issue signs server certificates for
// 127.0.0.1 with it.
type facilityCA struct {
	cert, key []byte
	pool      *x509.CertPool
}

func newFacilityCA(t *testing.T, now time.Time) *facilityCA {
	t.Helper()
	c, k, err := NewCA("Test Shelter CA", []string{"gateway"}, now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c) {
		t.Fatal("CA certificate not PEM")
	}
	return &facilityCA{cert: c, key: k, pool: pool}
}

func (ca *facilityCA) issue(t *testing.T, now time.Time) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	c, k, err := IssueServer(ca.cert, ca.key, []string{"gateway", "127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return c, k, leaf.Leaf.SerialNumber
}

// replace puts data at path as a deployment tool does: a new file renamed
// over the old one.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log sink for a Reloader in tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

// A certificate replaced on disk is served once the reloader next looks
// (at most CheckEvery after the last look); a broken replacement keeps the
// previous certificate, is warned about once, shows in the condition, and
// is taken as soon as it is mended.
func TestReloaderTimeline(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := t0
	ca := newFacilityCA(t, t0)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	c1, k1, s1 := ca.issue(t, t0)
	replace(t, certFile, c1)
	replace(t, keyFile, k1)
	var log syncBuffer
	r, err := NewReloader(certFile, keyFile, ReloaderOptions{CheckEvery: 2 * time.Second, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	serving := func(at time.Duration) *big.Int {
		t.Helper()
		now = t0.Add(at)
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber
	}
	if got := serving(0); got.Cmp(s1) != 0 {
		t.Fatalf("t0: serving %x, want the first certificate %x", got, s1)
	}

	c2, k2, s2 := ca.issue(t, t0)
	replace(t, keyFile, k2)
	replace(t, certFile, c2)
	if got := serving(time.Second); got.Cmp(s1) != 0 {
		t.Fatalf("t0+1s (files not looked at yet): serving %x, want %x", got, s1)
	}
	if got := serving(2 * time.Second); got.Cmp(s2) != 0 {
		t.Fatalf("t0+2s: serving %x, want the replacement %x", got, s2)
	}
	if c := r.Condition(now); c != "ok" {
		t.Fatalf("condition after the replacement: %q", c)
	}

	// A new certificate whose key has not been written yet.
	c3, k3, s3 := ca.issue(t, t0)
	replace(t, certFile, c3)
	for _, at := range []time.Duration{4 * time.Second, 6 * time.Second, 8 * time.Second} {
		if got := serving(at); got.Cmp(s2) != 0 {
			t.Fatalf("t0+%v (new certificate, old key): serving %x, want the previous %x", at, got, s2)
		}
	}
	if n := log.count("new certificate files refused"); n != 1 {
		t.Fatalf("refused files logged %d times, want once:\n%s", n, log.b.String())
	}
	if err := r.Check(); err == nil || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Fatalf("Check with a mismatched key: %v", err)
	}
	if c := r.Condition(now); !strings.Contains(c, "on disk refused") || !strings.Contains(c, "still serving the previous one") {
		t.Fatalf("condition with refused files: %q", c)
	}

	replace(t, keyFile, k3)
	if got := serving(10 * time.Second); got.Cmp(s3) != 0 {
		t.Fatalf("t0+10s (key written): serving %x, want %x", got, s3)
	}
	if err := r.Check(); err != nil {
		t.Fatalf("Check after the key was written: %v", err)
	}

	// A file overwritten in place (same inode) is noticed too.
	c4, k4, s4 := ca.issue(t, t0)
	if err := os.WriteFile(keyFile, k4, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c4, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatalf("Check after an overwrite in place: %v", err)
	}
	if got := r.Leaf().SerialNumber; got.Cmp(s4) != 0 {
		t.Fatalf("after an overwrite in place: serving %x, want %x", got, s4)
	}

	if _, err := NewReloader(certFile, filepath.Join(dir, "missing.pem"), ReloaderOptions{}); err == nil {
		t.Fatal("NewReloader accepted a missing key")
	}
}

// Through real handshakes: a client trusting only the facility CA gets the
// replacement on its next connection.
func TestReloaderHandshake(t *testing.T) {
	now := time.Now()
	ca := newFacilityCA(t, now)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	c1, k1, s1 := ca.issue(t, now)
	replace(t, certFile, c1)
	replace(t, keyFile, k1)
	srv, err := Server(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	served := func() *big.Int {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("handshake trusting only the facility CA: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}
	if got := served(); got.Cmp(s1) != 0 {
		t.Fatalf("served %x, want %x", got, s1)
	}
	c2, k2, s2 := ca.issue(t, now)
	replace(t, keyFile, k2)
	replace(t, certFile, c2)
	deadline := time.Now().Add(10 * time.Second)
	for served().Cmp(s2) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the replaced certificate %x was not served within 10s", s2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	old, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, RootCAs: ca.pool})
	if err == nil {
		old.Close()
		t.Fatal("handshake with TLS 1.1 accepted")
	}
}
