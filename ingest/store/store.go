// Package store is the gateway's durable local store: the append-only log of
// every accepted reading, a per-series index for history queries, durable
// consumer cursors (the InfluxDB forwarder reads the log from where it
// stopped), and a bounded dead-letter store for rejected messages.
//
// History queries over long ranges read per-hour rollups of each series
// (count, min, max, sum, last value), which every commit updates in the same
// batch as the readings (rollup.go): 30 days of one-minute readings of 100
// devices downsample to hourly buckets from 72,000 rollups instead of 4.3
// million readings, in 27 ms instead of 670 ms on the 2-core reference
// machine. Finer widths read the readings; rollup.go says why there are no
// minute rollups.
//
// # Engine
//
// The store sits on Pebble (github.com/cockroachdb/pebble/v2), the LSM engine
// CockroachDB runs on. An LSM suits this workload: writes are a steady stream
// of small appends, reads are range scans, and retention and the disk budget
// need space back promptly (DeleteRange plus a compaction returns it; a
// B+tree file such as bbolt's never shrinks). Measured on the 2-core
// reference machine with durable group commits of 1,000 readings:
// Pebble 274k readings/s with its default settings (337k with the
// compression settings below) against bbolt's 30k (BenchmarkAppend here;
// the bbolt figure from the same loop written against bbolt 1.4 with one
// transaction per group). Every commit now also writes hour rollups; with
// them the same loop does about 206k.
//
// # Durability and concurrency
//
// Append blocks until the readings are fsynced: "acknowledged" always means
// "on disk". One writer goroutine owns every write to the log. It takes all
// requests that are waiting, writes them as one batch and syncs once (group
// commit), so the fsync cost is shared under load while a lone reading is
// still written at once. Sequence numbers are assigned by that goroutine and
// become visible in order, so a consumer that has read up to N has seen every
// reading up to N.
//
// # Backpressure
//
// Append waits for the writer; callers bound their own concurrency (the MQTT
// front ends cap messages in flight). Dead letters never wait: if their queue
// is full they are counted and dropped, so bad input cannot slow good input.
// When the store is over its disk budget the oldest readings are deleted
// first, counted, and logged; readings no consumer has read yet are counted
// separately (store_dropped_unforwarded_total) because that is data loss.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
)

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("store: closed")

// Options configure a Store. Zero values take the documented defaults.
type Options struct {
	Dir string
	// Retention is the maximum age of readings (by receive time); 0 keeps
	// them until the disk budget forces them out.
	Retention time.Duration
	// DiskBudget caps the store's size on disk in bytes; 0 means no cap.
	DiskBudget int64
	// CommitMaxBatch caps the readings written by one group commit (default 4096).
	CommitMaxBatch int
	// DeadLetterMax is how many dead letters are kept (default 10000).
	DeadLetterMax int
	// MaintenanceEvery is the period of the retention and budget pass
	// (default 30s).
	MaintenanceEvery time.Duration
	// MemTableSize is the engine's write buffer in bytes (default 4 MiB).
	// The store's floor on disk is a few times this, so a DiskBudget must be
	// well above it.
	MemTableSize uint64
	Logger       *slog.Logger
	// OnUnforwardedDrop is called (from the maintenance goroutine) when the
	// disk budget or retention deleted readings some consumer had not read
	// yet, with how many. The gateway raises the store-data-loss alarm from it.
	OnUnforwardedDrop func(reason string, readings uint64)
	// OnBudget is called (from the maintenance goroutine) after every
	// pass with the disk budget's condition (see BudgetCondition), so the
	// gateway can warn while unforwarded readings fill the budget, before
	// any is lost.
	OnBudget func(condition string)
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Reserve is the free space on the store's file system below which
	// readings are refused with ErrDiskFull (see space.go); 0 disables the
	// check.
	Reserve int64
	// BallastBytes is the size of the ballast file kept in Dir and
	// released when the disk fills; 0: no ballast.
	BallastBytes int64
	// SpaceEvery is the period of the free-space watch (default 1s).
	SpaceEvery time.Duration
	// OnSpace is called (from the space watch) when the disk-full
	// condition changes: "ok" or what is full.
	OnSpace func(condition string)
	// TailReadings is how many of the newest readings ReadLog serves from
	// memory (default DefaultTailReadings; negative: none).
	TailReadings int
}

// Defaults of Options; the gateway's config applies the same ones.
const (
	DefaultCommitMaxBatch = 4096
	DefaultDeadLetterMax  = 10000
)

