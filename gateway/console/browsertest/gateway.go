package browsertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/demo"
	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/ingest/sensorsim"
	"github.com/shelterwatch/shelterwatch/internal/chromium"
	"github.com/shelterwatch/shelterwatch/video/camsim"
)

// Gateway is a running gateway as `make run` starts it: the demo
// facility's config (zones, devices of every firmware, two simulated
// cameras: ward-cam with a 10 s keyframe interval, entrance-cam with 2 s),
// its embedded broker, the simulated sensors reporting, and one console
// account per role with a generated password. The browser tests and the
// console bench share it.
type Gateway struct {
	URL     string
	App     *app.App
	Config  *config.Config
	Token   string // an admin API token
	Devices map[string]sensorsim.Device
	Logins  map[users.Role]Login

	cancel  context.CancelFunc
	done    chan error
	simDone chan struct{}

	camMu   sync.Mutex
	cams    *camsim.Server
	camOpts camsim.Options
}

// Login is a console account's name and password.
type Login struct{ Name, Password string }

// StartGateway starts a gateway with its data in dir; Close stops it.
func StartGateway(dir string, log *slog.Logger) (*Gateway, error) {
	g := &Gateway{Devices: map[string]sensorsim.Device{}, Logins: map[users.Role]Login{}}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	fail := func(err error) (*Gateway, error) {
		cancel()
		if g.cams != nil {
			_ = g.cams.Close()
		}
		return nil, err
	}

	// Cameras first: the config names their address.
	var cams []camsim.Camera
	for _, c := range []struct{ path, clip string }{{"/ward-cam", camsim.ClipGOP10s}, {"/entrance-cam", camsim.ClipGOP2s}} {
		clip, err := camsim.BuiltinClip(c.clip)
		if err != nil {
			return fail(err)
		}
		cams = append(cams, camsim.Camera{Path: c.path, Clip: clip})
	}
	g.camOpts = camsim.Options{Address: "127.0.0.1:0", Cameras: cams}
	sim, err := camsim.New(g.camOpts)
	if err != nil {
		return fail(err)
	}
	if err := sim.Start(ctx); err != nil {
		return fail(err)
	}
	g.cams = sim
	// A restarted camera comes back on the same address.
	g.camOpts.Address = sim.Addr().String()

	text, devices, token, err := demo.Config(filepath.Join(dir, "store"), "127.0.0.1:0", "127.0.0.1:0",
		g.camOpts.Address, "127.0.0.1:0", bcrypt.MinCost)
	if err != nil {
		return fail(err)
	}
	g.Token = token
	for _, d := range devices {
		g.Devices[d.ID] = d
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fail(err)
	}
	if g.Config, err = config.Load(path); err != nil {
		return fail(err)
	}
	accounts := users.Open(g.Config.UsersPath())
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
			return fail(err)
		}
		if err := accounts.Add(users.User{Name: u.name, Display: u.name, Role: u.role, Cameras: u.cameras}, pw); err != nil {
			return fail(err)
		}
		g.Logins[u.role] = Login{u.name, pw}
	}

	if g.App, err = app.New(g.Config, log); err != nil {
		return fail(err)
	}
	g.done = make(chan error, 1)
	go func() { g.done <- g.App.Run(ctx) }()
	select {
	case <-g.App.Ready():
	case err := <-g.done:
		return fail(fmt.Errorf("gateway stopped before ready: %w", err))
	case <-time.After(60 * time.Second):
		cancel()
		<-g.done
		return fail(errors.New("gateway not ready within 60s"))
	}
	g.URL = "http://" + g.App.HTTPAddr()

	// The sensors report every few hundred milliseconds (no random
	// events: the tests raise the alarms they look for).
	g.simDone = make(chan struct{})
	go func() {
		defer close(g.simDone)
		_ = sensorsim.Run(ctx, sensorsim.Options{
			Broker: "tcp://" + g.App.BrokerAddr(), Devices: devices, Interval: 300 * time.Millisecond,
			Location: g.Config.Facility.Location, Logger: slog.New(slog.DiscardHandler),
		})
	}()
	return g, nil
}

