package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// emailChannel sends one plain-text mail per event with every configured
// language in it, through github.com/wneessen/go-mail.
type emailChannel struct {
	common
	cfg      EmailConfig
	password string
	roots    *x509.CertPool
	timeout  time.Duration
	levels   []LevelRecipients // sorted by level
}

func newEmail(c common, cfg EmailConfig, password string, roots *x509.CertPool, timeout time.Duration) *emailChannel {
	levels := append([]LevelRecipients(nil), cfg.Recipients...)
	sort.SliceStable(levels, func(i, j int) bool { return levels[i].Level < levels[j].Level })
	return &emailChannel{common: c, cfg: cfg, password: password, roots: roots, timeout: timeout, levels: levels}
}

func (e *emailChannel) Name() string { return e.name }

// recipients of an event: the entry of the highest level at or below the
// event's (or To); for acknowledged and resolved events, everyone up to
// that level, since they were all paged.
func (e *emailChannel) recipients(ev alarm.Event) []string {
	at := func(level int) []string {
		to := e.cfg.To
		for _, r := range e.levels {
			if r.Level <= level {
				to = r.To
			}
		}
		return to
	}
	if ev.Kind != alarm.EventAcknowledged && ev.Kind != alarm.EventResolved {
		return at(ev.Level)
	}
	seen := map[string]bool{}
	var out []string
	for l := 0; l <= ev.Level && l <= 100; l++ {
		for _, a := range at(l) {
			if k := strings.ToLower(a); !seen[k] {
				seen[k] = true
				out = append(out, a)
			}
		}
	}
	return out
}

func (e *emailChannel) client() (*gomail.Client, error) {
	tlsCfg := &tls.Config{ServerName: e.cfg.Host, RootCAs: e.roots, MinVersion: tls.VersionTLS12}
	opts := []gomail.Option{gomail.WithPort(e.cfg.Port), gomail.WithTimeout(e.timeout), gomail.WithTLSConfig(tlsCfg)}
	switch e.cfg.TLS {
	case "implicit":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		// STARTTLS or nothing: no silent fallback to clear text.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if e.cfg.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if e.cfg.TLS == "none" {
			// go-mail refuses PLAIN without TLS unless asked for it; the
			// operator did ask, with allow_plain.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(e.cfg.Username), gomail.WithPassword(e.password))
	}
	return gomail.NewClient(e.cfg.Host, opts...)
}

func (e *emailChannel) Send(ctx context.Context, ev alarm.Event) error {
	to := e.recipients(ev)
	if len(to) == 0 {
		return Permanent(errors.New("no recipients for this level"))
	}
	id := EventID(ev)
	msgs := e.render(ev, e.langs, e.env(ev, id))
	titles := make([]string, len(msgs))
	bodies := make([]string, len(msgs))
	for i, m := range msgs {
		titles[i] = m.Title
		bodies[i] = m.Body
	}
	m := gomail.NewMsg()
	if err := m.From(e.cfg.From); err != nil {
		return Permanent(fmt.Errorf("from address: %w", err))
	}
	if err := m.To(to...); err != nil {
		return Permanent(fmt.Errorf("recipient address: %w", err))
	}
	m.Subject(strings.Join(titles, " / "))
	m.SetBodyString(gomail.TypeTextPlain, strings.Join(bodies, "\n\n——————————\n\n")+"\n")
	m.SetDateWithValue(e.now())
	// The same event keeps its Message-ID across retries, so a mail that
	// did arrive before a lost reply is recognisably the same mail.
	m.SetMessageIDWithValue(id + "." + e.name + "@" + mailDomain(e.cfg.From))
	m.SetGenHeader(gomail.Header(HeaderEventID), id)
	m.SetUserAgent(userAgent)
	if urgent(ev.Alarm.Severity) && ev.Kind != alarm.EventResolved {
		m.SetImportance(gomail.ImportanceUrgent)
	}
	c, err := e.client()
	if err != nil {
		return Permanent(fmt.Errorf("smtp client: %w", err))
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		// A definite 5xx answer to the message (mailbox unknown, message
		// refused) will not change on retry; connection, TLS and
		// authentication failures and 4xx answers are retried.
		var se *gomail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 &&
			(se.Reason == gomail.ErrSMTPRcptTo || se.Reason == gomail.ErrSMTPData ||
				se.Reason == gomail.ErrSMTPDataClose || se.Reason == gomail.ErrSMTPMailFrom) {
			return Permanent(fmt.Errorf("smtp %s:%d: %w", e.cfg.Host, e.cfg.Port, err))
		}
		return fmt.Errorf("smtp %s:%d: %w", e.cfg.Host, e.cfg.Port, err)
	}
	return nil
}

func mailDomain(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			return d
		}
	}
	return "shelterwatch.invalid"
}

// Attachment is a file sent with a Mail.
type Attachment struct {
	Name string
	Data []byte
}

// Mail is a message that is not an alarm (a summary report), sent through
// the server of an e-mail channel.
type Mail struct {
	To      []string
	Subject string
	Body    string
	// ID makes the Message-ID, so that a mail sent again after a lost
	// reply is recognisably the same one.
	ID          string
	Attachments []Attachment
}

// ErrNoEmailChannel: SendMail names no e-mail channel of the outbox.
var ErrNoEmailChannel = errors.New("no such e-mail channel")

// SendMail sends m through the server of the e-mail channel named
// channel, at once (not through the outbox's queue: the caller retries).
// A Permanent error will not change on retry.
func (o *Outbox) SendMail(ctx context.Context, channel string, m Mail) error {
	l := o.lanes[channel]
	if l == nil {
		return fmt.Errorf("notify: %w: %q", ErrNoEmailChannel, channel)
	}
	e, ok := l.ch.(*emailChannel)
	if !ok {
		return fmt.Errorf("notify: %w: %q is not an e-mail channel", ErrNoEmailChannel, channel)
	}
	return e.sendMail(ctx, m)
}

func (e *emailChannel) sendMail(ctx context.Context, mm Mail) error {
	if len(mm.To) == 0 {
		return Permanent(errors.New("no recipients"))
	}
	m := gomail.NewMsg()
	if err := m.From(e.cfg.From); err != nil {
		return Permanent(fmt.Errorf("from address: %w", err))
	}
	if err := m.To(mm.To...); err != nil {
		return Permanent(fmt.Errorf("recipient address: %w", err))
	}
	m.Subject(mm.Subject)
	m.SetBodyString(gomail.TypeTextPlain, mm.Body)
	m.SetDateWithValue(e.now())
	if mm.ID != "" {
		m.SetMessageIDWithValue(mm.ID + "." + e.name + "@" + mailDomain(e.cfg.From))
	}
	m.SetUserAgent(userAgent)
	for _, a := range mm.Attachments {
		if err := m.AttachReader(a.Name, bytes.NewReader(a.Data)); err != nil {
			return Permanent(fmt.Errorf("attach %s: %w", a.Name, err))
		}
	}
	c, err := e.client()
	if err != nil {
		return Permanent(fmt.Errorf("smtp client: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 {
			return Permanent(fmt.Errorf("smtp %s:%d: %w", e.cfg.Host, e.cfg.Port, err))
		}
		return fmt.Errorf("smtp %s:%d: %w", e.cfg.Host, e.cfg.Port, err)
	}
	return nil
}