func (o *Options) defaults() {
	if o.CommitMaxBatch <= 0 {
		o.CommitMaxBatch = DefaultCommitMaxBatch
	}
	if o.DeadLetterMax <= 0 {
		o.DeadLetterMax = DefaultDeadLetterMax
	}
	if o.MaintenanceEvery <= 0 {
		o.MaintenanceEvery = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.SpaceEvery <= 0 {
		o.SpaceEvery = time.Second
	}
	if o.TailReadings == 0 {
		o.TailReadings = DefaultTailReadings
	}
}

type appendReq struct {
	readings []reading.Reading
	done     chan error  // Append's answer, or
	then     func(error) // AppendAsync's (called on the writer goroutine)
	// priority: a safety device's message, which may use the reserve on
	// a full disk (space.go).
	priority bool
}

// Store is the durable local store. Its methods are safe for concurrent use.
type Store struct {
	db      *pebble.DB // the log instance
	idx     *pebble.DB // the index instance (index.go)
	opts    Options
	log     *slog.Logger
	metrics *metrics

	reqs    chan *appendReq
	dlReqs  chan DeadLetter
	stop    chan struct{}
	stopped chan struct{} // closed when the writer has drained and exited
	wg      sync.WaitGroup
	closeMu sync.RWMutex // held for reading while sending to reqs or queuing to async
	closed  bool

	// AppendAsync's queue: a slice, not a channel, so that queuing never
	// blocks the caller (the embedded broker's read loop, which bounds how
	// many it queues per client).
	asyncMu   sync.Mutex
	async     []*appendReq
	asyncKick chan struct{}

	lastSeq  atomic.Uint64 // highest committed log sequence number
	firstSeq atomic.Uint64 // lowest log sequence number still stored (0: empty)
	// horizon is the newest cutoff (Unix ns) before which readings were
	// deleted; history queries start there (math.MinInt64: none deleted).
	horizon atomic.Int64

	notifyMu sync.Mutex
	notifyCh chan struct{}

	regMu    sync.RWMutex
	registry map[seriesID]string // series → zone of its latest reading
	tail     *tail               // the newest readings on disk, for ReadLog

	curMu   sync.Mutex
	cursors map[string]uint64
	// curWrite serialises writes of the cursors file (cursors.go).
	curWrite sync.Mutex

	// reclaim are key ranges Open deleted in bulk (an older gateway's
	// minute rollups, the index's old place in the log); maintenance
	// compacts them to return their space.
	reclaim []reclaimRange

	full        atomic.Bool // readings refused for lack of space at the last look
	ballastHeld atomic.Bool // the ballast file is in place
	ballastLog  *ratelog.Limiter
	writeLog    *ratelog.Limiter
	spaceKick   chan struct{} // a refused commit asks the space watch to look again
	maintKick   chan struct{} // the space watch asks for a budget pass now

	// Owned by the writer goroutine.
	dlFirst, dlNext uint64
	// nextSeq is the last sequence number given to a reading: ahead of
	// lastSeq while a batch waits for its fsync (commit).
	nextSeq     uint64
	syncQ       chan *inflight
	buf, keyBuf []byte
	pending     rollupBatch   // rollups of the commit being built
	series      seriesEntries // its series index entries
}

type seriesID struct {
	device string
	kind   reading.Kind
}

// Open opens (creating if needed) the store in opts.Dir and starts its writer
// and maintenance goroutines. Close must be called to stop them.
func Open(opts Options) (*Store, error) {
	opts.defaults()
	if opts.Dir == "" {
		return nil, errors.New("store: open: no directory")
	}
	// The readings say who is where and when: nobody else on the box
	// reads them, whatever the umask or an older install left.
	if err := privateDir(opts.Dir); err != nil {
		return nil, err
	}
	// Restarted on a full disk: Pebble needs room to open (a new WAL, a
	// new MANIFEST); the ballast is there for exactly this.
	releaseBallastIfFull(opts)
	// A store a newer gateway wrote is refused before Pebble opens it for
	// writing (which replays and rewrites its log): nothing changes.
	if err := refuseNewer(opts); err != nil {
		return nil, err
	}
	if err := roomToOpen(opts); err != nil {
		return nil, err
	}
	// One block cache for both instances: the default is one each.
	cache := pebble.NewCache(8 << 20)
	defer cache.Unref()
	po := pebbleOptions(opts)
	po.Cache = cache
	db, err := pebble.Open(opts.Dir, po)
	if err != nil {
		return nil, fmt.Errorf("store: open pebble in %s: %w", opts.Dir, err)
	}
	if err := privateDir(indexDir(opts.Dir)); err != nil {
		db.Close()
		return nil, err
	}
	ipo := indexOptions(opts)
	ipo.Cache = cache
	idx, err := pebble.Open(indexDir(opts.Dir), ipo)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open pebble in %s: %w", indexDir(opts.Dir), err)
	}
	s, err := open(opts, db, idx)
	if err != nil {
		idx.Close()
		db.Close()
		return nil, err
	}
	return s, nil
}

