// Package alarms measures the alarm path under load: a Zigbee2MQTT smoke
// payload published to the embedded broker → decoded, stored (fsync),
// evaluated by the rules, queued durably in the notification outbox
// (fsync) → the signed webhook received by a local HTTP server, 1,000
// times, while 5,000 other readings/s flow through the same gateway. The
// gateway runs in the bench process (its CPU is not reported); the latency
// is wall time from publish to webhook, and the table holds it to p99 ≤
// 20 ms.
package alarms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// Options configure an alarm bench run.
type Options struct {
	Alarms  int // smoke alarms to raise
	Load    int // other readings/s during the run
	Devices int // devices sending the other readings
	Log     io.Writer
}

type result struct {
	lat      []time.Duration
	loadRate float64
}

// Run raises the alarms under the load and writes the table to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	res, err := run(ctx, o)
	if err != nil {
		return err
	}
	printReport(w, o, res)
	return nil
}

func printReport(w io.Writer, o Options, res *result) {
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	q := func(p float64) float64 {
		return float64(res.lat[min(int(p*float64(len(res.lat))), len(res.lat)-1)].Microseconds()) / 1000
	}
	fmt.Fprintf(w, "\n### Alarm path: smoke publish → signed webhook received (embedded broker, %d alarms)\n\n", len(res.lat))
	fmt.Fprintln(w, "| other load | other readings stored/s | p50 ms | p90 ms | p99 ms | max ms |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| %s readings/s from %d devices | %s | %.1f | %.1f | %.1f | %.1f |\n", report.Thousands(float64(o.Load)), o.Devices,
		report.Thousands(res.loadRate), q(0.5), q(0.9), q(0.99), q(1))
	fmt.Fprintf(w, "\nGoal: p99 ≤ 20 ms: %s.\n", report.PassMiss(q(0.99) <= 20))
}

func run(ctx context.Context, o Options) (*result, error) {
	dir, err := os.MkdirTemp("", "shelter-bench-alarms-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	fired := make(chan time.Time, 16)
	hook := webhookReceiver(fired)
	defer hook.Close()
	// Random passwords, as everywhere: no default credentials even here.
	pw := func(id string) string {
		s := sha256.Sum256([]byte(dir + id))
		return hex.EncodeToString(s[:8])
	}
	cfgPath, err := writeConfig(dir, hook.URL, o.Devices, pw)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	gw, err := app.New(cfg, slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, err
	}
	gctx, stopGW := context.WithCancel(ctx)
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Run(gctx) }()
	defer func() { stopGW(); <-gwDone }()
	<-gw.Ready()
	url := "tcp://" + gw.BrokerAddr()
	connectAs := func(id string) (paho.Client, error) {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).SetPassword(pw(id)).
			SetAutoReconnect(false).SetMaxResumePubInFlight(64))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("connect %s: %v", id, tok.Error())
		}
		return c, nil
	}

	bg, err := startLoad(ctx, o, connectAs)
	defer bg.stop()
	if err != nil {
		return nil, err
	}
	smoke, err := connectAs("smoke-1")
	if err != nil {
		return nil, err
	}
	defer smoke.Disconnect(100)
	time.Sleep(time.Second) // let the load settle
	res := &result{}
	start, stored0 := time.Now(), bg.stored.Load()
	if res.lat, err = raise(ctx, smoke, fired, o.Alarms); err != nil {
		return nil, err
	}
	res.loadRate = float64(bg.stored.Load()-stored0) / time.Since(start).Seconds()
	bg.stop()
	if len(res.lat) == 0 {
		return nil, ctx.Err()
	}
	return res, nil
}

