package forward

import (
	"context"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// The outage tests run a steady 500 readings/s for 60 s and take InfluxDB
// away for 30 s of it; afterwards InfluxDB must hold exactly what was
// stored. With -short they run 20 s with a 10 s outage.
func outageTimes(t *testing.T) (total, start, outage time.Duration) {
	if testing.Short() {
		return 20 * time.Second, 5 * time.Second, 10 * time.Second
	}
	return 60 * time.Second, 10 * time.Second, 30 * time.Second
}

// load appends 50 readings every 100 ms until ctx ends.
func load(ctx context.Context, t *testing.T, r *rig, e *expect) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			rs := temps(i*50, 50, 10)
			if err := r.st.Append(context.Background(), rs); err != nil {
				t.Errorf("append: %v", err)
				return
			}
			e.add(rs)
		}
	}()
	return done
}

func TestOutageInfluxFrozen(t *testing.T) {
	t.Parallel()
	runOutage(t, func(db *testpeer.InfluxDB) { db.Freeze(t) }, func(db *testpeer.InfluxDB) { db.Thaw(t) })
}

func TestOutageInfluxKilledAndRestarted(t *testing.T) {
	t.Parallel()
	runOutage(t, func(db *testpeer.InfluxDB) { db.Kill(t) }, func(db *testpeer.InfluxDB) { db.Start(t) })
}

func runOutage(t *testing.T, down, up func(*testpeer.InfluxDB)) {
	total, start, outage := outageTimes(t)
	db := testpeer.StartInfluxDB(t, "shelter")
	st := openStore(t, t.TempDir())
	r := startForwarder(t, st, Target{URL: db.URL(), BatchSize: 1000, Timeout: 2 * time.Second,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second})
	e := newExpect()
	ctx, stopLoad := context.WithTimeout(context.Background(), total)
	defer stopLoad()
	loaded := load(ctx, t, r, e)

	time.Sleep(start)
	if s := r.fw.Status(); s.BacklogAge > 2*time.Second {
		t.Errorf("before the outage the backlog is %v old: forwarder not keeping up", s.BacklogAge)
	}
	down(db)
	time.Sleep(outage)
	// The backlog age is what the forward-stalled alarm watches.
	if s := r.fw.Status(); s.BacklogAge < outage/2 || s.BacklogPoints < uint64(outage.Seconds()*250) {
		t.Errorf("after %v without InfluxDB: backlog %d readings, %v old", outage, s.BacklogPoints, s.BacklogAge)
	}
	up(db)
	<-loaded
	waitDelivered(t, r, 60*time.Second)
	checkExact(t, db, e)
	if e.total < int(total.Seconds()*400) {
		t.Errorf("only %d readings in %v: the load did not run at its rate", e.total, total)
	}
	s := r.fw.Status()
	t.Logf("stored %d readings; retries %d; status %+v", e.total, s.Retries, s)
	if s.Retries == 0 {
		t.Errorf("no retries recorded across a %v outage", outage)
	}
}
