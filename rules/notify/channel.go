package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shelterwatch/shelterwatch/internal/ratelog"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Channel delivers events to one place. Send is called by the outbox's
// workers, at most Concurrency calls at once per channel, and again for
// the same event after a failure, so it must be safe to repeat. Its error
// says whether to retry: see DeliveryError.
type Channel interface {
	Name() string
	Send(ctx context.Context, ev alarm.Event) error
}

// DeliveryError is a failed Send with what the outbox should do about it.
// Errors that are not a DeliveryError are retried.
type DeliveryError struct {
	Err error
	// Permanent means sending the same event again cannot succeed (the
	// receiver refused it: 4xx, a robot's signature or keyword check). The
	// delivery is marked failed at once.
	Permanent bool
	// RetryAfter is the wait the receiver asked for (429, 503).
	RetryAfter time.Duration
}

func (e *DeliveryError) Error() string { return e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// Permanent marks err as a failure that retrying cannot fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &DeliveryError{Err: err, Permanent: true}
}

// IsPermanent reports whether err (or an error it wraps) is a permanent
// DeliveryError.
func IsPermanent(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de) && de.Permanent
}

// RetryAfter is the wait err asks for, 0 when none.
func RetryAfter(err error) time.Duration {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.RetryAfter
	}
	return 0
}

// EventID identifies an event for idempotency: the same transition of the
// same alarm episode gets the same id, whoever enqueues it and however
// often (32 hex digits). Receivers use it (X-ShelterWatch-Event-Id) to drop
// the duplicates that at-least-once delivery can cause.
func EventID(ev alarm.Event) string {
	h := sha256.New()
	var n [8]byte
	h.Write([]byte(ev.Alarm.ID))
	h.Write([]byte{0})
	binary.BigEndian.PutUint64(n[:], ev.Alarm.Seq)
	h.Write(n[:])
	h.Write([]byte(ev.Kind))
	h.Write([]byte{0})
	binary.BigEndian.PutUint64(n[:], uint64(ev.Level))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(ev.At.UnixNano()))
	h.Write(n[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// alarmURL links to the alarm in the gateway's UI.
func alarmURL(external, id string) string {
	if external == "" {
		return ""
	}
	return strings.TrimRight(external, "/") + "/alarms/" + url.PathEscape(id)
}

// urgent reports whether s is critical or fire: such deliveries never
// expire and retry at least every UrgentRetryMax.
func urgent(s alarm.Severity) bool { return s.Rank() >= alarm.SeverityCritical.Rank() }

// common is what the built-in channels share.
type common struct {
	name     string
	tmpl     *templateSet
	langs    []Lang
	external string
	loc      *time.Location
	http     *httpPoster
	now      func() time.Time
	log      *slog.Logger
	limiter  *ratelog.Limiter
}

// closeIdle drops the channel's idle keep-alive connections: an outbox
// that closed leaves no connection (and no goroutine) behind.
func (c *common) closeIdle() {
	if c.http != nil {
		c.http.client.CloseIdleConnections()
	}
}

func (c *common) env(ev alarm.Event, id string) renderEnv {
	return renderEnv{eventID: id, url: alarmURL(c.external, ev.Alarm.ID), loc: c.loc}
}

// render renders ev in langs. A configured template that fails on this
// event falls back to the default and is logged (once a minute per
// channel): the alarm still goes out.
func (c *common) render(ev alarm.Event, langs []Lang, env renderEnv) []Message {
	msgs, err := c.tmpl.renderAll(ev, langs, env)
	if err != nil && c.log != nil && c.limiter.Allow(c.name) {
		c.log.Error("notify: template failed, default used", "channel", c.name, "alarm", ev.Alarm.ID, "err", err)
	}
	return msgs
}

// httpPoster posts JSON for the HTTP channels.
type httpPoster struct {
	client *http.Client
}

const userAgent = "ShelterWatch-Notify/1"

func newHTTPPoster(roots *x509.CertPool) *httpPoster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	tr.MaxIdleConnsPerHost = 4
	return &httpPoster{client: &http.Client{
		Transport: tr,
		// A redirected POST turns into a GET on most servers: treat a
		// redirect as the misconfiguration it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// maxResponse bounds how much of a response body is read.
const maxResponse = 64 << 10

// post sends body to target and classifies the outcome: transport errors,
// 408, 429 and 5xx are retried (honouring Retry-After); other statuses
// outside 2xx are permanent. The returned error never contains the URL,
// which may carry a credential (robot tokens).
func (p *httpPoster) post(ctx context.Context, target string, body []byte, hdr http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, Permanent(errors.New("bad URL"))
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", userAgent)
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return rb, nil
	}
	herr := fmt.Errorf("HTTP %d%s", resp.StatusCode, snippet(rb))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode >= 500:
		return nil, &DeliveryError{Err: herr, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return nil, Permanent(herr)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// snippet is a printable start of a response body for error messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return ": " + truncate(s, 200)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + "…"
}
