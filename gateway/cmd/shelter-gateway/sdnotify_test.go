package main

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket listens where the gateway sends its sd_notify datagrams,
// as systemd does for a Type=notify service.
type notifySocket struct {
	conn *net.UnixConn
	path string
}

func listenNotify(t *testing.T, dir string) *notifySocket {
	t.Helper()
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{conn: conn, path: path}
}

// next returns the next message that contains want, or fails after
// within; the messages seen before it are returned too.
func (n *notifySocket) next(t *testing.T, want string, within time.Duration) (msg string, before []string) {
	t.Helper()
	deadline := time.Now().Add(within)
	buf := make([]byte, 4096)
	for {
		_ = n.conn.SetReadDeadline(deadline)
		k, err := n.conn.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message with %q within %v (got %q): %v", want, within, before, err)
		}
		m := string(buf[:k])
		if strings.Contains(m, want) {
			return m, before
		}
		before = append(before, m)
	}
}

// TestSystemdNotify runs the gateway binary as systemd runs a Type=notify
// service with WatchdogSec=: it says READY=1 once it takes readings, pings
// the watchdog at half the interval while its core answers, says
// RELOADING=1 then READY=1 around a SIGHUP reload, and STOPPING=1 on
// SIGTERM.
func TestSystemdNotify(t *testing.T) {
	bin := buildGateway(t)
	dir := t.TempDir()
	sock := listenNotify(t, dir)
	cfg := writeConfig(t, dir, 1, "")
	start := time.Now()
	g := startGateway(t, bin, cfg, "NOTIFY_SOCKET="+sock.path, "WATCHDOG_USEC=400000")
	msg, before := sock.next(t, "READY=1", 20*time.Second)
	if len(before) > 0 || !strings.Contains(msg, "STATUS=taking readings") {
		t.Fatalf("first message %q (after %q), want READY=1 with its status first", msg, before)
	}
	t.Logf("READY=1 %v after start", time.Since(start).Round(time.Millisecond))
	// Half of 400 ms: about five pings a second.
	pings := 0
	until := time.Now().Add(time.Second)
	for time.Now().Before(until) {
		sock.next(t, "WATCHDOG=1", time.Second)
		pings++
	}
	if pings < 3 {
		t.Fatalf("%d watchdog pings in a second, want about 5", pings)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	msg, _ = sock.next(t, "RELOADING=1", 5*time.Second)
	if !strings.Contains(msg, "MONOTONIC_USEC=") {
		t.Errorf("reload message %q lacks MONOTONIC_USEC", msg)
	}
	sock.next(t, "READY=1", 5*time.Second)
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sock.next(t, "STOPPING=1", 5*time.Second)
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("gateway exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not stop within 15s of SIGTERM")
	}
}
