package notify

import (
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/internal/backoff"
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
	closeOnce sync.Once
	closeErr  error
	// dbMu guards queries against Close.
	dbMu   sync.RWMutex
	closed bool
}

// Keys of the outbox database.
const (
	prefixDelivery = 'd' // d<id>: record (JSON)
	prefixPending  = 'p' // p<id>: the delivery is pending
	prefixAlarm    = 'a' // a<alarm id>\x00<id>: deliveries per alarm
	prefixEvent    = 'e' // e<event id>: eventMarker, for idempotent Enqueue and purging
	prefixState    = 's' // s<channel>\x00<key>: channel state (MQTT zones)
	prefixMeta     = 'm' // m<name>: the outbox's own bookkeeping
)

func idKey(prefix byte, id uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

func alarmKey(alarmID string, id uint64) []byte {
	k := make([]byte, 0, len(alarmID)+10)
	k = append(k, prefixAlarm)
	k = append(k, alarmID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

func eventKey(eventID string) []byte { return append([]byte{prefixEvent}, eventID...) }

// record is a delivery with its event, as stored.
type record struct {
	Delivery
	Event alarm.Event `json:"event"`
}

type eventMarker struct {
	Enqueued time.Time `json:"enqueued"`
	AlarmID  string    `json:"alarm_id"`
	IDs      []uint64  `json:"ids"`
}

// Open opens (creating if needed) the outbox database in dir, resumes the
// deliveries that were pending, and starts delivering. Close stops it.
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
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{o.log}, MemTableSize: 256 << 10, Cache: cache})
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
	o.ctx, o.cancel = context.WithCancel(context.Background())
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
	return o, nil
}

// stateful channels keep state in the outbox database (loaded at Open).
type stateful interface {
	loadState(st *stateStore) error
}

// runner channels have work of their own while the outbox runs.
type runner interface {
	run(ctx context.Context)
}

// recover reads the pending deliveries back into their lanes.
func (o *Outbox) recover() error {
	it, err := o.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDelivery}, UpperBound: []byte{prefixDelivery + 1}})
	if err != nil {
		return fmt.Errorf("notify: recover: %w", err)
	}
	if it.Last() {
		o.nextID = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("notify: recover: %w", err)
	}
	o.nextID++

	it, err = o.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixPending}, UpperBound: []byte{prefixPending + 1}})
	if err != nil {
		return fmt.Errorf("notify: recover: %w", err)
	}
	defer it.Close()
	b := o.db.NewBatch()
	defer b.Close()
	resumed, dropped := 0, 0
	for it.First(); it.Valid(); it.Next() {
		id := binary.BigEndian.Uint64(it.Key()[1:])
		rec, err := o.read(id)
		if err != nil || rec.State != DeliveryPending {
			if err != nil {
				o.log.Error("notify: unreadable pending delivery dropped", "id", id, "err", err)
			}
			_ = b.Delete(idKey(prefixPending, id), nil)
			continue
		}
		l := o.lanes[rec.Channel]
		if l == nil {
			rec.State, rec.Finished = DeliveryFailed, o.opts.Now()
			rec.LastError = fmt.Sprintf("channel %q is not configured any more", rec.Channel)
			v, _ := json.Marshal(rec)
			_ = b.Set(idKey(prefixDelivery, id), v, nil)
			_ = b.Delete(idKey(prefixPending, id), nil)
			o.log.Error("notify: pending delivery to a channel that is no longer configured marked failed",
				"channel", rec.Channel, "alarm", rec.AlarmID, "kind", rec.Kind)
			o.metrics.deliveries.WithLabelValues(rec.Channel, outcomeDropped).Inc()
			dropped++
			continue
		}
		// A restart is a good moment to try again, whatever the backoff said.
		rec.NextAttempt = time.Time{}
		l.add(&item{rec: rec})
		resumed++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("notify: recover: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("notify: recover: %w", err)
	}
	if resumed > 0 || dropped > 0 {
		o.log.Info("notify: pending deliveries resumed", "resumed", resumed, "dropped", dropped)
	}
	return nil
}

