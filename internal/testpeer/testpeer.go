// Package testpeer starts the real programs the tests talk to (Mosquitto
// today; InfluxDB, ffmpeg and Chromium as the product grows) on loopback
// with free ports and temporary directories, and stops them at cleanup.
//
// A missing peer skips the test on a developer machine and fails it under
// CI=true: in CI a silent skip would let the product ship untested.
package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CI reports whether the tests run under continuous integration.
func CI() bool { return os.Getenv("CI") == "true" }

// Require returns the path of program bin (searched in PATH and the sbin
// directories Debian installs daemons to). If it is missing the test is
// skipped, or failed under CI.
func Require(t testing.TB, bin, debianPackage string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, bin)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found: install the Debian package %s (make test does this when run as root)", bin, debianPackage)
	if CI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago. Only
// for programs that cannot listen on port 0 and report the port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitTCP waits until addr accepts connections.
func WaitTCP(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not accept connections within %v: %v", addr, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Mosquitto is a running mosquitto broker.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	cmd  *exec.Cmd
	log  *SyncBuffer
	bin  string
	conf string
}

// SyncBuffer is a bytes buffer safe for a process's output goroutines and a
// reading test.
type SyncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// URL is the broker URL for paho.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr }

// Log returns what mosquitto printed so far.
func (m *Mosquitto) Log() string { return m.log.String() }

// StartMosquitto runs mosquitto on a free loopback port with anonymous
// access, no persistence, and in-flight/queue limits high enough that it
// drops nothing in the tests. extra is appended to its config.
func StartMosquitto(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	bin := Require(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	port := FreePort(t)
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 1000
max_queued_messages 1000000
log_dest stderr
log_type error
log_type warning
log_type notice
%s
`, port, extra)
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{Addr: fmt.Sprintf("127.0.0.1:%d", port), log: &SyncBuffer{}, bin: bin, conf: path}
	m.start(t)
	t.Cleanup(m.stop)
	return m
}

func (m *Mosquitto) start(t testing.TB) {
	t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	WaitTCP(t, m.Addr, 10*time.Second)
}

func (m *Mosquitto) stop() {
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}

// Restart kills mosquitto (as a crash would: no persistence, so every
// session is lost) and starts it again on the same port.
func (m *Mosquitto) Restart(t testing.TB) {
	t.Helper()
	m.stop()
	m.start(t)
}

// WaitFor polls cond every 10 ms until it holds, failing the test after
// within. what says what was awaited.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
