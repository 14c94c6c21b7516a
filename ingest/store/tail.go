package store

import (
	"sync"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// tail keeps the newest readings on disk in memory, in a ring indexed by
// sequence number. The log's consumers (the rules engine, each
// forwarder) read right behind the writer; without it each of them
// decoded every reading from the log again, allocating its strings anew.
// A reader that has fallen further behind than the ring holds reads the
// log, so the ring changes what a read costs, never what it returns.
type tail struct {
	mu    sync.RWMutex
	ring  []reading.Reading // ring[seq % len(ring)]
	first uint64            // the oldest sequence number held; 0: none
	last  uint64            // the newest
}

// DefaultTailReadings is the readings the tail holds by default, about
// 0.9 MB: a forwarder's linger (1 s) at 2,000 readings/s, a busy site's
// rate, with room to spare. A backlog drains faster than that and its
// forwarder reads the log.
const DefaultTailReadings = 4096

func newTail(n int) *tail {
	if n <= 0 {
		return nil
	}
	return &tail{ring: make([]reading.Reading, n)}
}

// add appends a batch on disk. Its sequence numbers follow on from those
// held, or the ring starts again from it: after a batch whose fsync
// failed, whose readings only the log can say whether it holds.
func (t *tail) add(reqs []*appendReq) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, req := range reqs {
		for i := range req.readings {
			r := &req.readings[i]
			if t.first == 0 || r.Seq != t.last+1 {
				t.first = r.Seq
			}
			t.last = r.Seq
			if n := uint64(len(t.ring)); t.last-t.first >= n {
				t.first = t.last - n + 1
			}
			// As the log holds it: times without the monotonic clock
			// and in the local zone, as reading.UnmarshalBinary gives.
			e := &t.ring[r.Seq%uint64(len(t.ring))]
			*e = *r
			e.Time = time.Unix(0, r.Time.UnixNano())
			e.Received = time.Unix(0, r.Received.UnixNano())
		}
	}
}

// read appends to dst the readings from seq from up to seq last, at most
// max, and says whether the ring held from (and so all of them).
func (t *tail) read(dst []reading.Reading, from, last uint64, max int) ([]reading.Reading, bool) {
	if t == nil {
		return dst, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.first == 0 || from < t.first || last > t.last {
		return dst, false
	}
	n := int(min(uint64(max), last-from+1))
	for seq := from; seq < from+uint64(n); seq++ {
		dst = append(dst, t.ring[seq%uint64(len(t.ring))])
	}
	return dst, true
}
