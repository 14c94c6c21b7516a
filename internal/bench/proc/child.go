package proc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Child is a running role process, from the orchestrator's side.
type Child struct {
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

// Start re-executes exe (the bench binary) as role r. The child's stderr
// goes to logTo, each line prefixed with "[role] ".
func (r Role) Start(exe string, logTo io.Writer) (*Child, error) {
	cmd := exec.Command(exe, r.Name)
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
	c := &Child{name: r.Name, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin),
		replies: make(chan []byte, 1), exited: make(chan struct{}), log: newTailLog("["+r.Name+"] ", logTo)}
	cmd.Stderr = c.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s process: %w", r.Name, err)
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

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Call sends a request and decodes the reply's data into out (if not nil),
// waiting at most timeout.
func (c *Child) Call(cmd string, args, out any, timeout time.Duration) error {
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

func (c *Child) exitInfo() string {
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

// Close ends the child: closing stdin asks it to stop; after grace it is
// killed. It always waits for the process.
func (c *Child) Close(grace time.Duration) {
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

// tailLog forwards a process's log lines with a prefix and keeps the last
// few.
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