// pebbleOptions are the engine's options for a store (read-only or not).
func pebbleOptions(opts Options) *pebble.Options {
	po := &pebble.Options{
		Logger:       pebblelog.New("store", opts.Logger),
		MemTableSize: opts.MemTableSize,
		Merger:       rollupMerger,
	}
	// Readings are small and rewritten by every compaction on their way
	// down; compressing the upper levels cost the most CPU in profiles for
	// little space. Only the two bottom levels, where data rests, are
	// compressed.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings {
		cs := pebble.DBCompressionSettings{Name: "shelterwatch"}
		for i := range cs.Levels {
			cs.Levels[i] = block.NoCompression
		}
		cs.Levels[len(cs.Levels)-2] = block.FastestCompression
		cs.Levels[len(cs.Levels)-1] = block.FastestCompression
		return cs
	})
	return po
}

// open continues Open once the database is open.
func open(opts Options, db, idx *pebble.DB) (*Store, error) {
	s := &Store{
		db:        db,
		idx:       idx,
		opts:      opts,
		log:       opts.Logger,
		reqs:      make(chan *appendReq, 1024),
		asyncKick: make(chan struct{}, 1),
		dlReqs:    make(chan DeadLetter, 1024),
		stop:      make(chan struct{}),
		stopped:   make(chan struct{}),
		notifyCh:  make(chan struct{}),
		registry:  make(map[seriesID]string),
		cursors:   make(map[string]uint64),
		tail:      newTail(opts.TailReadings),
		pending:   make(rollupBatch),

		ballastLog: ratelog.New(time.Hour),
		writeLog:   ratelog.New(10 * time.Second),
		spaceKick:  make(chan struct{}, 1),
		maintKick:  make(chan struct{}, 1),
	}
	if fi, err := os.Stat(s.ballastPath()); err == nil && opts.BallastBytes > 0 && fi.Size() == opts.BallastBytes {
		s.ballastHeld.Store(true)
	} else if opts.BallastBytes <= 0 {
		// No ballast configured (any more): give back what an earlier
		// configuration laid down.
		_ = os.Remove(s.ballastPath())
	}
	s.metrics = newMetrics(s)
	for _, step := range []func() error{s.checkFormat, s.recover, s.loadRegistry, s.replayIndex, s.ensureRollups} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	// Lay the ballast down before the first reading can take its room.
	s.balanceBallast()
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.writer() }()
	go func() { defer s.wg.Done(); s.maintenance() }()
	go func() { defer s.wg.Done(); s.watchSpace() }()
	return s, nil
}

// recover reads the bounds of the log and dead letters, the retention
// horizon and the cursors.
func (s *Store) recover() error {
	first, last, err := s.bounds(prefixLog)
	if err != nil {
		return fmt.Errorf("store: recover log bounds: %w", err)
	}
	s.firstSeq.Store(first)
	s.lastSeq.Store(last)
	dlFirst, dlLast, err := s.bounds(prefixDeadLetter)
	if err != nil {
		return fmt.Errorf("store: recover dead-letter bounds: %w", err)
	}
	if dlFirst == 0 {
		dlFirst = dlLast + 1
	}
	s.dlFirst, s.dlNext = dlFirst, dlLast+1

	s.horizon.Store(math.MinInt64)
	if v, closer, err := s.db.Get(metaKey("horizon")); err == nil {
		if len(v) == 8 {
			s.horizon.Store(int64(binary.BigEndian.Uint64(v)))
		}
		_ = closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("store: recover retention horizon: %w", err)
	}

	return s.loadCursors()
}

// bounds returns the first and last sequence numbers under a one-byte
// prefix whose keys are prefix+seq(8); zeros when there are none.
func (s *Store) bounds(prefix byte) (first, last uint64, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return 0, 0, err
	}
	if it.First() && len(it.Key()) == 9 {
		first = seqOf(it.Key())
	}
	if it.Last() && len(it.Key()) == 9 {
		last = seqOf(it.Key())
	}
	return first, last, it.Close()
}

