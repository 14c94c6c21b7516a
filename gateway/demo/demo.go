// Package demo runs the gateway as a newcomer first sees it: the embedded
// broker, a store in a data directory, a demo facility (dormitories, a
// secure ward, a kitchen …) and the sensor simulator publishing real device
// payloads over real MQTT with occasional events (a door opened at night,
// a heating failure, smoke in the kitchen), and two simulated cameras
// (RTSP, looping the built-in clips) relayed over WebRTC.
//
// There are no default passwords even here: every simulated device gets a
// fresh random password (the gateway only knows its bcrypt hash), and the API
// token is random and written to a file only the operator can read.
package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/ingest/sensorsim"
	"github.com/shelterwatch/shelterwatch/inspection/hazard"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/video/camsim"
)

// Options configure the demo.
type Options struct {
	DataDir    string // default: a new temporary directory, removed at exit
	HTTPListen string // default 127.0.0.1:8080
	MQTTListen string // default 127.0.0.1:1883
	// RTSPListen is the camera simulator's address (default 127.0.0.1:0:
	// nothing outside the gateway needs it).
	RTSPListen string
	// WebRTCUDP is the WebRTC port viewers reach (default 127.0.0.1:8189).
	WebRTCUDP  string
	Interval   time.Duration
	EventEvery time.Duration
	Logger     *slog.Logger
	Out        io.Writer // where the banner goes (stdout)
	// OnReady is called once the gateway is up (tests use it).
	OnReady func(a *app.App, token string)
	// BcryptCost for the generated device passwords (default
	// bcrypt.DefaultCost; tests lower it, bcrypt is slow under -race).
	BcryptCost int
}

var zones = []struct{ id, name, nameZH, tag string }{
	{"dorm-1", "Dormitory 1", "一号宿舍", "dormitory"},
	{"dorm-2", "Dormitory 2", "二号宿舍", "dormitory"},
	{"dorm-3", "Dormitory 3", "三号宿舍", "dormitory"},
	{"secure-ward", "Secure ward", "特护区", "secure-ward"},
	{"kitchen", "Kitchen", "厨房", "kitchen"},
	{"washroom", "Washroom", "盥洗室", "washroom"},
	{"corridor", "Corridor", "走廊", "corridor"},
}

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}

// demoCameras are the simulated cameras: the secure ward's corridor (with
// the 10 s keyframe interval many cameras ship with, which the GOP cache
// hides from viewers) and the entrance.
var demoCameras = []struct{ id, name, nameZH, zone, clip string }{
	{"ward-cam", "Secure ward corridor", "特护区走廊", "secure-ward", camsim.ClipGOP10s},
	{"entrance-cam", "Entrance", "入口", "corridor", camsim.ClipGOP2s},
}

// Config builds the demo facility's config text. Passwords and the API token
// are generated here and returned alongside. rtspAddr is the camera
// simulator's address.
func Config(dataDir, httpListen, mqttListen, rtspAddr, webrtcUDP string, bcryptCost int) (yaml string, devices []sensorsim.Device, token string, err error) {
	devices = sensorsim.SampleDevices()
	var b strings.Builder
	fmt.Fprintf(&b, "facility:\n  id: demo-shelter\n  name: Demo Relief Station\n  name_zh: 演示救助站\n  timezone: Asia/Shanghai\n")
	b.WriteString("zones:\n")
	for _, z := range zones {
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    name_zh: %s\n    tags: [%s]\n", z.id, z.name, z.nameZH, z.tag)
	}
	b.WriteString("devices:\n")
	for i := range devices {
		d := &devices[i]
		d.Password = randomSecret()
		d.Username = d.ID
		h, err := bcrypt.GenerateFromPassword([]byte(d.Password), bcryptCost)
		if err != nil {
			return "", nil, "", fmt.Errorf("demo: hash password: %w", err)
		}
		fmt.Fprintf(&b, "  - id: %s\n    kind: %s\n    zone: %s\n    format: %s\n    topic: %q\n    password_hash: %q\n",
			d.ID, d.Kind, d.Zone, d.Format, d.Base, h)
		for _, z := range zones {
			if z.id == d.Zone {
				d.ZoneTags = []string{z.tag}
			}
		}
	}
	token = randomSecret()
	sum := sha256.Sum256([]byte(token))
	fmt.Fprintf(&b, "broker:\n  mode: embedded\n  embedded:\n    listen: %q\n", mqttListen)
	fmt.Fprintf(&b, "store:\n  dir: %q\n  retention: 7d\n  disk_budget: 512MiB\n", dataDir)
	b.WriteString("cameras:\n")
	for _, c := range demoCameras {
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    name_zh: %s\n    zone: %s\n    url: \"rtsp://%s/%s\"\n    transport: tcp\n",
			c.id, c.name, c.nameZH, c.zone, rtspAddr, c.id)
	}
	fmt.Fprintf(&b, "video:\n  webrtc_udp: %q\n", webrtcUDP)
	// The demo station has no foster placement: the summary report counts
	// the remote supervision of its secure ward's camera instead.
	b.WriteString("reports:\n  supervised_tag: secure-ward\n")
	fmt.Fprintf(&b, "http:\n  listen: %q\n  tokens:\n    - name: demo-admin\n      role: admin\n      sha256: %q\n      cameras: [\"*\"]\n", httpListen, hex.EncodeToString(sum[:]))
	b.WriteString("log:\n  level: info\n  format: text\n")
	return b.String(), devices, token, nil
}

