package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

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
	if err := pebblelog.Guard(func() error { return b.Commit(pebble.Sync) }); err != nil {
		return err
	}
	for _, it := range items {
		o.lanes[it.rec.Channel].add(it)
	}
	return nil
}
