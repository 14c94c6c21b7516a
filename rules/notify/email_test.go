package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// testCert returns a TLS certificate for 127.0.0.1 and its PEM, made for
// the test.
func testCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}

// mailServer is an in-process SMTP server (emersion/go-smtp).
type mailServer struct {
	addr  string
	port  int
	mails chan gotMail
}

type gotMail struct {
	from   string
	to     []string
	data   []byte
	tls    bool
	authed string
}

type smtpOpts struct {
	tlsConfig  *tls.Config
	implicit   bool   // SMTPS: TLS from the first byte
	user, pass string // required credentials ("" accepts mail without AUTH)
	rejectRcpt string // refuse this recipient with 550
}

func startSMTP(t *testing.T, o smtpOpts) *mailServer {
	t.Helper()
	ms := &mailServer{mails: make(chan gotMail, 16)}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &smtpSession{srv: ms, o: o, mail: gotMail{tls: isTLS}, conn: c}, nil
	})
	s := smtp.NewServer(be)
	s.Domain = "smtp.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.AllowInsecureAuth = o.tlsConfig == nil
	var l net.Listener
	var err error
	if o.implicit {
		l, err = tls.Listen("tcp", "127.0.0.1:0", o.tlsConfig)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		s.TLSConfig = o.tlsConfig // offers STARTTLS when set
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { s.Close(); <-done })
	ms.addr = l.Addr().String()
	ms.port = l.Addr().(*net.TCPAddr).Port
	return ms
}