// startCameras runs the camera simulator with the demo's cameras.
func startCameras(ctx context.Context, addr string) (*camsim.Server, error) {
	var cams []camsim.Camera
	for _, c := range demoCameras {
		clip, err := camsim.BuiltinClip(c.clip)
		if err != nil {
			return nil, err
		}
		cams = append(cams, camsim.Camera{Path: "/" + c.id, Clip: clip})
	}
	sim, err := camsim.New(camsim.Options{Address: addr, Cameras: cams})
	if err != nil {
		return nil, fmt.Errorf("demo: cameras: %w", err)
	}
	if err := sim.Start(ctx); err != nil {
		return nil, fmt.Errorf("demo: cameras: %w", err)
	}
	return sim, nil
}

// Run runs the demo until ctx is done.
func Run(ctx context.Context, opts Options) error {
	opts.setDefaults()
	if opts.DataDir == "" {
		dir, err := os.MkdirTemp("", "shelterwatch-demo-")
		if err != nil {
			return fmt.Errorf("demo: data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		opts.DataDir = dir
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("demo: data dir: %w", err)
	}
	// The cameras start first: the generated config names their address.
	sim, err := startCameras(ctx, opts.RTSPListen)
	if err != nil {
		return err
	}
	defer sim.Close()
	s, err := writeConfig(opts, sim.Addr().String())
	if err != nil {
		return err
	}
	app.TuneRuntime()
	a, err := app.New(s.cfg, opts.Logger)
	if err != nil {
		return err
	}
	return runWithSensors(ctx, a, opts, s)
}

// setDefaults fills in the options left empty, except DataDir, whose
// temporary directory Run removes at exit.
func (opts *Options) setDefaults() {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.HTTPListen == "" {
		opts.HTTPListen = "127.0.0.1:8080"
	}
	if opts.MQTTListen == "" {
		opts.MQTTListen = "127.0.0.1:1883"
	}
	if opts.RTSPListen == "" {
		opts.RTSPListen = "127.0.0.1:0"
	}
	if opts.WebRTCUDP == "" {
		opts.WebRTCUDP = "127.0.0.1:8189"
	}
	if opts.BcryptCost == 0 {
		opts.BcryptCost = bcrypt.DefaultCost
	}
}

// setup is the demo's generated facility: its config, where the config
// and the API token were written, and the simulated devices with their
// passwords.
type setup struct {
	cfg       *config.Config
	cfgPath   string
	tokenPath string
	token     string
	devices   []sensorsim.Device
	logins    []demoLogin
}

// demoLogin is one generated console account of the demo.
type demoLogin struct {
	name, password string
	role           users.Role
}

// demoUsers are the demo's console accounts: one per role, each with a
// password generated at every start (there is no default password, in the
// demo either).
var demoUsers = []struct {
	name, display string
	role          users.Role
	cameras       []string
}{
	{"demo.admin", "演示管理员", users.RoleAdmin, []string{"*"}},
	{"demo.manager", "值班经理", users.RoleManager, []string{"*"}},
	{"demo.supervisor", "民政监督员", users.RoleSupervisor, []string{"ward-cam"}},
	{"demo.inspector", "消防检查员", users.RoleInspector, nil},
}

// writeUsers gives the demo's accounts fresh passwords, adding them to the
// users file the first time.
func writeUsers(path string) ([]demoLogin, error) {
	f := users.Open(path)
	var out []demoLogin
	for _, d := range demoUsers {
		pw, err := users.GeneratePassword()
		if err != nil {
			return nil, err
		}
		err = f.Add(users.User{Name: d.name, Display: d.display, Role: d.role, Cameras: d.cameras}, pw)
		if errors.Is(err, users.ErrExists) {
			if err = f.SetGrants(d.name, d.role, d.cameras); err == nil {
				err = f.SetPassword(d.name, pw)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("demo: console account %s: %w", d.name, err)
		}
		out = append(out, demoLogin{name: d.name, password: pw, role: d.role})
	}
	return out, nil
}

// writeConfig generates the demo facility and writes its config and API
// token into the data directory, readable by the operator only. The config
// is loaded back from the file, as the gateway would load an operator's,
// so the demo runs what the operator can read.
func writeConfig(opts Options, rtspAddr string) (*setup, error) {
	text, devices, token, err := Config(filepath.Join(opts.DataDir, "store"), opts.HTTPListen, opts.MQTTListen,
		rtspAddr, opts.WebRTCUDP, opts.BcryptCost)
	if err != nil {
		return nil, err
	}
	s := &setup{cfgPath: filepath.Join(opts.DataDir, "demo.yaml"), tokenPath: filepath.Join(opts.DataDir, "api-token"),
		token: token, devices: devices}
	if err := os.WriteFile(s.cfgPath, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("demo: write config: %w", err)
	}
	if err := os.WriteFile(s.tokenPath, []byte(token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("demo: write token: %w", err)
	}
	if s.cfg, err = config.Load(s.cfgPath); err != nil {
		return nil, fmt.Errorf("demo: generated config is invalid (a bug): %w", err)
	}
	if s.logins, err = writeUsers(s.cfg.UsersPath()); err != nil {
		return nil, err
	}
	return s, nil
}

// runWithSensors runs the gateway and, once it is ready, the sensor
// simulator, until ctx is done or the gateway stops; the gateway's error
// wins over the simulator's.
func runWithSensors(ctx context.Context, a *app.App, opts Options, s *setup) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var simErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		simErr = runSensors(ctx, a, opts, s)
	}()
	runErr := a.Run(ctx)
	// The simulator has nothing to talk to once the gateway has stopped.
	cancel()
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	return simErr
}

// runSensors waits for the gateway, shows the banner and runs the sensor
// simulator until ctx is done. It returns nil if ctx ends first.
func runSensors(ctx context.Context, a *app.App, opts Options, s *setup) error {
	select {
	case <-a.Ready():
	case <-ctx.Done():
		return nil
	}
	printBanner(opts.Out, a, s)
	seedHazard(ctx, a, opts)
	if opts.OnReady != nil {
		opts.OnReady(a, s.token)
	}
	// The simulator is a separate MQTT client, as real sensors are.
	return sensorsim.Run(ctx, sensorsim.Options{
		Broker: "tcp://" + a.BrokerAddr(), Devices: s.devices,
		Interval: opts.Interval, Events: true, EventEvery: opts.EventEvery,
		Location: s.cfg.Facility.Location, Logger: opts.Logger,
	})
}

// seedHazard puts one inspector's item on an empty hazard list, so the
// demo's hazard page shows the lifecycle from the start (rule-raised
// items need a day or more of a condition).
func seedHazard(ctx context.Context, a *app.App, opts Options) {
	items, err := a.Hazards.Items(ctx)
	if err != nil || len(items) > 0 {
		return
	}
	_, err = a.Hazards.Create(ctx, hazard.Manual{Zone: "corridor",
		Title:       alarm.Text{ZH: "走廊灭火器已过检验期", EN: "Corridor fire extinguisher past its inspection date"},
		Standard:    alarm.Text{ZH: "灭火器在检验有效期内，压力正常", EN: "Extinguishers within their inspection date, pressure in the green"},
		Responsible: "demo manager / 演示站长", Deadline: time.Now().Add(72 * time.Hour),
		Note: "seeded by the demo / 演示数据"}, "demo.inspector")
	if err != nil && opts.Logger != nil {
		opts.Logger.Warn("demo: seed a hazard item", "err", err)
	}
}

// printBanner tells the operator, in English and Chinese, where to reach
// the running demo. The token is shown by path only, so it stays out of
// terminal scrollback and logs.
func printBanner(w io.Writer, a *app.App, s *setup) {
	fmt.Fprintf(w, `
ShelterWatch demo / 演示 — facility %q
  Web console / 网页控制台:  http://%s/   (log in with an account below / 使用下方账号登录)
  MQTT broker / 消息代理:   %s
  Metrics / 监控指标:        curl -H "Authorization: Bearer $(cat %s)" http://%s/metrics
  Devices / 设备状态:        curl -H "Authorization: Bearer $(cat %s)" http://%s/api/v1/devices
  Alarms / 报警:            curl -H "Authorization: Bearer $(cat %s)" http://%s/api/v1/alarms
  Cameras / 摄像头:          curl -H "Authorization: Bearer $(cat %s)" http://%s/api/v1/cameras
  Live video (WHEP) / 实时视频: http://%s/api/v1/cameras/{ward-cam|entrance-cam}/whep (bearer token as above)
  Config / 配置文件:         %s
`, s.cfg.Facility.ID, a.HTTPAddr(), a.BrokerAddr(), s.tokenPath, a.HTTPAddr(), s.tokenPath, a.HTTPAddr(), s.tokenPath, a.HTTPAddr(),
		s.tokenPath, a.HTTPAddr(), a.HTTPAddr(), s.cfgPath)
	fmt.Fprint(w, "  Console logins / 控制台账号 (new passwords at every start / 每次启动重新生成):\n")
	for _, l := range s.logins {
		fmt.Fprintf(w, "    %-12s %-16s %s\n", l.role, l.name, l.password)
	}
	fmt.Fprint(w, "  Ctrl-C stops the demo / 按 Ctrl-C 停止演示.\n\n")
}