func (o *Outbox) read(id uint64) (record, error) {
	var rec record
	v, closer, err := o.db.Get(idKey(prefixDelivery, id))
	if err != nil {
		return rec, err
	}
	defer closer.Close()
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("delivery %d: %w", id, err)
	}
	return rec, nil
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

// --- routing ---

type route struct {
	channels []string
	minRank  int
	levels   []int
	kinds    []alarm.EventKind
}

func compileRoute(r Route) route {
	return route{channels: r.Channels, minRank: r.MinSeverity.Rank(), levels: r.Levels, kinds: r.Kinds}
}

func (r route) match(ev alarm.Event) bool {
	if ev.Alarm.Severity.Rank() < r.minRank {
		return false
	}
	if len(r.kinds) > 0 && !slices.Contains(r.kinds, ev.Kind) {
		return false
	}
	if len(r.levels) == 0 {
		return true
	}
	if ev.Kind == alarm.EventAcknowledged || ev.Kind == alarm.EventResolved {
		// Everyone who was paged hears how it ended.
		return slices.ContainsFunc(r.levels, func(l int) bool { return l <= ev.Level })
	}
	return slices.Contains(r.levels, ev.Level)
}

// Route returns the channels ev goes to, in configuration order. Events
// of silenced alarms page nobody: they only go to the channels that keep
// a state (MQTT zone states), which must stop showing the alarm.
func (o *Outbox) Route(ev alarm.Event) []string {
	want := map[string]bool{}
	for _, r := range o.routes {
		if r.match(ev) {
			for _, c := range r.channels {
				want[c] = true
			}
		}
	}
	var out []string
	for _, n := range o.order {
		if len(o.routes) > 0 && !want[n] {
			continue
		}
		if _, keepsState := o.lanes[n].ch.(stateful); ev.Alarm.Silenced && !keepsState {
			continue
		}
		out = append(out, n)
	}
	return out
}

// --- enqueue and the writer ---

type enqueueReq struct {
	evs  []alarm.Event
	done chan error
}

// Enqueue records ev's deliveries, one per channel its routes choose, and
// returns once they are on disk (fsynced): from then on they survive a
// crash and are retried until delivered or failed. Enqueueing an event
// that is already in the outbox (same EventID) does nothing, so a caller
// may safely repeat an Enqueue whose outcome it did not learn.
func (o *Outbox) Enqueue(ctx context.Context, ev alarm.Event) error {
	return o.EnqueueAll(ctx, []alarm.Event{ev})
}

