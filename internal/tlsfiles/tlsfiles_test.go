package tlsfiles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate valid over [from, to) and its
// key, and returns their paths.
func writeCert(t *testing.T, from, to time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: from, NotAfter: to, DNSNames: []string{"localhost"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestCondition(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     string
	}{
		{"valid for a year", now.Add(-time.Hour), now.AddDate(1, 0, 0), "ok"},
		{"expires in 15 days", now.Add(-time.Hour), now.Add(15 * 24 * time.Hour), "ok"},
		{"expires in 13 days", now.Add(-time.Hour), now.Add(13 * 24 * time.Hour), "expires on 2026-12-19"},
		{"expired", now.AddDate(-1, 0, 0), now.Add(-24 * time.Hour), "expired on 2026-12-05"},
		{"not yet valid", now.Add(24 * time.Hour), now.AddDate(1, 0, 0), "is not valid before 2026-12-07 (is the clock right?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, _ := writeCert(t, tc.from, tc.to)
			got := Condition(cert, now)
			if (tc.want == "ok" && got != "ok") || (tc.want != "ok" && !strings.HasSuffix(got, tc.want)) {
				t.Fatalf("Condition = %q, want …%q", got, tc.want)
			}
		})
	}
	if got := Condition(filepath.Join(t.TempDir(), "missing.pem"), now); !strings.HasPrefix(got, "certificate unreadable") {
		t.Errorf("missing file: %q", got)
	}
}

func TestServerAndClient(t *testing.T) {
	now := time.Now()
	cert, key := writeCert(t, now.Add(-time.Hour), now.Add(time.Hour))
	srv, err := Server(cert, key, nil)
	if err != nil || srv.GetCertificate == nil || srv.MinVersion != MinVersion {
		t.Fatalf("Server = %+v, %v", srv, err)
	}
	if _, err := Server(cert, cert, nil); err == nil || !strings.Contains(err.Error(), "tls: load certificate") {
		t.Errorf("Server with the certificate as key: %v", err)
	}
	cli, err := Client(cert, cert, key)
	if err != nil || cli.RootCAs == nil || len(cli.Certificates) != 1 {
		t.Fatalf("Client = %+v, %v", cli, err)
	}
	if cli, err := Client("", "", ""); cli != nil || err != nil {
		t.Errorf("Client without files = %v, %v; want the defaults", cli, err)
	}
	if _, err := Client(key, "", ""); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("Client with a key as CA: %v", err)
	}
}
