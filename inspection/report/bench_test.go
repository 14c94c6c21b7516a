package report

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// The quarter fixture: a large facility (500 devices, 30 foster
// placements with a camera each) with Q1 2026 in a real store (one
// reading per device every 15 minutes, some devices with outages) and a
// real audit log (an alarm episode every 10 minutes, four viewing
// sessions a day per camera, hazard items). Built once per process: the
// store takes about half a minute to fill on the 2-core reference machine.
const (
	benchDevices = 500
	benchCameras = 30
	benchEvery   = 15 * time.Minute
)

var quarter struct {
	once sync.Once
	dir  string
	f    Facility
	log  *audit.Log
	st   *store.Store
	p    Period
	err  error
	took time.Duration
}

func quarterFixture(b *testing.B) (Facility, *audit.Log, *store.Store, Period) {
	b.Helper()
	quarter.once.Do(func() {
		start := time.Now()
		quarter.err = buildQuarter()
		quarter.took = time.Since(start)
	})
	if quarter.err != nil {
		b.Fatalf("quarter fixture: %v", quarter.err)
	}
	b.Logf("quarter fixture built in %v", quarter.took.Round(time.Second))
	return quarter.f, quarter.log, quarter.st, quarter.p
}

func buildQuarter() error {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return err
	}
	if quarter.dir, err = os.MkdirTemp("", "shelterwatch-report-bench-"); err != nil {
		return err
	}
	f := Facility{ID: "big-shelter", Name: "Big Shelter", NameZH: "大型救助站", Location: loc}
	f.Zones = append(f.Zones, facility.Zone{ID: "kitchen", Name: "Kitchen", NameZH: "厨房"})
	for i := range 20 {
		f.Zones = append(f.Zones, facility.Zone{ID: fmt.Sprintf("dorm-%02d", i), Name: fmt.Sprintf("Dormitory %d", i), Tags: []string{TagDormitory}})
	}
	for i := range 5 {
		f.Zones = append(f.Zones, facility.Zone{ID: fmt.Sprintf("ward-%d", i), Name: fmt.Sprintf("Ward %d", i), Tags: []string{TagSecureWard}})
	}
	for i := range benchCameras {
		z := fmt.Sprintf("foster-%02d", i)
		f.Zones = append(f.Zones, facility.Zone{ID: z, Name: fmt.Sprintf("Foster home %d", i), Tags: []string{DefaultSupervisedTag}})
		f.Cameras = append(f.Cameras, facility.Camera{ID: z + "-cam", Name: fmt.Sprintf("Foster home %d", i), Zone: z})
	}
	kinds := []reading.Kind{reading.KindTemperature, reading.KindSmoke, reading.KindDoor, reading.KindHumidity, reading.KindSmoke}
	for i := range benchDevices {
		k := kinds[i%len(kinds)]
		z := f.Zones[i%len(f.Zones)].ID
		f.Devices = append(f.Devices, facility.Device{ID: fmt.Sprintf("dev-%03d", i), Kind: k, Zone: z, OfflineAfter: facility.DefaultOfflineAfter(k)})
	}
	quarter.f = f
	if quarter.p, err = PeriodContaining(KindQuarter, time.Date(2026, 2, 1, 0, 0, 0, 0, loc), loc); err != nil {
		return err
	}
	from, to := quarter.p.From, quarter.p.To

	if quarter.st, err = store.Open(store.Options{Dir: filepath.Join(quarter.dir, "store")}); err != nil {
		return err
	}
	ctx := context.Background()
	rs := make([]reading.Reading, 0, 20_000)
	for at := from.Add(-time.Hour); at.Before(to); at = at.Add(benchEvery) {
		for i, d := range f.Devices {
			// One device in ten is silent for the first six hours of
			// every tenth day: outages to replay.
			if i%10 == 3 && at.YearDay()%10 == 0 && at.Hour() < 6 {
				continue
			}
			v := reading.Number(21)
			if d.Kind == reading.KindSmoke || d.Kind == reading.KindDoor {
				v = reading.Bool(false)
			}
			rs = append(rs, reading.Reading{Facility: f.ID, Device: d.ID, Zone: d.Zone, Kind: d.Kind, Format: "native",
				Time: at.Add(time.Duration(i) * time.Second), Received: at.Add(time.Duration(i) * time.Second), Value: v})
		}
		if len(rs) >= 19_000 {
			if err := quarter.st.Append(ctx, rs); err != nil {
				return err
			}
			rs = rs[:0]
		}
	}
	if err := quarter.st.Append(ctx, rs); err != nil {
		return err
	}

	if quarter.log, err = audit.Open(filepath.Join(quarter.dir, "alarms", audit.FileName), audit.Options{}); err != nil {
		return err
	}
	var es []audit.Entry
	var seq uint64
	rules := []struct{ rule, sev string }{{"smoke", "critical"}, {RuleDormCold, "warning"}, {RuleWardNightDoor, "critical"}, {"device-offline", "trouble"}}
	for at, n := from.Add(-10*24*time.Hour), 0; at.Before(to); at, n = at.Add(10*time.Minute), n+1 {
		seq++
		r := rules[n%len(rules)]
		d := f.Devices[n%benchDevices]
		al := func(level int) *audit.Alarm {
			return &audit.Alarm{AlarmID: r.rule + "@dev:" + d.ID, Seq: seq, Rule: r.rule, Severity: r.sev, Level: level}
		}
		es = append(es, audit.Entry{Time: at, Action: actionFired, Detail: "bench alarm", Alarm: al(0)})
		if n%3 == 0 {
			es = append(es, audit.Entry{Time: at.Add(5 * time.Minute), Action: actionEscalated, Alarm: al(1)})
		}
		if n%2 == 0 {
			es = append(es, audit.Entry{Time: at.Add(time.Duration(n%9) * time.Minute), Action: actionAcknowledged, By: "shift-lead", Comment: "checked", Alarm: al(0)})
		}
		es = append(es, audit.Entry{Time: at.Add(9 * time.Minute), Action: actionResolved, Alarm: al(0)})
		for c := range benchCameras {
			if n%36 == c%36 { // four sessions a day per camera
				s := fmt.Sprintf("sess-%d-%d", n, c)
				v := &audit.Video{Camera: f.Cameras[c].ID, Session: s, Remote: "10.0.0.9:4000", Started: at}
				es = append(es, audit.Entry{Time: at, Action: audit.ActionVideoViewStarted, By: "supervisor", Video: v})
				v2 := *v
				v2.Bytes = 1 << 24
				es = append(es, audit.Entry{Time: at.Add(7 * time.Minute), Action: audit.ActionVideoViewEnded, By: "supervisor", Video: &v2})
			}
		}
		if n%50 == 0 {
			es = append(es, audit.Entry{Time: at, Action: audit.ActionHazardOpened, Hazard: &audit.Hazard{HazardID: fmt.Sprintf("hz-%d", n), Status: "open"}})
		}
	}
	// Entries are appended in time order, as a live gateway writes them.
	slices.SortStableFunc(es, func(a, b audit.Entry) int { return a.Time.Compare(b.Time) })
	for i := 0; i < len(es); i += 10_000 {
		if err := quarter.log.Append(es[i:min(i+10_000, len(es))]...); err != nil {
			return err
		}
	}
	return nil
}

