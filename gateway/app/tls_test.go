package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestEmbeddedBrokerTLSListener(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	a := startApp(t, testConfig(t, fmt.Sprintf("broker:\n  embedded: {listen: \"\", tls_listen: \"127.0.0.1:0\", tls_cert_file: %q, tls_key_file: %q}\n", certFile, keyFile)))
	if a.BrokerAddr() != "" {
		t.Fatalf("plain listener open at %s though disabled", a.BrokerAddr())
	}
	o := paho.NewClientOptions().AddBroker("ssl://" + a.BrokerTLSAddr()).SetClientID("tls-smoke").
		SetUsername("kitchen-smoke").SetPassword("pw-kitchen-smoke").SetAutoReconnect(false).
		SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("TLS connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	before := a.Store.LastSeq()
	if err := publish(t, c, "zigbee2mqtt/kitchen/smoke", `{"smoke":false,"battery":90}`); err != nil {
		t.Fatal(err)
	}
	if a.Store.LastSeq() <= before {
		t.Fatal("reading published over TLS not stored")
	}

	// A client that does not trust the certificate must not get in.
	bad := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + a.BrokerTLSAddr()).SetClientID("tls-bad").
		SetUsername("kitchen-smoke").SetPassword("pw-kitchen-smoke").SetAutoReconnect(false).
		SetTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	if tok := bad.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		bad.Disconnect(0)
		t.Fatal("connected without trusting the broker certificate")
	}
}
