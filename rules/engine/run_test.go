package engine

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
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// recorder is a Notifier that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	events []alarm.Event
	got    chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 100)} }

func (r *recorder) Enqueue(_ context.Context, ev alarm.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.got <- struct{}{}
	return nil
}

func (r *recorder) wait(t *testing.T, n int) []alarm.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.events) >= n {
			out := append([]alarm.Event(nil), r.events...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("waited 10s for %d events, have %d", n, len(r.events))
		}
	}
}

// openStore opens a store that closes after the engines started later
// have stopped (cleanups run last-registered first).
func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type runningEngine struct {
	e      *Engine
	audit  *audit.Log
	cancel context.CancelFunc
	done   chan error
}

func startEngine(t *testing.T, st *store.Store, dir string, n Notifier) *runningEngine {
	t.Helper()
	al, err := audit.Open(filepath.Join(dir, "audit.jsonl"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	e, err := New(Options{Config: testConfig(smokeRule), Store: st, Dir: dir, Audit: al, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningEngine{e: e, audit: al, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *runningEngine) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

func smoke(on bool) []reading.Reading {
	now := time.Now()
	return []reading.Reading{{Facility: "north-shelter", Device: "kitchen-smoke-1", Zone: "kitchen", Kind: reading.KindSmoke,
		Value: reading.Bool(on), Time: now, Received: now}}
}

func TestEngineOverTheStoreSurvivesRestart(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	rec := newRecorder()
	r := startEngine(t, st, dir, rec)
	ctx := context.Background()
	if err := st.Append(ctx, smoke(true)); err != nil {
		t.Fatal(err)
	}
	ev := rec.wait(t, 1)
	if ev[0].Kind != alarm.EventFiring || ev[0].Alarm.ID != "smoke@dev:kitchen-smoke-1" {
		t.Fatalf("event: %+v", ev[0])
	}
	if err := r.e.Acknowledge(ctx, "smoke@dev:kitchen-smoke-1", "li.manager", "going"); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 2)
	r.stop()

	// While the engine is down the smoke clears; after the restart the
	// engine reads what it missed from the store.
	if err := st.Append(ctx, smoke(false)); err != nil {
		t.Fatal(err)
	}
	r2 := startEngine(t, st, dir, rec)
	act, err := r2.e.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(act) != 1 || act[0].State != alarm.StateAcknowledged || act[0].AckedBy != "li.manager" {
		t.Fatalf("after restart: %+v", act)
	}
	if err := r2.e.Reset(ctx, act[0].ID, "li.manager", "false alarm: toast"); err != nil {
		t.Fatalf("reset (the clear read after the restart must allow it): %v", err)
	}
	ev = rec.wait(t, 3)
	if ev[2].Kind != alarm.EventResolved {
		t.Fatalf("third event %+v", ev[2])
	}
	entries, err := r2.audit.Read(audit.Filter{AlarmID: "smoke@dev:kitchen-smoke-1"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range entries {
		actions = append(actions, a.Action+"/"+a.By)
	}
	want := []string{"resolved/li.manager", "reset/li.manager", "condition_cleared/", "acknowledged/li.manager", "fired/"}
	if len(actions) != len(want) {
		t.Fatalf("audit %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("audit %v, want %v", actions, want)
		}
	}
	if c := st.Cursor(CursorName); c != st.LastSeq() {
		t.Fatalf("rules cursor %d, store at %d", c, st.LastSeq())
	}
}

func TestEngineReloadRefusesBadRules(t *testing.T) {
	st := openStore(t)
	rec := newRecorder()
	r := startEngine(t, st, t.TempDir(), rec)
	ctx := context.Background()
	if err := st.Append(ctx, smoke(true)); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1)
	bad := smokeRule
	bad.Title = TextConfig{EN: "{{.Nope}}"}
	if err := r.e.Reload(ctx, testConfig(bad)); err == nil {
		t.Fatal("bad rules accepted")
	}
	if act, _ := r.e.Active(ctx); len(act) != 1 {
		t.Fatalf("alarm lost on a refused reload: %+v", act)
	}
	good := smokeRule
	good.Title = TextConfig{EN: "Smoke!", ZH: "烟雾！"}
	if err := r.e.Reload(ctx, testConfig(good)); err != nil {
		t.Fatal(err)
	}
	if act, _ := r.e.Active(ctx); len(act) != 1 || act[0].Seq != 1 {
		t.Fatalf("alarm after reload: %+v", act)
	}
}

// TestCrashBeforeSaveReplaysTheSameAlarm: state changed by readings is
// saved at most once a second; a crash before the save loses nothing,
// because the readings since the saved position are evaluated again and
// produce the same alarm with the same sequence number and time (so the
// outbox, which keys events by them, sends it once).
func TestCrashBeforeSaveReplaysTheSameAlarm(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	first := newRecorder()
	r := startEngine(t, st, dir, first)
	// The engine saved its starting position at once? Copy the directory
	// as it is before the smoke: that is what a crash right after the
	// notification could leave behind when the coalesced save had not run.
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	if err := st.Append(context.Background(), smoke(true)); err != nil {
		t.Fatal(err)
	}
	want := first.wait(t, 1)[0]
	r.stop()

	again := newRecorder()
	startEngine(t, st, crashed, again)
	got := again.wait(t, 1)[0]
	if got.Kind != want.Kind || got.Alarm.ID != want.Alarm.ID || got.Alarm.Seq != want.Alarm.Seq || !got.At.Equal(want.At) {
		t.Fatalf("after the crash the engine raised %+v, before %+v", got, want)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// fullDisk is an audit log that refuses writes while full is set.
type fullDisk struct {
	mu      sync.Mutex
	full    bool
	entries []audit.Entry
}

func (d *fullDisk) Append(es ...audit.Entry) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.full {
		return errors.New("write audit.jsonl: no space left on device")
	}
	d.entries = append(d.entries, es...)
	return nil
}

func (d *fullDisk) actions() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, e := range d.entries {
		out = append(out, e.Action)
	}
	return strings.Join(out, " ")
}

// A full audit disk never silences an alarm: the engine keeps evaluating
// and notifying, people's actions still work, and the audit entries are
// written, in order, once the log takes them again.
func TestAuditFailureDoesNotStopAlarms(t *testing.T) {
	st := openStore(t)
	rec := newRecorder()
	disk := &fullDisk{full: true}
	e, err := New(Options{Config: testConfig(smokeRule), Store: st, Dir: t.TempDir(), Audit: disk, Notifier: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if err := st.Append(ctx, smoke(true)); err != nil {
		t.Fatal(err)
	}
	if ev := rec.wait(t, 1); ev[0].Kind != alarm.EventFiring {
		t.Fatalf("event %+v", ev[0])
	}
	if err := e.Acknowledge(ctx, "smoke@dev:kitchen-smoke-1", "li.manager", "on my way"); err != nil {
		t.Fatalf("acknowledge with the audit disk full: %v", err)
	}
	rec.wait(t, 2)
	if got := disk.actions(); got != "" {
		t.Fatalf("entries written to a full disk: %s", got)
	}
	disk.mu.Lock()
	disk.full = false
	disk.mu.Unlock()
	testpeer.WaitFor(t, "the kept audit entries", 5*time.Second, func() bool { return disk.actions() == "fired acknowledged" })
}