// Append writes readings durably and sets their Seq. It returns only when
// they are fsynced (nil) or could not be written (error): the caller may
// acknowledge the message that carried them only on nil.
func (s *Store) Append(ctx context.Context, rs []reading.Reading) error {
	return s.append(ctx, rs, false)
}

// AppendPriority is Append for a safety device's message (a smoke
// detector's, a door's: its availability and battery readings too). On a
// full disk it may use part of the reserve, so it is acknowledged and
// does not hold up the messages behind it.
func (s *Store) AppendPriority(ctx context.Context, rs []reading.Reading) error {
	return s.append(ctx, rs, true)
}

func (s *Store) append(ctx context.Context, rs []reading.Reading, priority bool) error {
	if len(rs) == 0 {
		return nil
	}
	req := &appendReq{readings: rs, done: make(chan error, 1), priority: priority}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- req:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return fmt.Errorf("store: append: %w", ctx.Err())
	}
	// Once queued, the writer always answers (Close drains the queue), so
	// waiting here cannot hang past Close.
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("store: append: %w", ctx.Err())
	}
}

// AppendAsync is Append (or AppendPriority) that does not wait: then is
// called with the outcome, on the store's writer goroutine, once the
// readings are durable or refused. then must be quick and must not call
// the store. Queuing never blocks; the caller bounds how many appends it
// has outstanding.
func (s *Store) AppendAsync(rs []reading.Reading, priority bool, then func(error)) {
	if len(rs) == 0 {
		then(nil)
		return
	}
	req := &appendReq{readings: rs, then: then, priority: priority}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		then(ErrClosed)
		return
	}
	s.asyncMu.Lock()
	s.async = append(s.async, req)
	s.asyncMu.Unlock()
	s.closeMu.RUnlock()
	select {
	case s.asyncKick <- struct{}{}:
	default:
	}
}

// takeAsync moves queued asynchronous appends into batch, up to about max
// readings, and reports how many readings it took.
func (s *Store) takeAsync(batch []*appendReq, max int) ([]*appendReq, int) {
	s.asyncMu.Lock()
	defer s.asyncMu.Unlock()
	n, i := 0, 0
	for ; i < len(s.async) && (n < max || i == 0); i++ {
		batch = append(batch, s.async[i])
		n += len(s.async[i].readings)
	}
	rest := copy(s.async, s.async[i:])
	clear(s.async[rest:])
	s.async = s.async[:rest]
	if rest > 0 {
		select {
		case s.asyncKick <- struct{}{}:
		default:
		}
	}
	return batch, n
}

func (r *appendReq) finish(err error) {
	if r.then != nil {
		r.then(err)
		return
	}
	r.done <- err
}

// LastSeq returns the sequence number of the newest durable reading.
func (s *Store) LastSeq() uint64 { return s.lastSeq.Load() }

// FirstSeq returns the sequence number of the oldest reading still stored,
// or 0 when the log is empty.
func (s *Store) FirstSeq() uint64 { return s.firstSeq.Load() }

// Changed returns a channel that is closed at the next commit. Consumers
// check LastSeq, and wait on Changed when they have read everything.
func (s *Store) Changed() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notifyCh
}

func (s *Store) broadcast() {
	s.notifyMu.Lock()
	close(s.notifyCh)
	s.notifyCh = make(chan struct{})
	s.notifyMu.Unlock()
}

// Close stops accepting appends, writes every append already queued, stops
// the background goroutines and closes the engine.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.closeMu.Unlock()
	close(s.stop)
	s.wg.Wait()
	// The index has no WAL: what is not flushed would be indexed again
	// at the next open.
	err := s.idx.Flush()
	if err != nil {
		err = fmt.Errorf("store: flush the index: %w", err)
	}
	if cerr := s.idx.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("store: close the index: %w", cerr)
	}
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("store: close pebble: %w", cerr)
	}
	return err
}

