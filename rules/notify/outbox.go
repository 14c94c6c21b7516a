package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// ErrClosed is returned by Enqueue on a closed outbox.
var ErrClosed = errors.New("notify: outbox closed")

// DeliveryState is where a delivery is.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed"
)

// Delivery is one event on its way to one channel, as the API shows it.
type Delivery struct {
	ID       uint64          `json:"id"`
	EventID  string          `json:"event_id"`
	AlarmID  string          `json:"alarm_id"`
	AlarmSeq uint64          `json:"alarm_seq"`
	Channel  string          `json:"channel"`
	Kind     alarm.EventKind `json:"kind"`
	Level    int             `json:"level"`
	Severity alarm.Severity  `json:"severity"`
	State    DeliveryState   `json:"state"`
	Attempts int             `json:"attempts"`
	// LastError is the last failed attempt's error (never a credential).
	LastError   string    `json:"last_error,omitempty"`
	Enqueued    time.Time `json:"enqueued"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Finished is when it was delivered or marked failed.
	Finished time.Time `json:"finished,omitzero"`
}

// ChannelSettings bound one channel's deliveries.
type ChannelSettings struct {
	// Concurrency is how many Sends run at once (default
	// Options.Concurrency), plus one worker kept for critical and fire
	// deliveries.
	Concurrency int
	// Timeout bounds one Send (default Options.Timeout).
	Timeout time.Duration
}

// Options configure an Outbox. Zero values take the defaults of Config.
type Options struct {
	Channels []Channel
	// Routes choose channels per event; none: every channel gets every event.
	Routes   []Route
	Settings map[string]ChannelSettings
	// RetryMin and RetryMax bound the jittered exponential backoff
	// (internal/backoff) between attempts; critical and fire deliveries
	// wait at most UrgentRetryMax.
	RetryMin, RetryMax time.Duration
	// MaxAge and MaxAttempts (0: no cap) fail non-urgent deliveries that
	// could not be made. Critical and fire deliveries never expire.
	MaxAge      time.Duration
	MaxAttempts int
	Concurrency int
	Timeout     time.Duration
	// KeepFinished is how long finished deliveries stay in Deliveries.
	KeepFinished time.Duration
	Logger       *slog.Logger
	// Now is the clock for records and expiry (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(DefaultRetryMax, o.RetryMin)
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.KeepFinished <= 0 {
		o.KeepFinished = DefaultKeepFinished
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Outbox is the durable queue of deliveries. See the package doc.
type Outbox struct {
	db      *pebble.DB
	opts    Options
	log     *slog.Logger
	limiter *ratelog.Limiter
	metrics *metrics
	lanes   map[string]*lane
	order   []string // channel names in configuration order
	routes  []route

	reqs   chan *enqueueReq
	nextID uint64 // owned by the writer goroutine (and Open before it)

	pendMu sync.Mutex
	pend   map[uint64]struct{}

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
	closeErr  error
	// dbMu guards queries against Close.
	dbMu   sync.RWMutex
	closed bool
}

// Open opens (creating if needed) the outbox database in dir and loads the
// deliveries that were pending; Run delivers them and what is enqueued
// later. Enqueue waits until Run has started.
func Open(dir string, opts Options) (*Outbox, error) {
	opts.defaults()
	if dir == "" {
		return nil, errors.New("notify: open outbox: no directory")
	}
	o := &Outbox{
		opts:    opts,
		log:     opts.Logger,
		limiter: ratelog.New(time.Minute),
		lanes:   map[string]*lane{},
		reqs:    make(chan *enqueueReq),
		pend:    map[uint64]struct{}{},
	}
	for _, ch := range opts.Channels {
		name := ch.Name()
		if _, dup := o.lanes[name]; dup || name == "" || strings.ContainsRune(name, 0) {
			return nil, fmt.Errorf("notify: open outbox: channel name %q is empty or used twice", name)
		}
		s := opts.Settings[name]
		if s.Concurrency <= 0 {
			s.Concurrency = opts.Concurrency
		}
		if s.Timeout <= 0 {
			s.Timeout = opts.Timeout
		}
		o.lanes[name] = &lane{o: o, ch: ch, name: name, conc: s.Concurrency, timeout: s.Timeout,
			chains: map[string][]*item{}, wake: make(chan struct{}, 1), wakeUrgent: make(chan struct{}, 1),
			ready:   itemHeap{less: byPriority},
			waiting: itemHeap{less: byNextAttempt}}
		o.order = append(o.order, name)
	}
	for i, r := range opts.Routes {
		for _, n := range r.Channels {
			if o.lanes[n] == nil {
				return nil, fmt.Errorf("notify: open outbox: routes[%d] names unknown channel %q", i, n)
			}
		}
		o.routes = append(o.routes, compileRoute(r))
	}
	o.metrics = newMetrics(o.order)
	// The outbox holds a few records per alarm: small buffers and a small
	// block cache keep it from weighing on the gateway's memory budget.
	cache := pebble.NewCache(1 << 20)
	defer cache.Unref()
	// Alarm texts name residents' rooms: private to the gateway (0700).
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify: open outbox: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify: open outbox: %w", err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebblelog.New("notify", o.log), MemTableSize: 256 << 10, Cache: cache})
	if err != nil {
		return nil, fmt.Errorf("notify: open outbox in %s: %w", dir, err)
	}
	o.db = db
	for _, name := range o.order {
		if s, ok := o.lanes[name].ch.(stateful); ok {
			if err := s.loadState(&stateStore{db: db, prefix: append(append([]byte{prefixState}, name...), 0)}); err != nil {
				db.Close()
				return nil, fmt.Errorf("notify: load state of channel %s: %w", name, err)
			}
		}
	}
	if err := o.recover(); err != nil {
		db.Close()
		return nil, err
	}
	// The outbox's own lifetime: Run ends it with the caller's context,
	// Close ends it in any case.
	o.ctx, o.cancel = context.WithCancel(context.Background())
	return o, nil
}

// Run delivers until ctx ends, then stops delivering and closes the
// outbox (as Close). Deliveries still pending stay in the database for the
// next Run.
func (o *Outbox) Run(ctx context.Context) error {
	o.start()
	stop := context.AfterFunc(ctx, o.cancel)
	defer stop()
	<-o.ctx.Done()
	return o.Close()
}

// start starts the writer, the maintenance and the channels' workers,
// once; Close waits for them.
func (o *Outbox) start() {
	o.startOnce.Do(o.startWorkers)
}

func (o *Outbox) startWorkers() {
	o.wg.Add(2)
	go o.writer()
	go o.maintenance()
	for _, name := range o.order {
		l := o.lanes[name]
		for range l.conc {
			o.wg.Add(1)
			go l.work(o.ctx, false)
		}
		// One more worker takes only critical and fire deliveries, so that
		// a fire never waits for a slow receiver to finish lesser ones.
		o.wg.Add(1)
		go l.work(o.ctx, true)
		if r, ok := l.ch.(runner); ok {
			o.wg.Add(1)
			go func() { defer o.wg.Done(); r.run(o.ctx) }()
		}
	}
}

// stateful channels keep state in the outbox database (loaded at Open).
type stateful interface {
	loadState(st *stateStore) error
}

// runner channels have work of their own while the outbox runs.
type runner interface {
	run(ctx context.Context)
}

// Register registers the outbox's metrics with reg.
func (o *Outbox) Register(reg prometheus.Registerer) error {
	for _, c := range o.metrics.collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Channels returns the channel names in configuration order.
func (o *Outbox) Channels() []string { return slices.Clone(o.order) }

// Close stops delivering and closes the database. Sends in flight are
// cancelled; their deliveries stay pending and resume at the next Open.
func (o *Outbox) Close() error {
	o.closeOnce.Do(func() {
		o.startOnce.Do(func() {}) // a Run after Close starts nothing
		o.cancel()
		o.wg.Wait()
		for _, ch := range o.opts.Channels {
			if c, ok := ch.(interface{ closeIdle() }); ok {
				c.closeIdle()
			}
		}
		o.dbMu.Lock()
		defer o.dbMu.Unlock()
		o.closed = true
		// Delivery states were written without waiting for the disk: one
		// synced write makes them all durable.
		stamp, _ := o.opts.Now().MarshalText()
		err := pebblelog.Guard(func() error { return o.db.Set([]byte{prefixMeta, 'c'}, stamp, pebble.Sync) })
		o.closeErr = errors.Join(err, o.db.Close())
		if o.closeErr != nil {
			o.closeErr = fmt.Errorf("notify: close outbox: %w", o.closeErr)
		}
	})
	return o.closeErr
}
