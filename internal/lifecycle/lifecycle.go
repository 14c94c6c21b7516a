// Package lifecycle runs the gateway's long-running components as one
// ordered group: started in order, stopped in reverse, and the first one
// to fail stops the rest.
//
// Every component fits one contract, a Stage: an optional Start that must
// succeed before the next stage starts (binding a port, opening a file), a
// Run that serves until its context ends, and an optional Stop that
// releases what Start took once Run has returned. Order carries meaning:
// the gateway starts its store first and its intake (the MQTT broker)
// last, so at shutdown no message is acknowledged after the stages that
// make it durable have stopped.
//
// Each stage gets its own context, a child of the caller's that ignores
// the caller's cancellation (values still flow), so the group can cancel
// the stages one at a time, last first, waiting for each.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Stage is one component of the group.
type Stage struct {
	// Name names the stage in logs and errors.
	Name string
	// Start, when set, runs before the next stage starts; its error stops
	// the stages already started, in reverse.
	Start func(ctx context.Context) error
	// Run, when set, serves until ctx ends and then returns nil. Returning
	// before that (with or without an error) is a failure that stops the
	// group.
	Run func(ctx context.Context) error
	// Stop, when set, runs once Run has returned (or at shutdown, for a
	// stage without Run).
	Stop func() error
}

// Group is an ordered list of stages.
type Group struct {
	// Logger receives a line per stage started and stopped.
	Logger *slog.Logger
	// OnStarted, when set, is called once every stage has started.
	OnStarted func()
	// OnStopping, when set, is called once when the group begins to stop.
	OnStopping func()
	stages     []Stage
}

// Add appends stages; they start after those already added.
func (g *Group) Add(stages ...Stage) { g.stages = append(g.stages, stages...) }

// Names lists the stages in start order.
func (g *Group) Names() []string {
	out := make([]string, len(g.stages))
	for i, s := range g.stages {
		out[i] = s.Name
	}
	return out
}

type running struct {
	stage  Stage
	cancel context.CancelFunc
	done   chan error // nil without Run
}

type exit struct {
	name string
	err  error
}

// Run starts every stage in order and serves until ctx ends or a stage
// fails; then it stops the started stages in reverse order, each after
// the one started after it has fully stopped. It returns the first
// failure joined with every error met while stopping (nil after a clean
// shutdown).
func (g *Group) Run(ctx context.Context) error {
	log := g.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := context.WithoutCancel(ctx)
	exits := make(chan exit, len(g.stages))
	var started []running
	var cause error
	failed := "" // the stage whose exit stopped the group
	for _, s := range g.stages {
		sctx, cancel := context.WithCancel(base)
		r := running{stage: s, cancel: cancel}
		if s.Start != nil {
			if err := s.Start(sctx); err != nil {
				cancel()
				cause = fmt.Errorf("start %s: %w", s.Name, err)
				break
			}
		}
		if s.Run != nil {
			r.done = make(chan error, 1)
			go func() {
				err := s.Run(sctx)
				r.done <- err
				exits <- exit{s.Name, err}
			}()
		}
		started = append(started, r)
		log.Info("lifecycle: started", "stage", s.Name)
		if ctx.Err() != nil {
			break
		}
	}
	if cause == nil && len(started) == len(g.stages) && g.OnStarted != nil && ctx.Err() == nil {
		g.OnStarted()
	}
	if cause == nil {
		select {
		case <-ctx.Done():
		case e := <-exits:
			failed = e.name
			cause = fmt.Errorf("%s stopped: %w", e.name, errOrUnexpected(e.err))
		}
	}
	if cause != nil {
		log.Error("lifecycle: stopping after a failure", "err", cause)
	}
	if g.OnStopping != nil {
		g.OnStopping()
	}
	errs := []error{cause}
	for i := len(started) - 1; i >= 0; i-- {
		r := started[i]
		t0 := time.Now()
		r.cancel()
		if r.done != nil {
			if err := <-r.done; err != nil && r.stage.Name != failed {
				errs = append(errs, fmt.Errorf("%s: %w", r.stage.Name, err))
			}
		}
		if r.stage.Stop != nil {
			if err := r.stage.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", r.stage.Name, err))
			}
		}
		log.Info("lifecycle: stopped", "stage", r.stage.Name, "took", time.Since(t0).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

// errUnexpected is a stage's Run returning nil before it was asked to stop.
var errUnexpected = errors.New("returned before shutdown")

func errOrUnexpected(err error) error {
	if err == nil {
		return errUnexpected
	}
	return err
}
