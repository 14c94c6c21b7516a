package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// flaky is a store that refuses appends while failing is set.
type flaky struct {
	Appender
	mu      sync.Mutex
	failing bool
	calls   int
}

func (f *flaky) Append(ctx context.Context, rs []reading.Reading) error {
	f.mu.Lock()
	f.calls++
	fail := f.failing
	f.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return f.Appender.Append(ctx, rs)
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// logged returns the fault readings in the store, as "device=value".
func logged(t *testing.T, st *store.Store) []string {
	t.Helper()
	rs, err := st.ReadLog(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Kind != reading.KindFault || r.Facility != "north-shelter" {
			t.Fatalf("reading %+v is not a fault of the facility", r)
		}
		out = append(out, r.Device+"="+r.Value.State+"@"+r.Zone)
	}
	return out
}

func run(t *testing.T, r *Reporter) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestOnlyChangesAreWritten(t *testing.T) {
	st := openStore(t)
	r := New(Options{Facility: "north-shelter", Store: st,
		Zones: map[string]string{CameraDevice("ward"): "ward"}})
	stop := run(t, r)
	cam := CameraDevice("ward")
	r.Set(cam, OK) // the first report is written whatever it says
	r.Set(cam, OK)
	r.Set(cam, "no video for 1m0s: 401 Unauthorized")
	r.Set(cam, "no video for 1m0s: 401 Unauthorized")
	r.Set(cam, OK)
	r.Event(StoreDevice, "deleted 12 readings (disk budget)")
	stop()
	want := "gateway.camera.ward=ok@ward gateway.camera.ward=no video for 1m0s: 401 Unauthorized@ward gateway.camera.ward=ok@ward " +
		"gateway.store=deleted 12 readings (disk budget)@ gateway.store=ok@"
	if got := strings.Join(logged(t, st), " "); got != want {
		t.Fatalf("store holds\n %s\nwant\n %s", got, want)
	}
}

func TestRetriedUntilTheStoreTakesThem(t *testing.T) {
	st := openStore(t)
	f := &flaky{Appender: st, failing: true}
	r := New(Options{Facility: "north-shelter", Store: f})
	run(t, r)
	r.Set(AuditDevice, "write failed: no space left on device")
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		calls := f.calls
		f.mu.Unlock()
		if calls >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reporter did not retry a refused append within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.mu.Lock()
	f.failing = false
	f.mu.Unlock()
	for len(logged(t, st)) == 0 {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("the fault never reached the store after it recovered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := logged(t, st); len(got) != 1 || got[0] != "gateway.audit=write failed: no space left on device@" {
		t.Fatalf("store holds %v", got)
	}
}

func TestQueueIsBounded(t *testing.T) {
	r := New(Options{Facility: "north-shelter", Store: &flaky{failing: true}})
	for i := range MaxQueued + 10 {
		r.Set(CameraDevice("c"), strings.Repeat("x", i%7+1)+string(rune('a'+i%26)))
	}
	r.mu.Lock()
	n := len(r.queue)
	r.mu.Unlock()
	if n != MaxQueued {
		t.Fatalf("queue holds %d readings; want the bound %d", n, MaxQueued)
	}
}
