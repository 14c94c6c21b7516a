package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
)

// maintenance runs the retention and disk-budget pass periodically.
func (s *Store) maintenance() {
	for _, r := range s.reclaim {
		s.reclaimSpace(r)
	}
	t := time.NewTicker(s.opts.MaintenanceEvery)
	defer t.Stop()
	// A pass in progress stops when Close is called: Close must not wait
	// for a long deletion round.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.maintKick:
		}
		if err := s.Maintain(ctx); err != nil && ctx.Err() == nil {
			if held, ok := s.writeLog.AllowCount("maintenance"); ok {
				s.log.Error("store: maintenance", "err", err, "suppressed_since_last", held)
			}
		}
		if s.opts.OnBudget != nil && s.opts.DiskBudget > 0 {
			s.opts.OnBudget(s.BudgetCondition())
		}
	}
}

// Maintain applies retention and the disk budget once. It runs on its own
// every MaintenanceEvery; tests and operators may call it directly.
func (s *Store) Maintain(ctx context.Context) error {
	if s.opts.Retention > 0 {
		if err := s.applyRetention(ctx); err != nil {
			return err
		}
	}
	if s.opts.DiskBudget > 0 || s.opts.Reserve > 0 {
		return s.applyBudget(ctx)
	}
	return nil
}

