package notify

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

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
	if err := pebblelog.Guard(func() error { return b.Commit(pebble.Sync) }); err != nil {
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