// EnqueueAll is Enqueue for several events with a single fsync.
func (o *Outbox) EnqueueAll(ctx context.Context, evs []alarm.Event) error {
	for _, ev := range evs {
		if ev.Alarm.ID == "" || strings.ContainsRune(ev.Alarm.ID, 0) {
			return fmt.Errorf("notify: enqueue: invalid alarm id %q", ev.Alarm.ID)
		}
		if ev.Kind == "" {
			return fmt.Errorf("notify: enqueue alarm %s: event without kind", ev.Alarm.ID)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	start := time.Now()
	r := &enqueueReq{evs: evs, done: make(chan error, 1)}
	select {
	case o.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-o.ctx.Done():
		return ErrClosed
	}
	select {
	case err := <-r.done:
		o.metrics.enqueue.Observe(time.Since(start).Seconds())
		if err != nil {
			return fmt.Errorf("notify: enqueue: %w", err)
		}
		return nil
	case <-ctx.Done():
		// The events may still be written; a repeated Enqueue is harmless.
		return ctx.Err()
	}
}

// writer owns every enqueue: it takes all requests that are waiting,
// writes them in one batch and syncs once (group commit).
func (o *Outbox) writer() {
	defer o.wg.Done()
	for {
		var batch []*enqueueReq
		select {
		case r := <-o.reqs:
			batch = append(batch, r)
		case <-o.ctx.Done():
			return
		}
	more:
		for len(batch) < 256 {
			select {
			case r := <-o.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := o.commit(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

func (o *Outbox) commit(batch []*enqueueReq) error {
	b := o.db.NewBatch()
	defer b.Close()
	seen := map[string]bool{}
	var items []*item
	now := o.opts.Now()
	for _, r := range batch {
		for _, ev := range r.evs {
			eid := EventID(ev)
			if seen[eid] {
				continue
			}
			seen[eid] = true
			switch _, closer, err := o.db.Get(eventKey(eid)); {
			case err == nil:
				closer.Close()
				continue // already enqueued
			case !errors.Is(err, pebble.ErrNotFound):
				return fmt.Errorf("look up event: %w", err)
			}
			chans := o.Route(ev)
			if len(chans) == 0 {
				continue
			}
			m := eventMarker{Enqueued: now, AlarmID: ev.Alarm.ID}
			for _, ch := range chans {
				id := o.nextID
				o.nextID++
				rec := record{Event: ev, Delivery: Delivery{ID: id, EventID: eid, AlarmID: ev.Alarm.ID, AlarmSeq: ev.Alarm.Seq,
					Channel: ch, Kind: ev.Kind, Level: ev.Level, Severity: ev.Alarm.Severity,
					State: DeliveryPending, Enqueued: now}}
				v, err := json.Marshal(rec)
				if err != nil {
					return fmt.Errorf("encode delivery: %w", err)
				}
				_ = b.Set(idKey(prefixDelivery, id), v, nil)
				_ = b.Set(idKey(prefixPending, id), nil, nil)
				_ = b.Set(alarmKey(ev.Alarm.ID, id), nil, nil)
				m.IDs = append(m.IDs, id)
				items = append(items, &item{rec: rec})
			}
			v, _ := json.Marshal(m)
			_ = b.Set(eventKey(eid), v, nil)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	for _, it := range items {
		o.lanes[it.rec.Channel].add(it)
	}
	return nil
}

// --- lanes: one per channel ---

// item is a pending delivery in memory.
type item struct {
	rec record
	idx int // position in its heap
}

// lane holds one channel's pending deliveries. Only the oldest pending
// delivery of each alarm is eligible (its "chain" head), so one alarm's
// events reach a channel in order (no "resolved" before its "firing").
// Eligible deliveries are ready (highest severity first, then oldest) or
// waiting for their next attempt. conc workers take the most urgent ready
// delivery; one more worker takes only critical and fire ones.
type lane struct {
	o       *Outbox
	ch      Channel
	name    string
	conc    int
	timeout time.Duration
	// wake and wakeUrgent tell sleeping workers that something changed;
	// separate so that the urgent worker cannot swallow a wake-up meant
	// for the others.
	wake, wakeUrgent chan struct{}

	mu      sync.Mutex
	ready   itemHeap
	waiting itemHeap
	chains  map[string][]*item
}

func byPriority(a, b *item) bool {
	if ra, rb := a.rec.Severity.Rank(), b.rec.Severity.Rank(); ra != rb {
		return ra > rb
	}
	return a.rec.ID < b.rec.ID
}

func byNextAttempt(a, b *item) bool {
	if !a.rec.NextAttempt.Equal(b.rec.NextAttempt) {
		return a.rec.NextAttempt.Before(b.rec.NextAttempt)
	}
	return byPriority(a, b)
}

func (l *lane) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case l.wakeUrgent <- struct{}{}:
	default:
	}
}

func (l *lane) add(it *item) {
	l.o.pendMu.Lock()
	l.o.pend[it.rec.ID] = struct{}{}
	l.o.pendMu.Unlock()
	l.o.metrics.depth.WithLabelValues(l.name, string(it.rec.Severity)).Inc()
	l.mu.Lock()
	chain := l.chains[it.rec.AlarmID]
	l.chains[it.rec.AlarmID] = append(chain, it)
	if len(chain) == 0 {
		l.scheduleLocked(it)
	}
	l.mu.Unlock()
	l.signal()
}

func (l *lane) scheduleLocked(it *item) {
	if it.rec.NextAttempt.After(l.o.opts.Now()) {
		heap.Push(&l.waiting, it)
	} else {
		heap.Push(&l.ready, it)
	}
}

// next pops the delivery to make now (only a critical or fire one when
// urgentOnly), or says how long until one is due (-1: nothing is waiting).
func (l *lane) next(urgentOnly bool) (*item, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.o.opts.Now()
	for l.waiting.Len() > 0 && !l.waiting.items[0].rec.NextAttempt.After(now) {
		heap.Push(&l.ready, heap.Pop(&l.waiting))
	}
	if l.ready.Len() > 0 && (!urgentOnly || urgent(l.ready.items[0].rec.Severity)) {
		it := heap.Pop(&l.ready).(*item)
		if l.ready.Len() > 0 {
			l.signal() // another worker may take the next one
		}
		return it, 0
	}
	if l.waiting.Len() > 0 {
		return nil, l.waiting.items[0].rec.NextAttempt.Sub(now)
	}
	return nil, -1
}

// finish removes a delivered or failed delivery and makes the next one of
// its alarm eligible.
func (l *lane) finish(it *item) {
	l.mu.Lock()
	chain := l.chains[it.rec.AlarmID]
	if i := slices.Index(chain, it); i >= 0 {
		chain = slices.Delete(chain, i, i+1)
	}
	if len(chain) == 0 {
		delete(l.chains, it.rec.AlarmID)
	} else {
		l.chains[it.rec.AlarmID] = chain
		l.scheduleLocked(chain[0])
	}
	l.mu.Unlock()
	l.o.pendMu.Lock()
	delete(l.o.pend, it.rec.ID)
	l.o.pendMu.Unlock()
	l.o.metrics.depth.WithLabelValues(l.name, string(it.rec.Severity)).Dec()
	l.signal()
}

func (l *lane) retryLater(it *item) {
	l.mu.Lock()
	heap.Push(&l.waiting, it)
	l.mu.Unlock()
	l.signal()
}

func (l *lane) work(ctx context.Context, urgentOnly bool) {
	defer l.o.wg.Done()
	wake := l.wake
	if urgentOnly {
		wake = l.wakeUrgent
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for ctx.Err() == nil {
		it, wait := l.next(urgentOnly)
		if it != nil {
			l.deliver(ctx, it)
			continue
		}
		var due <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			due = timer.C
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-due:
		}
		timer.Stop()
	}
}

// send calls the channel, turning a panic into an error: a bug in one
// channel must not take the alarm path down.
func (l *lane) send(ctx context.Context, ev alarm.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			l.o.log.Error("notify: channel panicked", "channel", l.name, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("channel panicked: %v", p)
		}
	}()
	return l.ch.Send(ctx, ev)
}

const maxErrorText = 500

func (l *lane) deliver(ctx context.Context, it *item) {
	o := l.o
	rec := &it.rec
	if o.expired(rec, o.opts.Now()) {
		l.fail(it, outcomeExpired, fmt.Sprintf("expired after %d attempts (max_age %v)%s", rec.Attempts, o.opts.MaxAge, lastErr(rec)))
		return
	}
	start := o.opts.Now()
	sctx, cancel := context.WithTimeout(ctx, l.timeout)
	err := l.send(sctx, rec.Event)
	cancel()
	if err != nil && ctx.Err() != nil {
		return // closing: the delivery stays pending on disk and resumes at the next Open
	}
	now := o.opts.Now()
	rec.Attempts++
	rec.LastAttempt = start
	switch {
	case err == nil:
		rec.State, rec.Finished, rec.NextAttempt = DeliveryDelivered, now, time.Time{}
		o.write(rec, true)
		o.metrics.deliveries.WithLabelValues(l.name, outcomeDelivered).Inc()
		o.metrics.latency.WithLabelValues(l.name).Observe(now.Sub(rec.Enqueued).Seconds())
		l.finish(it)
	case IsPermanent(err):
		l.fail(it, outcomeFailed, err.Error())
	default:
		rec.LastError = truncate(err.Error(), maxErrorText)
		if o.expired(rec, now) {
			l.fail(it, outcomeExpired, fmt.Sprintf("expired after %d attempts: %s", rec.Attempts, rec.LastError))
			return
		}
		delay := o.retryDelay(rec, err)
		rec.NextAttempt = now.Add(delay)
		o.write(rec, false)
		o.metrics.deliveries.WithLabelValues(l.name, outcomeRetry).Inc()
		if o.limiter.Allow("retry:" + l.name) {
			o.log.Warn("notify: delivery failed, will retry", "channel", l.name, "alarm", rec.AlarmID,
				"kind", rec.Kind, "severity", rec.Severity, "attempt", rec.Attempts, "retry_in", delay.Round(time.Millisecond), "err", rec.LastError)
		}
		l.retryLater(it)
	}
}

func lastErr(rec *record) string {
	if rec.LastError == "" {
		return ""
	}
	return ": " + rec.LastError
}

func (l *lane) fail(it *item, outcome, msg string) {
	o := l.o
	rec := &it.rec
	rec.State, rec.Finished, rec.NextAttempt = DeliveryFailed, o.opts.Now(), time.Time{}
	rec.LastError = truncate(msg, maxErrorText)
	o.write(rec, true)
	o.metrics.deliveries.WithLabelValues(l.name, outcome).Inc()
	o.log.Error("notify: delivery failed for good", "channel", l.name, "alarm", rec.AlarmID, "kind", rec.Kind,
		"severity", rec.Severity, "level", rec.Level, "attempts", rec.Attempts, "outcome", outcome, "err", rec.LastError)
	l.finish(it)
}

// expired reports whether a non-urgent delivery is past max_age or
// max_attempts. Critical and fire deliveries never expire.
func (o *Outbox) expired(rec *record, now time.Time) bool {
	if urgent(rec.Severity) {
		return false
	}
	if o.opts.MaxAttempts > 0 && rec.Attempts >= o.opts.MaxAttempts {
		return true
	}
	return now.Sub(rec.Enqueued) >= o.opts.MaxAge
}

func (o *Outbox) retryDelay(rec *record, err error) time.Duration {
	hi := o.opts.RetryMax
	if urgent(rec.Severity) {
		hi = min(hi, UrgentRetryMax)
	}
	lo := min(o.opts.RetryMin, hi)
	d := backoff.Delay(rec.Attempts-1, lo, hi)
	if ra := RetryAfter(err); ra > d {
		d = min(ra, hi)
	}
	return d
}

// write stores a delivery's new state. It does not wait for the disk: a
// state lost in a crash only means the delivery is made again (receivers
// deduplicate on the event id), and the next Enqueue's sync, or Close,
// makes it durable.
func (o *Outbox) write(rec *record, finished bool) {
	v, err := json.Marshal(rec)
	if err == nil {
		b := o.db.NewBatch()
		_ = b.Set(idKey(prefixDelivery, rec.ID), v, nil)
		if finished {
			_ = b.Delete(idKey(prefixPending, rec.ID), nil)
		}
		err = b.Commit(pebble.NoSync)
		b.Close()
	}
	if err != nil && o.limiter.Allow("write") {
		o.log.Error("notify: store delivery state", "channel", rec.Channel, "alarm", rec.AlarmID, "err", err)
	}
}

// --- queries ---

// Deliveries returns the deliveries of an alarm (every episode and event
// still kept), oldest first.
func (o *Outbox) Deliveries(alarmID string) []Delivery {
	o.dbMu.RLock()
	defer o.dbMu.RUnlock()
	if o.closed {
		return nil
	}
	prefix := append(append([]byte{prefixAlarm}, alarmID...), 0)
	it, err := o.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		o.log.Error("notify: read deliveries", "alarm", alarmID, "err", err)
		return nil
	}
	defer it.Close()
	var out []Delivery
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+8 {
			continue
		}
		rec, err := o.read(binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			continue // purged meanwhile
		}
		out = append(out, rec.Delivery)
	}
	return out
}

// Pending is the number of deliveries not yet delivered or failed.
func (o *Outbox) Pending() int {
	o.pendMu.Lock()
	defer o.pendMu.Unlock()
	return len(o.pend)
}

func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// --- maintenance ---

func (o *Outbox) maintenance() {
	defer o.wg.Done()
	every := min(o.opts.KeepFinished/4, time.Hour)
	t := time.NewTicker(max(every, time.Second))
	defer t.Stop()
	o.purge()
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-t.C:
			o.purge()
		}
	}
}

// purge deletes the events enqueued more than KeepFinished ago whose
// deliveries are all finished, with their records.
func (o *Outbox) purge() {
	horizon := o.opts.Now().Add(-o.opts.KeepFinished)
	it, err := o.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		o.log.Error("notify: purge", "err", err)
		return
	}
	b := o.db.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		var m eventMarker
		if json.Unmarshal(it.Value(), &m) != nil || !m.Enqueued.Before(horizon) {
			continue
		}
		o.pendMu.Lock()
		busy := slices.ContainsFunc(m.IDs, func(id uint64) bool { _, p := o.pend[id]; return p })
		o.pendMu.Unlock()
		if busy {
			continue
		}
		for _, id := range m.IDs {
			_ = b.Delete(idKey(prefixDelivery, id), nil)
			_ = b.Delete(alarmKey(m.AlarmID, id), nil)
		}
		_ = b.Delete(slices.Clone(it.Key()), nil)
		n++
	}
	if err := it.Close(); err != nil {
		o.log.Error("notify: purge", "err", err)
		return
	}
	if n == 0 {
		return
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		o.log.Error("notify: purge", "err", err)
		return
	}
	o.log.Debug("notify: purged finished events", "events", n)
}

