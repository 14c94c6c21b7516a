package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// answers collects HandleAsync's done calls.
type answers struct {
	mu   sync.Mutex
	errs map[int]error
	ch   chan int
}

func newAnswers() *answers { return &answers{errs: map[int]error{}, ch: make(chan int, 1000)} }

func (a *answers) done(i int) func(error) {
	var once atomic.Bool
	return func(err error) {
		if once.Swap(true) {
			panic(fmt.Sprintf("done of message %d called twice", i))
		}
		a.mu.Lock()
		a.errs[i] = err
		a.mu.Unlock()
		a.ch <- i
	}
}

func (a *answers) wait(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for range n {
		select {
		case <-a.ch:
		case <-deadline:
			t.Fatalf("only some of %d messages answered within %v", n, within)
		}
	}
}

// HandleAsync answers each message once its readings are durable (the
// store's last sequence number covers them when done runs), counts them as
// Handle does, and answers rejected messages at once.
func TestHandleAsyncAnswersWhenDurable(t *testing.T) {
	h := newHarness(t, nil)
	a := newAnswers()
	const n = 200
	var lastAtDone [n]uint64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				msg := pipeline.Message{Topic: "sw/a", Payload: fmt.Appendf(nil, `{"values":{"temperature":%d}}`, i%40), Received: t0}
				done := a.done(i)
				h.p.HandleAsync(context.Background(), msg, func(err error) {
					lastAtDone[i] = h.st.LastSeq()
					done(err)
				})
			}
		})
	}
	wg.Wait()
	a.wait(t, n, 10*time.Second)
	for i := range n {
		if a.errs[i] != nil {
			t.Fatalf("message %d answered %v", i, a.errs[i])
		}
		if lastAtDone[i] == 0 {
			t.Fatalf("message %d answered before anything was durable", i)
		}
	}
	if got := len(h.stored(t)); got != n {
		t.Fatalf("stored %d readings, want %d", got, n)
	}
	if got := metric(t, h.reg, "shelterwatch_ingest_readings_total"); got != n {
		t.Fatalf("readings_total = %v, want %d", got, n)
	}
	if st, ok := h.state.Get("dorm3-temp"); !ok || !st.Online {
		t.Fatalf("device state %+v: want seen and online", st)
	}

	// A malformed message is dead-lettered and answered before HandleAsync
	// returns: nothing of it waits for the disk.
	var answered atomic.Bool
	h.p.HandleAsync(context.Background(), pipeline.Message{Topic: "sw/a", Payload: []byte(`{`), Received: t0}, func(err error) {
		if err != nil {
			t.Errorf("malformed message answered %v, want nil (dead-lettered)", err)
		}
		answered.Store(true)
	})
	if !answered.Load() {
		t.Fatal("malformed message not answered at once")
	}
}

