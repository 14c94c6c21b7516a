package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Free space on the store's file system.
//
// The store never lets its engine meet a full disk: Pebble treats a failed
// WAL or MANIFEST write as fatal (it calls Logger.Fatalf, after which its
// commit pipeline is unusable), and on an SD card shared with the alarm
// state, the notification outbox and the audit log, the store is the only
// writer that can grow without bound. So before every group commit the
// store looks at the free space (statfs, about a microsecond beside the
// commit's fsync) and refuses readings with ErrDiskFull while it is below
// the reserve. Readings refused are not acknowledged: the broker keeps
// them, and the pipeline lets the safety rules see them in memory
// (pipeline.Options.Unstored) and retries until space returns.
//
// The reserve is what is left for the writers that must not stop: fault
// readings (the gateway's own alarms, such as disk-full itself), cursors,
// the outbox, the audit log and the alarm state. A ballast file (as
// CockroachDB keeps beside Pebble) holds back more room still: when
// something other than the store eats the reserve (a log, a copied file),
// the ballast is deleted so those writers have its size to work with, and
// it is laid down again once there is room.
//
// The disk budget shrinks with the free space: the store may use at most
// disk_budget, and at most what it uses now plus the free space above the
// reserve (plus the ballast's size while the ballast is gone), so the
// oldest readings make way for new ones before the disk is full.

// ErrDiskFull is returned by Append when the file system's free space is
// below the reserve. Nothing was written; the caller must not acknowledge.
var ErrDiskFull = errors.New("store: disk full")

// BallastName is the ballast file in the store's directory. Pebble ignores
// files it does not recognise.
const BallastName = "EMERGENCY-BALLAST"

// Defaults for the free-space reserve and the ballast.
const (
	DefaultReserve      = 128 << 20
	DefaultBallastBytes = 64 << 20
)

// spaceState is what the space watch last saw.
type spaceState struct {
	free, total uint64
	// need is the free space below which readings are refused: the reserve,
	// plus the ballast's size while the ballast is released.
	need uint64
}

// statfs returns the bytes available to the gateway and the file
// system's size.
func statfs(dir string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("store: free space of %s: %w", dir, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}

// privateDir creates dir (0700) or tightens an existing one to 0700.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("store: make %s private: %w", dir, err)
	}
	return nil
}

func (s *Store) ballastPath() string { return filepath.Join(s.opts.Dir, BallastName) }

// need is the free space readings must leave.
func (s *Store) need() uint64 {
	n := uint64(s.opts.Reserve)
	if !s.ballastHeld.Load() {
		n += uint64(s.opts.BallastBytes)
	}
	return n
}

// checkSpace measures the free space and returns an error wrapping
// ErrDiskFull when readings must be refused.
func (s *Store) checkSpace() (spaceState, error) {
	if s.opts.Reserve <= 0 {
		// No reserve configured: nothing to check before a commit.
		return spaceState{}, nil
	}
	free, total, err := statfs(s.opts.Dir)
	if err != nil {
		// Unknown free space must not stop a smoke reading; the commit
		// itself will say if the disk is really full.
		return spaceState{}, nil
	}
	st := spaceState{free: free, total: total, need: s.need()}
	if free < st.need {
		return st, fmt.Errorf("%w: %s free of %s, below the %s kept for alarms", ErrDiskFull, mib(free), mib(total), mib(st.need))
	}
	return st, nil
}

// mayUseReserve reports whether a message's readings may be written into
// the reserve: those of a safety device (AppendPriority) or with a safety
// reading (smoke, a panic button, a door; reading.Kind.Safety) down to a
// quarter of it, the gateway's own fault
// readings (the disk-full alarm among them) down to a sixteenth. They are
// few and small, and storing them means their message is acknowledged,
// which an external broker needs before it sends more.
func mayUseReserve(rs []reading.Reading, priority bool, st spaceState, reserve int64) bool {
	faults, safety := true, priority
	for i := range rs {
		faults = faults && rs[i].Kind == reading.KindFault
		safety = safety || rs[i].Kind.Safety()
	}
	switch {
	case faults:
		return st.free >= uint64(reserve)/16
	case safety:
		return st.free >= uint64(reserve)/4
	}
	return false
}

