package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/internal/audit"
)

const (
	managerPassword   = "night shift passphrase"
	inspectorPassword = "fire safety passphrase"
)

type loginServer struct {
	url   string
	users *users.File
	audit *audit.Log
	now   atomic.Pointer[time.Time]
	log   *syncBuffer
}

func (s *loginServer) advance(d time.Duration) {
	t := s.now.Load().Add(d)
	s.now.Store(&t)
}

func newLoginServer(t *testing.T) *loginServer {
	t.Helper()
	dir := t.TempDir()
	s := &loginServer{users: users.Open(filepath.Join(dir, "users.json")), log: &syncBuffer{}}
	if err := s.users.Add(users.User{Name: "wang.fang", Display: "王芳", Role: users.RoleManager, Cameras: []string{"*"}}, managerPassword); err != nil {
		t.Fatal(err)
	}
	if err := s.users.Add(users.User{Name: "zhao.lei", Role: users.RoleInspector}, inspectorPassword); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(dir, audit.FileName), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s.audit = l
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	s.now.Store(&now)
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{
		Users: s.users, Audit: l, AuditAppend: l.Append, Gatherer: prometheus.NewRegistry(),
		Clock:       func() time.Time { return *s.now.Load() },
		SessionIdle: time.Hour, SessionMax: 10 * time.Hour,
		Logger: slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// browser is a client with a cookie jar, as the console runs in.
type browser struct {
	t    *testing.T
	s    *loginServer
	c    *http.Client
	csrf string
}

func (s *loginServer) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, s: s, c: &http.Client{Jar: jar}}
}

func (b *browser) do(method, path, body string, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.s.url+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

func (b *browser) login(name, password string) (*http.Response, string) {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "password": password})
	resp, out := b.do("POST", "/api/v1/session", string(body), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode == http.StatusOK {
		var info struct {
			CSRFToken string `json:"csrf_token"`
		}
		_ = json.Unmarshal([]byte(out), &info)
		b.csrf = info.CSRFToken
	}
	return resp, out
}

func (b *browser) status(method, path string, withCSRF bool) int {
	b.t.Helper()
	hdr := map[string]string{}
	if withCSRF {
		hdr[httpapi.CSRFHeader] = b.csrf
	}
	resp, _ := b.do(method, path, "", hdr)
	return resp.StatusCode
}

