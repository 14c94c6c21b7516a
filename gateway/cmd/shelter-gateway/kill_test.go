package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// buildGateway compiles the gateway binary once per test run.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shelter-gateway")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build gateway: %v\n%s", err, out)
	}
	return bin
}

type gatewayProc struct {
	cmd    *exec.Cmd
	broker string
	http   string // the API's bound address
	done   chan error
	log    *testpeer.SyncBuffer // everything it logged
}

// startGateway runs the binary and waits for its "ready" log line, which
// names the bound broker address.
func startGateway(t *testing.T, bin, cfgPath string, env ...string) *gatewayProc {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	g := &gatewayProc{cmd: cmd, done: make(chan error, 1), log: &testpeer.SyncBuffer{}}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = g.log.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Broker, HTTP string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gateway: ready" {
				ready <- [2]string{line.Broker, line.HTTP}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		g.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case addrs := <-ready:
		g.broker, g.http = addrs[0], addrs[1]
	case err := <-g.done:
		t.Fatalf("gateway exited before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("gateway not ready within 20s")
	}
	return g
}

// writeConfig writes a gateway config with devices d0..d<n-1> (native
// temperature sensors on sw/d<i>, password pw-<i>), the store under dir,
// loopback listeners, JSON logs and extra YAML, and returns its path.
func writeConfig(t *testing.T, dir string, n int, extra string) string {
	t.Helper()
	var cfg strings.Builder
	cfg.WriteString("facility: {id: crash-test, name: Crash Test, timezone: UTC}\nzones: [{id: z}]\ndevices:\n")
	for i := range n {
		h, _ := bcrypt.GenerateFromPassword(fmt.Appendf(nil, "pw-%d", i), bcrypt.MinCost)
		fmt.Fprintf(&cfg, "  - {id: d%d, kind: temperature, zone: z, format: native, topic: sw/d%d, password_hash: %q}\n", i, i, h)
	}
	fmt.Fprintf(&cfg, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\nstore: {dir: %q}\nhttp: {listen: \"127.0.0.1:0\"}\nlog: {format: json}\n%s", filepath.Join(dir, "store"), extra)
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// connectDevice connects as device d<i>; on failure it reports the error
// (from any goroutine) and returns false.
func connectDevice(t *testing.T, broker string, i int) (paho.Client, bool) {
	return connectAs(t, broker, fmt.Sprintf("d%d", i), fmt.Sprintf("pw-%d", i))
}

// connectAs connects as device id with its password; on failure it
// reports the error (from any goroutine) and returns false.
func connectAs(t *testing.T, broker, id, password string) (paho.Client, bool) {
	o := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(id).
		SetUsername(id).SetPassword(password).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Errorf("device %s connect: %v", id, tok.Error())
		return nil, false
	}
	return c, true
}

// TestKill9LosesNothingAcknowledged publishes from several devices while the
// gateway is killed with SIGKILL, restarts it, and checks that every
// message the broker acknowledged is in the store.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	bin := buildGateway(t)
	dir := t.TempDir()
	const devices = 4
	cfgPath := writeConfig(t, dir, devices, "")

	g := startGateway(t, bin, cfgPath)
	l := startLoad(t, g.broker, devices)
	l.waitAcked(2000, 10*time.Second)
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-g.done
	acked := l.stop()
	nAcked := len(acked)
	if nAcked < 100 {
		t.Fatalf("only %d messages acknowledged before the kill: the test did not exercise the gateway", nAcked)
	}

	// Restart on the same store: it must open cleanly after the crash, then
	// shut down gracefully on SIGTERM.
	g2 := startGateway(t, bin, cfgPath)
	if err := g2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g2.done:
		if err != nil {
			t.Fatalf("graceful shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not stop within 20s of SIGTERM")
	}

	stored := checkStored(t, filepath.Join(dir, "store"), acked)
	t.Logf("%d messages acknowledged before SIGKILL, all %d in the store (%d stored in total)", nAcked, nAcked, stored)
}

// load publishes QoS 1 readings from devices d0..d<n-1> as fast as the
// gateway acknowledges them, and remembers every acknowledged one.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	acked  map[string]bool // device/time of every PUBACKed message
}

func startLoad(t *testing.T, broker string, devices int) *load {
	t.Helper()
	return startLoadAt(t, broker, devices, time.Now().Add(-time.Hour).Truncate(time.Second))
}

// startLoadAt is startLoad with the readings timed from base on, one
// millisecond apart.
func startLoadAt(t *testing.T, broker string, devices int, base time.Time) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, acked: map[string]bool{}}
	for i := range devices {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c, ok := connectDevice(t, broker, i)
			if !ok {
				return
			}
			defer c.Disconnect(0)
			for n := 0; ctx.Err() == nil; n++ {
				at := base.Add(time.Duration(n) * time.Millisecond).UTC()
				payload := fmt.Sprintf(`{"time":%q,"values":{"temperature":%d}}`, at.Format(time.RFC3339Nano), n%100)
				tok := c.Publish(fmt.Sprintf("sw/d%d", i), 1, false, payload)
				if !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
					return // the gateway stopped: this message was never acknowledged
				}
				l.mu.Lock()
				l.acked[fmt.Sprintf("d%d/%d", i, at.UnixNano())] = true
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// waitAcked waits until n messages were acknowledged or within passed.
func (l *load) waitAcked(n int, within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		l.mu.Lock()
		got := len(l.acked)
		l.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// snapshot returns what was acknowledged so far.
func (l *load) snapshot() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acked)
}

// stop ends the publishers and returns what was acknowledged.
func (l *load) stop() map[string]bool {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

// checkStored opens the store in dir and fails the test for every
// acknowledged message ("d<i>/<unix ns>") that is not in it. It returns how
// many readings the store holds.
func checkStored(t *testing.T, dir string, acked map[string]bool) int {
	t.Helper()
	s, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer s.Close()
	stored := map[string]bool{}
	for after := uint64(0); ; {
		rs, err := s.ReadLog(after, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		for _, r := range rs {
			stored[fmt.Sprintf("%s/%d", r.Device, r.Time.UnixNano())] = true
		}
		after = rs[len(rs)-1].Seq
	}
	lost := 0
	for k := range acked {
		if !stored[k] {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged message %s is not in the store", k)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged messages lost", lost, len(acked))
	}
	return len(stored)
}