// On a full disk HandleAsync holds an ordinary message unanswered (its
// broker keeps it), hands its readings to the safety rules once, stores a
// safety device's message from the reserve, and answers the held one when
// room returns.
func TestHandleAsyncHoldsOnAFullDisk(t *testing.T) {
	fs := testpeer.SmallFS(t, 24<<20)
	st, err := store.Open(store.Options{
		Dir: filepath.Join(fs, "store"), Reserve: 4 << 20, BallastBytes: 2 << 20,
		MemTableSize: 1 << 20, SpaceEvery: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// Readings handed to the safety rules, of the held ordinary device and
	// of the detector. The detector's may be handed over once too: its
	// first append can meet the disk full before the store has released
	// its ballast, and its message then waits like any other until the
	// reserve takes it.
	var unstored, unstoredSmoke atomic.Int64
	h := newHarness(t, func(o *pipeline.Options) {
		o.Store = st
		o.RetryEvery = 50 * time.Millisecond
		o.Unstored = func(_ context.Context, rs []reading.Reading) {
			for _, r := range rs {
				if r.Device == "kitchen-smoke" {
					unstoredSmoke.Add(1)
				} else {
					unstored.Add(1)
				}
			}
		}
	})
	h.st = st

	filler := testpeer.FillFS(t, fs, 512<<10)
	a := newAnswers()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Ordinary readings: refused, held.
	for i := range 3 {
		h.p.HandleAsync(ctx, pipeline.Message{Topic: "sw/a", Payload: fmt.Appendf(nil, `{"values":{"temperature":%d}}`, 20+i), Received: t0}, a.done(i))
	}
	// A smoke detector's message: from the reserve, answered.
	h.p.HandleAsync(ctx, pipeline.Message{Topic: "zigbee2mqtt/kitchen/smoke", Payload: []byte(`{"smoke":true}`), Received: t0}, a.done(100))
	select {
	case i := <-a.ch:
		if i != 100 || a.errs[100] != nil {
			t.Fatalf("first answer: message %d, %v; want the smoke message stored", i, a.errs[i])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("smoke message not stored on a full disk")
	}
	waitFor(t, func() bool { return metric(t, h.reg, "shelterwatch_ingest_waiting_for_disk") == 3 }, "3 messages waiting for disk")
	select {
	case i := <-a.ch:
		t.Fatalf("message %d answered (%v) while the disk is full", i, a.errs[i])
	case <-time.After(300 * time.Millisecond):
	}
	if got, smoke := unstored.Load(), unstoredSmoke.Load(); got != 3 || smoke > 1 {
		t.Fatalf("readings given to the safety rules: %d of the held messages (want 3, once each), %d of the detector (want at most 1)", got, smoke)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 3, 20*time.Second)
	for i := range 3 {
		if a.errs[i] != nil {
			t.Fatalf("held message %d answered %v after room returned", i, a.errs[i])
		}
	}
	if got := metric(t, h.reg, "shelterwatch_ingest_waiting_for_disk"); got != 0 {
		t.Fatalf("waiting_for_disk = %v after recovery", got)
	}
	if got := len(h.stored(t)); got != 4 {
		t.Fatalf("stored %d readings, want 4", got)
	}

	// A message held when its context ends is answered with an error (not
	// acknowledged), and the holder goroutine ends with it.
	filler = testpeer.FillFS(t, fs, 512<<10)
	defer os.Remove(filler)
	hctx, hcancel := context.WithCancel(context.Background())
	h.p.HandleAsync(hctx, pipeline.Message{Topic: "sw/a", Payload: []byte(`{"values":{"temperature":30}}`), Received: t0}, a.done(200))
	waitFor(t, func() bool { return metric(t, h.reg, "shelterwatch_ingest_waiting_for_disk") == 1 }, "1 message waiting for disk")
	hcancel()
	a.wait(t, 1, 10*time.Second)
	if err := a.errs[200]; !errors.Is(err, context.Canceled) {
		t.Fatalf("held message at shutdown answered %v, want context.Canceled", err)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// parkingStore answers AppendAsync only when the test says so.
type parkingStore struct {
	failingStore
	thens chan func(error)
}

func (s *parkingStore) AppendAsync(_ []reading.Reading, _ bool, then func(error)) { s.thens <- then }

// HandleAsync hands the store no more than MaxPending messages at a time:
// the next waits (its caller, a broker worker, with it) until a commit
// answers one, so a burst's backlog stays in the connections, not in
// memory.
func TestHandleAsyncBoundsWhatWaitsForTheStore(t *testing.T) {
	ps := &parkingStore{thens: make(chan func(error), 10)}
	h := newHarness(t, func(o *pipeline.Options) { o.Store = ps; o.MaxPending = 2 })
	a := newAnswers()
	msg := func(i int) pipeline.Message {
		return pipeline.Message{Topic: "sw/a", Payload: fmt.Appendf(nil, `{"values":{"temperature":%d}}`, i), Received: t0}
	}
	h.p.HandleAsync(context.Background(), msg(0), a.done(0))
	h.p.HandleAsync(context.Background(), msg(1), a.done(1))
	third := make(chan struct{})
	go func() {
		h.p.HandleAsync(context.Background(), msg(2), a.done(2))
		close(third)
	}()
	first, second := <-ps.thens, <-ps.thens
	select {
	case <-ps.thens:
		t.Fatal("a third message reached the store while two were pending")
	case <-time.After(200 * time.Millisecond):
	}
	first(nil)
	then3 := <-ps.thens
	<-third
	second(nil)
	then3(nil)
	a.wait(t, 3, 5*time.Second)

	// A caller whose context ends while waiting gets an error: nothing
	// was stored, nothing may be acknowledged.
	h.p.HandleAsync(context.Background(), msg(3), a.done(3))
	h.p.HandleAsync(context.Background(), msg(4), a.done(4))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.p.HandleAsync(ctx, msg(5), a.done(5))
	a.wait(t, 1, 5*time.Second)
	if err := a.errs[5]; !errors.Is(err, context.Canceled) {
		t.Fatalf("message 5 answered %v, want context.Canceled", err)
	}
	(<-ps.thens)(nil)
	(<-ps.thens)(nil)
	a.wait(t, 2, 5*time.Second)
}
