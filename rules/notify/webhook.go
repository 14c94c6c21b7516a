package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Webhook headers.
const (
	HeaderSignature = "X-ShelterWatch-Signature"
	HeaderEventID   = "X-ShelterWatch-Event-Id"
)

// WebhookPayload is the JSON body of the generic webhook (README.md).
type WebhookPayload struct {
	// Version of this schema: "1". Fields are only ever added within a version.
	Version string          `json:"version"`
	EventID string          `json:"event_id"`
	Kind    alarm.EventKind `json:"kind"`
	At      time.Time       `json:"at"`
	// Level is the escalation level whose recipients this event is for.
	Level int         `json:"level"`
	Alarm alarm.Alarm `json:"alarm"`
	// Message is the rendered notification in both languages.
	Message WebhookMessages `json:"message"`
	// URL links to the alarm in the gateway ("" without external_url).
	URL string `json:"url,omitempty"`
}

// WebhookMessages holds the rendered message per language.
type WebhookMessages struct {
	ZH WebhookText `json:"zh"`
	EN WebhookText `json:"en"`
}

// WebhookText is one rendered message.
type WebhookText struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// webhookChannel posts WebhookPayload, signed when it has a secret.
type webhookChannel struct {
	common
	url    string
	secret []byte
}

func (w *webhookChannel) Name() string { return w.name }

func (w *webhookChannel) Send(ctx context.Context, ev alarm.Event) error {
	id := EventID(ev)
	env := w.env(ev, id)
	msgs := w.render(ev, []Lang{LangZH, LangEN}, env)
	p := WebhookPayload{Version: "1", EventID: id, Kind: ev.Kind, At: ev.At, Level: ev.Level, Alarm: ev.Alarm, URL: env.url,
		Message: WebhookMessages{ZH: WebhookText{msgs[0].Title, msgs[0].Body}, EN: WebhookText{msgs[1].Title, msgs[1].Body}}}
	body, err := json.Marshal(p)
	if err != nil {
		return Permanent(fmt.Errorf("encode: %w", err))
	}
	hdr := http.Header{}
	hdr.Set(HeaderEventID, id)
	if len(w.secret) > 0 {
		hdr.Set(HeaderSignature, SignWebhook(w.secret, w.now(), body))
	}
	_, err = w.http.post(ctx, w.url, body, hdr)
	return err
}

// SignWebhook returns the X-ShelterWatch-Signature value for body sent at
// t: "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with secret>".
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of VerifyWebhook.
var (
	ErrSignatureMissing  = errors.New("notify: no valid signature header")
	ErrSignatureMismatch = errors.New("notify: signature does not match")
	ErrSignatureExpired  = errors.New("notify: signature timestamp outside the tolerance")
)

// VerifyWebhook checks a signature header against the raw request body as
// a receiver written in Go would: the HMAC must match (compared in
// constant time) and the timestamp must be within tolerance of now, which
// stops replays of old requests. Several v1 entries are accepted, any of
// which may match (for secret rotation).
func VerifyWebhook(secret []byte, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureMissing
	}
	want := webhookMAC(secret, ts, body)
	match := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			match = true
		}
	}
	if !match {
		return ErrSignatureMismatch
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureExpired
	}
	return nil
}
