package notify

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

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