// TestMain removes the quarter fixture, then checks that no goroutine
// outlived its test.
func TestMain(m *testing.M) {
	code := m.Run()
	if quarter.log != nil {
		_ = quarter.log.Close()
	}
	if quarter.st != nil {
		_ = quarter.st.Close()
	}
	if quarter.dir != "" {
		_ = os.RemoveAll(quarter.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// BenchmarkQuarter generates a quarter's report of the large facility:
// 500 availability timelines from the store and a quarter of the audit
// log. Reported: ms per report, the bytes allocated per report and the
// peak of the live heap above what it was before (heap-MB).
func BenchmarkQuarter(b *testing.B) {
	f, log, st, p := quarterFixture(b)
	opts := Options{Facility: f, Audit: log, Availability: storeAvailability(st), DepartmentLevel: 1,
		Now: func() time.Time { return p.To.Add(24 * time.Hour) }}
	for _, out := range []string{"none", "xlsx"} {
		b.Run("output="+out, func(b *testing.B) {
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					runtime.ReadMemStats(&ms)
					if ms.HeapAlloc > peak.Load() {
						peak.Store(ms.HeapAlloc)
					}
				}
			})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := Generate(context.Background(), opts, p)
				if err != nil {
					b.Fatal(err)
				}
				if out == "xlsx" {
					if err := r.XLSX(io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
			extra := float64(0)
			if pk := peak.Load(); pk > base.HeapAlloc {
				extra = float64(pk-base.HeapAlloc) / (1 << 20)
			}
			b.ReportMetric(extra, "heap-MB")
		})
	}
}
