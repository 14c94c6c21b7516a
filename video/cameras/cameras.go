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
// A camera may also have a sub stream (the low-resolution second stream
// almost every IP camera offers, which NVRs use for grids). The sub stream
// has its own hub and source and is pulled only while someone watches it,
// unless configured always on; viewers on slow links and camera walls are
// given it (see video/whep). The camera's health is its main stream's.
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
	// SubURL is the camera's sub stream ("": none); SubAlwaysOn pulls it
	// from start to shutdown instead of only while watched.
	SubURL      string
	SubAlwaysOn bool
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
	// Sub is the sub stream's state, when the camera has one.
	Sub *SubStatus `json:"sub,omitempty"`
}

// SubStatus is the state of a camera's sub stream.
type SubStatus struct {
	Pulling bool `json:"pulling"`
	Viewers int  `json:"viewers"`
	source.Status
}

// stream is one of a camera's streams: a hub, the source that fills it,
// and the viewers' references that keep an on-demand pull running.
type stream struct {
	name     string // whep.StreamMain or whep.StreamSub
	hub      *hub.Hub
	src      *source.Source
	onDemand bool
	refs     int
	// running pull: cancel stops it, done closes when it has stopped
	cancel context.CancelFunc
	done   chan struct{}
	// stopping closes when the previous (stopped) pull has returned: a new
	// pull waits for it, so one hub never has two sources.
	stopping chan struct{}
	grace    *time.Timer
}

type cam struct {
	cfg       Camera
	main, sub *stream
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
		main, err := newStream(c.ID, string(whep.StreamMain), c.URL, c.Transport, c.OnDemand, hubOpts, logger)
		if err != nil {
			return nil, err
		}
		cm := &cam{cfg: c, main: main}
		if c.SubURL != "" {
			if cm.sub, err = newStream(c.ID+"/sub", string(whep.StreamSub), c.SubURL, c.Transport, !c.SubAlwaysOn, hubOpts, logger); err != nil {
				return nil, err
			}
		}
		s.cams[c.ID] = cm
	}
	return s, nil
}

func newStream(name, kind, url, transport string, onDemand bool, hubOpts hub.Options, logger *slog.Logger) (*stream, error) {
	h := hub.New(hubOpts)
	src, err := source.New(source.Options{Name: name, URL: url, Transport: transport, Hub: h, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("cameras: %w", err)
	}
	return &stream{name: kind, hub: h, src: src, onDemand: onDemand}, nil
}

func (c *cam) streams() []*stream {
	if c.sub == nil {
		return []*stream{c.main}
	}
	return []*stream{c.main, c.sub}
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
		for _, st := range c.streams() {
			if !st.onDemand {
				s.startLocked(c, st)
			}
		}
	}
}

func (s *Set) startLocked(c *cam, st *stream) {
	ctx, cancel := context.WithCancel(s.ctx)
	st.cancel, st.done = cancel, make(chan struct{})
	done, prev := st.done, st.stopping
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		_ = st.src.Run(ctx)
	}()
	s.log.Info("camera: pulling", "camera", c.cfg.ID, "stream", st.name, "on_demand", st.onDemand)
}

// Acquire implements whep.Cameras.
func (s *Set) Acquire(_ context.Context, id string, which whep.Stream) (*hub.Hub, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cams[id]
	if !ok {
		return nil, nil, whep.ErrUnknownCamera
	}
	st := c.main
	if which == whep.StreamSub {
		if c.sub == nil {
			return nil, nil, whep.ErrNoSubStream
		}
		st = c.sub
	}
	if s.closed || s.ctx == nil {
		return nil, nil, errors.New("cameras are not running")
	}
	if !st.idle() {
		// A pulling stream that is failed or stalled: say so now, with
		// the reason, rather than keep a viewer waiting for a stream that
		// is not coming. (A stream connecting is waited for.)
		if ss := st.src.Status(); ss.State == source.StateFailed || ss.State == source.StateStalled {
			return nil, nil, fmt.Errorf("%w (%s): %s", whep.ErrCameraDown, ss.State, ss.Reason)
		}
	}
	st.refs++
	if st.grace != nil {
		st.grace.Stop()
		st.grace = nil
	}
	if st.idle() {
		s.startLocked(c, st)
	}
	var once sync.Once
	return st.hub, func() { once.Do(func() { s.release(c, st) }) }, nil
}

// Reason is why a camera shows no video now ("" when it is live or
// unknown): the WHEP server adds it to a refusal.
func (s *Set) Reason(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cams[id]
	if !ok {
		return ""
	}
	st := c.main.src.Status()
	if st.State == source.StateLive {
		return ""
	}
	if st.Reason == "" {
		return st.State
	}
	return st.State + ": " + st.Reason
}

// idle: an on-demand stream not pulling now.
func (st *stream) idle() bool { return st.onDemand && st.cancel == nil }

func (s *Set) release(c *cam, st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.refs--
	if st.refs > 0 || !st.onDemand || st.cancel == nil || s.closed {
		return
	}
	st.grace = time.AfterFunc(c.cfg.Grace, func() { s.stopIdle(c, st) })
}

// stopIdle ends an on-demand pull whose grace period ran out.
func (s *Set) stopIdle(c *cam, st *stream) {
	s.mu.Lock()
	if st.refs > 0 || st.cancel == nil || st.grace == nil {
		s.mu.Unlock()
		return // a viewer came back meanwhile
	}
	st.grace = nil
	cancel := st.cancel
	st.cancel, st.stopping, st.done = nil, st.done, nil
	// Forget before anyone can start a new pull, so that a new pull's
	// media is never erased.
	st.hub.Forget()
	s.mu.Unlock()
	cancel()
	s.log.Info("camera: stopped pulling, nobody watching", "camera", c.cfg.ID, "stream", st.name)
}

// Hub returns a camera's main hub (for tests and benchmarks), or nil.
func (s *Set) Hub(id string) *hub.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cams[id]; ok {
		return c.main.hub
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
			Pulling: c.main.cancel != nil, Viewers: c.main.hub.Viewers(), Status: c.main.src.Status()}
		if !st.Pulling {
			st.State, st.Reason = "idle", "on demand: pulled only while someone watches"
		}
		if c.sub != nil {
			sub := &SubStatus{Pulling: c.sub.cancel != nil, Viewers: c.sub.hub.Viewers(), Status: c.sub.src.Status()}
			if !sub.Pulling {
				sub.State, sub.Reason = "idle", "on demand: pulled only while someone watches"
			}
			st.Sub = sub
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
		for _, st := range c.streams() {
			if st.grace != nil {
				st.grace.Stop()
				st.grace = nil
			}
			if st.cancel != nil {
				st.cancel()
				wait = append(wait, st.done)
				st.cancel, st.done = nil, nil
			}
			if st.stopping != nil {
				wait = append(wait, st.stopping)
			}
		}
	}
	s.mu.Unlock()
	for _, d := range wait {
		<-d
	}
	for _, c := range s.cams {
		for _, st := range c.streams() {
			st.hub.Close()
		}
	}
}
