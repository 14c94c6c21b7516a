package store

import (
	"encoding/binary"
	"math"
	"time"
)

// Key layout (a one-byte prefix per table). The log instance:
//
//	'L' seq(8)                               → reading.AppendBinary     the log, in arrival order
//	'C' consumer                             → seq(8)                   consumer cursors of older stores (now cursors.go)
//	'D' seq(8)                               → dead-letter JSON         bounded dead-letter store
//	'M' name                                 → value                    store metadata (format version, retention horizon)
//
// The index instance (index.go), derived from the log:
//
//	'S' device 0x00 kind 0x00 time(8) seq(8) → reading.AppendValue      series index for range queries
//	'R' device 0x00 kind                     → zone                     series registry
//	'U' device 0x00 kind 0x00 res start(8)   → rollup records           per-hour aggregates (rollup.go)
//	'M' name                                 → value                    rollup format, the "indexed" mark
//
// Integers are big-endian so that byte order is numeric order; times are
// Unix nanoseconds with the sign bit flipped so that pre-1970 times sort
// before later ones.
const (
	prefixLog        = 'L'
	prefixSeries     = 'S'
	prefixRegistry   = 'R'
	prefixCursor     = 'C'
	prefixDeadLetter = 'D'
	prefixMeta       = 'M'
	prefixRollup     = 'U'
)

func logKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func deadLetterKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixDeadLetter
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func seqOf(key []byte) uint64 { return binary.BigEndian.Uint64(key[1:9]) }

func timeBits(t time.Time) uint64 { return nsBits(t.UnixNano()) }

func nsBits(ns int64) uint64 { return uint64(ns) ^ (1 << 63) }

func bitsTime(b uint64) time.Time { return time.Unix(0, int64(b^(1<<63))) }

// seriesPrefix is 'S' device 0x00 kind 0x00.
func seriesPrefix(device, kind string) []byte {
	k := make([]byte, 0, 3+len(device)+len(kind)+16)
	k = append(k, prefixSeries)
	k = append(k, device...)
	k = append(k, 0)
	k = append(k, kind...)
	return append(k, 0)
}

// appendSeriesKey appends seriesKey(seriesPrefix(device, kind), t, seq).
func appendSeriesKey(dst []byte, device, kind string, t time.Time, seq uint64) []byte {
	dst = append(dst, prefixSeries)
	dst = append(dst, device...)
	dst = append(dst, 0)
	dst = append(dst, kind...)
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, timeBits(t))
	return binary.BigEndian.AppendUint64(dst, seq)
}

func seriesKey(prefix []byte, t time.Time, seq uint64) []byte {
	k := make([]byte, len(prefix), len(prefix)+16)
	copy(k, prefix)
	k = binary.BigEndian.AppendUint64(k, timeBits(t))
	return binary.BigEndian.AppendUint64(k, seq)
}

// seriesBound is the first key of the series at time t (any seq).
func seriesBound(prefix []byte, t time.Time) []byte {
	return seriesKey(prefix, t, 0)
}

// seriesBoundNs is seriesBound for a time in Unix nanoseconds.
func seriesBoundNs(prefix []byte, ns int64) []byte {
	k := make([]byte, len(prefix), len(prefix)+16)
	copy(k, prefix)
	k = binary.BigEndian.AppendUint64(k, nsBits(ns))
	return binary.BigEndian.AppendUint64(k, 0)
}

// splitSeriesPrefix returns the device and kind of a series prefix
// ('S' device 0x00 kind 0x00), and false if it is not one.
func splitSeriesPrefix(p []byte) (device, kind string, ok bool) {
	if len(p) < 3 || p[len(p)-1] != 0 {
		return "", "", false
	}
	rest := p[1 : len(p)-1]
	for i, c := range rest {
		if c == 0 {
			return string(rest[:i]), string(rest[i+1:]), true
		}
	}
	return "", "", false
}

// appendRollupKey appends 'U' device 0x00 kind 0x00 res start(8) to dst.
// start is the bucket's start in Unix nanoseconds.
func appendRollupKey(dst []byte, device, kind string, res resolution, start int64) []byte {
	dst = append(dst, prefixRollup)
	dst = append(dst, device...)
	dst = append(dst, 0)
	dst = append(dst, kind...)
	dst = append(dst, 0, byte(res))
	return binary.BigEndian.AppendUint64(dst, nsBits(start))
}

// rollupResBounds are the bounds of every rollup key of one series and
// resolution.
func rollupResBounds(device, kind string, res resolution) (lower, upper []byte) {
	lower = appendRollupKey(nil, device, kind, res, math.MinInt64)
	upper = appendRollupKey(nil, device, kind, res+1, math.MinInt64)
	return lower, upper
}

// rollupPrefixLen is the length of a rollup key without its start.
func rollupPrefixLen(device, kind string) int { return len(device) + len(kind) + 4 }

func rollupStart(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[len(key)-8:]) ^ (1 << 63))
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// splitSeriesKey returns time and seq of a series key with the given prefix length.
func splitSeriesKey(key []byte, prefixLen int) (time.Time, uint64) {
	rest := key[prefixLen:]
	return bitsTime(binary.BigEndian.Uint64(rest[:8])), binary.BigEndian.Uint64(rest[8:16])
}

func registryKey(device, kind string) []byte {
	k := make([]byte, 0, 2+len(device)+len(kind))
	k = append(k, prefixRegistry)
	k = append(k, device...)
	k = append(k, 0)
	return append(k, kind...)
}

func cursorKey(name string) []byte { return append([]byte{prefixCursor}, name...) }

// minTime and maxTime bound queries with no From or To.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)
