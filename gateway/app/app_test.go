package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

const testToken = "test-token-0123456789abcdef"

// testDevices are one device per payload format with the topics their
// firmware uses.
var testDevices = []struct{ id, kind, zone, format, topic string }{
	{"kitchen-smoke", "smoke", "kitchen", "zigbee2mqtt", "zigbee2mqtt/kitchen/smoke"},
	{"ward-door", "door", "secure-ward", "zigbee2mqtt", "zigbee2mqtt/secure-ward/door"},
	{"dorm-1-climate", "temperature", "dorm-1", "tasmota", "tasmota_A1B2C3"},
	{"dorm-2-climate", "temperature", "dorm-1", "esphome", "dorm-2-node"},
	{"dorm-2-ht", "temperature", "dorm-1", "shelly", "shellyplusht-08b61fcf4a2c"},
	{"kitchen-climate", "temperature", "kitchen", "homie", "homie/5/kitchen-climate"},
	{"ward-panic", "panic", "secure-ward", "native", "shelter/ward-panic"},
}

// testConfig returns a config whose devices each have password "pw-<id>".
// extra is YAML for more top-level sections (the broker's, cameras...).
func testConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	return testConfigTokens(t, extra, "")
}

// testConfigTokens is testConfig with more API tokens (YAML list items
// indented by four spaces) beside the admin token.
func testConfigTokens(t *testing.T, extra, tokens string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("facility: {id: test-shelter, name: Test Shelter, timezone: Asia/Shanghai}\n")
	b.WriteString("zones:\n  - {id: kitchen, tags: [kitchen]}\n  - {id: secure-ward, tags: [secure-ward]}\n  - {id: dorm-1, tags: [dormitory]}\n")
	b.WriteString("devices:\n")
	for _, d := range testDevices {
		h, err := bcrypt.GenerateFromPassword([]byte("pw-"+d.id), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - {id: %s, kind: %s, zone: %s, format: %s, topic: %q, password_hash: %q}\n", d.id, d.kind, d.zone, d.format, d.topic, h)
	}
	b.WriteString(extra)
	sum := sha256.Sum256([]byte(testToken))
	fmt.Fprintf(&b, "store: {dir: %q}\nhttp:\n  listen: 127.0.0.1:0\n  tokens:\n    - {name: t, role: admin, sha256: %s, cameras: [\"*\"]}\n%s", t.TempDir(), hex.EncodeToString(sum[:]), tokens)
	cfg, err := config.Parse([]byte(b.String()), "test.yaml")
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// startApp runs the gateway until the test ends.
func startApp(t *testing.T, cfg *config.Config) *App {
	t.Helper()
	return startAppLog(t, cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// startAppLog is startApp with the gateway's logger.
func startAppLog(t *testing.T, cfg *config.Config, log *slog.Logger) *App {
	t.Helper()
	a, _ := runApp(t, cfg, log)
	return a
}

// runApp is startAppLog that also returns stop, which ends the gateway as
// SIGTERM does and returns Run's error (the test's cleanup calls it too).
func runApp(t *testing.T, cfg *config.Config, log *slog.Logger) (*App, func() error) {
	t.Helper()
	a, err := New(cfg, log)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("gateway run: %v", err)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		once.Do(cancel) // Run has returned: stop must not wait for it again
		t.Fatalf("gateway stopped before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gateway not ready within 10s")
	}
	return a, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func connect(t *testing.T, url, clientID, user, pass string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func publish(t *testing.T, c paho.Client, topic, payload string) error {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("publish to %s: no PUBACK within 5s", topic)
	}
	return tok.Error()
}

func TestEmbeddedBrokerAuthACLAndDurableAck(t *testing.T) {
	a := startApp(t, testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n"))
	url := "tcp://" + a.BrokerAddr()

	t.Run("wrong password refused", func(t *testing.T) {
		if _, err := connect(t, url, "x1", "kitchen-smoke", "not-the-password"); err == nil {
			t.Fatal("connected with a wrong password")
		}
	})
	t.Run("unknown user refused", func(t *testing.T) {
		if _, err := connect(t, url, "x2", "mallory", "pw-kitchen-smoke"); err == nil {
			t.Fatal("connected as an unknown user")
		}
	})
	t.Run("anonymous refused", func(t *testing.T) {
		if _, err := connect(t, url, "x3", "", ""); err == nil {
			t.Fatal("anonymous client connected though allow_anonymous is off")
		}
	})
	t.Run("PUBACK means on disk", func(t *testing.T) {
		c, err := connect(t, url, "smoke-1", "kitchen-smoke", "pw-kitchen-smoke")
		if err != nil {
			t.Fatalf("device with its password refused: %v", err)
		}
		before := a.Store.LastSeq()
		if err := publish(t, c, "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery_low":false,"battery":100,"linkquality":120}`); err != nil {
			t.Fatal(err)
		}
		// No waiting: the acknowledgement itself promises the write. The
		// payload carries smoke and battery_low: two readings. (The
		// gateway's own fault readings may land beside them.)
		rs, err := a.Store.ReadLog(before, 100)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		var r reading.Reading
		n := 0
		for _, x := range rs {
			if x.Device != "kitchen-smoke" {
				continue
			}
			n++
			if x.Kind == reading.KindSmoke {
				r = x
			}
		}
		if n != 2 {
			t.Fatalf("after PUBACK the store holds %d readings of the detector, want 2: %+v", n, rs)
		}
		if r.Device != "kitchen-smoke" || r.Kind != reading.KindSmoke || !r.Value.Bool || r.Zone != "kitchen" ||
			r.Facility != "test-shelter" || r.Battery == nil || *r.Battery != 100 {
			t.Fatalf("stored reading %+v", r)
		}
	})
	t.Run("publishing to another device's topic denied", func(t *testing.T) {
		c, err := connect(t, url, "door-1", "ward-door", "pw-ward-door")
		if err != nil {
			t.Fatal(err)
		}
		before := a.Store.LastSeq()
		// MQTT 3.1.1 has no negative PUBACK: the broker drops the client.
		err = publish(t, c, "zigbee2mqtt/kitchen/smoke", `{"smoke":true}`)
		if err == nil && c.IsConnected() {
			t.Fatal("publish to another device's topic was acknowledged")
		}
		if got := a.Store.LastSeq(); got != before {
			t.Fatalf("a forged reading was stored (seq %d → %d)", before, got)
		}
	})
}

func TestMosquittoEndToEnd(t *testing.T) {
	m := testpeer.StartMosquitto(t, "")
	cfg := testConfig(t, fmt.Sprintf("broker:\n  mode: external\n  external: {url: %q, client_id: gw-test, reconnect_max: 1s}\n", m.URL()))
	pub := testpeer.Require(t, "mosquitto_pub", "mosquitto-clients")

	// Real device payloads as each firmware publishes them.
	messages := []struct{ topic, payload string }{
		{"zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery_low":false,"battery":100,"linkquality":120}`},
		{"zigbee2mqtt/secure-ward/door", `{"contact":false,"battery":91,"voltage":3005,"linkquality":87}`},
		{"zigbee2mqtt/secure-ward/door/availability", `{"state":"online"}`},
		{"tele/tasmota_A1B2C3/SENSOR", `{"Time":"2026-11-30T11:00:00","BME280":{"Temperature":21.7,"Humidity":66.6,"Pressure":988.6},"PressureUnit":"hPa","TempUnit":"C"}`},
		{"dorm-2-node/sensor/dorm_2_temperature/state", `19.5`},
		{"shellyplusht-08b61fcf4a2c/status/temperature:0", `{"id":0,"tC":19.8,"tF":67.6}`},
		{"homie/5/kitchen-climate/climate/temperature", `24.5`},
		{"shelter/ward-panic", `{"values":{"panic":true}}`},
		{"zigbee2mqtt/kitchen/smoke", `{"smoke":"maybe"}`}, // bad: dead-lettered, never blocks
	}
	publishAll := func() {
		for _, msg := range messages {
			out, err := exec.Command(pub, "-h", "127.0.0.1", "-p", strings.Split(m.Addr, ":")[1], "-q", "1",
				"-t", msg.topic, "-m", msg.payload).CombinedOutput()
			if err != nil {
				t.Fatalf("mosquitto_pub %s: %v: %s", msg.topic, err, out)
			}
		}
	}

	// First session: subscribe, then stop, so the broker holds a persistent
	// session for the gateway.
	ctx, cancel := context.WithCancel(context.Background())
	a1, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a1.Run(ctx) }()
	testpeer.WaitFor(t, "gateway connected to mosquitto and ready", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + a1.HTTPAddr() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200 && strings.Contains(metrics(t, a1), `shelterwatch_mqttclient_connected{connection="main"} 1`)
	})
	time.Sleep(300 * time.Millisecond) // let the SUBACK land; the next check proves delivery anyway
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Published while the gateway is away: the broker queues them (QoS 1,
	// clean session off) and delivers them when it is back.
	publishAll()
	a := startApp(t, cfg)
	want := map[string]func(reading.Value) bool{
		"kitchen-smoke/smoke":         func(v reading.Value) bool { return v.Bool },
		"ward-door/door":              func(v reading.Value) bool { return v.Bool }, // contact false = open
		"ward-door/availability":      func(v reading.Value) bool { return v.Bool },
		"dorm-1-climate/temperature":  func(v reading.Value) bool { return v.Num == 21.7 },
		"dorm-1-climate/humidity":     func(v reading.Value) bool { return v.Num == 66.6 },
		"dorm-2-climate/temperature":  func(v reading.Value) bool { return v.Num == 19.5 },
		"dorm-2-ht/temperature":       func(v reading.Value) bool { return v.Num == 19.8 },
		"kitchen-climate/temperature": func(v reading.Value) bool { return v.Num == 24.5 },
		"ward-panic/panic":            func(v reading.Value) bool { return v.Bool },
	}
	got := map[string]reading.Value{}
	testpeer.WaitFor(t, "every queued reading stored", 15*time.Second, func() bool {
		rs, err := a.Store.ReadLog(0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			got[r.Device+"/"+string(r.Kind)] = r.Value
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				return false
			}
		}
		return true
	})
	for k, ok := range want {
		if !ok(got[k]) {
			t.Errorf("%s = %v", k, got[k])
		}
	}
	testpeer.WaitFor(t, "bad payload dead-lettered", 5*time.Second, func() bool {
		dls, _ := a.Store.DeadLetters(10)
		for _, dl := range dls {
			if dl.Topic == "zigbee2mqtt/kitchen/smoke" && dl.Reason == "wrong_type" {
				return true
			}
		}
		return false
	})
	if !strings.Contains(metrics(t, a), `shelterwatch_ingest_dead_lettered_total{reason="wrong_type"} 1`) {
		t.Error("dead-letter counter for wrong_type not 1")
	}

	// Live traffic while connected, through the same pipeline.
	before := a.Store.LastSeq()
	publishAll()
	testpeer.WaitFor(t, "live readings stored", 10*time.Second, func() bool { return a.Store.LastSeq() >= before+uint64(len(want)) })

	// History API over what arrived.
	req, _ := http.NewRequest("GET", "http://"+a.HTTPAddr()+"/api/v1/readings?device=kitchen-smoke&kind=smoke", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"value":true`) {
		t.Fatalf("history API: %d %s", resp.StatusCode, body)
	}
	_ = store.Query{}
}

func metrics(t *testing.T, a *App) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.HTTPAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %s", resp.Status, b)
	}
	return string(b)
}

// TestMain fails the package when a test leaves a goroutine of the
// gateway running: every stage must be waited for at shutdown. The API
// calls' idle keep-alive connections (the client's, not the gateway's)
// are closed first.
func TestMain(m *testing.M) {
	code := m.Run()
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestNotReadyWhileExternalBrokerDown(t *testing.T) {
	port := testpeer.FreePort(t) // nothing listens there
	a := startApp(t, testConfig(t, fmt.Sprintf("broker:\n  mode: external\n  external: {url: \"tcp://127.0.0.1:%d\", client_id: gw-down, reconnect_max: 1s}\n", port)))
	resp, err := http.Get("http://" + a.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "external MQTT broker") {
		t.Fatalf("/readyz with the broker down: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + a.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz must stay 200 (the process is alive): %d", resp.StatusCode)
	}
}

func TestNewReleasesWhatItBuiltOnError(t *testing.T) {
	// The HTTP port is taken: New fails after opening the store and the
	// broker, and must close them (a second New on the same store works).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n")
	cfg.HTTP.Listen = ln.Addr().String()
	if _, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "HTTP listen") {
		t.Fatalf("New with a taken port: %v", err)
	}
	cfg.HTTP.Listen = "127.0.0.1:0"
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("store or broker not released by the failed New: %v", err)
	}
	a.closePartial()
}
