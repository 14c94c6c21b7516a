package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
)

// maxDeadLetterPayload bounds the raw payload kept per dead letter; longer
// payloads are kept truncated (Truncated is set) so that a flood of
// oversized messages cannot fill the disk.
const maxDeadLetterPayload = 4096

// DeadLetter is a message the gateway could not accept, kept with the reason
// so an operator can see what a device really sent.
type DeadLetter struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Topic     string    `json:"topic"`
	Device    string    `json:"device,omitempty"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	Payload   []byte    `json:"payload"`
	Size      int       `json:"size"`
	Truncated bool      `json:"truncated,omitempty"`

	// written, when set, receives the outcome once the entry is synced
	// (AddDeadLetterWait).
	written chan error
}

// AddDeadLetter queues a dead letter for writing. It never blocks: when the
// queue is full the entry is counted (store_dead_letters_dropped_total) and
// dropped, because a flood of bad input must not slow good input.
func (s *Store) AddDeadLetter(dl DeadLetter) {
	dl = prepareDeadLetter(dl)
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return
	}
	select {
	case s.dlReqs <- dl:
	default:
		s.metrics.deadLettersDropped.Inc()
	}
}

// AddDeadLetterWait writes a dead letter and waits until it is on disk. The
// InfluxDB forwarder uses it: a reading InfluxDB rejects must be recorded
// before the forwarder's cursor moves past it.
func (s *Store) AddDeadLetterWait(ctx context.Context, dl DeadLetter) error {
	dl = prepareDeadLetter(dl)
	dl.written = make(chan error, 1)
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.dlReqs <- dl:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-dl.written:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func prepareDeadLetter(dl DeadLetter) DeadLetter {
	dl.Size = len(dl.Payload)
	if len(dl.Payload) > maxDeadLetterPayload {
		dl.Payload = dl.Payload[:maxDeadLetterPayload]
		dl.Truncated = true
	}
	// Copy: the payload may belong to a buffer the caller reuses.
	dl.Payload = append([]byte(nil), dl.Payload...)
	return dl
}

// writeDeadLetters writes one dead letter and evicts the oldest beyond the
// bound. Runs on the writer goroutine. Not synced: dead letters are
// diagnostics, and the next synced commit makes them durable anyway.
func (s *Store) writeDeadLetters(dl DeadLetter) {
	dl.Seq = s.dlNext
	v, err := json.Marshal(dl)
	if err != nil {
		s.log.Error("store: encode dead letter", "err", err)
		if dl.written != nil {
			dl.written <- fmt.Errorf("store: encode dead letter: %w", err)
		}
		return
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(deadLetterKey(dl.Seq), v, nil)
	first := s.dlFirst
	for s.dlNext+1-first > uint64(s.opts.DeadLetterMax) {
		first++
	}
	if first > s.dlFirst {
		_ = b.DeleteRange(deadLetterKey(s.dlFirst), deadLetterKey(first), nil)
	}
	sync := pebble.NoSync
	if dl.written != nil {
		sync = pebble.Sync
	}
	if err := pebblelog.Guard(func() error { return b.Commit(sync) }); err != nil {
		s.log.Error("store: write dead letter", "err", err)
		if dl.written != nil {
			dl.written <- fmt.Errorf("store: write dead letter: %w", err)
		}
		return
	}
	s.dlFirst = first
	s.dlNext++
	s.metrics.deadLetters.Inc()
	if dl.written != nil {
		dl.written <- nil
	}
}

// DeadLetters returns up to limit dead letters, newest first.
func (s *Store) DeadLetters(limit int) ([]DeadLetter, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDeadLetter}, UpperBound: []byte{prefixDeadLetter + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: list dead letters: %w", err)
	}
	defer it.Close()
	var out []DeadLetter
	for ok := it.Last(); ok && len(out) < limit; ok = it.Prev() {
		var dl DeadLetter
		if err := json.Unmarshal(it.Value(), &dl); err != nil {
			return out, fmt.Errorf("store: decode dead letter %d: %w", seqOf(it.Key()), err)
		}
		out = append(out, dl)
	}
	return out, it.Error()
}
