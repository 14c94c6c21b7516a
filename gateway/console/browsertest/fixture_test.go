package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/console"
	"github.com/shelterwatch/shelterwatch/gateway/demo"
	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/ingest/sensorsim"
	"github.com/shelterwatch/shelterwatch/internal/chromium"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/video/camsim"
)

// fixture is a running gateway as `make run` starts it: the demo
// facility's config (zones, devices of every firmware, two simulated
// cameras: the ward's with a 10 s keyframe interval), its embedded
// broker, the simulated sensors reporting, and one console account per
// role with a password generated for the test.
type fixture struct {
	t       *testing.T
	url     string
	app     *app.App
	cfg     *config.Config
	token   string // an admin API token
	devices map[string]sensorsim.Device
	logins  map[users.Role]login

	camMu   sync.Mutex
	cams    *camsim.Server
	camOpts camsim.Options
}

type login struct{ name, password string }

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
	f := &fixture{t: t, devices: map[string]sensorsim.Device{}, logins: map[users.Role]login{}}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())

	// Cameras first: the config names their address.
	var cams []camsim.Camera
	for _, c := range []struct{ path, clip string }{{"/ward-cam", camsim.ClipGOP10s}, {"/entrance-cam", camsim.ClipGOP2s}} {
		clip, err := camsim.BuiltinClip(c.clip)
		if err != nil {
			t.Fatal(err)
		}
		cams = append(cams, camsim.Camera{Path: c.path, Clip: clip})
	}
	f.camOpts = camsim.Options{Address: "127.0.0.1:0", Cameras: cams}
	sim, err := camsim.New(f.camOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	f.cams = sim
	// A restarted camera comes back on the same address.
	f.camOpts.Address = sim.Addr().String()

	text, devices, token, err := demo.Config(filepath.Join(dir, "store"), "127.0.0.1:0", "127.0.0.1:0",
		f.camOpts.Address, "127.0.0.1:0", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f.token = token
	for _, d := range devices {
		f.devices[d.ID] = d
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if f.cfg, err = config.Load(path); err != nil {
		t.Fatal(err)
	}
	accounts := users.Open(f.cfg.UsersPath())
	for _, u := range []struct {
		name    string
		role    users.Role
		cameras []string
	}{
		{"test.admin", users.RoleAdmin, []string{"*"}},
		{"test.manager", users.RoleManager, []string{"*"}},
		{"test.supervisor", users.RoleSupervisor, []string{"ward-cam"}},
		{"test.inspector", users.RoleInspector, nil},
	} {
		pw, err := users.GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if err := accounts.Add(users.User{Name: u.name, Display: u.name, Role: u.role, Cameras: u.cameras}, pw); err != nil {
			t.Fatal(err)
		}
		f.logins[u.role] = login{u.name, pw}
	}

	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f.app, err = app.New(f.cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
		f.camMu.Lock()
		_ = f.cams.Close()
		f.camMu.Unlock()
	})
	select {
	case <-f.app.Ready():
	case err := <-done:
		t.Fatalf("gateway stopped before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("gateway not ready within 60s")
	}
	f.url = "http://" + f.app.HTTPAddr()

	// The sensors report every few hundred milliseconds (no random
	// events: the tests raise the alarms they look for).
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		_ = sensorsim.Run(ctx, sensorsim.Options{
			Broker: "tcp://" + f.app.BrokerAddr(), Devices: devices, Interval: 300 * time.Millisecond,
			Location: f.cfg.Facility.Location, Logger: slog.New(slog.DiscardHandler),
		})
	}()
	t.Cleanup(func() { cancel(); <-simDone })
	return f
}

// restartCameras stops the camera simulator and starts it again on the
// same address after down, as a camera rebooting.
func (f *fixture) restartCameras(down time.Duration) {
	f.t.Helper()
	f.camMu.Lock()
	defer f.camMu.Unlock()
	_ = f.cams.Close()
	time.Sleep(down) // the camera is off for this long: nothing to await
	sim, err := camsim.New(f.camOpts)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.cams = sim
}

// publish sends one message as a configured device would, over MQTT with
// its credentials, QoS 1, and waits for the broker's acknowledgement.
func (f *fixture) publish(device, topic, payload string) {
	f.t.Helper()
	d, ok := f.devices[device]
	if !ok {
		f.t.Fatalf("no device %s", device)
	}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + f.app.BrokerAddr()).
		SetClientID("browsertest-" + device).SetUsername(d.Username).SetPassword(d.Password).
		SetConnectTimeout(10 * time.Second).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		f.t.Fatalf("connect as %s: %v", device, tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		f.t.Fatalf("publish as %s: %v", device, tok.Error())
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

// browser is one person's Chromium: its own process and empty profile.
type browser struct {
	t    *testing.T
	f    *fixture
	ctx  context.Context
	name string
}

// newBrowser starts Chromium for one person (not logged in yet).
func (f *fixture) newBrowser(t *testing.T, name string) *browser {
	t.Helper()
	ctx, cancel, err := chromium.Launch(context.Background(), chromium.Options{ProfileDir: t.TempDir()})
	if err != nil {
		if errors.Is(err, chromium.ErrMissing) && !testpeer.CI() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return &browser{t: t, f: f, ctx: ctx, name: name}
}

// do runs actions, failing the test with what was being done.
func (b *browser) do(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
	return v
}

// poll waits until a JavaScript expression is truthy and returns its
// value, failing with what after within.
func poll[T any](b *browser, what string, within time.Duration, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, within+5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(10*time.Millisecond)))
	if err != nil {
		b.t.Fatalf("%s: waiting for %s (%v): %v", b.name, what, within, err)
	}
	return v
}

// login logs in through the login page and waits for the first page.
func (b *browser) login(role users.Role) {
	b.t.Helper()
	l := b.f.logins[role]
	b.fillLogin(l.name, l.password)
	poll[bool](b, "the first page after login", 15*time.Second, `location.pathname !== '/login' && !!document.querySelector('main .page')`)
}

func (b *browser) fillLogin(name, password string) {
	b.t.Helper()
	b.do("open the login page", 30*time.Second,
		chromedp.Navigate(b.f.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login-name")),
		chromedp.SendKeys(chromedp.CSS("#login-name"), name),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
	)
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

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// chromedpRun runs one action with a bound.
func chromedpRun[T any](b *browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, a)
}