// writer is the single owner of log writes. It hands each applied batch
// to the syncer goroutine, which waits for its fsync and answers the
// appenders, while the writer builds the next batch.
func (s *Store) writer() {
	defer close(s.stopped)
	s.nextSeq = s.lastSeq.Load()
	s.syncQ = make(chan *inflight)
	syncerDone := make(chan struct{})
	go func() {
		defer close(syncerDone)
		s.syncer(s.syncQ)
	}()
	defer func() {
		close(s.syncQ)
		<-syncerDone
	}()
	batch := make([]*appendReq, 0, 64)
	for {
		n := 0
		select {
		case r := <-s.reqs:
			batch = append(batch[:0], r)
			n = len(r.readings)
		case <-s.asyncKick:
			batch, n = s.takeAsync(batch[:0], s.opts.CommitMaxBatch)
			if len(batch) == 0 {
				continue
			}
		case dl := <-s.dlReqs:
			s.writeDeadLetters(dl)
			continue
		case <-s.stop:
			// Appenders hold closeMu while sending or queuing, and Close
			// set closed under it, so nothing can be added after this
			// drain.
			for {
				select {
				case r := <-s.reqs:
					s.commit([]*appendReq{r})
				case dl := <-s.dlReqs:
					s.writeDeadLetters(dl)
				default:
					for {
						rest, _ := s.takeAsync(nil, s.opts.CommitMaxBatch)
						if len(rest) == 0 {
							return
						}
						s.commit(rest)
					}
				}
			}
		}
	gather:
		for n < s.opts.CommitMaxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
				n += len(r.readings)
			default:
				var k int
				if batch, k = s.takeAsync(batch, s.opts.CommitMaxBatch-n); k == 0 {
					break gather
				}
				n += k
			}
		}
		s.commit(batch)
	}
}

// inflight is a batch applied to the engine and waiting for its fsync.
type inflight struct {
	b         *pebble.Batch // the log's
	ib        *pebble.Batch // the index's, applied once b is on disk
	reqs      []*appendReq
	n         int
	seq       uint64 // its last sequence number
	newSeries map[seriesID]string
	start     time.Time
}

// commit writes one group of append requests as a single synced batch: the
// readings, their series index entries, and one rollup merge operand per
// series and hour they fall in. It applies the batch and hands it to the
// syncer without waiting for the fsync, so that the next batch is built
// meanwhile (the fsync, about a third of a commit's time, no longer holds
// up the writer). The syncer takes one batch at a time: while it waits
// for one, the writer may apply one more, then waits for the syncer.
// Readers see a batch's readings (lastSeq) only once it is on disk.
func (s *Store) commit(reqs []*appendReq) {
	if st, err := s.checkSpace(); err != nil {
		// Refuse what may wait (readings, which the broker keeps) and
		// write what may not (safety and fault readings, which use the
		// reserve).
		kept := reqs[:0]
		refused := 0
		for _, req := range reqs {
			if mayUseReserve(req.readings, req.priority, st, s.opts.Reserve) {
				kept = append(kept, req)
				continue
			}
			refused += len(req.readings)
			req.finish(err)
		}
		s.full.Store(true)
		s.metrics.refusedFull.Add(float64(refused))
		select {
		case s.spaceKick <- struct{}{}:
		default:
		}
		if len(kept) == 0 {
			return
		}
		reqs = kept
	} else {
		s.full.Store(false)
	}
	b := s.db.NewBatch()
	ib := s.idx.NewBatch()
	seq := s.nextSeq
	var newSeries map[seriesID]string
	n := 0
	for _, req := range reqs {
		for i := range req.readings {
			r := &req.readings[i]
			seq++
			r.Seq = seq
			n++
			s.buf = reading.AppendBinary(s.buf[:0], r)
			_ = b.Set(logKey(seq), s.buf, nil)
			newSeries = s.indexReading(ib, r, newSeries)
		}
	}
	s.series.flush(ib)
	s.keyBuf, s.buf = s.pending.flush(ib, s.keyBuf, s.buf)
	start := time.Now()
	err := pebblelog.Guard(func() error { return s.db.ApplyNoSyncWait(b, pebble.Sync) })
	if err != nil {
		// Not applied: the sequence numbers are given again.
		s.failCommit(reqs, n, err)
		_ = b.Close()
		_ = ib.Close()
		return
	}
	s.nextSeq = seq
	s.syncQ <- &inflight{b: b, ib: ib, reqs: slices.Clone(reqs), n: n, seq: seq, newSeries: newSeries, start: start}
}

