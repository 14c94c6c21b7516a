package lifecycle

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// journal records what the stages did, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.lines = append(j.lines, s)
	j.mu.Unlock()
}

func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.lines, " ")
}

// serve is a stage that records start, end of run and stop.
func serve(j *journal, name string) Stage {
	return Stage{
		Name:  name,
		Start: func(context.Context) error { j.add("start:" + name); return nil },
		Run:   func(ctx context.Context) error { <-ctx.Done(); j.add("ran:" + name); return nil },
		Stop:  func() error { j.add("stop:" + name); return nil },
	}
}

func TestStartInOrderStopInReverse(t *testing.T) {
	var j journal
	g := &Group{OnStarted: func() { j.add("ready") }, OnStopping: func() { j.add("stopping") }}
	g.Add(serve(&j, "store"), serve(&j, "rules"), serve(&j, "broker"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	waitFor(t, func() bool { return strings.Contains(j.String(), "ready") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after a clean shutdown = %v", err)
	}
	want := "start:store start:rules start:broker ready stopping ran:broker stop:broker ran:rules stop:rules ran:store stop:store"
	if got := j.String(); got != want {
		t.Fatalf("order\n got %s\nwant %s", got, want)
	}
}

func TestFailureStopsTheRestInReverse(t *testing.T) {
	var j journal
	boom := errors.New("disk gone")
	g := &Group{}
	failing := Stage{Name: "rules", Run: func(ctx context.Context) error { j.add("fail:rules"); return boom }}
	g.Add(serve(&j, "store"), failing, serve(&j, "broker"))
	err := g.Run(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "rules stopped") {
		t.Fatalf("Run = %v; want the rules failure", err)
	}
	if strings.Count(err.Error(), "disk gone") != 1 {
		t.Errorf("the cause is reported more than once: %v", err)
	}
	got := j.String()
	if !strings.HasSuffix(got, "ran:broker stop:broker ran:store stop:store") {
		t.Fatalf("stop order: %s", got)
	}
}

func TestEarlyNilReturnIsAFailure(t *testing.T) {
	g := &Group{}
	g.Add(Stage{Name: "forwarder", Run: func(context.Context) error { return nil }})
	err := g.Run(context.Background())
	if !errors.Is(err, errUnexpected) {
		t.Fatalf("Run = %v; want %v", err, errUnexpected)
	}
}

func TestStartErrorStopsWhatStarted(t *testing.T) {
	var j journal
	g := &Group{OnStarted: func() { j.add("ready") }}
	bind := errors.New("address in use")
	g.Add(serve(&j, "store"), Stage{Name: "http", Start: func(context.Context) error { return bind }}, serve(&j, "broker"))
	err := g.Run(context.Background())
	if !errors.Is(err, bind) || !strings.Contains(err.Error(), "start http") {
		t.Fatalf("Run = %v", err)
	}
	if got, want := j.String(), "start:store ran:store stop:store"; got != want {
		t.Fatalf("got %s, want %s (never ready, the broker never started)", got, want)
	}
}

func TestStopErrorsAreJoined(t *testing.T) {
	g := &Group{}
	g.Add(Stage{Name: "store", Stop: func() error { return errors.New("close: sync failed") }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := g.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "stop store: close: sync failed") {
		t.Fatalf("Run = %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