// Close stops delivering and closes the database. Sends in flight are
// cancelled; their deliveries stay pending and resume at the next Open.
func (o *Outbox) Close() error {
	o.closeOnce.Do(func() {
		o.cancel()
		o.wg.Wait()
		o.dbMu.Lock()
		defer o.dbMu.Unlock()
		o.closed = true
		// Delivery states were written without waiting for the disk: one
		// synced write makes them all durable.
		stamp, _ := o.opts.Now().MarshalText()
		err := o.db.Set([]byte{prefixMeta, 'c'}, stamp, pebble.Sync)
		o.closeErr = errors.Join(err, o.db.Close())
		if o.closeErr != nil {
			o.closeErr = fmt.Errorf("notify: close outbox: %w", o.closeErr)
		}
	})
	return o.closeErr
}

// --- helpers ---

// itemHeap is a heap of items ordered by less.
type itemHeap struct {
	items []*item
	less  func(a, b *item) bool
}

func (h itemHeap) Len() int           { return len(h.items) }
func (h itemHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h itemHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].idx, h.items[j].idx = i, j
}
func (h *itemHeap) Push(x any) {
	it := x.(*item)
	it.idx = len(h.items)
	h.items = append(h.items, it)
}
func (h *itemHeap) Pop() any {
	n := len(h.items)
	it := h.items[n-1]
	h.items[n-1] = nil
	h.items = h.items[:n-1]
	return it
}

// stateStore is a channel's corner of the outbox database.
type stateStore struct {
	db     *pebble.DB
	prefix []byte
}

// put stores a value without waiting for the disk (see Outbox.write).
func (s *stateStore) put(key string, val []byte) error {
	return s.db.Set(append(slices.Clone(s.prefix), key...), val, pebble.NoSync)
}

func (s *stateStore) each(fn func(key string, val []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.prefix, UpperBound: prefixEnd(s.prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(string(it.Key()[len(s.prefix):]), slices.Clone(it.Value())); err != nil {
			return err
		}
	}
	return it.Error()
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("notify: pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("notify: pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("notify: pebble fatal: " + msg)
	panic("notify: pebble: " + msg)
}