type smtpSession struct {
	srv  *mailServer
	o    smtpOpts
	conn *smtp.Conn
	mail gotMail
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.o.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.o.user || pass != s.o.pass {
			return smtp.ErrAuthFailed
		}
		s.mail.authed = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.o.user != "" && s.mail.authed == "" {
		return smtp.ErrAuthRequired
	}
	if _, isTLS := s.conn.TLSConnectionState(); isTLS {
		s.mail.tls = true
	}
	s.mail.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == s.o.rejectRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.mail.to = append(s.mail.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.mail
	m.data = b
	s.srv.mails <- m
	return nil
}

func (s *smtpSession) Reset()        { s.mail = gotMail{tls: s.mail.tls, authed: s.mail.authed} }
func (s *smtpSession) Logout() error { return nil }

// decodedMail is a received mail as a person reads it.
type decodedMail struct {
	header  mail.Header
	subject string
	body    string
}

func decodeMail(t *testing.T, raw []byte) decodedMail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body, err = io.ReadAll(quotedprintable.NewReader(m.Body))
	default:
		body, err = io.ReadAll(m.Body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return decodedMail{header: m.Header, subject: subject, body: string(body)}
}

func TestEmail(t *testing.T) {
	cert, certPEM := testCert(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	caFile := writeFile(t, "ca.pem", string(certPEM))
	passFile := writeFile(t, "smtp.pass", "pa55-word\n")
	escalated := event("kitchen-smoke/1", alarm.SeverityFire, alarm.EventEscalated)
	escalated.Level = 1
	resolved := event("kitchen-smoke/1", alarm.SeverityFire, alarm.EventResolved)
	resolved.Level = 1

	for _, tc := range []struct {
		name      string
		server    smtpOpts
		cfg       EmailConfig
		ev        alarm.Event
		wantTo    []string
		wantErr   bool
		permanent bool
	}{
		{name: "STARTTLS with authentication",
			server: smtpOpts{tlsConfig: serverTLS, user: "gw", pass: "pa55-word"},
			cfg:    EmailConfig{TLS: "starttls", Username: "gw", PasswordFile: passFile},
			ev:     event("kitchen-smoke/1", alarm.SeverityFire, alarm.EventFiring), wantTo: []string{"duty@shelter.test"}},
		{name: "implicit TLS",
			server: smtpOpts{tlsConfig: serverTLS, implicit: true, user: "gw", pass: "pa55-word"},
			cfg:    EmailConfig{TLS: "implicit", Username: "gw", PasswordFile: passFile},
			ev:     event("dorm-cold/3", alarm.SeverityWarning, alarm.EventFiring), wantTo: []string{"duty@shelter.test"}},
		{name: "escalation goes to the next level",
			server: smtpOpts{tlsConfig: serverTLS},
			cfg:    EmailConfig{TLS: "starttls"},
			ev:     escalated, wantTo: []string{"director@civil.test"}},
		{name: "resolution goes to every level that was paged",
			server: smtpOpts{tlsConfig: serverTLS},
			cfg:    EmailConfig{TLS: "starttls"},
			ev:     resolved, wantTo: []string{"duty@shelter.test", "director@civil.test"}},
		{name: "plain relay allowed explicitly",
			server: smtpOpts{},
			cfg:    EmailConfig{TLS: "none", AllowPlain: true},
			ev:     event("dorm-cold/3", alarm.SeverityWarning, alarm.EventFiring), wantTo: []string{"duty@shelter.test"}},
		{name: "no STARTTLS offered: mandatory TLS refuses to send",
			server: smtpOpts{},
			cfg:    EmailConfig{TLS: "starttls"},
			ev:     event("kitchen-smoke/1", alarm.SeverityFire, alarm.EventFiring), wantErr: true},
		{name: "unknown mailbox is permanent",
			server: smtpOpts{tlsConfig: serverTLS, rejectRcpt: "duty@shelter.test"},
			cfg:    EmailConfig{TLS: "starttls"},
			ev:     event("kitchen-smoke/1", alarm.SeverityFire, alarm.EventFiring), wantErr: true, permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSMTP(t, tc.server)
			ec := tc.cfg
			ec.Host, ec.Port, ec.CAFile = "127.0.0.1", srv.port, caFile
			ec.From = "ShelterWatch <gw@shelter.test>"
			ec.To = []string{"duty@shelter.test"}
			ec.Recipients = []LevelRecipients{{Level: 1, To: []string{"director@civil.test"}}}
			ch := buildOne(t, Config{Channels: []ChannelConfig{{Name: "mail", Type: TypeEmail, Email: ec, Timeout: facility.Duration(5 * time.Second)}}},
				Env{Location: time.FixedZone("CST", 8*3600)})
			err := ch.Send(context.Background(), tc.ev)
			if tc.wantErr {
				if err == nil {
					t.Fatal("sent, want an error")
				}
				if IsPermanent(err) != tc.permanent {
					t.Fatalf("%v: permanent %v, want %v", err, IsPermanent(err), tc.permanent)
				}
				if strings.Contains(err.Error(), "pa55-word") {
					t.Fatalf("error reveals the password: %v", err)
				}
				select {
				case m := <-srv.mails:
					t.Fatalf("mail accepted: %s", m.data)
				default:
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got gotMail
			select {
			case got = <-srv.mails:
			case <-time.After(5 * time.Second):
				t.Fatal("no mail arrived")
			}
			if wantTLS := tc.cfg.TLS != "none"; got.tls != wantTLS {
				t.Fatalf("mail over TLS %v, want %v", got.tls, wantTLS)
			}
			if got.authed != tc.server.user || got.from != "gw@shelter.test" || !slices.Equal(got.to, tc.wantTo) {
				t.Fatalf("auth %q from %q to %v, want to %v", got.authed, got.from, got.to, tc.wantTo)
			}
			m := decodeMail(t, got.data)
			sev := severityText(tc.ev.Alarm.Severity, LangZH)
			if !strings.Contains(m.subject, " / [") || !strings.Contains(m.subject, tc.ev.Alarm.Title.ZH) ||
				strings.Index(m.subject, tc.ev.Alarm.Title.ZH) > strings.Index(m.subject, tc.ev.Alarm.Title.EN) {
				t.Fatalf("subject %q: want Chinese then English", m.subject)
			}
			if tc.ev.Kind == alarm.EventFiring && !strings.Contains(m.subject, "【"+sev+"】") {
				t.Fatalf("subject %q lacks the severity %s", m.subject, sev)
			}
			zh, en := strings.Index(m.body, tc.ev.Alarm.Body.ZH), strings.Index(m.body, tc.ev.Alarm.Body.EN)
			if zh < 0 || en < 0 || zh > en {
				t.Fatalf("body: want Chinese then English:\n%s", m.body)
			}
			if !strings.Contains(m.body, "开始时间：2025-01-15 10:04:05") {
				t.Fatalf("body lacks the start in facility time:\n%s", m.body)
			}
			if id := m.header.Get(HeaderEventID); id != EventID(tc.ev) {
				t.Fatalf("event id header %q", id)
			}
			if mid := m.header.Get("Message-Id"); !strings.HasPrefix(mid, "<"+EventID(tc.ev)) {
				t.Fatalf("Message-ID %q", mid)
			}
		})
	}
}

func TestEmailAuthFailureIsRetried(t *testing.T) {
	cert, certPEM := testCert(t)
	srv := startSMTP(t, smtpOpts{tlsConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, user: "gw", pass: "right"})
	ch := buildOne(t, Config{Channels: []ChannelConfig{{Name: "mail", Type: TypeEmail, Email: EmailConfig{
		Host: "127.0.0.1", Port: srv.port, CAFile: writeFile(t, "ca.pem", string(certPEM)),
		Username: "gw", PasswordFile: writeFile(t, "pw", "wrong"), From: "gw@shelter.test", To: []string{"a@shelter.test"}}}}}, Env{})
	err := ch.Send(context.Background(), event("a/1", alarm.SeverityFire, alarm.EventFiring))
	if err == nil || IsPermanent(err) {
		t.Fatalf("err %v: want a retryable error (a password may be fixed without a restart of the server)", err)
	}
	var de *DeliveryError
	if errors.As(err, &de) && de.Permanent {
		t.Fatal("permanent")
	}
}
