package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// conditions records the disk-full conditions the store reports.
type conditions struct {
	mu   sync.Mutex
	seen []string
	ch   chan string
}

func (c *conditions) report(cond string) {
	c.mu.Lock()
	c.seen = append(c.seen, cond)
	c.mu.Unlock()
	select {
	case c.ch <- cond:
	default:
	}
}

func (c *conditions) waitFor(t *testing.T, full bool) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case cond := <-c.ch:
			if (cond != "ok") == full {
				return cond
			}
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("no disk condition with full=%v; seen %q", full, c.seen)
		}
	}
}

// TestDiskFullRefusesReadingsKeepsFaultsAndRecovers fills a real small
// file system under an open store: readings are refused with ErrDiskFull
// (never a panic inside the engine), the ballast gives its room back, the
// gateway's fault readings are still written, and once space returns
// readings are stored again and the ballast is laid down again.
func TestDiskFullRefusesReadingsKeepsFaultsAndRecovers(t *testing.T) {
	fs := testpeer.SmallFS(t, 24<<20)
	cond := &conditions{ch: make(chan string, 16)}
	s := openTest(t, Options{
		Dir: filepath.Join(fs, "store"), Reserve: 4 << 20, BallastBytes: 2 << 20,
		MemTableSize: 1 << 20, SpaceEvery: 20 * time.Millisecond, OnSpace: cond.report,
	})
	ctx := context.Background()
	if err := s.Append(ctx, []reading.Reading{temp("d1", "z1", t0, 20)}); err != nil {
		t.Fatalf("append on an empty disk: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(fs, "store", BallastName)); err != nil || fi.Size() != 2<<20 {
		t.Fatalf("ballast after open: %v %v", fi, err)
	}

	// Something else fills the disk to half a MiB: the ballast goes.
	filler := testpeer.FillFS(t, fs, 512<<10)
	cond.waitFor(t, true)
	if _, err := os.Stat(filepath.Join(fs, "store", BallastName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ballast still there on a full disk: %v", err)
	}
	before := s.LastSeq()
	err := s.Append(ctx, []reading.Reading{temp("d1", "z1", t0.Add(time.Second), 21)})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", err)
	}
	if !strings.Contains(err.Error(), "MiB free") {
		t.Errorf("disk-full error does not say what is free: %v", err)
	}
	if s.LastSeq() != before || !s.Full() {
		t.Fatalf("a refused append moved the log to %d (from %d), full=%v", s.LastSeq(), before, s.Full())
	}
	fault := reading.Reading{Facility: "f1", Device: "gateway.disk", Kind: reading.KindFault, Format: "gateway",
		Time: t0, Received: t0, Value: reading.State("disk full")}
	if err := s.Append(ctx, []reading.Reading{fault}); err != nil {
		t.Fatalf("a fault reading on a full disk: %v", err)
	}
	smoke := reading.Reading{Facility: "f1", Device: "d2", Zone: "z1", Kind: reading.KindSmoke, Format: "native",
		Time: t0, Received: t0, Value: reading.Bool(true)}
	if err := s.Append(ctx, []reading.Reading{smoke}); err != nil {
		t.Fatalf("a smoke reading on a full disk: %v", err)
	}
	// A safety device's other readings (its battery, its availability)
	// go with it.
	if err := s.AppendPriority(ctx, []reading.Reading{temp("d2", "z1", t0, 30)}); err != nil {
		t.Fatalf("a safety device's temperature on a full disk: %v", err)
	}
	if n := testutilCounter(t, s.metrics.refusedFull); n < 1 {
		t.Errorf("refused readings counted %v", n)
	}
	if err := s.SetCursor("influx", s.LastSeq()); err != nil {
		t.Fatalf("a cursor on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	cond.waitFor(t, false)
	if err := s.Append(ctx, []reading.Reading{temp("d1", "z1", t0.Add(2*time.Second), 22)}); err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(filepath.Join(fs, "store", BallastName))
		if err == nil && fi.Size() == 2<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ballast not laid down again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBudgetFollowsFreeSpace: with no disk budget configured, the store
// deletes its oldest (already read) readings when the free space falls
// below what it must leave, rather than refusing new ones.
func TestBudgetFollowsFreeSpace(t *testing.T) {
	fs := testpeer.SmallFS(t, 48<<20)
	s := openTest(t, Options{
		Dir: filepath.Join(fs, "store"), Reserve: 4 << 20, MemTableSize: 1 << 20, SpaceEvery: 20 * time.Millisecond,
	})
	ctx := context.Background()
	rs := make([]reading.Reading, 0, 1000)
	for round := 0; round < 30; round++ {
		rs = rs[:0]
		for i := range 1000 {
			rs = append(rs, temp("d1", "z1", t0.Add(time.Duration(round*1000+i)*time.Second), float64(i)))
		}
		if err := s.Append(ctx, rs); err != nil && !errors.Is(err, ErrDiskFull) {
			t.Fatalf("append round %d: %v", round, err)
		}
	}
	// Let the engine's background work settle first: a compaction that
	// finished after the space was taken would give back more than the
	// margin below, and the pass would rightly find nothing to delete.
	settle := time.Now().Add(10 * time.Second)
	for time.Now().Before(settle) {
		m, im := s.db.Metrics(), s.idx.Metrics()
		if m.Compact.NumInProgress+im.Compact.NumInProgress == 0 && m.Flush.NumInProgress+im.Flush.NumInProgress == 0 &&
			m.Table.ObsoleteSize+im.Table.ObsoleteSize == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Take up most of what is left, then ask for a pass.
	free, _, err := statfs(fs)
	if err != nil {
		t.Fatal(err)
	}
	if free < 8<<20 {
		t.Skipf("only %d bytes free after the readings; the file system is too small for this check", free)
	}
	// The first sequence is read before the space is taken: the store's
	// own watcher may start a pass as soon as it sees the disk short.
	first := s.FirstSeq()
	big := filepath.Join(fs, "big")
	if err := writeBallast(big, int64(free-2<<20)); err != nil {
		t.Fatalf("take up space: %v", err)
	}
	if err := s.Maintain(ctx); err != nil {
		t.Fatalf("maintain: %v", err)
	}
	if s.FirstSeq() <= first {
		t.Fatalf("no readings deleted to make room: first seq %d -> %d", first, s.FirstSeq())
	}
}

// TestDirectoryIsPrivate: the store's directory is 0700 whatever existed
// before (an older install, a loose umask).
func TestDirectoryIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openTest(t, Options{Dir: dir})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("store directory mode %v, want 0700", fi.Mode().Perm())
	}
}

// TestOpensOnAFullDisk: restarted on a disk something else filled to the
// last byte, the store opens (the ballast makes room), refuses readings
// and still takes fault readings.
func TestOpensOnAFullDisk(t *testing.T) {
	fs := testpeer.SmallFS(t, 24<<20)
	opts := Options{Dir: filepath.Join(fs, "store"), Reserve: 4 << 20, BallastBytes: 2 << 20, MemTableSize: 1 << 20}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), []reading.Reading{temp("d1", "z1", t0, 20)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testpeer.FillFS(t, fs, 0)
	s = openTest(t, opts)
	err = s.Append(context.Background(), []reading.Reading{temp("d1", "z1", t0.Add(time.Second), 21)})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append after opening on a full disk: %v, want ErrDiskFull", err)
	}
	fault := reading.Reading{Facility: "f1", Device: "gateway.disk", Kind: reading.KindFault, Format: "gateway",
		Time: t0, Received: t0, Value: reading.State("disk full")}
	if err := s.Append(context.Background(), []reading.Reading{fault}); err != nil {
		t.Fatalf("a fault reading after opening on a full disk: %v", err)
	}
}

// TestRefusesToOpenWithoutRoom: with no ballast left to release and the
// disk full to the last byte, Open says so at once instead of hanging in
// the engine's replay.
func TestRefusesToOpenWithoutRoom(t *testing.T) {
	fs := testpeer.SmallFS(t, 24<<20)
	opts := Options{Dir: filepath.Join(fs, "store"), Reserve: 4 << 20, MemTableSize: 1 << 20}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]reading.Reading, 0, 1000)
	for i := range 1000 {
		rs = append(rs, temp("d1", "z1", t0.Add(time.Duration(i)*time.Second), 20))
	}
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testpeer.FillFS(t, fs, 0)
	s, err = Open(opts)
	if err == nil {
		s.Close()
		t.Fatal("opened on a full disk")
	}
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "free space") {
		t.Fatalf("open on a full disk: %v", err)
	}
}