// syncer waits for each applied batch's fsync, in order, and answers its
// appenders; it returns when q is closed and drained.
func (s *Store) syncer(q <-chan *inflight) {
	// markStuck: a batch's index entries were not applied, so the
	// index's mark stays before it and the next open indexes it again.
	markStuck := false
	for c := range q {
		err := pebblelog.Guard(c.b.SyncWait)
		s.metrics.commitSeconds.Observe(time.Since(c.start).Seconds())
		_ = c.b.Close()
		if err != nil {
			// Applied but maybe not on disk: not acknowledged, so the
			// broker sends it again. Its sequence numbers stay used (the
			// next batch was built after them); a reader may later see
			// the readings, and a redelivery store them twice, which
			// at-least-once allows.
			_ = c.ib.Close()
			markStuck = true
			s.failCommit(c.reqs, c.n, err)
			continue
		}
		// Indexed only once on disk, so that the index never holds a
		// reading the log lost.
		if !markStuck {
			setIndexed(c.ib, c.seq)
		}
		if err := pebblelog.Guard(func() error { return s.idx.Apply(c.ib, pebble.NoSync) }); err != nil {
			// The readings are on disk: acknowledged. Their history
			// comes back when the next open indexes the log again.
			markStuck = true
			s.metrics.writeErrors.Inc()
			if held, ok := s.writeLog.AllowCount("index"); ok {
				s.log.Error("store: index write failed; history misses readings until the gateway restarts", "readings", c.n, "err", err, "suppressed_since_last", held)
			}
		}
		_ = c.ib.Close()
		s.finishCommit(c)
	}
}

// failCommit answers the appenders of a batch that did not reach the
// disk.
func (s *Store) failCommit(reqs []*appendReq, n int, err error) {
	err = fmt.Errorf("store: commit %d readings: %w", n, err)
	s.metrics.writeErrors.Inc()
	if held, ok := s.writeLog.AllowCount("commit"); ok {
		s.log.Error("store: write failed; readings not acknowledged", "readings", n, "err", err, "suppressed_since_last", held)
	}
	for _, req := range reqs {
		for i := range req.readings {
			req.readings[i].Seq = 0
		}
		req.finish(err)
	}
}

// finishCommit makes a batch on disk visible to readers and answers its
// appenders.
func (s *Store) finishCommit(c *inflight) {
	if len(c.newSeries) > 0 {
		s.regMu.Lock()
		for id, zone := range c.newSeries {
			s.registry[id] = zone
		}
		s.regMu.Unlock()
	}
	if s.firstSeq.Load() == 0 {
		s.firstSeq.Store(s.lastSeq.Load() + 1)
	}
	s.tail.add(c.reqs)
	s.lastSeq.Store(c.seq)
	s.metrics.appends.Add(float64(c.n))
	s.metrics.commits.Inc()
	s.metrics.batchSize.Observe(float64(c.n))
	s.broadcast()
	for _, req := range c.reqs {
		req.finish(nil)
	}
}

func (s *Store) zoneOf(id seriesID) (string, bool) {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	z, ok := s.registry[id]
	return z, ok
}

// ReadLog returns up to limit readings with sequence numbers greater than
// after, in order. It returns fewer (possibly none) when the log ends.
// Readings deleted by retention or the disk budget are skipped: the first
// returned Seq may be greater than after+1.
func (s *Store) ReadLog(after uint64, limit int) ([]reading.Reading, error) {
	return s.ReadLogInto(nil, after, limit)
}

// ReadLogInto is ReadLog appending to dst[:0], so that a reader that
// keeps up reuses one slice.
func (s *Store) ReadLogInto(dst []reading.Reading, after uint64, limit int) ([]reading.Reading, error) {
	out := dst[:0]
	last := s.lastSeq.Load()
	if after >= last || limit <= 0 {
		return out, nil
	}
	if out, ok := s.tail.read(out, max(after+1, s.firstSeq.Load()), last, limit); ok {
		return out, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(after + 1), UpperBound: logKey(last + 1)})
	if err != nil {
		return out, fmt.Errorf("store: read log after %d: %w", after, err)
	}
	defer it.Close()
	// One allocation of the size the range can hold (sequences are dense
	// but for deleted ranges), not a slice grown eight times per call.
	out = slices.Grow(out, int(min(uint64(limit), last-after)))
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		var r reading.Reading
		if err := reading.UnmarshalBinary(it.Value(), &r); err != nil {
			// A record we cannot decode is reported, not skipped silently.
			return out, fmt.Errorf("store: read log at %d: %w", seqOf(it.Key()), err)
		}
		r.Seq = seqOf(it.Key())
		out = append(out, r)
	}
	return out, it.Error()
}

// DiskUsage returns the bytes the store occupies on disk.
func (s *Store) DiskUsage() uint64 {
	return s.db.Metrics().DiskSpaceUsage() + s.idx.Metrics().DiskSpaceUsage()
}
