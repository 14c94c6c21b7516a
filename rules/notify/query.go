package notify

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

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
