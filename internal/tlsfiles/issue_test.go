package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestIssueServer(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	ca := newFacilityCA(t, now)
	caCert, err := tls.X509KeyPair(ca.cert, ca.key)
	if err != nil {
		t.Fatalf("CA key does not match its certificate: %v", err)
	}
	if c := caCert.Leaf; !c.IsCA || c.NotAfter.Sub(now) < 9*365*24*time.Hour || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA: IsCA %v, until %v, key %v", c.IsCA, c.NotAfter, c.PublicKeyAlgorithm)
	}
	for _, tc := range []struct {
		name  string
		hosts []string
		want  string // "" when issued; else part of the error
	}{
		{"a LAN address and the name the CA was made for", []string{"gateway", "192.168.1.20"}, ""},
		{"a name under .lan and an IPv6 ULA", []string{"gw.shelter.lan", "fd00::20"}, ""},
		{"the name's subdomain", []string{"console.gateway"}, ""},
		{"a public name", []string{"www.example.com"}, "may not certify"},
		{"a public address", []string{"gateway", "8.8.8.8"}, "may not certify"},
		{"no host", nil, "at least one host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, k, err := IssueServer(ca.cert, ca.key, tc.hosts, now)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("IssueServer(%v) = %v, want an error with %q", tc.hosts, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(c, k)
			if err != nil {
				t.Fatal(err)
			}
			leaf := pair.Leaf
			if d := leaf.NotAfter.Sub(now); d > 825*24*time.Hour || d < 365*24*time.Hour {
				t.Errorf("valid for %v: phones refuse more than 825 days", d)
			}
			for _, h := range tc.hosts {
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.pool, DNSName: h, CurrentTime: now.Add(time.Hour)}); err != nil {
					t.Errorf("a client reaching %s refuses it: %v", h, err)
				}
			}
		})
	}
	t.Run("a public address the CA was made for", func(t *testing.T) {
		c, k, err := NewCA("Test Shelter CA", []string{"gateway", "203.0.113.7", "gw.shelter.example.org"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := IssueServer(c, k, []string{"gw.shelter.example.org", "203.0.113.7", "192.168.1.20"}, now); err != nil {
			t.Fatalf("IssueServer for the CA's own public names: %v", err)
		}
		if _, _, err := IssueServer(c, k, []string{"203.0.113.8"}, now); err == nil {
			t.Fatal("IssueServer for the next public address succeeded")
		}
	})
	t.Run("a key that is not the CA's", func(t *testing.T) {
		other := newFacilityCA(t, now)
		if _, _, err := IssueServer(ca.cert, other.key, []string{"gateway"}, now); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("IssueServer with another CA's key: %v", err)
		}
	})
	if fp, err := Fingerprint(ca.cert); err != nil || len(fp) != 32*3-1 {
		t.Fatalf("Fingerprint = %q, %v", fp, err)
	}
}
