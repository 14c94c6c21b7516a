package forward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

func TestLineProtocol(t *testing.T) {
	bat, lqi := 87.0, 120.0
	for _, tc := range []struct {
		name   string
		prefix string
		r      reading.Reading
		want   string
	}{
		{"number with battery and link quality", "", reading.Reading{Facility: "shelter-1", Device: "dorm-temp-1", Zone: "dorm-a",
			Kind: reading.KindTemperature, Time: t0, Value: reading.Number(21.5), Battery: &bat, LinkQuality: &lqi},
			"temperature,device=dorm-temp-1,facility=shelter-1,kind=temperature,zone=dorm-a value=21.5,battery=87,link_quality=120 1796007600000000000"},
		{"whole number stays a float field", "", reading.Reading{Facility: "f", Device: "d", Zone: "z",
			Kind: reading.KindHumidity, Time: t0, Value: reading.Number(40)},
			"humidity,device=d,facility=f,kind=humidity,zone=z value=40 1796007600000000000"},
		{"boolean", "sw_", reading.Reading{Facility: "f", Device: "kitchen-smoke", Zone: "kitchen",
			Kind: reading.KindSmoke, Time: t0, Value: reading.Bool(true)},
			"sw_smoke,device=kitchen-smoke,facility=f,kind=smoke,zone=kitchen value=true 1796007600000000000"},
		{"state string escaped", "", reading.Reading{Facility: "f", Device: "d", Zone: "z",
			Kind: "mode", Time: t0, Value: reading.State(`say "hi" \ bye`)},
			`mode,device=d,facility=f,kind=mode,zone=z value="say \"hi\" \\ bye" 1796007600000000000`},
		{"tag escaping and empty zone", "my prefix,", reading.Reading{Facility: "a b", Device: "x=y,z", Zone: "",
			Kind: reading.KindDoor, Time: t0, Value: reading.Bool(false)},
			`my\ prefix\,door,device=x\=y\,z,facility=a\ b,kind=door value=false 1796007600000000000`},
		{"trailing backslash in a tag", "", reading.Reading{Facility: "f", Device: `d\`, Zone: "z",
			Kind: reading.KindDoor, Time: t0, Value: reading.Bool(false)},
			`door,device=d\\,facility=f,kind=door,zone=z value=false 1796007600000000000`},
		{"large and tiny numbers", "", reading.Reading{Facility: "f", Device: "d", Zone: "z",
			Kind: reading.KindCO, Time: t0.Add(time.Nanosecond), Value: reading.Number(1.5e-7)},
			"co,device=d,facility=f,kind=co,zone=z value=1.5e-07 1796007600000000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendLine(nil, tc.prefix, &tc.r))
			if got != tc.want {
				t.Fatalf("line\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		reason     string
		retryAfter time.Duration
	}{
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), RetryNetwork, 0},
		{"timeout", &ihttp.Error{Err: context.DeadlineExceeded}, RetryNetwork, 0},
		{"throttled with Retry-After", &ihttp.Error{StatusCode: 429, RetryAfter: 7}, RetryThrottled, 7 * time.Second},
		{"unavailable", &ihttp.Error{StatusCode: 503, Message: "service unavailable"}, RetryThrottled, 0},
		{"bad gateway", &ihttp.Error{StatusCode: 502}, RetryServer, 0},
		{"unauthorized", &ihttp.Error{StatusCode: 401, Message: "authorization failed"}, RetryAuth, 0},
		{"forbidden", &ihttp.Error{StatusCode: 403}, RetryAuth, 0},
		{"database not found", &ihttp.Error{StatusCode: 404, Message: `database not found: "x"`}, RetryConfig, 0},
		{"too large", &ihttp.Error{StatusCode: 413, Message: "request entity too large"}, RetryTooLarge, 0},
		{"field type conflict (1.8)", &ihttp.Error{StatusCode: 400, Message: `partial write: field type conflict: input field "value" on measurement "humidity" is type float, already exists as type string dropped=1`}, RetryRejected, 0},
		{"unprocessable (2.x)", &ihttp.Error{StatusCode: 422, Message: "failure writing points to database: partial write: points beyond retention policy dropped=1"}, RetryRejected, 0},
		{"unparseable", &ihttp.Error{StatusCode: 400, Message: `unable to parse 'x': missing fields`}, RetryRejected, 0},
		{"400 about the request, not the points", &ihttp.Error{StatusCode: 400, Message: "invalid bucket name"}, RetryConfig, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := classify(tc.err)
			if c.reason != tc.reason || c.retryAfter != tc.retryAfter {
				t.Fatalf("classify = %s (retry after %v), want %s (%v)", c.reason, c.retryAfter, tc.reason, tc.retryAfter)
			}
		})
	}
}

// rig is a store with a forwarder to one target.
type rig struct {
	st     *store.Store
	fw     *Forwarder
	cancel context.CancelFunc
	done   chan error
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func startForwarder(t *testing.T, st *store.Store, target Target) *rig {
	t.Helper()
	if target.Name == "" {
		target.Name = "facility"
	}
	if target.Bucket == "" {
		target.Bucket = "shelter/autogen"
	}
	if target.BackoffMin == 0 {
		target.BackoffMin = 50 * time.Millisecond
	}
	if target.BackoffMax == 0 {
		target.BackoffMax = time.Second
	}
	if target.Timeout == 0 {
		target.Timeout = 2 * time.Second
	}
	fw, err := New(Options{Store: st, Target: target, NoLinger: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{st: st, fw: fw, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- fw.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// temps returns n temperature readings spread over devices, with unique
// times and values, starting at index from.
func temps(from, n, devices int) []reading.Reading {
	rs := make([]reading.Reading, n)
	for i := range rs {
		k := from + i
		rs[i] = reading.Reading{Facility: "shelter-1", Device: fmt.Sprintf("dorm-temp-%02d", k%devices), Zone: "dorm-a",
			Kind: reading.KindTemperature, Format: "native",
			Time: t0.Add(time.Duration(k) * time.Millisecond), Received: time.Now(), Value: reading.Number(float64(k) / 10)}
	}
	return rs
}

// expect tracks what InfluxDB must hold: count and last value per device.
type expect struct {
	mu    sync.Mutex
	count map[string]int
	last  map[string]float64
	total int
}

func newExpect() *expect { return &expect{count: map[string]int{}, last: map[string]float64{}} }

func (e *expect) add(rs []reading.Reading) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range rs {
		e.count[r.Device]++
		e.last[r.Device] = r.Value.Num // times grow with the index
		e.total++
	}
}

// influxCounts returns count and last value per device of measurement.
func influxCounts(t *testing.T, db *testpeer.InfluxDB, measurement string) (map[string]int, map[string]float64, int) {
	t.Helper()
	series := db.Query(t, "shelter", fmt.Sprintf(`SELECT count("value"), last("value") FROM %q GROUP BY "device"`, measurement))
	count, last := map[string]int{}, map[string]float64{}
	total := 0
	for _, s := range series {
		if len(s.Values) != 1 {
			t.Fatalf("series %v: %d rows", s.Tags, len(s.Values))
		}
		n := int(s.Values[0][1].(float64))
		count[s.Tags["device"]] = n
		last[s.Tags["device"]] = s.Values[0][2].(float64)
		total += n
	}
	return count, last, total
}

// waitDelivered waits until the forwarder is caught up with the store.
func waitDelivered(t *testing.T, r *rig, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := r.fw.Status()
		if s.Cursor >= r.st.LastSeq() && s.BacklogPoints == 0 && !s.Draining {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered within %v: %+v (store at %d)", within, s, r.st.LastSeq())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkExact compares InfluxDB with what was stored: zero lost, zero
// duplicated, last values right.
func checkExact(t *testing.T, db *testpeer.InfluxDB, e *expect) {
	t.Helper()
	count, last, total := influxCounts(t, db, "temperature")
	e.mu.Lock()
	defer e.mu.Unlock()
	if total != e.total {
		t.Errorf("InfluxDB holds %d readings, %d were stored", total, e.total)
	}
	for dev, n := range e.count {
		if count[dev] != n {
			t.Errorf("%s: InfluxDB holds %d readings, want %d", dev, count[dev], n)
		}
		if math.Abs(last[dev]-e.last[dev]) > 1e-9 {
			t.Errorf("%s: last value %v, want %v", dev, last[dev], e.last[dev])
		}
	}
}

func TestForwardsEveryReadingOnce(t *testing.T) {
	db := testpeer.StartInfluxDB(t, "shelter")
	st := openStore(t, t.TempDir())
	e := newExpect()
	ctx := context.Background()
	for i := range 10 {
		rs := temps(i*1000, 1000, 7)
		if err := st.Append(ctx, rs); err != nil {
			t.Fatal(err)
		}
		e.add(rs)
	}
	// Booleans, battery and link quality land typed.
	bat, lqi := 64.0, 99.0
	smoke := []reading.Reading{{Facility: "shelter-1", Device: "kitchen-smoke", Zone: "kitchen", Kind: reading.KindSmoke,
		Time: t0, Received: time.Now(), Value: reading.Bool(true), Battery: &bat, LinkQuality: &lqi}}
	if err := st.Append(ctx, smoke); err != nil {
		t.Fatal(err)
	}
	r := startForwarder(t, st, Target{URL: db.URL(), BatchSize: 1500})
	waitDelivered(t, r, 30*time.Second)
	checkExact(t, db, e)
	got := db.Query(t, "shelter", `SELECT "value", "battery", "link_quality", "zone" FROM "smoke"`)
	if len(got) != 1 || len(got[0].Values) != 1 || got[0].Values[0][1] != true ||
		got[0].Values[0][2] != 64.0 || got[0].Values[0][3] != 99.0 || got[0].Values[0][4] != "kitchen" {
		t.Fatalf("smoke point in InfluxDB: %+v", got)
	}
	if c := st.Cursor(CursorName("facility")); c != st.LastSeq() {
		t.Fatalf("durable cursor %d, store at %d", c, st.LastSeq())
	}

	// Restarting from an older cursor re-sends; InfluxDB still holds each
	// reading once. (Compressed this time, as shipped.)
	r.stop()
	if err := st.SetCursor(CursorName("facility"), 2000); err != nil {
		t.Fatal(err)
	}
	r = startForwarder(t, st, Target{URL: db.URL(), BatchSize: 1500, GZip: true})
	waitDelivered(t, r, 30*time.Second)
	checkExact(t, db, e)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(r.fw))
	if n, err := testutil.GatherAndCount(reg, "shelterwatch_forward_points_written_total"); err != nil || n != 1 {
		t.Fatalf("written metric: %d series, %v", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP shelterwatch_forward_backlog_points Readings stored but not yet confirmed by InfluxDB.
# TYPE shelterwatch_forward_backlog_points gauge
shelterwatch_forward_backlog_points{target="facility"} 0
`), "shelterwatch_forward_backlog_points"); err != nil {
		t.Fatal(err)
	}
}

// TestRejectedPointIsDeadLetteredOthersArrive makes InfluxDB refuse one
// reading (a field type conflict: "humidity" already holds strings) in the
// middle of a batch.
func TestRejectedPointIsDeadLetteredOthersArrive(t *testing.T) {
	db := testpeer.StartInfluxDB(t, "shelter")
	db.Write(t, "shelter", fmt.Sprintf(`humidity,device=legacy value="wet" %d`, t0.UnixNano()))
	st := openStore(t, t.TempDir())
	e := newExpect()
	ctx := context.Background()
	before := temps(0, 2500, 5)
	bad := reading.Reading{Facility: "shelter-1", Device: "dorm-hum-1", Zone: "dorm-a", Kind: reading.KindHumidity,
		Time: t0.Add(time.Hour), Received: time.Now(), Value: reading.Number(55)}
	after := temps(2500, 2500, 5)
	for _, rs := range [][]reading.Reading{before, {bad}, after} {
		if err := st.Append(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	e.add(before)
	e.add(after)
	r := startForwarder(t, st, Target{URL: db.URL(), BatchSize: 5000})
	waitDelivered(t, r, 30*time.Second)
	checkExact(t, db, e)
	dls, err := st.DeadLetters(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want exactly the one refused reading: %+v", len(dls), dls)
	}
	dl := dls[0]
	if dl.Reason != ReasonRejected || dl.Device != "dorm-hum-1" || !strings.Contains(dl.Error, "field type conflict") ||
		!strings.HasPrefix(string(dl.Payload), "humidity,device=dorm-hum-1,") {
		t.Fatalf("dead letter: %+v (payload %q)", dl, dl.Payload)
	}
	if s := r.fw.Status(); s.DeadLettered != 1 || s.Written != 5000 {
		t.Fatalf("status: %+v", s)
	}
}

// TestLiveReadingsFlowWhileBacklogDrains: with a large backlog, a reading
// that arrives now reaches InfluxDB long before the backlog is through.
func TestLiveReadingsFlowWhileBacklogDrains(t *testing.T) {
	db := testpeer.StartInfluxDB(t, "shelter")
	st := openStore(t, t.TempDir())
	e := newExpect()
	ctx := context.Background()
	for i := range 60 {
		rs := temps(i*1000, 1000, 10)
		if err := st.Append(ctx, rs); err != nil {
			t.Fatal(err)
		}
		e.add(rs)
	}
	// Small batches make the drain take several seconds.
	r := startForwarder(t, st, Target{URL: db.URL(), BatchSize: 100})
	deadline := time.Now().Add(10 * time.Second)
	for !r.fw.Status().Draining {
		if time.Now().After(deadline) {
			t.Fatalf("forwarder did not start draining: %+v", r.fw.Status())
		}
		time.Sleep(time.Millisecond)
	}
	live := []reading.Reading{{Facility: "shelter-1", Device: "kitchen-smoke", Zone: "kitchen", Kind: reading.KindSmoke,
		Time: time.Now(), Received: time.Now(), Value: reading.Bool(true)}}
	if err := st.Append(ctx, live); err != nil {
		t.Fatal(err)
	}
	for {
		got := db.Query(t, "shelter", `SELECT count("value") FROM "smoke"`)
		if len(got) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live reading not in InfluxDB within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := r.fw.Status()
	if !s.Draining || s.BacklogPoints < 10000 {
		t.Fatalf("live reading arrived only after the backlog was (nearly) through: %+v", s)
	}
	waitDelivered(t, r, 60*time.Second)
	checkExact(t, db, e)
}

// TestTargetsAreIndependent: one target down, the other stays current.
func TestTargetsAreIndependent(t *testing.T) {
	up := testpeer.StartInfluxDB(t, "shelter")
	st := openStore(t, t.TempDir())
	down := startForwarder(t, st, Target{Name: "province", URL: "http://127.0.0.1:" + fmt.Sprint(testpeer.FreePort(t))})
	r := startForwarder(t, st, Target{Name: "facility", URL: up.URL()})
	e := newExpect()
	for i := range 20 {
		rs := temps(i*50, 50, 5)
		if err := st.Append(context.Background(), rs); err != nil {
			t.Fatal(err)
		}
		e.add(rs)
		time.Sleep(20 * time.Millisecond)
	}
	waitDelivered(t, r, 30*time.Second)
	checkExact(t, up, e)
	s := down.fw.Status()
	if s.Cursor != 0 || s.BacklogPoints != 1000 || s.State != "retrying" || !strings.Contains(s.LastError, "network") {
		t.Fatalf("down target status: %+v", s)
	}
	if c := st.Cursor(CursorName("province")); c != 0 {
		t.Fatalf("down target's cursor moved to %d", c)
	}
}

// TestRetryAfterHonoured puts a proxy in front of the real InfluxDB that
// answers the first writes with 429 and Retry-After: 1.
func TestRetryAfterHonoured(t *testing.T) {
	db := testpeer.StartInfluxDB(t, "shelter")
	u, _ := url.Parse(db.URL())
	proxy := httputil.NewSingleHostReverseProxy(u)
	var throttled atomic.Int32
	var firstRefused, retried atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if throttled.Add(1) <= 2 {
			firstRefused.CompareAndSwap(0, time.Now().UnixNano())
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":"too many requests","message":"slow down"}`, http.StatusTooManyRequests)
			return
		}
		retried.CompareAndSwap(0, time.Now().UnixNano())
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	st := openStore(t, t.TempDir())
	e := newExpect()
	rs := temps(0, 100, 3)
	if err := st.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	e.add(rs)
	r := startForwarder(t, st, Target{URL: srv.URL, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	waitDelivered(t, r, 30*time.Second)
	checkExact(t, db, e)
	// Two refusals, each followed by a one-second wait, although the
	// backoff alone would have retried within milliseconds.
	if gap := time.Duration(retried.Load() - firstRefused.Load()); gap < 2*time.Second {
		t.Fatalf("retried %v after the first 429 with Retry-After: 1 (twice)", gap)
	}
	if n := r.fw.retries[RetryThrottled].Load(); n != 2 {
		t.Fatalf("throttled retries = %d, want 2", n)
	}
}

// TestRefusedCredentialsNeverDrop: InfluxDB with authentication on refuses
// a wrong password; the forwarder keeps everything, says so loudly, and
// delivers all of it once restarted with the right password.
func TestRefusedCredentialsNeverDrop(t *testing.T) {
	db := testpeer.StartInfluxDBWith(t, testpeer.InfluxOptions{AdminUser: "gateway", AdminPassword: "right-one"}, "shelter")
	st := openStore(t, t.TempDir())
	e := newExpect()
	rs := temps(0, 3000, 4)
	if err := st.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	e.add(rs)
	r := startForwarder(t, st, Target{URL: db.URL(), Token: "gateway:wrong-one"})
	deadline := time.Now().Add(10 * time.Second)
	for r.fw.retries[RetryAuth].Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no repeated auth failures within 10s: %+v", r.fw.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := r.fw.Status()
	if !s.AuthFailing || s.Cursor != 0 || s.BacklogPoints != 3000 || s.DeadLettered != 0 {
		t.Fatalf("while refused: %+v", s)
	}
	if dls, _ := st.DeadLetters(10); len(dls) != 0 {
		t.Fatalf("refused credentials dead-lettered readings: %+v", dls)
	}
	r.stop()
	r = startForwarder(t, st, Target{URL: db.URL(), Token: "gateway:right-one"})
	waitDelivered(t, r, 30*time.Second)
	checkExact(t, db, e)
	if r.fw.Status().AuthFailing {
		t.Fatal("still marked as refused after delivering")
	}
}

// TestTooLargeBatchesAreSplit: an InfluxDB that takes at most 64 KiB per
// request gets 5,000-point batches (about 500 KiB) split until they fit.
func TestTooLargeBatchesAreSplit(t *testing.T) {
	db := testpeer.StartInfluxDBWith(t, testpeer.InfluxOptions{MaxBodySize: 64 << 10}, "shelter")
	st := openStore(t, t.TempDir())
	e := newExpect()
	rs := temps(0, 12000, 6)
	if err := st.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	e.add(rs)
	r := startForwarder(t, st, Target{URL: db.URL(), BatchSize: 5000})
	waitDelivered(t, r, 30*time.Second)
	checkExact(t, db, e)
	if n := r.fw.retries[RetryTooLarge].Load(); n == 0 {
		t.Fatal("no 413 seen: the test did not exercise splitting")
	}
	if s := r.fw.Status(); s.DeadLettered != 0 || s.Written != 12000 {
		t.Fatalf("status: %+v", s)
	}
}
