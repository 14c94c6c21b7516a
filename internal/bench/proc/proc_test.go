package proc

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// echo is a role for the tests: "echo" returns its argument, "stop" stops.
var echo = Role{Name: "echo", New: func() Handler {
	return func(_ context.Context, cmd string, args json.RawMessage) (any, bool, error) {
		switch cmd {
		case "echo":
			var s string
			err := json.Unmarshal(args, &s)
			return s, false, err
		case "stop":
			return nil, true, nil
		}
		return nil, false, ErrUnknownCmd
	}
}}

// TestMain lets the test binary play the echo role, and a program that
// listens on the address it is given.
func TestMain(m *testing.M) {
	if code, ok := RunRole(os.Args[1:], echo); ok {
		os.Exit(code)
	}
	if len(os.Args) == 3 && os.Args[1] == "listen" {
		ln, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			os.Exit(1)
		}
		defer ln.Close()
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestRole(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := echo.Start(exe, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(5 * time.Second)
	var got string
	if err := c.Call("echo", "hello", &got, 10*time.Second); err != nil || got != "hello" {
		t.Errorf(`Call("echo", "hello") = %q, %v`, got, err)
	}
	if err := c.Call("nope", nil, nil, 10*time.Second); err == nil || !strings.Contains(err.Error(), "echo nope: unknown command") {
		t.Errorf(`Call("nope") = %v, want the role's error`, err)
	}
	if err := c.Call("stop", nil, nil, 10*time.Second); err != nil {
		t.Errorf(`Call("stop") = %v`, err)
	}
	if err := c.Call("echo", "late", nil, 10*time.Second); err == nil {
		t.Error("a call after stop succeeded")
	}
	if code, ok := RunRole([]string{"other"}, echo); ok {
		t.Errorf("RunRole of an unknown role = %d, true; want false", code)
	}
}

func TestProgramRetriesUntilReady(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	launches := 0
	var addr string
	p, err := StartRetrying(ctx, func() (*Program, error) {
		launches++
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
		// The first launch exits at once, as a program whose port was
		// taken would; the second listens.
		if launches == 1 {
			return StartProgram("sh", exec.Command("sh", "-c", "exit 3"), t.Output())
		}
		return StartProgram("listener", exec.Command(exe, "listen", addr), t.Output())
	}, func(p *Program) error {
		return p.WaitReady(ctx, 5*time.Second, 20*time.Millisecond, "not listening on "+addr, func() error {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
	})
	if err != nil {
		t.Fatalf("StartRetrying: %v (after %d launches)", err, launches)
	}
	if launches != 2 {
		t.Errorf("%d launches, want 2: one that exited, one that listens", launches)
	}
	p.Stop()
	p.Stop() // again: a no-op
}

func TestProgramExitedAtStart(t *testing.T) {
	p, err := StartProgram("sh", exec.Command("sh", "-c", "echo broken config >&2; exit 3"), t.Output())
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(context.Background(), 5*time.Second, 10*time.Millisecond, "not ready", func() error { return errors.New("no") })
	if err == nil || !strings.Contains(err.Error(), "sh exited at start (exit status 3): broken config") {
		t.Errorf("WaitReady = %v, want the exit and the program's last log line", err)
	}
}
