package main

// "shelter-bench alarms" measures the alarm path under load: a
// Zigbee2MQTT smoke payload published to the embedded broker → decoded,
// stored (fsync), evaluated by the rules, queued durably in the
// notification outbox (fsync) → the signed webhook received by a local
// HTTP server, 1,000 times, while 5,000 other readings/s flow through the
// same gateway. The gateway runs in this process (its CPU is not
// reported); the latency is wall time from publish to webhook.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/config"
)

func alarmsMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelter-bench alarms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		alarms  = fs.Int("alarms", 1000, "smoke alarms to raise")
		load    = fs.Int("load", 5000, "other readings/s during the run")
		devices = fs.Int("devices", 50, "devices sending the other readings")
		quick   = fs.Bool("quick", false, "smoke run: 100 alarms")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *quick {
		*alarms = 100
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := runAlarmBench(ctx, *alarms, *load, *devices)
	if err != nil {
		fmt.Fprintln(stderr, "shelter-bench alarms:", err)
		return 1
	}
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	q := func(p float64) float64 {
		return float64(res.lat[min(int(p*float64(len(res.lat))), len(res.lat)-1)].Microseconds()) / 1000
	}
	fmt.Fprintf(stdout, "\n### Alarm path: smoke publish → signed webhook received (embedded broker, %d alarms)\n\n", len(res.lat))
	fmt.Fprintln(stdout, "| other load | other readings stored/s | p50 ms | p90 ms | p99 ms | max ms |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|")
	fmt.Fprintf(stdout, "| %s readings/s from %d devices | %s | %.1f | %.1f | %.1f | %.1f |\n", thousands(float64(*load)), *devices,
		thousands(res.loadRate), q(0.5), q(0.9), q(0.99), q(1))
	fmt.Fprintf(stdout, "\nGoal: p99 ≤ 20 ms: %s.\n", passMiss(q(0.99) <= 20))
	return 0
}

type alarmBenchResult struct {
	lat      []time.Duration
	loadRate float64
}

func runAlarmBench(ctx context.Context, alarms, load, devices int) (*alarmBenchResult, error) {
	dir, err := os.MkdirTemp("", "shelter-bench-alarms-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// The webhook receiver: it reports each firing event's arrival.
	fired := make(chan time.Time, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Kind string `json:"kind"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		if p.Kind == "firing" {
			fired <- time.Now()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("bench-secret"), 0o600); err != nil {
		return nil, err
	}

	// Random passwords, as everywhere: no default credentials even here.
	pw := func(id string) string {
		s := sha256.Sum256([]byte(dir + id))
		return hex.EncodeToString(s[:8])
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
	fmt.Fprintf(&b, `broker: {embedded: {listen: "127.0.0.1:0"}}
store: {dir: %q}
http: {listen: "127.0.0.1:0"}
alarms: {builtin_rules: false}
rules:
  - {id: bench-smoke, kinds: [smoke], when: value, severity: fire, title: {en: "Smoke {{.Device}}", zh: "烟雾 {{.Device}}"}}
notify:
  channels:
    - {name: hook, type: webhook, webhook: {url: %q, secret_file: %q}}
`, filepath.Join(dir, "store"), hook.URL, filepath.Join(dir, "hook.secret"))
	cfgPath := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	gw, err := app.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
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

	// Background load: each device publishes at load/devices per second,
	// with up to 16 publishes awaiting their PUBACK.
	lctx, stopLoad := context.WithCancel(ctx)
	var stored atomic.Int64
	var wg sync.WaitGroup
	per := time.Second * time.Duration(devices) / time.Duration(max(load, 1))
	for i := range devices {
		id := fmt.Sprintf("temp-%02d", i)
		c, err := connectAs(id)
		if err != nil {
			stopLoad()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect(100)
			window := make(chan paho.Token, 16)
			go func() {
				for tok := range window {
					if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
						stored.Add(1)
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
		}()
	}
	smoke, err := connectAs("smoke-1")
	if err != nil {
		stopLoad()
		return nil, err
	}
	defer smoke.Disconnect(100)
	time.Sleep(time.Second) // let the load settle
	res := &alarmBenchResult{}
	start, stored0 := time.Now(), stored.Load()
	for i := 0; i < alarms && ctx.Err() == nil; i++ {
		t0 := time.Now()
		if tok := smoke.Publish("zigbee2mqtt/smoke-1", 1, false, `{"smoke":true,"battery":95,"linkquality":110}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			stopLoad()
			return nil, fmt.Errorf("smoke publish %d: %v", i, tok.Error())
		}
		select {
		case at := <-fired:
			res.lat = append(res.lat, at.Sub(t0))
		case <-time.After(10 * time.Second):
			stopLoad()
			return nil, fmt.Errorf("alarm %d: no webhook within 10s", i)
		}
		if tok := smoke.Publish("zigbee2mqtt/smoke-1", 1, false, `{"smoke":false,"battery":95,"linkquality":110}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			stopLoad()
			return nil, fmt.Errorf("smoke clear %d: %v", i, tok.Error())
		}
		time.Sleep(5 * time.Millisecond) // the resolve goes out before the next alarm
	}
	res.loadRate = float64(stored.Load()-stored0) / time.Since(start).Seconds()
	stopLoad()
	wg.Wait()
	if len(res.lat) == 0 {
		return nil, ctx.Err()
	}
	return res, nil
}
