package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/demo"
	"github.com/shelterwatch/shelterwatch/ingest/sensorsim"
	"github.com/shelterwatch/shelterwatch/video/camsim"
)

// testGateway is a gateway with the demo facility (renamed), its simulated
// sensors and cameras, and three tokens: admin, viewer and metrics (a role
// without alarm access).
type testGateway struct {
	URL      string
	Facility string
	Admin    string
	Viewer   string
	Metrics  string
	app      *app.App
	devices  map[string]sensorsim.Device
}

func secret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tokenYAML(name, role, token, cameras string) string {
	sum := sha256.Sum256([]byte(token))
	return fmt.Sprintf("    - name: %s\n      role: %s\n      sha256: %q\n      cameras: %s\n", name, role, hex.EncodeToString(sum[:]), cameras)
}

// startGateway starts a gateway for facility on 127.0.0.1 ports chosen by
// the system; t.Cleanup stops it.
func startGateway(t *testing.T, facility string) *testGateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	var cams []camsim.Camera
	for _, c := range []struct{ path, clip string }{{"/ward-cam", camsim.ClipGOP10s}, {"/entrance-cam", camsim.ClipGOP2s}} {
		clip, err := camsim.BuiltinClip(c.clip)
		if err != nil {
			t.Fatal(err)
		}
		cams = append(cams, camsim.Camera{Path: c.path, Clip: clip})
	}
	sim, err := camsim.New(camsim.Options{Address: "127.0.0.1:0", Cameras: cams})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	text, devices, admin, err := demo.Config(filepath.Join(dir, "store"), "127.0.0.1:0", "127.0.0.1:0", sim.Addr().String(), "127.0.0.1:0", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	g := &testGateway{Facility: facility, Admin: admin, Viewer: secret(), Metrics: secret(), devices: map[string]sensorsim.Device{}}
	for _, d := range devices {
		g.devices[d.ID] = d
	}
	text = strings.Replace(text, "  id: demo-shelter\n", "  id: "+facility+"\n", 1)
	text = strings.Replace(text, "log:\n", tokenYAML("grafana-viewer", "viewer", g.Viewer, `["*"]`)+tokenYAML("prometheus", "metrics", g.Metrics, "[]")+"log:\n", 1)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if g.app, err = app.New(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.app.Run(ctx) }()
	simDone := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-simDone
		if err := <-done; err != nil {
			t.Errorf("gateway %s: %v", facility, err)
		}
		_ = sim.Close()
	})
	select {
	case <-g.app.Ready():
	case err := <-done:
		close(simDone)
		done <- err
		t.Fatalf("gateway %s stopped before ready: %v", facility, err)
	case <-time.After(60 * time.Second):
		close(simDone)
		t.Fatalf("gateway %s not ready within 60s", facility)
	}
	g.URL = "http://" + g.app.HTTPAddr()
	go func() {
		defer close(simDone)
		_ = sensorsim.Run(ctx, sensorsim.Options{
			Broker: "tcp://" + g.app.BrokerAddr(), Devices: devices, Interval: 300 * time.Millisecond,
			Location: cfg.Facility.Location, Logger: slog.New(slog.DiscardHandler),
		})
	}()
	return g
}

// publish sends one message as device would, QoS 1, and returns once the
// broker acknowledged it.
func (g *testGateway) publish(t *testing.T, device, topic, payload string) {
	t.Helper()
	d, ok := g.devices[device]
	if !ok {
		t.Fatalf("no device %s", device)
	}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + g.app.BrokerAddr()).
		SetClientID("e2e-" + device).SetUsername(d.Username).SetPassword(d.Password).
		SetConnectTimeout(10 * time.Second).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as %s: %v", device, tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish as %s: %v", device, tok.Error())
	}
}
