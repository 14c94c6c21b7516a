package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
)

// The store is two Pebble instances. The log instance (Dir) holds what
// must survive a crash as acknowledged: the log, cursors, dead letters
// and the store's metadata. The index instance (Dir/index) holds what is
// derived from the log: the series index, the series registry and the
// rollups, with the meta key "indexed", the last sequence number whose
// index entries it holds, written in the same batch as them.
//
// Apart, each is compacted on its own. The log's keys arrive in order, so
// its flushed tables do not overlap and move down the levels without being
// rewritten; the index's keys land all over its key space, and in one
// instance every flushed table overlapped the log's tables below it too,
// so that compactions rewrote the log with the index (a third of the CPU
// per message, measured).
//
// The index has no write-ahead log of its own: the log is its WAL. Its
// batches are applied after the log's batch is on disk, in order, and
// Pebble flushes whole memtables in order, so what a crash leaves of it is
// a prefix of its batches with its "indexed" mark; Open indexes the log
// entries after the mark again (replayIndex). Close flushes it.
const indexDirName = "index"

var indexedKey = metaKey("indexed")

// indexMetaKeys are the meta keys the index instance keeps (rollup.go).
var indexMetaKeys = []string{"hour-rollups", "rollups"}

// indexRanges are the key ranges of the index instance's tables.
var indexRanges = [][2][]byte{
	{[]byte{prefixRegistry}, []byte{prefixRegistry + 1}},
	{[]byte{prefixSeries}, []byte{prefixSeries + 1}},
	{[]byte{prefixRollup}, []byte{prefixRollup + 1}},
}

func indexDir(dir string) string { return filepath.Join(dir, indexDirName) }

// indexOptions are the engine's options for the index instance.
func indexOptions(opts Options) *pebble.Options {
	po := pebbleOptions(opts)
	po.Logger = pebblelog.New("store index", opts.Logger)
	po.DisableWAL = true
	// The same write buffer as the log's. A quarter of it saved 5 MB at
	// 1,000 devices but cost 20–40 % more CPU per message at 10,000:
	// the index's keys are spread over every series, and each flushed
	// table of a small memtable overlaps all the tables below it.
	return po
}

// readIndexed returns the index's "indexed" mark (0, false: none).
func readIndexed(idx *pebble.DB) (uint64, bool, error) {
	v, closer, err := idx.Get(indexedKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: read the index's mark: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("store: the index's mark is %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

func setIndexed(b *pebble.Batch, seq uint64) {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], seq)
	_ = b.Set(indexedKey, v[:], nil)
}

// splitIndex moves the series index, registry and rollups of a store
// written in format 1 (everything in one instance) into the index
// instance, and records format 2. It copies first and deletes from the
// log instance only in the batch that records the format, so a split cut
// short is done again from the start at the next open (copying with Set
// is idempotent).
func (s *Store) splitIndex() error {
	start := time.Now()
	_, last, err := s.bounds(prefixLog)
	if err != nil {
		return fmt.Errorf("store: move the index: log bounds: %w", err)
	}
	b := s.idx.NewBatch()
	defer func() { _ = b.Close() }()
	n := 0
	commit := func() error {
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("store: move the index: %w", err)
		}
		b.Reset()
		return nil
	}
	for _, r := range indexRanges {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: r[0], UpperBound: r[1]})
		if err != nil {
			return fmt.Errorf("store: move the index: %w", err)
		}
		for it.First(); it.Valid(); it.Next() {
			_ = b.Set(it.Key(), it.Value(), nil)
			n++
			if b.Len() >= 4<<20 {
				if err := commit(); err != nil {
					it.Close()
					return err
				}
			}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("store: move the index: %w", err)
		}
	}
	for _, name := range indexMetaKeys {
		v, closer, err := s.db.Get(metaKey(name))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: move the index: read %s: %w", name, err)
		}
		_ = b.Set(metaKey(name), v, nil)
		_ = closer.Close()
	}
	// The old layout indexed each batch with its readings: the index is
	// complete through the log's end. A mark already there is from an
	// earlier split cut short, or from this layout (a store whose format
	// record was lost): kept.
	if _, ok, err := readIndexed(s.idx); err != nil {
		return err
	} else if !ok {
		setIndexed(b, last)
	}
	if err := commit(); err != nil {
		return err
	}
	if err := s.idx.Flush(); err != nil {
		return fmt.Errorf("store: move the index: flush: %w", err)
	}
	lb := s.db.NewBatch()
	defer lb.Close()
	for _, r := range indexRanges {
		_ = lb.DeleteRange(r[0], r[1], nil)
	}
	for _, name := range indexMetaKeys {
		_ = lb.Delete(metaKey(name), nil)
	}
	_ = lb.Set(metaKey("format"), binary.BigEndian.AppendUint32(nil, FormatVersion), nil)
	if err := pebblelog.Guard(func() error { return lb.Commit(pebble.Sync) }); err != nil {
		return fmt.Errorf("store: move the index: record format %d: %w", FormatVersion, err)
	}
	if n > 0 {
		// The deleted range holds its space until compacted; the
		// maintenance goroutine does so before its first pass.
		s.reclaim = append(s.reclaim, reclaimRange{db: s.db, lo: []byte{prefixRegistry}, hi: []byte{prefixRollup + 1}, what: "the index's old place in the log"})
		s.log.Info("store: moved the series index into its own instance", "keys", n, "took", time.Since(start))
	}
	return nil
}

