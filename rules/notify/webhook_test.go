package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// buildOne builds the single channel of cfg.
func buildOne(t *testing.T, cfg Config, env Env) Channel {
	t.Helper()
	cfg.Defaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", cfgerr.Err("notify", errs))
	}
	chans, err := BuildChannels(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return chans[0]
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWebhookSignedPayload(t *testing.T) {
	secret := "whsec_7d1c0f"
	type check struct {
		sigOK   bool
		payload WebhookPayload
		eventID string
	}
	checks := make(chan check, 1)
	rc := newReceiver(t, func(_ int, r received) (int, map[string]string, string) {
		// The receiver's side, written from the documentation: split the
		// header, HMAC "<t>.<body>" with the shared secret, compare.
		var ts, v1 string
		for _, kv := range strings.Split(r.header.Get(HeaderSignature), ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "t":
				ts = v
			case "v1":
				v1 = v
			}
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + string(r.body)))
		got, _ := hex.DecodeString(v1)
		sec, _ := strconv.ParseInt(ts, 10, 64)
		fresh := time.Since(time.Unix(sec, 0)).Abs() < time.Minute
		checks <- check{sigOK: hmac.Equal(got, mac.Sum(nil)) && fresh, payload: webhookEvent(t, r.body),
			eventID: r.header.Get(HeaderEventID)}
		return 204, nil, ""
	})
	cfg := Config{ExternalURL: "https://gw.shelter-7.example.org", Channels: []ChannelConfig{{Name: "ops", Type: TypeWebhook,
		Webhook: WebhookConfig{URL: rc.URL + "/hooks/shelterwatch", SecretFile: writeFile(t, "secret", secret+"\n")}}}}
	ch := buildOne(t, cfg, Env{Location: time.FixedZone("CST", 8*3600)})
	ev := event("kitchen-smoke/dev:kitchen-smoke-1", alarm.SeverityFire, alarm.EventFiring)
	if err := ch.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	c := <-checks
	if !c.sigOK {
		t.Fatal("signature does not verify with the shared secret")
	}
	p := c.payload
	if c.eventID != EventID(ev) || p.EventID != c.eventID {
		t.Fatalf("event id header %q, body %q, want %q", c.eventID, p.EventID, EventID(ev))
	}
	if p.Version != "1" || p.Kind != alarm.EventFiring || !p.At.Equal(ev.At) || p.Alarm.ID != ev.Alarm.ID ||
		p.Alarm.Severity != alarm.SeverityFire || p.Alarm.Title != ev.Alarm.Title || p.Alarm.Labels["team"] != "night" {
		t.Fatalf("payload %+v", p)
	}
	if want := "https://gw.shelter-7.example.org/alarms/kitchen-smoke%2Fdev:kitchen-smoke-1"; p.URL != want {
		t.Fatalf("url %q, want %q", p.URL, want)
	}
	if !strings.HasPrefix(p.Message.ZH.Title, "【火警】") || !strings.HasPrefix(p.Message.EN.Title, "[FIRE]") {
		t.Fatalf("titles %q / %q", p.Message.ZH.Title, p.Message.EN.Title)
	}
	// Times are in the facility's zone: the alarm started 02:04:05 UTC, 10:04:05 CST.
	if !strings.Contains(p.Message.ZH.Body, "2025-01-15 10:04:05") || !strings.Contains(p.Message.EN.Body, "Where: shelter-7 / dorm-3") {
		t.Fatalf("bodies:\n%s\n%s", p.Message.ZH.Body, p.Message.EN.Body)
	}
}

func TestVerifyWebhook(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"kind":"firing"}`)
	now := time.Unix(1736906645, 0)
	good := SignWebhook(secret, now, body)
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		at     time.Time
		want   error
	}{
		{"valid", good, body, now.Add(time.Minute), nil},
		{"rotated secret: second v1 matches", "t=1736906645,v1=00ff," + strings.Split(good, ",")[1], body, now, nil},
		{"tampered body", good, []byte(`{"kind":"resolved"}`), now, ErrSignatureMismatch},
		{"replayed late", good, body, now.Add(10 * time.Minute), ErrSignatureExpired},
		{"no header", "", body, now, ErrSignatureMissing},
		{"garbage", "t=abc,v1=zz", body, now, ErrSignatureMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyWebhook(secret, tc.header, tc.body, 5*time.Minute, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyWebhook = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHTTPErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		status     int
		header     map[string]string
		permanent  bool
		retryAfter time.Duration
	}{
		{http.StatusBadRequest, nil, true, 0},
		{http.StatusUnauthorized, nil, true, 0},
		{http.StatusNotFound, nil, true, 0},
		{http.StatusMovedPermanently, map[string]string{"Location": "/elsewhere"}, true, 0},
		{http.StatusRequestTimeout, nil, false, 0},
		{http.StatusTooManyRequests, map[string]string{"Retry-After": "7"}, false, 7 * time.Second},
		{http.StatusInternalServerError, nil, false, 0},
		{http.StatusServiceUnavailable, map[string]string{"Retry-After": time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, false, 90 * time.Second},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			rc := newReceiver(t, func(int, received) (int, map[string]string, string) { return tc.status, tc.header, "no" })
			err := testWebhook("h", rc.URL+"/secret-token-xyz").Send(context.Background(), event("a/1", alarm.SeverityFire, alarm.EventFiring))
			if err == nil {
				t.Fatal("no error")
			}
			if IsPermanent(err) != tc.permanent {
				t.Fatalf("%v: permanent %v, want %v", err, IsPermanent(err), tc.permanent)
			}
			if ra := RetryAfter(err); ra.Round(10*time.Second) != tc.retryAfter.Round(10*time.Second) {
				t.Fatalf("retry after %v, want %v", ra, tc.retryAfter)
			}
			if strings.Contains(err.Error(), "secret-token-xyz") {
				t.Fatalf("error %q reveals the URL", err)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		rc := newReceiver(t, nil)
		rc.Close()
		err := testWebhook("h", rc.URL+"/secret-token-xyz").Send(context.Background(), event("a/1", alarm.SeverityFire, alarm.EventFiring))
		if err == nil || IsPermanent(err) || strings.Contains(err.Error(), "secret-token-xyz") {
			t.Fatalf("error %v: want a retryable error without the URL", err)
		}
	})
}