// receivedAt returns the receive time of log entry seq, and false when it
// is not stored.
func (s *Store) receivedAt(seq uint64) (time.Time, bool, error) {
	v, closer, err := s.db.Get(logKey(seq))
	if err == pebble.ErrNotFound {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	defer closer.Close()
	var r reading.Reading
	if err := reading.UnmarshalBinary(v, &r); err != nil {
		return time.Time{}, false, err
	}
	return r.Received, true, nil
}

func (s *Store) applyRetention(ctx context.Context) error {
	cutoff := s.opts.Clock().Add(-s.opts.Retention)
	first, last := s.firstSeq.Load(), s.lastSeq.Load()
	if first == 0 || first > last {
		return nil
	}
	// The log is dense between first and last and ordered by arrival, so
	// a binary search finds the first reading young enough to keep.
	lo, hi := first, last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		t, ok, err := s.receivedAt(mid)
		if err != nil {
			return fmt.Errorf("store: retention: read %d: %w", mid, err)
		}
		if ok && !t.Before(cutoff) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	// Keep the newest reading whatever its age: it anchors the sequence
	// numbers across restarts, so consumer cursors stay valid.
	lo = min(lo, last)
	if lo <= first {
		return nil
	}
	return s.dropBefore(ctx, lo, cutoff, "retention")
}

// applyBudget deletes the oldest readings until the store fits its budget
// again: the configured disk budget, or less when the file system's free
// space says so (spaceBudget). Each round deletes the share of the log by
// which the store is over, plus a tenth so that it does not hover at the
// limit.
func (s *Store) applyBudget(ctx context.Context) error {
	for range 8 {
		usage := s.DiskUsage()
		budget, capped, bySpace := s.spaceBudget(usage)
		if !capped || usage <= budget {
			return nil
		}
		first, last := s.firstSeq.Load(), s.lastSeq.Load()
		if first == 0 || first >= last {
			return nil
		}
		over := float64(usage-budget)/float64(usage) + 0.1
		end := first + max(uint64(float64(last-first+1)*over), 1)
		// Readings every consumer has already taken go first: while any are
		// left, a round deletes no further than the slowest cursor, and
		// the next round measures again. Only when nothing forwarded is left
		// does the budget reach into unforwarded readings (data loss,
		// counted and raised by dropBefore).
		if cur, ok := s.minCursor(); ok && cur >= first && end > cur+1 {
			end = cur + 1
		} else if ok && bySpace && cur < first {
			// The free space, not the configured budget, is what is short:
			// unforwarded readings are kept and new ones refused (the broker
			// keeps them) rather than history lost to someone else's files.
			return nil
		}
		// Never delete the newest reading: it anchors the sequence numbers.
		end = min(end, last)
		t, _, err := s.receivedAt(end - 1)
		if err != nil {
			return fmt.Errorf("store: budget: read %d: %w", end-1, err)
		}
		if held, ok := s.writeLog.AllowCount("budget"); ok {
			s.log.Warn("store: over disk budget, deleting oldest readings",
				"usage_bytes", usage, "budget_bytes", budget, "readings", end-first, "suppressed_since_last", held)
		}
		if err := s.dropBefore(ctx, end, t.Add(time.Nanosecond), "disk_budget"); err != nil {
			return err
		}
	}
	return nil
}

// dropBefore deletes log entries [first, end), series points older than
// cutoff and the rollups of whole buckets before cutoff, then compacts so
// the space comes back. The buckets that straddle cutoff are kept; cutoff
// becomes the retention horizon, where history queries start, so they read
// those buckets' remaining part from the readings.
func (s *Store) dropBefore(ctx context.Context, end uint64, cutoff time.Time, reason string) error {
	first := s.firstSeq.Load()
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(logKey(first), logKey(end), nil)
	c := cutoff.UnixNano()
	horizon := max(s.horizon.Load(), c)
	_ = b.Set(metaKey("horizon"), binary.BigEndian.AppendUint64(nil, uint64(horizon)), nil)
	if err := pebblelog.Guard(func() error { return b.Commit(pebble.Sync) }); err != nil {
		return fmt.Errorf("store: delete readings before %d (%s): %w", end, reason, err)
	}
	s.firstSeq.Store(end)
	s.horizon.Store(horizon)
	// The index after the log: queries start at the horizon, so what a
	// crash leaves of the index before it is never read, and the next
	// deletion takes it.
	ib := s.idx.NewBatch()
	defer ib.Close()
	for _, sr := range s.Series(Query{}) {
		p := seriesPrefix(sr.Device, string(sr.Kind))
		_ = ib.DeleteRange(seriesBound(p, minTime), seriesBound(p, cutoff), nil)
		for _, res := range rollupResolutions {
			_ = ib.DeleteRange(appendRollupKey(nil, sr.Device, string(sr.Kind), res, math.MinInt64),
				appendRollupKey(nil, sr.Device, string(sr.Kind), res, floorTo(c, res.width())), nil)
		}
	}
	if err := pebblelog.Guard(func() error { return ib.Commit(pebble.NoSync) }); err != nil {
		return fmt.Errorf("store: delete series points before %d (%s): %w", end, reason, err)
	}
	dropped := end - first
	s.metrics.dropped.WithLabelValues(reason).Add(float64(dropped))
	if cur, ok := s.minCursor(); ok && cur < end-1 {
		lost := end - 1 - max(cur, first-1)
		s.metrics.droppedUnforwarded.Add(float64(lost))
		s.log.Error("store: deleted readings no consumer has read yet",
			"reason", reason, "readings", lost, "oldest_cursor", cur)
		if s.opts.OnUnforwardedDrop != nil {
			s.opts.OnUnforwardedDrop(reason, lost)
		}
	}
	if n, ok := s.writeLog.AllowCount("dropped:" + reason); ok {
		s.log.Info("store: deleted old readings", "reason", reason, "readings", dropped, "before_seq", end, "suppressed_since_last", n)
	}
	if err := s.db.Compact(ctx, []byte{prefixLog}, []byte{prefixLog + 1}, false); err != nil {
		return fmt.Errorf("store: compact after delete: %w", err)
	}
	if err := s.idx.Compact(ctx, []byte{prefixRegistry}, []byte{prefixRollup + 1}, false); err != nil {
		return fmt.Errorf("store: compact the index after delete: %w", err)
	}
	s.awaitObsoleteDeleted(ctx, 5*time.Second)
	return nil
}

// awaitObsoleteDeleted waits, at most for limit, until the engine has
// removed the files a compaction made obsolete (it does so in the
// background). Until then they count in DiskUsage, and the disk budget,
// which measures again right after deleting, would delete more readings
// than it needs to.
func (s *Store) awaitObsoleteDeleted(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for s.db.Metrics().Table.ObsoleteSize+s.idx.Metrics().Table.ObsoleteSize > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// BudgetWarnShare is the share of the disk budget unforwarded readings may
// fill before the budget's condition is a fault: past it, an InfluxDB
// outage that goes on will soon cost history.
const BudgetWarnShare = 0.8

// BudgetCondition says whether unforwarded readings (those some consumer
// has not read yet) are about to outgrow the disk budget: "ok", or how
// full it is. The unforwarded share is estimated from the share of the log
// behind the slowest cursor.
func (s *Store) BudgetCondition() string {
	return budgetCondition(s.DiskUsage(), uint64(s.opts.DiskBudget), s.firstSeq.Load(), s.lastSeq.Load(), s.minCursorOr(0))
}

func (s *Store) minCursorOr(def uint64) uint64 {
	if c, ok := s.minCursor(); ok {
		return c
	}
	return def
}

// budgetCondition is BudgetCondition's arithmetic: usage and budget in
// bytes, the log's first and last sequence numbers, and the slowest
// cursor (everything after it is unforwarded).
func budgetCondition(usage, budget, first, last, cursor uint64) string {
	if budget == 0 || first == 0 || last < first || cursor >= last {
		return "ok"
	}
	behind := last - max(cursor, first-1)
	share := float64(usage) * float64(behind) / float64(last-first+1) / float64(budget)
	if share < BudgetWarnShare {
		return "ok"
	}
	return fmt.Sprintf("unforwarded readings fill %d%% of the store's disk budget; past 100%% the oldest of them are deleted", int(math.Min(share, 9.99)*100))
}
