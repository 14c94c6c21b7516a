package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/shelterwatch/shelterwatch/ingest/health"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// hookReceiver is an alarm receiver that checks every request's
// signature with its own HMAC code (as a receiver written from the README
// would) and keeps the events.
type hookReceiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	events []alarm.EventKind
	ids    []string
	got    chan alarm.EventKind
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sig := r.Header.Get("X-ShelterWatch-Signature")
	var ts, v1 string
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	if want := hex.EncodeToString(m.Sum(nil)); ts == "" || !hmac.Equal([]byte(v1), []byte(want)) {
		h.t.Errorf("webhook with a bad signature %q", sig)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p struct {
		Kind  alarm.EventKind `json:"kind"`
		Alarm alarm.Alarm     `json:"alarm"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		h.t.Errorf("webhook body: %v", err)
	}
	h.mu.Lock()
	h.events = append(h.events, p.Kind)
	h.ids = append(h.ids, p.Alarm.ID)
	h.mu.Unlock()
	h.got <- p.Kind
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) waitFor(kind alarm.EventKind, within time.Duration) {
	h.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case k := <-h.got:
			if k == kind {
				return
			}
		case <-deadline:
			h.t.Fatalf("no %s webhook within %v (got %v)", kind, within, h.kinds())
		}
	}
}

// startHook starts a signed webhook receiver and returns it with the
// notify section that sends every alarm to it.
func startHook(t *testing.T) (*hookReceiver, string) {
	t.Helper()
	secret := []byte("webhook-secret-for-the-test")
	path := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(path, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	hook := &hookReceiver{t: t, secret: secret, got: make(chan alarm.EventKind, 1000)}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	return hook, fmt.Sprintf("notify:\n  channels:\n    - {name: duty-hook, type: webhook, webhook: {url: %q, secret_file: %q}}\n", srv.URL, path)
}

// has returns a condition that holds once an event of the alarm id came.
func (h *hookReceiver) has(id string) func() bool {
	return func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Contains(h.ids, id)
	}
}

func (h *hookReceiver) kinds() []alarm.EventKind {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]alarm.EventKind(nil), h.events...)
}

// mailbox is an in-process SMTP relay (github.com/emersion/go-smtp).
type mailbox struct {
	mu   sync.Mutex
	msgs []string
	got  chan string
}

type mailSession struct{ m *mailbox }

func (s mailSession) AuthPlain(string, string) error       { return nil }
func (s mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s mailSession) Reset()                               {}
func (s mailSession) Logout() error                        { return nil }
func (s mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	s.m.msgs = append(s.m.msgs, string(b))
	s.m.mu.Unlock()
	s.m.got <- string(b)
	return nil
}

func startMailbox(t *testing.T) (*mailbox, string) {
	t.Helper()
	m := &mailbox{got: make(chan string, 100)}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return mailSession{m}, nil }))
	s.Domain = "localhost"
	s.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return m, ln.Addr().String()
}

// TestSmokeToWebhookAndEmail is the alarm path end to end: a Zigbee2MQTT
// smoke payload published to the embedded broker reaches a signed webhook
// and an e-mail inbox, escalates while nobody answers, is acknowledged
// through the API, escalates no further, and every step is in the audit
// log and the alarm's delivery list.
func TestSmokeToWebhookAndEmail(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("webhook-secret-for-the-test")
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	hook := &hookReceiver{t: t, secret: secret, got: make(chan alarm.EventKind, 100)}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	mail, mailAddr := startMailbox(t)
	host, port, _ := net.SplitHostPort(mailAddr)
	notifyCfg := fmt.Sprintf(`alarms: {escalation: [1s], repeat: 1s}
notify:
  channels:
    - {name: duty-hook, type: webhook, webhook: {url: %q, secret_file: %q}}
    - name: duty-mail
      type: email
      email: {host: %s, port: %s, tls: none, allow_plain: true, from: "ShelterWatch <gw@shelter.example>", to: [duty@shelter.example]}
`, srv.URL, filepath.Join(dir, "hook.secret"), host, port)
	a := startApp(t, testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n"+notifyCfg))

	c, err := connect(t, "tcp://"+a.BrokerAddr(), "kitchen-smoke", "kitchen-smoke", "pw-kitchen-smoke")
	if err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	if err := publish(t, c, "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":90,"linkquality":120}`); err != nil {
		t.Fatal(err)
	}
	hook.waitFor(alarm.EventFiring, 5*time.Second)
	t.Logf("publish → signed webhook: %v", time.Since(published))
	select {
	case m := <-mail.got:
		if !strings.Contains(m, "duty@shelter.example") || !strings.Contains(m, "kitchen-smoke") {
			t.Fatalf("mail:\n%s", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no e-mail within 5s")
	}

	// Nobody answers: level 1 after a second.
	hook.waitFor(alarm.EventEscalated, 5*time.Second)
	const id = "smoke@dev:kitchen-smoke"
	if code, b := api(t, a, http.MethodPost, "/api/v1/alarms/"+id+"/ack", `{"comment":"kitchen checked"}`); code != http.StatusOK {
		t.Fatalf("ack: %d %s", code, b)
	}
	hook.waitFor(alarm.EventAcknowledged, 5*time.Second)
	// With repeat every second, three quiet seconds prove escalation stopped.
	time.Sleep(3 * time.Second)
	kinds, acked := hook.kinds(), false
	for _, k := range kinds {
		if acked && (k == alarm.EventEscalated || k == alarm.EventRepeat) {
			t.Fatalf("escalation went on after the acknowledgement: %v", kinds)
		}
		acked = acked || k == alarm.EventAcknowledged
	}

	// The gateway's own faults page people through the same channels.
	a.Health.Event(health.StoreDevice, "the local store deleted 12 readings (disk budget) before every InfluxDB target had them")
	testpeer.WaitFor(t, "the data-loss alarm's webhook", 5*time.Second, func() bool {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return slices.Contains(hook.ids, "store-data-loss@dev:gateway.store")
	})

	code, b := api(t, a, http.MethodGet, "/api/v1/audit?alarm="+id, "")
	var audit struct{ Audit []audit.Entry }
	if code != http.StatusOK || json.Unmarshal(b, &audit) != nil {
		t.Fatalf("audit: %d %s", code, b)
	}
	var steps []string
	for i := len(audit.Audit) - 1; i >= 0; i-- {
		steps = append(steps, audit.Audit[i].Action)
	}
	if got := strings.Join(steps, " "); !strings.HasPrefix(got, "fired escalated") || !strings.HasSuffix(got, "acknowledged") {
		t.Fatalf("audit trail: %s", got)
	}
	code, b = api(t, a, http.MethodGet, "/api/v1/alarms/"+id+"/deliveries", "")
	var ds struct {
		Deliveries []struct {
			Channel string `json:"channel"`
			Kind    string `json:"kind"`
			State   string `json:"state"`
		} `json:"deliveries"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &ds) != nil {
		t.Fatalf("deliveries: %d %s", code, b)
	}
	delivered := map[string]bool{}
	for _, d := range ds.Deliveries {
		if d.State == "delivered" {
			delivered[d.Channel+"/"+d.Kind] = true
		}
	}
	for _, want := range []string{"duty-hook/firing", "duty-mail/firing", "duty-hook/escalated", "duty-hook/acknowledged"} {
		if !delivered[want] {
			t.Errorf("delivery %s not delivered: %s", want, b)
		}
	}
}