// webhookReceiver reports each firing event's arrival on fired.
func webhookReceiver(fired chan<- time.Time) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Kind string `json:"kind"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		if p.Kind == "firing" {
			fired <- time.Now()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// writeConfig writes the gateway's config into dir: a smoke detector with
// a rule that fires on smoke, the load's temperature sensors, each with its
// password pw(id), and the webhook channel to hookURL.
func writeConfig(dir, hookURL string, devices int, pw func(id string) string) (string, error) {
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("bench-secret"), 0o600); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("facility: {id: bench, name: Bench, timezone: Asia/Shanghai}\nzones: [{id: kitchen, tags: [kitchen]}, {id: dorm, tags: [dormitory]}]\ndevices:\n")
	hash := func(id string) string {
		h, _ := bcrypt.GenerateFromPassword([]byte(pw(id)), bcrypt.MinCost)
		return string(h)
	}
	fmt.Fprintf(&b, "  - {id: smoke-1, kind: smoke, zone: kitchen, format: zigbee2mqtt, topic: zigbee2mqtt/smoke-1, password_hash: %q}\n", hash("smoke-1"))
	for i := range devices {
		id := fmt.Sprintf("temp-%02d", i)
		fmt.Fprintf(&b, "  - {id: %s, kind: temperature, zone: dorm, format: native, topic: sw/%s, password_hash: %q}\n", id, id, hash(id))
	}
	// Every device connects from loopback: lift the per-address cap.
	fmt.Fprintf(&b, `broker: {embedded: {listen: "127.0.0.1:0", max_clients_per_address: 2000}}
store: {dir: %q}
http: {listen: "127.0.0.1:0"}
alarms: {builtin_rules: false}
rules:
  - {id: bench-smoke, kinds: [smoke], when: value, severity: fire, title: {en: "Smoke {{.Device}}", zh: "烟雾 {{.Device}}"}}
notify:
  channels:
    - {name: hook, type: webhook, webhook: {url: %q, secret_file: %q}}
`, filepath.Join(dir, "store"), hookURL, filepath.Join(dir, "hook.secret"))
	cfgPath := filepath.Join(dir, "bench.yaml")
	return cfgPath, os.WriteFile(cfgPath, []byte(b.String()), 0o600)
}

// load is the background load: the temperature sensors publishing.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stored atomic.Int64 // publishes acknowledged (stored: PUBACK follows the fsync)
}

// stop ends the load and waits for its publishers to disconnect.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// startLoad has each device publish at o.Load/o.Devices per second, with
// up to 16 publishes awaiting their PUBACK. It returns the load started so
// far even when a device fails to connect.
func startLoad(ctx context.Context, o Options, connectAs func(id string) (paho.Client, error)) (*load, error) {
	lctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel}
	per := time.Second * time.Duration(o.Devices) / time.Duration(max(o.Load, 1))
	for i := range o.Devices {
		id := fmt.Sprintf("temp-%02d", i)
		c, err := connectAs(id)
		if err != nil {
			return l, err
		}
		l.wg.Go(func() {
			defer c.Disconnect(100)
			window := make(chan paho.Token, 16)
			go func() {
				for tok := range window {
					if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
						l.stored.Add(1)
					}
				}
			}()
			defer close(window)
			tick := time.NewTicker(per)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-lctx.Done():
					return
				case <-tick.C:
				}
				window <- c.Publish("sw/"+id, 1, false, fmt.Sprintf(`{"values":{"temperature":%.1f}}`, 20+float64(n%50)/10))
			}
		})
	}
	return l, nil
}

// raise sets off n smoke alarms one after another and returns the time
// from each publish to its webhook; each alarm is cleared before the next.
func raise(ctx context.Context, smoke paho.Client, fired <-chan time.Time, n int) ([]time.Duration, error) {
	var lat []time.Duration
	for i := 0; i < n && ctx.Err() == nil; i++ {
		t0 := time.Now()
		if tok := smoke.Publish("zigbee2mqtt/smoke-1", 1, false, `{"smoke":true,"battery":95,"linkquality":110}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("smoke publish %d: %v", i, tok.Error())
		}
		select {
		case at := <-fired:
			lat = append(lat, at.Sub(t0))
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("alarm %d: no webhook within 10s", i)
		}
		if tok := smoke.Publish("zigbee2mqtt/smoke-1", 1, false, `{"smoke":false,"battery":95,"linkquality":110}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("smoke clear %d: %v", i, tok.Error())
		}
		time.Sleep(5 * time.Millisecond) // the resolve goes out before the next alarm
	}
	return lat, nil
}
