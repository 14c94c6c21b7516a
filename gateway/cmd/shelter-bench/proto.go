package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The orchestrator runs the gateway and the publishers as copies of its own
// binary ("shelter-bench gateway", "shelter-bench publish"), so that each
// process's CPU time and peak RSS belong to one party. They talk over the
// child's stdin and stdout, one JSON object per line: a request, then its
// reply. The child's stderr is its log.

type request struct {
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

type reply struct {
	Err  string          `json:"err,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// handler serves one request; stop tells serve to return after replying.
type handler func(ctx context.Context, cmd string, args json.RawMessage) (data any, stop bool, err error)

// serve is the child side: it answers requests from in until a handler says
// stop. When in ends (the orchestrator died or closed it) or the process is
// told to terminate, it calls h with "stop" so the role shuts down cleanly.
func serve(in io.Reader, out io.Writer, h handler) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	reqs := make(chan request)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 4<<10), 1<<20) // requests are small
		for sc.Scan() {
			var r request
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				readErr <- fmt.Errorf("bad request %q: %w", sc.Text(), err)
				return
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	enc := json.NewEncoder(out)
	for {
		var r request
		select {
		case r = <-reqs:
		case err := <-readErr:
			_, _, _ = h(context.Background(), "stop", nil)
			return err // nil at EOF
		case <-ctx.Done():
			_, _, _ = h(context.Background(), "stop", nil)
			return nil
		}
		data, stop, err := h(ctx, r.Cmd, r.Args)
		var rep reply
		if err != nil {
			rep.Err = err.Error()
		} else if data != nil {
			b, merr := json.Marshal(data)
			if merr != nil {
				rep.Err = merr.Error()
			}
			rep.Data = b
		}
		if err := enc.Encode(rep); err != nil {
			_, _, _ = h(context.Background(), "stop", nil)
			return err
		}
		if stop {
			return nil
		}
	}
}

// child is a running role process, from the orchestrator's side.
type child struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	enc     *json.Encoder
	replies chan []byte
	exited  chan struct{}
	waitErr error
	log     *tailLog

	mu sync.Mutex // one request at a time
}

// startChild re-executes exe as role. Its stderr goes to logTo (prefixed)
// and is kept for error messages.
func startChild(exe, role string, logTo io.Writer) (*child, error) {
	cmd := exec.Command(exe, role)
	// Own process group: Ctrl-C reaches only the orchestrator, which stops
	// the children in order. Pdeathsig: no orphans if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{name: role, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin),
		replies: make(chan []byte, 1), exited: make(chan struct{}), log: newTailLog("["+role+"] ", logTo)}
	cmd.Stderr = c.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s process: %w", role, err)
	}
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			c.replies <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	go func() {
		<-stdoutDone
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// call sends a request and decodes the reply's data into out (if not nil),
// waiting at most timeout.
func (c *child) call(cmd string, args, out any, timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := request{Cmd: cmd}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		req.Args = b
	}
	if err := c.enc.Encode(req); err != nil {
		return fmt.Errorf("%s %s: send: %w%s", c.name, cmd, err, c.exitInfo())
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-c.replies:
		var rep reply
		if err := json.Unmarshal(line, &rep); err != nil {
			return fmt.Errorf("%s %s: bad reply %q: %w", c.name, cmd, line, err)
		}
		if rep.Err != "" {
			return fmt.Errorf("%s %s: %s", c.name, cmd, rep.Err)
		}
		if out != nil && rep.Data != nil {
			return json.Unmarshal(rep.Data, out)
		}
		return nil
	case <-c.exited:
		return fmt.Errorf("%s %s: process exited%s", c.name, cmd, c.exitInfo())
	case <-t.C:
		return fmt.Errorf("%s %s: no reply within %s%s", c.name, cmd, timeout, c.exitInfo())
	}
}

func (c *child) exitInfo() string {
	var b strings.Builder
	select {
	case <-c.exited:
		fmt.Fprintf(&b, " (%v)", c.waitErr)
	default:
	}
	if tail := c.log.Tail(); tail != "" {
		b.WriteString("; last log lines:\n" + tail)
	}
	return b.String()
}

// close ends the child: closing stdin asks it to stop; after grace it is
// killed. It always waits for the process.
func (c *child) close(grace time.Duration) {
	_ = c.stdin.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// tailLog forwards a child's log lines with a prefix and keeps the last few.
type tailLog struct {
	prefix string
	to     io.Writer
	mu     sync.Mutex
	part   []byte
	last   []string
}

const tailLines = 15

func newTailLog(prefix string, to io.Writer) *tailLog { return &tailLog{prefix: prefix, to: to} }

func (l *tailLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := strings.IndexByte(string(l.part), '\n')
		if i < 0 {
			break
		}
		line := string(l.part[:i])
		l.part = l.part[i+1:]
		if l.to != nil {
			fmt.Fprintln(l.to, l.prefix+line)
		}
		l.last = append(l.last, line)
		if len(l.last) > tailLines {
			l.last = l.last[1:]
		}
	}
	return len(p), nil
}

// Tail returns the last lines logged.
func (l *tailLog) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}

var errUnknownCmd = errors.New("unknown command")