// Close stops the sensors, the gateway and the cameras.
func (g *Gateway) Close() error {
	g.cancel()
	<-g.simDone
	err := <-g.done
	g.camMu.Lock()
	_ = g.cams.Close()
	g.camMu.Unlock()
	return err
}

// RestartCameras stops the camera simulator and starts it again on the
// same address after down, as a camera rebooting.
func (g *Gateway) RestartCameras(down time.Duration) error {
	g.camMu.Lock()
	defer g.camMu.Unlock()
	_ = g.cams.Close()
	time.Sleep(down) // the camera is off for this long: nothing to await
	sim, err := camsim.New(g.camOpts)
	if err != nil {
		return err
	}
	if err := sim.Start(context.Background()); err != nil {
		return err
	}
	g.cams = sim
	return nil
}

// Publish sends one message as a configured device would, over MQTT with
// its credentials, QoS 1, and waits for the broker's acknowledgement.
func (g *Gateway) Publish(device, topic, payload string) error {
	d, ok := g.Devices[device]
	if !ok {
		return fmt.Errorf("no device %s", device)
	}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + g.App.BrokerAddr()).
		SetClientID("browsertest-" + device).SetUsername(d.Username).SetPassword(d.Password).
		SetConnectTimeout(10 * time.Second).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect as %s: %v", device, tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish as %s: %v", device, tok.Error())
	}
	return nil
}

// Browser is one person's Chromium: its own process and empty profile.
type Browser struct {
	Ctx    context.Context
	cancel context.CancelFunc
	base   string
}

// NewBrowser starts Chromium for one person (not logged in yet) with its
// profile in dir.
func NewBrowser(base, dir string) (*Browser, error) {
	ctx, cancel, err := chromium.Launch(context.Background(), chromium.Options{ProfileDir: dir})
	if err != nil {
		return nil, err
	}
	return &Browser{Ctx: ctx, cancel: cancel, base: base}, nil
}

// Close stops the browser.
func (b *Browser) Close() { b.cancel() }

// Do runs actions within timeout.
func (b *Browser) Do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.Ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Eval evaluates a JavaScript expression (awaiting a promise) into T.
func Eval[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 60*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// Poll waits until a JavaScript expression is truthy and returns its
// value, polling every 10 ms.
func Poll[T any](b *Browser, within time.Duration, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, within+5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(10*time.Millisecond)))
}

// FillLogin opens the login page and submits a name and password.
func (b *Browser) FillLogin(name, password string) error {
	return b.Do(30*time.Second,
		chromedp.Navigate(b.base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login-name")),
		chromedp.SendKeys(chromedp.CSS("#login-name"), name),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
	)
}

// Login logs in through the login page and waits for the first page.
func (b *Browser) Login(l Login) error {
	if err := b.FillLogin(l.Name, l.Password); err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	if _, err := Poll[bool](b, 15*time.Second, `location.pathname !== '/login' && !!document.querySelector('main .page')`); err != nil {
		return fmt.Errorf("the first page after login: %w", err)
	}
	return nil
}

// FirstPictureJS answers, once the camera page's video shows a picture,
// the milliseconds since the page's navigation started.
const FirstPictureJS = `(() => {
  const v = document.querySelector('video[data-test=camera-video]')
  return v && v.videoWidth > 0 && v.readyState >= 2 ? performance.now() : false
})()`

// FirstPicture opens a camera alone and answers how long after the page's
// navigation started its video showed a picture.
func (b *Browser) FirstPicture(camera string, within time.Duration) (time.Duration, error) {
	if err := b.Do(30*time.Second, chromedp.Navigate(b.base+"/cameras?camera="+camera)); err != nil {
		return 0, err
	}
	ms, err := Poll[float64](b, within, FirstPictureJS)
	if err != nil {
		return 0, fmt.Errorf("no picture of %s within %v: %w", camera, within, err)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}