// spaceCondition is the disk-full fault's condition: "ok", or what is full.
// It names no exact free space: the text must stay the same while the
// disk stays full, or every fluctuation would be a new fault reading and a
// new log line.
func spaceCondition(st spaceState, err error) string {
	if err == nil {
		return "ok"
	}
	return fmt.Sprintf("the disk is full: less than %s free of %s; readings are not being stored (the broker keeps them) until there is", mib(st.need), mib(st.total))
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// watchSpace runs in its own goroutine: it reports the disk-full
// condition, releases and re-creates the ballast, and starts a budget pass
// at once when space runs short.
func (s *Store) watchSpace() {
	t := time.NewTicker(s.opts.SpaceEvery)
	defer t.Stop()
	last := ""
	var kicked time.Time
	for {
		s.balanceBallast()
		st, err := s.checkSpace()
		s.full.Store(err != nil)
		if cond := spaceCondition(st, err); cond != last {
			last = cond
			if err != nil {
				s.log.Error("store: disk full; readings are refused until space returns", "free_bytes", st.free, "need_bytes", st.need)
			} else if st.total > 0 {
				s.log.Info("store: disk space", "free_bytes", st.free, "need_bytes", st.need)
			}
			if s.opts.OnSpace != nil {
				s.opts.OnSpace(cond)
			}
		}
		if err != nil && time.Since(kicked) >= 10*time.Second {
			// Full: a budget pass now may give forwarded readings' room to
			// new ones. Not more often: a pass that finds nothing to delete
			// is work for nothing.
			kicked = time.Now()
			s.kickMaintenance()
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.spaceKick:
		}
	}
}

// balanceBallast releases the ballast when the free space has fallen to
// half the reserve (something other than the store is filling the disk),
// and lays it down again once there is room for it and the reserve with
// half a reserve to spare.
func (s *Store) balanceBallast() {
	if s.opts.BallastBytes <= 0 {
		return
	}
	free, _, err := statfs(s.opts.Dir)
	if err != nil {
		return
	}
	reserve, ballast := uint64(s.opts.Reserve), uint64(s.opts.BallastBytes)
	held := s.ballastHeld.Load()
	switch {
	case held && free < reserve/2:
		if err := os.Remove(s.ballastPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("store: release the ballast file", "err", err)
			return
		}
		s.ballastHeld.Store(false)
		s.log.Warn("store: disk nearly full; released the ballast file so alarms, the outbox and the audit log can still be written",
			"ballast_bytes", ballast, "free_bytes", free)
	case !held && free >= reserve+ballast+reserve/2:
		if err := writeBallast(s.ballastPath(), int64(ballast)); err != nil {
			if s.ballastLog.Allow("ballast") {
				s.log.Warn("store: lay down the ballast file", "err", err)
			}
			return
		}
		s.ballastHeld.Store(true)
	}
}

// releaseBallastIfFull deletes the ballast before the engine opens when
// the disk is as full as balanceBallast would release it for.
func releaseBallastIfFull(opts Options) {
	if opts.BallastBytes <= 0 || opts.Reserve <= 0 {
		return
	}
	if free, _, err := statfs(opts.Dir); err == nil && free < uint64(opts.Reserve)/2 {
		if err := os.Remove(filepath.Join(opts.Dir, BallastName)); err == nil {
			opts.Logger.Warn("store: disk nearly full at start; released the ballast file so the store can open", "free_bytes", free)
		}
	}
}

// roomToOpen refuses to open the engine on a disk without room for it:
// opening replays the write-ahead log and flushes it to a table, and on a
// full disk Pebble retries that flush for ever, so Open (and with it the
// gateway's start, and its answer to SIGTERM) would never return. Twice
// the log's size plus a little is what the flush and a new manifest need.
func roomToOpen(opts Options) error {
	if opts.Reserve <= 0 {
		return nil
	}
	free, total, err := statfs(opts.Dir)
	if err != nil {
		return nil
	}
	var wal uint64
	if ents, err := os.ReadDir(opts.Dir); err == nil {
		for _, e := range ents {
			if filepath.Ext(e.Name()) != ".log" {
				continue
			}
			if fi, err := e.Info(); err == nil {
				wal += uint64(fi.Size())
			}
		}
	}
	if need := 2*wal + 256<<10; free < need {
		return fmt.Errorf("%w: cannot open the store in %s: %s free of %s, it needs %s to replay its log; free space on the gateway's storage and start it again",
			ErrDiskFull, opts.Dir, mib(free), mib(total), mib(need))
	}
	return nil
}

// writeBallast creates path with size bytes actually allocated (sparse
// files would reserve nothing), replacing any partial one.
func writeBallast(path string, size int64) (err error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() == size {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: create ballast: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		// Not every file system allocates ahead; write zeros instead.
		if _, err := io.CopyN(f, zeroReader{}, size); err != nil {
			return fmt.Errorf("store: write ballast: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: sync ballast: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: close ballast: %w", err)
	}
	return os.Rename(tmp, path)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// spaceBudget is the disk budget as the free space allows: what the store
// uses now plus the free space above what readings must leave, and no more
// than the configured budget. capped is false when there is neither;
// bySpace is true when the free space is the tighter limit. Under it only
// readings every consumer has read are deleted (see applyBudget).
func (s *Store) spaceBudget(usage uint64) (budget uint64, capped, bySpace bool) {
	budget, capped = uint64(s.opts.DiskBudget), s.opts.DiskBudget > 0
	if s.opts.Reserve <= 0 {
		return budget, capped, false
	}
	free, _, err := statfs(s.opts.Dir)
	if err != nil {
		return budget, capped, false
	}
	room := usage
	if need := s.need(); free > need {
		room += free - need
	} else {
		room -= min(room, need-free)
	}
	if !capped || room < budget {
		return room, true, true
	}
	return budget, true, false
}

// kickMaintenance asks for a retention and budget pass now.
func (s *Store) kickMaintenance() {
	select {
	case s.maintKick <- struct{}{}:
	default:
	}
}

// Full reports whether the store refused readings for lack of space at
// its last look at the disk.
func (s *Store) Full() bool { return s.full.Load() }
