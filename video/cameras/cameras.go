// Package cameras owns the gateway's cameras: for each, one hub and the
// source that pulls it, always on or on demand.
//
// Always-on (the default) pulls from start to shutdown, so a camera that
// goes dark is noticed (and alarmed by the gateway) even when nobody is
// watching: supervision needs the gap known, not discovered later.
// On-demand pulls only while someone watches: the first viewer starts the
// pull (the WHEP server waits for the first stream), and the pull stops a
// grace period after the last viewer leaves, so a viewer who reloads the
// page does not pay for a new RTSP handshake. When an on-demand pull
// stops, its hub forgets the cached GOP: the next viewer must not be shown
// a minutes-old picture as if it were live.
//
// Set implements whep.Cameras. One goroutine per running source; the
// Set's mutex guards reference counts and timers.
package cameras

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	healthdev "github.com/shelterwatch/shelterwatch/ingest/health"
	"github.com/shelterwatch/shelterwatch/video/hub"
	"github.com/shelterwatch/shelterwatch/video/source"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

// Camera configures one camera.
type Camera struct {
	ID        string
	Name      string
	Zone      string
	URL       string
	Transport string
	// OnDemand pulls only while viewed; Grace is how long the pull
	// outlives the last viewer (default 10s).
	OnDemand bool
	Grace    time.Duration
	// DownAfter is how long an always-on camera may show no video before
	// it is reported as a fault (default DefaultDownAfter).
	DownAfter time.Duration
}

// Defaults of a Camera; the gateway's config applies the same ones.
const (
	DefaultGrace     = 10 * time.Second
	DefaultDownAfter = time.Minute
)

// Status is one camera's state for the API.
type Status struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Zone     string `json:"zone,omitempty"`
	OnDemand bool   `json:"on_demand"`
	// Pulling says whether the source runs now (always, for an always-on
	// camera).
	Pulling bool `json:"pulling"`
	Viewers int  `json:"viewers"`
	source.Status
}

type cam struct {
	cfg  Camera
	hub  *hub.Hub
	src  *source.Source
	refs int
	// running pull: cancel stops it, done closes when it has stopped
	cancel context.CancelFunc
	done   chan struct{}
	// stopping closes when the previous (stopped) pull has returned: a new
	// pull waits for it, so one hub never has two sources.
	stopping chan struct{}
	grace    *time.Timer
}

// Set is the gateway's cameras.
type Set struct {
	log    *slog.Logger
	ctx    context.Context
	mu     sync.Mutex
	cams   map[string]*cam
	closed bool
}

// New builds the cameras; Run pulls and watches them.
func New(cfgs []Camera, hubOpts hub.Options, logger *slog.Logger) (*Set, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Set{log: logger, cams: map[string]*cam{}}
	for _, c := range cfgs {
		if _, dup := s.cams[c.ID]; dup {
			return nil, fmt.Errorf("cameras: duplicate camera id %q", c.ID)
		}
		if c.Grace <= 0 {
			c.Grace = DefaultGrace
		}
		if c.DownAfter <= 0 {
			c.DownAfter = DefaultDownAfter
		}
		h := hub.New(hubOpts)
		src, err := source.New(source.Options{Name: c.ID, URL: c.URL, Transport: c.Transport, Hub: h, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("cameras: %w", err)
		}
		s.cams[c.ID] = &cam{cfg: c, hub: h, src: src}
	}
	return s, nil
}

// Run pulls the always-on cameras and watches them until ctx ends, then
// closes the set. Each always-on camera's condition goes to health (when
// not nil) once a second: ok while live, a fault once it has shown no
// video for its DownAfter.
func (s *Set) Run(ctx context.Context, health Health) error {
	s.start(ctx)
	defer s.Close()
	w := newWatchdog(time.Now())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			if health == nil {
				continue
			}
			for _, st := range s.Statuses() {
				if st.OnDemand {
					continue
				}
				if cond := w.condition(st, s.downAfter(st.ID), now); cond != "" {
					health.Set(healthdev.CameraDevice(st.ID), cond)
				}
			}
		}
	}
}

func (s *Set) downAfter(id string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cams[id]; ok {
		return c.cfg.DownAfter
	}
	return DefaultDownAfter
}

