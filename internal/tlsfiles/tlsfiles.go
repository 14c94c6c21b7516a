// Package tlsfiles loads the gateway's TLS material from files, in one
// place: server certificates (the embedded broker's TLS listener, HTTPS),
// read again when the files change (Reloader), client
// configurations with a private CA and optional client certificate (the
// external MQTT broker, InfluxDB targets), and the expiry of each
// certificate, which the gateway watches so that a certificate running out
// is an alarm weeks before devices and browsers start refusing it.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// MinVersion is the oldest TLS version the gateway speaks.
const MinVersion = tls.VersionTLS12

// Server is the configuration of a TLS listener that serves the
// certificate and key in the files and reloads them when they change (see
// Reloader); a replacement that cannot be used is logged to log (may be
// nil) and the previous certificate stays.
func Server(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	r, err := NewReloader(certFile, keyFile, ReloaderOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	return r.TLSConfig(), nil
}

// Client builds a client configuration: the system roots, or only the CA
// in caFile when set; and a client certificate when certFile is set. It
// returns nil (the defaults) when neither is set.
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: MinVersion}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA %s holds no PEM certificate", caFile)
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate %s: %w", certFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Watched is a certificate file whose expiry the gateway watches.
type Watched struct {
	// Name says what uses it ("broker", "mqtt-client", "influx-province").
	Name string
	File string
	// Served, when set, is the Reloader serving File: its condition is
	// that of the certificate actually served.
	Served *Reloader
}

// Condition is the certificate's condition at now (see Condition and
// Reloader.Condition).
func (w Watched) Condition(now time.Time) string {
	if w.Served != nil {
		return w.Served.Condition(now)
	}
	return Condition(w.File, now)
}

// ExpiryWarning is how long before its end a certificate is a fault:
// enough for a contractor's visit.
const ExpiryWarning = 14 * 24 * time.Hour

// Condition returns the certificate's condition at now: "ok", or why it
// needs attention (unreadable, expired, expiring within ExpiryWarning, not
// yet valid). Only the first certificate in the file (the leaf) counts.
func Condition(file string, now time.Time) string {
	leaf, err := leafOf(file)
	if err != nil {
		return err.Error()
	}
	return leafCondition(file, leaf, now)
}

// leafCondition is Condition for the certificate leaf read from file.
func leafCondition(file string, leaf *x509.Certificate, now time.Time) string {
	day := leaf.NotAfter.UTC().Format("2006-01-02")
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Sprintf("certificate %s expired on %s", file, day)
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("certificate %s is not valid before %s (is the clock right?)", file, leaf.NotBefore.UTC().Format("2006-01-02"))
	case leaf.NotAfter.Sub(now) < ExpiryWarning:
		return fmt.Sprintf("certificate %s expires on %s", file, day)
	}
	return "ok"
}

func leafOf(file string) (*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certificate unreadable: %w", err)
	}
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("certificate %s holds no PEM certificate", file)
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate %s: %w", file, err)
			}
			return c, nil
		}
	}
}
