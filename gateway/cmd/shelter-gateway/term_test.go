package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// stages returns, in order, the stages the gateway logged as started and
// as stopped.
func stages(t *testing.T, log string) (started, stopped []string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		var l struct{ Msg, Stage string }
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		switch l.Msg {
		case "lifecycle: started":
			started = append(started, l.Stage)
		case "lifecycle: stopped":
			stopped = append(stopped, l.Stage)
		}
	}
	return started, stopped
}

// TestSIGTERMUnderLoadStopsInReverseAndLosesNothing sends SIGTERM while
// devices publish as fast as the gateway acknowledges: every stage stops
// in the reverse of its start order (intake first, the store last), the
// process exits cleanly within 10 s, and after a restart every message that
// was acknowledged is in the store.
func TestSIGTERMUnderLoadStopsInReverseAndLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	bin := buildGateway(t)
	dir := t.TempDir()
	const devices = 4
	// An InfluxDB target that is down, so a forwarder is busy retrying
	// when the signal comes.
	cfgPath := writeConfig(t, dir, devices, fmt.Sprintf(
		"influxdb:\n  - {id: province, url: \"http://127.0.0.1:%d\", version: 1, database: shelter, timeout: 1s}\n", testpeer.FreePort(t)))

	// A config others may read is warned about at start.
	if err := os.Chmod(cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, bin, cfgPath)
	l := startLoad(t, g.broker, devices)
	l.waitAcked(2000, 10*time.Second)
	signalled := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("graceful shutdown under load: %v\n%s", err, g.log)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("gateway did not stop within 10s of SIGTERM under load\n%s", g.log)
	}
	took := time.Since(signalled)
	acked := l.stop()
	if len(acked) < 100 {
		t.Fatalf("only %d messages acknowledged before SIGTERM: the test did not exercise the gateway", len(acked))
	}

	started, stopped := stages(t, g.log.String())
	want := slices.Clone(started)
	slices.Reverse(want)
	if len(started) < 8 || !slices.Equal(stopped, want) {
		t.Fatalf("stages started %v, stopped %v; want every stage stopped in reverse order", started, stopped)
	}
	if started[0] != "store" || !slices.Contains(started, "forward:province") || started[len(started)-1] != "broker" {
		t.Fatalf("start order %v: want the store first and the broker last", started)
	}

	// Restart on the same store and stop again: every acknowledged message
	// is there.
	g2 := startGateway(t, bin, cfgPath)
	if err := g2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-g2.done; err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	if !strings.Contains(g.log.String(), "file readable by every user of this machine") {
		t.Error("no warning about the config file every user can read")
	}
	// What the gateway wrote is its own: nothing readable by others.
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == cfgPath || p == dir {
			return err
		}
		if info, err := d.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: the gateway's files must be private", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored := checkStored(t, filepath.Join(dir, "store"), acked)
	t.Logf("SIGTERM under load: stopped %d stages in %v; %d acknowledged messages, all in the store (%d stored)",
		len(stopped), took.Round(time.Millisecond), len(acked), stored)
}