// start begins the always-on pulls; they run until ctx ends or Close.
func (s *Set) start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	for _, c := range s.cams {
		if !c.cfg.OnDemand {
			s.startLocked(c)
		}
	}
}

func (s *Set) startLocked(c *cam) {
	ctx, cancel := context.WithCancel(s.ctx)
	c.cancel, c.done = cancel, make(chan struct{})
	done, prev := c.done, c.stopping
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		_ = c.src.Run(ctx)
	}()
	s.log.Info("camera: pulling", "camera", c.cfg.ID, "on_demand", c.cfg.OnDemand)
}

// Acquire implements whep.Cameras.
func (s *Set) Acquire(_ context.Context, id string) (*hub.Hub, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cams[id]
	if !ok {
		return nil, nil, whep.ErrUnknownCamera
	}
	if s.closed || s.ctx == nil {
		return nil, nil, errors.New("cameras are not running")
	}
	if !c.idle() && c.src != nil {
		// A pulling camera that is failed or stalled: say so now, with
		// the reason, rather than keep a viewer waiting for a stream that
		// is not coming. (A camera connecting is waited for.)
		if st := c.src.Status(); st.State == source.StateFailed || st.State == source.StateStalled {
			return nil, nil, fmt.Errorf("%w (%s): %s", whep.ErrCameraDown, st.State, st.Reason)
		}
	}
	c.refs++
	if c.grace != nil {
		c.grace.Stop()
		c.grace = nil
	}
	if c.idle() {
		s.startLocked(c)
	}
	var once sync.Once
	return c.hub, func() { once.Do(func() { s.release(c) }) }, nil
}

// Reason is why a camera shows no video now ("" when it is live or
// unknown): the WHEP server adds it to a refusal.
func (s *Set) Reason(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cams[id]
	if !ok || c.src == nil {
		return ""
	}
	st := c.src.Status()
	if st.State == source.StateLive {
		return ""
	}
	if st.Reason == "" {
		return st.State
	}
	return st.State + ": " + st.Reason
}

// idle: an on-demand camera not pulling now.
func (c *cam) idle() bool { return c.cfg.OnDemand && c.cancel == nil }

func (s *Set) release(c *cam) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.refs--
	if c.refs > 0 || !c.cfg.OnDemand || c.cancel == nil || s.closed {
		return
	}
	c.grace = time.AfterFunc(c.cfg.Grace, func() { s.stopIdle(c) })
}

// stopIdle ends an on-demand pull whose grace period ran out.
func (s *Set) stopIdle(c *cam) {
	s.mu.Lock()
	if c.refs > 0 || c.cancel == nil || c.grace == nil {
		s.mu.Unlock()
		return // a viewer came back meanwhile
	}
	c.grace = nil
	cancel := c.cancel
	c.cancel, c.stopping, c.done = nil, c.done, nil
	// Forget before anyone can start a new pull, so that a new pull's
	// media is never erased.
	c.hub.Forget()
	s.mu.Unlock()
	cancel()
	s.log.Info("camera: stopped pulling, nobody watching", "camera", c.cfg.ID)
}

// Hub returns a camera's hub (for tests and benchmarks), or nil.
func (s *Set) Hub(id string) *hub.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cams[id]; ok {
		return c.hub
	}
	return nil
}

// Statuses lists the cameras, by id.
func (s *Set) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.cams))
	for _, c := range s.cams {
		st := Status{ID: c.cfg.ID, Name: c.cfg.Name, Zone: c.cfg.Zone, OnDemand: c.cfg.OnDemand,
			Pulling: c.cancel != nil, Viewers: c.hub.Viewers(), Status: c.src.Status()}
		if !st.Pulling {
			st.State, st.Reason = "idle", "on demand: pulled only while someone watches"
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close stops every pull and closes the hubs (ending their viewers).
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	var wait []chan struct{}
	for _, c := range s.cams {
		if c.grace != nil {
			c.grace.Stop()
			c.grace = nil
		}
		if c.cancel != nil {
			c.cancel()
			wait = append(wait, c.done)
			c.cancel, c.done = nil, nil
		}
		if c.stopping != nil {
			wait = append(wait, c.stopping)
		}
	}
	s.mu.Unlock()
	for _, d := range wait {
		<-d
	}
	for _, c := range s.cams {
		c.hub.Close()
	}
}
