package proc

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// Program is an outside server a bench started: mosquitto, go2rtc,
// influxd.
type Program struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *tailLog
}

// StartProgram starts cmd in a process group of its own, killed with the
// bench. Its output goes to logTo, each line prefixed with "[name] ", and
// its last lines are kept for WaitReady's errors; with logTo nil the
// output is discarded (the bench process spends no CPU time on it).
func StartProgram(name string, cmd *exec.Cmd, logTo io.Writer) (*Program, error) {
	p := &Program{name: name, cmd: cmd, exited: make(chan struct{}), log: newTailLog("["+name+"] ", logTo)}
	if logTo != nil {
		cmd.Stdout, cmd.Stderr = p.log, p.log
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// StartRetrying starts a program with launch, then waits with ready until
// it serves. launch picks free ports for it, but another process may take
// one before the program binds it: a program that does not get ready is
// stopped and launched again, three times in all unless ctx is done. An
// error from launch itself is final.
func StartRetrying(ctx context.Context, launch func() (*Program, error), ready func(*Program) error) (*Program, error) {
	var lastErr error
	for range 3 {
		p, err := launch()
		if err != nil {
			return nil, err
		}
		if lastErr = ready(p); lastErr == nil {
			return p, nil
		}
		p.Stop()
		if ctx.Err() != nil {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

// WaitReady calls probe every interval until it succeeds, the program
// exits, ctx is done or limit has passed. notReady says what failed, as in
// "not listening on 127.0.0.1:1883".
func (p *Program) WaitReady(ctx context.Context, limit, interval time.Duration, notReady string, probe func() error) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited at start (%v): %s", p.name, p.cmd.ProcessState, p.log.Tail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		err := probe()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s after %s: %w; log: %s", p.name, notReady, limit, err, p.log.Tail())
		}
		if err := Sleep(ctx, interval); err != nil {
			return err
		}
	}
}

// Pid is the program's process id.
func (p *Program) Pid() int { return p.cmd.Process.Pid }

// Stop terminates the program and waits for it (SIGKILL after 5 s).
func (p *Program) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Kill kills the program at once and waits for it.
func (p *Program) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}
