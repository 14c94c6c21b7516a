package store

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// AppendAsync answers every append exactly once, on commit or with
// ErrClosed, even when Close races the appenders; what was answered nil
// is in the log after reopening, and group commits take many appends.
func TestAppendAsyncAnswersEveryAppendAndSurvivesClose(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const appenders, each = 8, 500
	var mu sync.Mutex
	answers := map[float64]error{}
	var wg sync.WaitGroup
	var answered sync.WaitGroup
	answered.Add(appenders * each)
	for a := range appenders {
		wg.Go(func() {
			for i := range each {
				v := float64(a*each + i)
				rs := []reading.Reading{temp("d1", "z1", t0.Add(time.Duration(v)*time.Millisecond), v)}
				s.AppendAsync(rs, a%2 == 0, func(err error) {
					// An answered append is on disk and readers see it:
					// LastSeq moves only once a batch's fsync returned,
					// before its appenders hear of it.
					if err == nil && (rs[0].Seq == 0 || rs[0].Seq > s.LastSeq()) {
						t.Errorf("append %v answered with seq %d beyond LastSeq %d", v, rs[0].Seq, s.LastSeq())
					}
					mu.Lock()
					defer mu.Unlock()
					if _, twice := answers[v]; twice {
						t.Errorf("append %v answered twice", v)
					}
					answers[v] = err
					answered.Done()
				})
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	answered.Wait()
	commits := testutil.ToFloat64(s.metrics.commits)

	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs, err := s.ReadLog(0, appenders*each+1)
	if err != nil {
		t.Fatal(err)
	}
	inLog := map[float64]bool{}
	for _, r := range rs {
		inLog[r.Value.Num] = true
	}
	acked := 0
	for v, err := range answers {
		switch {
		case err == nil:
			acked++
			if !inLog[v] {
				t.Fatalf("append %v answered nil but is not in the log", v)
			}
		case !errors.Is(err, ErrClosed):
			t.Fatalf("append %v answered %v, want nil or ErrClosed", v, err)
		}
	}
	if acked == 0 {
		t.Fatal("nothing committed before Close")
	}
	// Nobody waits between appends, so they share fsyncs.
	if commits*2 > float64(acked) {
		t.Fatalf("%v commits for %d appends: appends did not share group commits", commits, acked)
	}
	t.Logf("%d of %d appends committed before Close, in %v commits", acked, appenders*each, commits)
}
