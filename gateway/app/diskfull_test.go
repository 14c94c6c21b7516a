package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// lineLog counts the gateway's log lines (at the production level, info)
// and keeps them for the test's output.
type lineLog struct {
	mu    sync.Mutex
	times []time.Time
	buf   bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range bytes.Count(p, []byte("\n")) {
		l.times = append(l.times, time.Now())
	}
	return l.buf.Write(p)
}

func (l *lineLog) between(from, to time.Time) (n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.times {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

// storedValues returns the numbers stored for device and kind.
func storedValues(t *testing.T, a *App, device string, kind reading.Kind) []float64 {
	t.Helper()
	rs, err := a.Store.ReadLog(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, r := range rs {
		if r.Device == device && r.Kind == kind {
			out = append(out, r.Value.Num)
		}
	}
	return out
}

// TestDiskFullKeepsAlarmsFlowing fills the file system under a running
// gateway (a tmpfs as small as a worn SD card's free space): it keeps
// running, raises the critical disk-full alarm, a smoke reading published
// meanwhile is stored in the reserve and notified, a temperature that
// cannot be stored still raises its alarm from memory, nothing
// acknowledged is lost, the log stays quiet, ingest resumes by itself
// when space returns (with the readings the clients kept), and SIGTERM on
// a full disk ends the gateway within 10 s.
func TestDiskFullKeepsAlarmsFlowing(t *testing.T) {
	fs := testpeer.SmallFS(t, 40<<20)
	hook, notifyYAML := startHook(t)
	cfg := testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n"+notifyYAML)
	cfg.Store.Dir = filepath.Join(fs, "store")
	cfg.Alarms.Dir = filepath.Join(fs, "store-alarms")
	cfg.Store.DiskReserve = config.ByteSize(8 << 20)
	cfg.Store.BallastBytes = config.ByteSize(4 << 20)
	logs := &lineLog{}
	a, stop := runApp(t, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	defer func() {
		if t.Failed() {
			logs.mu.Lock()
			t.Logf("gateway log:\n%s", logs.buf.String())
			logs.mu.Unlock()
		}
	}()

	door, err := connect(t, "tcp://"+a.BrokerAddr(), "ward-door", "ward-door", "pw-ward-door")
	if err != nil {
		t.Fatal(err)
	}
	smoke, err := connect(t, "tcp://"+a.BrokerAddr(), "kitchen-smoke", "kitchen-smoke", "pw-kitchen-smoke")
	if err != nil {
		t.Fatal(err)
	}
	dorm, err := connect(t, "tcp://"+a.BrokerAddr(), "dorm-2-climate", "dorm-2-climate", "pw-dorm-2-climate")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(t, dorm, "dorm-2-node/sensor/dorm_2_temperature/state", "21.5"); err != nil {
		t.Fatal(err)
	}
	// The door sensor reports a temperature, each one different, and the
	// test keeps every value whose publish was acknowledged.
	var (
		mu    sync.Mutex
		acked []float64
	)
	pubCtx, stopPub := context.WithCancel(context.Background())
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; pubCtx.Err() == nil; i++ {
			// Decimal in the payload, and parsed back the same way, so the
			// comparison below is exact.
			v, _ := strconv.ParseFloat(fmt.Sprintf("%.2f", 10+float64(i)/100), 64)
			tok := door.Publish("zigbee2mqtt/secure-ward/door", 1, false, fmt.Sprintf(`{"contact":true,"temperature":%.2f}`, v))
			select {
			case <-tok.Done():
			case <-pubCtx.Done():
				return
			}
			if tok.Error() == nil {
				mu.Lock()
				acked = append(acked, v)
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	testpeer.WaitFor(t, "readings before the disk fills", 10*time.Second, func() bool {
		return len(storedValues(t, a, "ward-door", reading.KindTemperature)) >= 5
	})

	// Something else fills the disk (a log, a copied video), down to 2 MiB.
	filler := testpeer.FillFS(t, fs, 2<<20)
	testpeer.WaitFor(t, "the disk-full alarm's webhook", 20*time.Second, hook.has("disk-full@dev:gateway.disk"))
	fullSince := time.Now()

	// A smoke reading on the full disk: a safety reading, written into the
	// reserve, so it is notified and acknowledged at once.
	if err := publish(t, smoke, "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":90}`); err != nil {
		t.Fatalf("a smoke reading on a full disk: %v", err)
	}
	testpeer.WaitFor(t, "the smoke alarm's webhook on a full disk", 10*time.Second, hook.has("smoke@dev:kitchen-smoke"))
	if got := storedValues(t, a, "kitchen-smoke", reading.KindSmoke); len(got) != 1 {
		t.Fatalf("smoke readings stored on a full disk: %v, want 1", got)
	}
	// A dormitory's temperature jumping 10 °C: not a safety kind, so it
	// is not stored (nor acknowledged), but the rate-of-rise rule sees it
	// in memory and raises its alarm.
	heatTok := dorm.Publish("dorm-2-node/sensor/dorm_2_temperature/state", 1, false, "31.5")
	testpeer.WaitFor(t, "the heat-rise alarm's webhook from a reading the disk could not take", 10*time.Second, func() bool {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return slices.ContainsFunc(hook.ids, func(id string) bool { return strings.HasPrefix(id, "heat-rise@") })
	})
	if heatTok.WaitTimeout(100 * time.Millisecond) {
		t.Fatalf("a temperature was acknowledged on a full disk (err %v) though it cannot be stored", heatTok.Error())
	}
	if got := storedValues(t, a, "dorm-2-climate", reading.KindTemperature); slices.Contains(got, 31.5) {
		t.Fatalf("a temperature was stored on a full disk: %v", got)
	}

	// The log stays quiet while the disk stays full.
	time.Sleep(15 * time.Second)
	if n, d := logs.between(fullSince, time.Now()), time.Since(fullSince); float64(n)/d.Minutes() >= 100 {
		t.Fatalf("%d log lines in %v on a full disk: over 100 a minute", n, d.Round(time.Second))
	} else {
		t.Logf("%d log lines in %v on a full disk", n, d.Round(time.Second))
	}

	// Space returns: ingest resumes by itself, the temperature the client
	// kept is stored now, and is not evaluated (notified) twice.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !heatTok.WaitTimeout(20*time.Second) || heatTok.Error() != nil {
		t.Fatalf("the temperature not acknowledged after space returned: %v", heatTok.Error())
	}
	if got := storedValues(t, a, "dorm-2-climate", reading.KindTemperature); !slices.Contains(got, 31.5) {
		t.Fatalf("dormitory temperatures stored after space returned: %v, want 31.5 among them", got)
	}
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	testpeer.WaitFor(t, "new readings acknowledged after space returned", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) > before+5
	})
	stopPub()
	<-pubDone
	// Nothing acknowledged is lost: while the disk was short the store may
	// delete its oldest readings, but only those every consumer had read
	// (a prefix of the log, counted as disk_budget); every acknowledged
	// reading after them is there.
	stored := storedValues(t, a, "ward-door", reading.KindTemperature)
	if m := metrics(t, a); !strings.Contains(m, "shelterwatch_store_dropped_unforwarded_total 0") {
		t.Errorf("readings no consumer had read were deleted:\n%s", grepLines(m, "shelterwatch_store_dropped"))
	}
	mu.Lock()
	for _, v := range acked {
		if !slices.Contains(stored, v) && (len(stored) == 0 || v > slices.Min(stored)) {
			t.Errorf("acknowledged reading %.2f is not in the store", v)
		}
	}
	t.Logf("%d readings acknowledged, %d still stored", len(acked), len(stored))
	mu.Unlock()
	hook.mu.Lock()
	firings := 0
	for i, id := range hook.ids {
		if strings.HasPrefix(id, "heat-rise@") && hook.events[i] == alarm.EventFiring {
			firings++
		}
	}
	hook.mu.Unlock()
	if firings != 1 {
		t.Errorf("the heat-rise alarm fired %d times, want once", firings)
	}

	// SIGTERM on a full disk, with a client's publish held: the gateway
	// ends within 10 s.
	testpeer.FillFS(t, fs, 2<<20)
	testpeer.WaitFor(t, "the store to see the disk full again", 20*time.Second, a.Store.Full)
	held := dorm.Publish("dorm-2-node/sensor/dorm_2_temperature/state", 1, false, "20.5")
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("gateway run on a full disk: %v", err)
		}
		t.Logf("stopped in %v on a full disk", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not stop within 10s of SIGTERM on a full disk")
	}
	if held.WaitTimeout(0) && held.Error() == nil {
		t.Error("a publish was acknowledged on a full disk during shutdown")
	}
}

// grepLines returns the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDataDirectoriesArePrivate: the store, the alarm state, the outbox
// and the audit log live in directories only the gateway can enter, and
// the alarm state and audit files are the gateway's alone (files the storage engine
// creates follow the 077 umask that `shelter-gateway run` sets).
func TestDataDirectoriesArePrivate(t *testing.T) {
	cfg := testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n")
	startApp(t, cfg)
	for _, root := range []string{cfg.Store.Dir, cfg.Alarms.Dir} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() && fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %v, want 0700", path, fi.Mode().Perm())
			}
			if (d.Name() == "state.json" || strings.HasPrefix(d.Name(), "audit")) && !d.IsDir() && fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestDiskFullExternalBrokerKeepsReadings: with an external Mosquitto, the
// readings published while the gateway's disk is full wait in Mosquitto
// (the gateway holds at most max_in_flight of them unacknowledged and
// reads no more on that connection), a smoke reading published after 200
// of them still arrives at once on the safety devices' own connection, is
// stored and notified, and every reading is stored once space returns.
func TestDiskFullExternalBrokerKeepsReadings(t *testing.T) {
	fs := testpeer.SmallFS(t, 40<<20)
	m := testpeer.StartMosquitto(t, "")
	hook, notifyYAML := startHook(t)
	cfg := testConfig(t, fmt.Sprintf(`broker:
  mode: external
  external: {url: %q, client_id: gw-diskfull, reconnect_max: 1s, max_in_flight: 20}
`, m.URL())+notifyYAML)
	cfg.Store.Dir = filepath.Join(fs, "store")
	cfg.Alarms.Dir = filepath.Join(fs, "store-alarms")
	cfg.Store.DiskReserve = config.ByteSize(8 << 20)
	cfg.Store.BallastBytes = config.ByteSize(4 << 20)
	a := startApp(t, cfg)
	dev, err := connect(t, m.URL(), "dev-publisher", "", "")
	if err != nil {
		t.Fatal(err)
	}
	publishTemps := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := publish(t, dev, "dorm-2-node/sensor/dorm_2_temperature/state", fmt.Sprintf("%.1f", float64(i)/10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The gateway's subscription may still be on its way when it is
	// ready; a probe shows when messages flow.
	testpeer.WaitFor(t, "the gateway's subscription", 10*time.Second, func() bool {
		publishTemps(-1, 1)
		time.Sleep(100 * time.Millisecond)
		return len(storedValues(t, a, "dorm-2-climate", reading.KindTemperature)) > 0
	})
	publishTemps(0, 10)
	testpeer.WaitFor(t, "readings before the disk fills", 10*time.Second, func() bool {
		return slices.Contains(storedValues(t, a, "dorm-2-climate", reading.KindTemperature), 0.9)
	})
	before := len(storedValues(t, a, "dorm-2-climate", reading.KindTemperature))

	filler := testpeer.FillFS(t, fs, 2<<20)
	testpeer.WaitFor(t, "the disk-full alarm's webhook", 20*time.Second, hook.has("disk-full@dev:gateway.disk"))
	publishTemps(10, 200)
	if err := publish(t, dev, "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":90}`); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "the smoke alarm's webhook on a full disk", 10*time.Second, hook.has("smoke@dev:kitchen-smoke"))
	if got := len(storedValues(t, a, "dorm-2-climate", reading.KindTemperature)); got > before {
		t.Fatalf("%d readings stored on a full disk, want the %d from before", got, before)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// What the disk-full budget may have deleted to make room is the
	// oldest readings, from before; the point is the 200 published while
	// the disk was full, which the broker kept.
	keptByBroker := func(got []float64) (missing []int) {
		for i := 10; i < 210; i++ {
			if !slices.Contains(got, float64(i)/10) {
				missing = append(missing, i)
			}
		}
		return missing
	}
	testpeer.WaitFor(t, "every reading published on the full disk", 30*time.Second, func() bool {
		return len(keptByBroker(storedValues(t, a, "dorm-2-climate", reading.KindTemperature))) == 0 &&
			len(storedValues(t, a, "kitchen-smoke", reading.KindSmoke)) > 0
	})
	if missing := keptByBroker(storedValues(t, a, "dorm-2-climate", reading.KindTemperature)); len(missing) > 0 {
		t.Errorf("readings %v missing from the store", missing)
	}
	if smoke := storedValues(t, a, "kitchen-smoke", reading.KindSmoke); len(smoke) != 1 {
		t.Errorf("smoke readings stored: %v, want 1", smoke)
	}
}
