package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/shelterwatch/shelterwatch/gateway/console"
	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/internal/chromium"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// fixture is a Gateway for one test.
type fixture struct {
	*Gateway
	logs   *logTee
	t      *testing.T
	url    string
	token  string
	logins map[users.Role]login
}

type login = Login

// needs fails (under CI) or skips the test when the console was not built
// or Chromium is missing.
func needs(t *testing.T) {
	t.Helper()
	var missing []string
	if !console.Built() {
		missing = append(missing, "the web console (make console)")
	}
	if _, err := chromium.Path(); err != nil {
		missing = append(missing, "Chromium (Debian package chromium)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "browser tests need " + strings.Join(missing, " and ") + ": make test builds and installs them"
	if testpeer.CI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func startFixture(t *testing.T) *fixture {
	t.Helper()
	needs(t)
	// Everything the gateway logs, down to debug, is kept: no password,
	// token or cookie may appear in it.
	logs := &logTee{t: t}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := StartGateway(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("gateway: %v", err)
		}
		logged := logs.String()
		secrets := []string{g.Token}
		for _, l := range g.Logins {
			secrets = append(secrets, l.Password)
		}
		secrets = append(secrets, logs.cookies()...)
		for _, s := range secrets {
			if s != "" && strings.Contains(logged, s) {
				t.Errorf("the gateway's log holds a secret (%.4s…)", s)
			}
		}
	})
	return &fixture{Gateway: g, logs: logs, t: t, url: g.URL, token: g.Token, logins: g.Logins}
}

func (f *fixture) restartCameras(down time.Duration) {
	f.t.Helper()
	if err := f.RestartCameras(down); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) publish(device, topic, payload string) {
	f.t.Helper()
	if err := f.Publish(device, topic, payload); err != nil {
		f.t.Fatal(err)
	}
}

// apiGet GETs an API path with the admin token.
func (f *fixture) apiGet(path string) []byte {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body
}

// browser is one person's Chromium in a test.
type browser struct {
	*Browser
	t    *testing.T
	f    *fixture
	ctx  context.Context
	name string
}

// newBrowser starts Chromium for one person (not logged in yet).
func (f *fixture) newBrowser(t *testing.T, name string) *browser {
	t.Helper()
	br, err := NewBrowser(f.url, t.TempDir())
	if err != nil {
		if errors.Is(err, chromium.ErrMissing) && !testpeer.CI() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	return &browser{Browser: br, t: t, f: f, ctx: br.Ctx, name: name}
}

// do runs actions, failing the test with what was being done.
func (b *browser) do(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.Do(timeout, actions...); err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	v, err := Eval[T](b.Browser, expr)
	if err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
	return v
}

// poll waits until a JavaScript expression is truthy and returns its
// value, failing with what after within.
func poll[T any](b *browser, what string, within time.Duration, expr string) T {
	b.t.Helper()
	v, err := Poll[T](b.Browser, within, expr)
	if err != nil {
		b.t.Fatalf("%s: waiting for %s (%v): %v", b.name, what, within, err)
	}
	return v
}

// login logs in through the login page and waits for the first page.
func (b *browser) login(role users.Role) {
	b.t.Helper()
	if err := b.Login(b.f.logins[role]); err != nil {
		b.t.Fatalf("%s: %v", b.name, err)
	}
	// The session's cookie and CSRF token must never reach the log.
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.f.url}})
	if err != nil {
		b.t.Fatalf("%s: read cookies: %v", b.name, err)
	}
	found := false
	for _, c := range res.Cookies {
		b.f.logs.seen(c.Value)
		found = found || c.Name == httpapi.SessionCookie && c.HTTPOnly && c.SameSite == network.CookieSameSiteStrict
	}
	if !found {
		b.t.Fatalf("%s: no HttpOnly, SameSite=Strict session cookie after login: %+v", b.name, res.Cookies)
	}
	b.f.logs.seen(b.csrf())
}

func (b *browser) fillLogin(name, password string) {
	b.t.Helper()
	if err := b.FillLogin(name, password); err != nil {
		b.t.Fatalf("%s: %v", b.name, err)
	}
}

// open navigates to a console path and waits for its page to render.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, 30*time.Second, chromedp.Navigate(b.f.url+path))
	poll[bool](b, path+" rendered", 15*time.Second, `!!document.querySelector('main .page .page-title')`)
}

// csrf is the session's CSRF token, as the console keeps it.
func (b *browser) csrf() string {
	b.t.Helper()
	return eval[string](b, "read the session", `fetch('/api/v1/session').then(r => r.json()).then(s => s.csrf_token)`)
}

// fetchStatus makes a request from the page (with its cookie and CSRF
// token) and returns the HTTP status.
func (b *browser) fetchStatus(method, path, contentType, body string) int {
	b.t.Helper()
	js := fmt.Sprintf(`fetch(%q, {method: %q, headers: {'Content-Type': %q, 'X-CSRF-Token': %q}, body: %s}).then(r => r.status)`,
		path, method, contentType, b.csrf(), jsString(body))
	return eval[int](b, method+" "+path, js)
}

func jsString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

// logTee keeps the gateway's log and shows its warnings and errors in the
// test's output. Browsers add their session cookies with seenCookie.
type logTee struct {
	t       *testing.T
	mu      sync.Mutex
	buf     strings.Builder
	secrets []string // session cookies and CSRF tokens the browsers got
}

func (w *logTee) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	if line := string(p); strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
		w.t.Log(strings.TrimRight(line, "\n"))
	}
	return len(p), nil
}

func (w *logTee) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *logTee) seen(secret string) {
	w.mu.Lock()
	w.secrets = append(w.secrets, secret)
	w.mu.Unlock()
}

func (w *logTee) cookies() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.secrets...)
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// chromedpRun runs one action with a bound.
func chromedpRun[T any](b *browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// download clicks the CSV download button selected by css and returns
// the URL the console fetched with window.fetch ("" when it used the API
// client, which keeps its own fetch) and the text it saved.
func (b *browser) download(css string) (url, saved string) {
	b.t.Helper()
	eval[bool](b, "hook the download", `(() => {
  const f = window.fetch
  window.fetch = (u, o) => { if (String(u).includes('csv')) window.__csvURL = String(u); return f(u, o) }
  const c = URL.createObjectURL
  URL.createObjectURL = (blob) => { blob.text().then(t => { window.__csv = t }); return c(blob) }
  return true
})()`)
	b.do("download the CSV", 10*time.Second, chromedp.Click(chromedp.CSS(css)))
	saved = poll[string](b, "the CSV saved", 10*time.Second, `window.__csv || false`)
	return eval[string](b, "the CSV's URL", `window.__csvURL || ''`), saved
}