// loadRegistry reads the series registry from the index.
func (s *Store) loadRegistry() error {
	it, err := s.idx.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRegistry}, UpperBound: []byte{prefixRegistry + 1}})
	if err != nil {
		return fmt.Errorf("store: read series registry: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[1:]
		for i, c := range k {
			if c == 0 {
				s.registry[seriesID{device: string(k[:i]), kind: reading.Kind(k[i+1:])}] = string(it.Value())
				break
			}
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("store: read series registry: %w", err)
	}
	return nil
}

// replayIndex indexes the log entries after the index's mark: those whose
// index batch a crash took with the memtable. Open runs it before the
// writer starts, with the registry loaded.
func (s *Store) replayIndex() error {
	mark, _, err := readIndexed(s.idx)
	if err != nil {
		return err
	}
	first, last := s.firstSeq.Load(), s.lastSeq.Load()
	if mark > last {
		// The log ends before the index: only a log copied or restored
		// apart from its index does that. The index's extra entries are
		// readings that were acknowledged; they stay.
		s.log.Warn("store: the series index is ahead of the log; it keeps readings the log no longer has",
			"index_through", mark, "log_through", last)
		return nil
	}
	if mark == last {
		return nil
	}
	start := time.Now()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(max(mark+1, first)), UpperBound: logKey(last + 1)})
	if err != nil {
		return fmt.Errorf("store: index the log after %d: %w", mark, err)
	}
	defer it.Close()
	b := s.idx.NewBatch()
	defer func() { _ = b.Close() }()
	n := 0
	var seq uint64
	commit := func() error {
		s.series.flush(b)
		s.keyBuf, s.buf = s.pending.flush(b, s.keyBuf, s.buf)
		setIndexed(b, seq)
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("store: index the log through %d: %w", seq, err)
		}
		b.Reset()
		return nil
	}
	var r reading.Reading
	for it.First(); it.Valid(); it.Next() {
		seq = seqOf(it.Key())
		if err := reading.UnmarshalBinary(it.Value(), &r); err != nil {
			return fmt.Errorf("store: index the log at %d: %w", seq, err)
		}
		r.Seq = seq
		for id, zone := range s.indexReading(b, &r, nil) {
			s.registry[id] = zone
		}
		n++
		if n%4096 == 0 {
			if err := commit(); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: index the log after %d: %w", mark, err)
	}
	seq = last
	if err := commit(); err != nil {
		return err
	}
	if err := s.idx.Flush(); err != nil {
		return fmt.Errorf("store: flush the index: %w", err)
	}
	s.log.Info("store: indexed the readings the series index had not kept", "readings", n, "from_seq", mark+1, "through_seq", last, "took", time.Since(start))
	return nil
}

// indexReading adds a reading's series entry and rollup (in s.pending) to
// b, and its registry entry when the series is new or changed zone. It
// returns newSeries with that change; the caller makes it visible once
// the batch is applied.
func (s *Store) indexReading(b *pebble.Batch, r *reading.Reading, newSeries map[seriesID]string) map[seriesID]string {
	s.series.add(r)
	s.pending.add(r)
	id := seriesID{device: r.Device, kind: r.Kind}
	if zone, ok := s.zoneOf(id); !ok || zone != r.Zone {
		if newSeries == nil {
			newSeries = make(map[seriesID]string)
		}
		// A series of no zone (a gateway-wide device) is registered too:
		// "" is a zone here, not "not seen".
		if z, seen := newSeries[id]; !seen || z != r.Zone {
			newSeries[id] = r.Zone
			_ = b.Set(registryKey(r.Device, string(r.Kind)), []byte(r.Zone), nil)
		}
	}
	return newSeries
}

// seriesEntries collects a batch's series index entries, to be written in
// key order. A batch's readings come in arrival order, from devices all
// over the key space, and the index's memtable searched its skiplist from
// the top for each; in key order, each search starts from the last one's
// place (a tenth of the gateway's CPU through an external broker went to
// those searches).
type seriesEntries struct {
	arena []byte // keys and values, one after the other
	ents  []seriesEntry
}

// seriesEntry is a key, arena[k:v], and its value, arena[v:end].
type seriesEntry struct{ k, v, end int }

func (e *seriesEntries) add(r *reading.Reading) {
	k := len(e.arena)
	e.arena = appendSeriesKey(e.arena, r.Device, string(r.Kind), r.Time, r.Seq)
	v := len(e.arena)
	e.arena = reading.AppendValue(e.arena, r.Value)
	e.ents = append(e.ents, seriesEntry{k, v, len(e.arena)})
}

// flush writes the entries to b in key order and forgets them.
func (e *seriesEntries) flush(b *pebble.Batch) {
	a := e.arena
	slices.SortFunc(e.ents, func(x, y seriesEntry) int { return bytes.Compare(a[x.k:x.v], a[y.k:y.v]) })
	for _, en := range e.ents {
		_ = b.Set(a[en.k:en.v], a[en.v:en.end], nil)
	}
	e.arena, e.ents = e.arena[:0], e.ents[:0]
}
