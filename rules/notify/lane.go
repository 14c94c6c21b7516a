package notify

import (
	"container/heap"
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/backoff"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

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
