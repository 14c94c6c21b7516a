// Package proc starts, drives and stops the processes a bench measures, so
// that each one's CPU time and peak RSS belong to one party:
//
//   - roles: copies of the bench binary re-executed as "shelter-bench
//     gateway" or "shelter-bench publish". The orchestrator drives a role
//     over the child's stdin and stdout, one JSON request and one JSON
//     reply per line; the child's stderr is its log, forwarded with a
//     prefix and its last lines kept for error messages.
//   - programs: outside servers a bench needs or compares with (mosquitto,
//     go2rtc, influxd), started on ports the kernel chose and polled until
//     they serve.
//
// Every process gets a process group of its own, so that Ctrl-C reaches
// only the orchestrator, which stops them in order, and a parent-death
// signal, so that none outlives a killed bench.
package proc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type request struct {
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

type reply struct {
	Err  string          `json:"err,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Handler serves one request of a role; stop tells the role to exit after
// replying. A role is always sent "stop" last: by the orchestrator, or when
// its stdin ends or it is told to terminate.
type Handler func(ctx context.Context, cmd string, args json.RawMessage) (data any, stop bool, err error)

// ErrUnknownCmd is what a Handler wraps for a command it does not know.
var ErrUnknownCmd = errors.New("unknown command")

// Role is a part the bench binary plays in a child process: the first
// argument names it, and New returns the handler serving its requests.
type Role struct {
	Name string
	New  func() Handler
}

// RunRole serves the role args[0] names, if it is one of roles, on this
// process's stdin and stdout until the role stops.
func RunRole(args []string, roles ...Role) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	for _, r := range roles {
		if r.Name != args[0] {
			continue
		}
		if err := serve(os.Stdin, os.Stdout, r.New()); err != nil {
			fmt.Fprintf(os.Stderr, "shelter-bench %s: %v\n", r.Name, err)
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// serve is the child side: it answers requests from in until a handler says
// stop. When in ends (the orchestrator died or closed it) or the process is
// told to terminate, it calls h with "stop" so the role shuts down cleanly.
func serve(in io.Reader, out io.Writer, h Handler) error {
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