func TestLoginSessionAndLogout(t *testing.T) {
	s := newLoginServer(t)
	b := s.browser(t)

	// Wrong password and unknown user: the same refusal.
	r1, body1 := b.login("wang.fang", "not the passphrase")
	r2, body2 := b.login("no.such.person", managerPassword)
	if r1.StatusCode != 401 || r2.StatusCode != 401 || body1 != body2 {
		t.Fatalf("refusals: %d %q / %d %q, want the same 401", r1.StatusCode, body1, r2.StatusCode, body2)
	}
	if got := b.status("GET", "/api/v1/session", false); got != 401 {
		t.Fatalf("session before logging in: %d", got)
	}

	resp, body := b.login("wang.fang", managerPassword)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var info struct {
		Name, Display, Role string
		Permissions         []string
		CSRFToken           string `json:"csrf_token"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil || info.Role != "manager" || info.Display != "王芳" || len(info.CSRFToken) < 40 {
		t.Fatalf("login answer %s", body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == httpapi.SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ (Secure only under HTTPS)", cookie)
	}
	if got := b.status("GET", "/api/v1/session", false); got != 200 {
		t.Fatalf("session after login: %d", got)
	}

	// A changing request needs the CSRF token as well as the cookie.
	if got := b.status("DELETE", "/api/v1/session", false); got != 403 {
		t.Fatalf("logout without the CSRF token: %d, want 403", got)
	}
	if got := b.status("DELETE", "/api/v1/session", true); got != 204 {
		t.Fatalf("logout: %d", got)
	}
	// The cookie is gone from the jar, and its value no longer works.
	replay := s.browser(t)
	replay.c.Jar.SetCookies(mustURL(t, s.url), []*http.Cookie{{Name: httpapi.SessionCookie, Value: cookie.Value}})
	if got := replay.status("GET", "/api/v1/session", false); got != 401 {
		t.Fatalf("the logged-out cookie: %d, want 401", got)
	}

	// The audit log has the login, the failures (no name for the unknown
	// one: it might have been a password) and the logout.
	entries, err := s.audit.Read(audit.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range entries {
		seen = append(seen, e.Action+":"+e.By+":"+e.Detail)
	}
	want := []string{"logout:wang.fang:", "login:wang.fang:", "login_failed::unknown_user", "login_failed:wang.fang:bad_password"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Fatalf("audit %v, want %v", seen, want)
	}
	// Passwords and cookies never reach the log.
	logged := s.log.String()
	for _, secret := range []string{managerPassword, "not the passphrase", cookie.Value, info.CSRFToken} {
		if strings.Contains(logged, secret) {
			t.Fatalf("the log holds a secret %q:\n%s", secret, logged)
		}
	}
}

// A cookie planted before the login (session fixation) is never promoted:
// the login issues a new session id, and the planted value stays unknown.
func TestLoginIssuesAFreshSession(t *testing.T) {
	s := newLoginServer(t)
	b := s.browser(t)
	planted := "attacker-chosen-session-id-0123456789abcdefghijk"
	b.c.Jar.SetCookies(mustURL(t, s.url), []*http.Cookie{{Name: httpapi.SessionCookie, Value: planted}})
	resp, _ := b.login("wang.fang", managerPassword)
	for _, c := range resp.Cookies() {
		if c.Name == httpapi.SessionCookie && c.Value == planted {
			t.Fatal("the login kept the planted session id")
		}
	}
	attacker := s.browser(t)
	attacker.c.Jar.SetCookies(mustURL(t, s.url), []*http.Cookie{{Name: httpapi.SessionCookie, Value: planted}})
	if got := attacker.status("GET", "/api/v1/session", false); got != 401 {
		t.Fatalf("the planted id after the victim's login: %d, want 401", got)
	}
	if got := b.status("GET", "/api/v1/session", false); got != 200 {
		t.Fatalf("the victim's own new session: %d", got)
	}
}

// Sessions end when idle, at their maximum age, when the password
// changes, when the user is disabled, and everywhere on request.
func TestSessionsEnd(t *testing.T) {
	s := newLoginServer(t)
	b := s.browser(t)
	b.login("wang.fang", managerPassword)
	s.advance(59 * time.Minute)
	if got := b.status("GET", "/api/v1/session", false); got != 200 {
		t.Fatalf("59 min idle of 60: %d", got)
	}
	s.advance(61 * time.Minute)
	if got := b.status("GET", "/api/v1/session", false); got != 401 {
		t.Fatalf("61 min idle: %d, want 401", got)
	}

	b.login("wang.fang", managerPassword)
	for range 10 { // active all along: still ends at 10 h
		s.advance(55 * time.Minute)
		b.status("GET", "/api/v1/session", false)
	}
	s.advance(55 * time.Minute)
	if got := b.status("GET", "/api/v1/session", false); got != 401 {
		t.Fatalf("past the maximum age: %d, want 401", got)
	}

	b.login("wang.fang", managerPassword)
	phone := s.browser(t)
	phone.login("wang.fang", managerPassword)
	if err := s.users.SetPassword("wang.fang", "a completely new passphrase"); err != nil {
		t.Fatal(err)
	}
	if b.status("GET", "/api/v1/session", false) != 401 || phone.status("GET", "/api/v1/session", false) != 401 {
		t.Fatal("sessions outlived a new password")
	}

	b.login("wang.fang", "a completely new passphrase")
	phone.login("wang.fang", "a completely new passphrase")
	if got := b.status("POST", "/api/v1/session/end-all", true); got != 204 {
		t.Fatalf("end all: %d", got)
	}
	if got := phone.status("GET", "/api/v1/session", false); got != 401 {
		t.Fatalf("the phone's session after log out everywhere: %d", got)
	}

	b.login("wang.fang", "a completely new passphrase")
	if err := s.users.SetDisabled("wang.fang", true); err != nil {
		t.Fatal(err)
	}
	if got := b.status("GET", "/api/v1/session", false); got != 401 {
		t.Fatalf("a disabled user's session: %d", got)
	}
	if resp, _ := b.login("wang.fang", "a completely new passphrase"); resp.StatusCode != 401 {
		t.Fatalf("a disabled user's login: %d", resp.StatusCode)
	}
}

// Guessing is throttled: after five failures a name is refused without a
// password check, the right password included, until the penalty is over.
func TestLoginThrottled(t *testing.T) {
	s := newLoginServer(t)
	b := s.browser(t)
	for i := range 5 {
		if resp, _ := b.login("zhao.lei", "guess number "+string(rune('a'+i))); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	resp, _ := b.login("zhao.lei", inspectorPassword)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("right password during the penalty: %d (Retry-After %q), want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	s.advance(2 * time.Second)
	if resp, body := b.login("zhao.lei", inspectorPassword); resp.StatusCode != 200 {
		t.Fatalf("after the penalty: %d %s", resp.StatusCode, body)
	}
	// The audit log shows login addresses to managers, not to inspectors.
	if _, body := b.do("GET", "/api/v1/audit", "", nil); !strings.Contains(body, `"action":"login"`) || strings.Contains(body, "login_remote") {
		t.Fatalf("an inspector's audit view: want logins without addresses: %s", body)
	}
	m := s.browser(t)
	m.login("wang.fang", managerPassword)
	if _, body := m.do("GET", "/api/v1/audit", "", nil); !strings.Contains(body, `"login_remote":"127.0.0.1"`) {
		t.Fatalf("a manager's audit view: want login addresses: %s", body)
	}
	// What an inspector's session may do is the inspector role's.
	if got := b.status("POST", "/api/v1/alarms/smoke@dev:kitchen-smoke/ack", true); got != 403 {
		t.Fatalf("inspector acknowledging: %d, want 403", got)
	}
	if got := b.status("POST", "/api/v1/rules/reload", true); got != 403 {
		t.Fatalf("inspector reloading rules: %d, want 403", got)
	}
}

func TestLoginBadRequests(t *testing.T) {
	s := newLoginServer(t)
	b := s.browser(t)
	for _, body := range []string{"", "{", `{"name":"wang.fang"}`, `{"password":"x"}`, strings.Repeat("x", 8<<10)} {
		resp, _ := b.do("POST", "/api/v1/session", body, nil)
		if resp.StatusCode != 400 {
			t.Errorf("login body %.20q: %d, want 400", body, resp.StatusCode)
		}
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
