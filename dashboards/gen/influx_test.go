package gen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// The demo facility: two days of readings from 2026-11-28 00:00 UTC.
var (
	demoStart = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	demoEnd   = demoStart.Add(48 * time.Hour)
)

// Dashboard variables set to the demo facility, formatted as Grafana
// formats multi-value variables inside a regex.
var demoVars = map[string]string{
	"facility":       "demo-shelter",
	"zone":           "(dorm-a|dorm-b|kitchen|secure-ward)",
	"device":         "(dorm-a-temp|dorm-b-temp|kitchen-temp|ward-temp|kitchen-smoke|ward-door)",
	"ward":           "secure-ward",
	"dorm":           "(dorm-a|dorm-b)",
	"bucket":         "shelterwatch/autogen",
	"sample_minutes": "5",
}

// demoReadings generates the facility's readings: temperatures every 5
// minutes in four zones with a cold spell in dorm-a and a hot one in
// dorm-b, smoke in the kitchen, night door openings in the secure ward,
// availability with an outage, a bridge going offline, batteries.
func demoReadings() []reading.Reading {
	var rs []reading.Reading
	add := func(dev, zone string, kind reading.Kind, at time.Time, v reading.Value, battery float64) {
		r := reading.Reading{Facility: "demo-shelter", Device: dev, Zone: zone, Kind: kind, Format: "native",
			Time: at, Received: time.Now(), Value: v}
		if battery > 0 {
			r.Battery = &battery
		}
		rs = append(rs, r)
	}
	temps := []struct{ dev, zone string }{{"dorm-a-temp", "dorm-a"}, {"dorm-b-temp", "dorm-b"}, {"kitchen-temp", "kitchen"}, {"ward-temp", "secure-ward"}}
	for i := 0; i < 48*12; i++ {
		at := demoStart.Add(time.Duration(i) * 5 * time.Minute)
		h := at.Sub(demoStart).Hours()
		for _, d := range temps {
			c := 22 + 2*math.Sin(h/24*2*math.Pi)
			switch {
			case d.dev == "dorm-a-temp" && h >= 2 && h < 6:
				c = 14
			case d.dev == "dorm-b-temp" && h >= 30 && h < 34:
				c = 34
			case d.dev == "kitchen-temp" && h >= 12 && h < 12.5:
				c = 22 + (h-12)*60 // a fast rise: 1 °C a minute
			}
			add(d.dev, d.zone, reading.KindTemperature, at, reading.Number(c), 90-h/10)
		}
	}
	for h := 0; h < 48; h++ {
		at := demoStart.Add(time.Duration(h) * time.Hour)
		add("kitchen-smoke", "kitchen", reading.KindSmoke, at, reading.Bool(false), 80)
		add("ward-door", "secure-ward", reading.KindDoor, at, reading.Bool(false), 60)
	}
	for _, at := range []time.Duration{12*time.Hour + 5*time.Minute, 12*time.Hour + 10*time.Minute} {
		add("kitchen-smoke", "kitchen", reading.KindSmoke, demoStart.Add(at), reading.Bool(true), 80)
	}
	// 23:30 and 00:10 China Standard Time, and one opening by day (11:00).
	for _, at := range []time.Duration{15*time.Hour + 30*time.Minute, 40*time.Hour + 10*time.Minute, 3 * time.Hour} {
		add("ward-door", "secure-ward", reading.KindDoor, demoStart.Add(at), reading.Bool(true), 60)
	}
	for _, d := range append(temps, struct{ dev, zone string }{"kitchen-smoke", "kitchen"}, struct{ dev, zone string }{"ward-door", "secure-ward"}) {
		add(d.dev, d.zone, reading.KindAvailability, demoStart, reading.Bool(true), 0)
	}
	add("dorm-b-temp", "dorm-b", reading.KindAvailability, demoStart.Add(8*time.Hour), reading.Bool(false), 0)
	add("dorm-b-temp", "dorm-b", reading.KindAvailability, demoStart.Add(9*time.Hour), reading.Bool(true), 0)
	add("ward-door", "secure-ward", reading.KindReach, demoStart.Add(25*time.Hour), reading.State(reading.ReachBridgeOffline), 0)
	add("ward-door", "secure-ward", reading.KindReach, demoStart.Add(25*time.Hour+20*time.Minute), reading.State(reading.ReachOK), 0)
	for h := 0; h < 48; h += 6 {
		add("ward-door", "secure-ward", reading.KindBattery, demoStart.Add(time.Duration(h)*time.Hour), reading.Number(60-float64(h)/10), 0)
	}
	return rs
}

// loadDemo stores the demo readings and forwards them to db with the
// gateway's own forwarder.
func loadDemo(t *testing.T, db *testpeer.InfluxDB) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Append(context.Background(), demoReadings()); err != nil {
		t.Fatal(err)
	}
	fw, err := forward.New(forward.Options{Store: st, NoLinger: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Target: forward.Target{Name: "demo", URL: db.URL(), Bucket: "shelterwatch/autogen", Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := fw.Status()
		if s.Cursor >= st.LastSeq() && s.BacklogPoints == 0 {
			if s.DeadLettered != 0 {
				t.Fatalf("InfluxDB refused %d demo readings: %+v", s.DeadLettered, s)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo readings not forwarded within 30s: %+v (store at %d)", s, st.LastSeq())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// substitute does what Grafana does to a query before sending it.
func substitute(q string) string {
	r := []string{
		"$timeFilter", fmt.Sprintf("time >= '%s' AND time <= '%s'", demoStart.Format(time.RFC3339), demoEnd.Format(time.RFC3339)),
		"$__interval", "30m",
		"v.timeRangeStart", demoStart.Format(time.RFC3339),
		"v.timeRangeStop", demoEnd.Format(time.RFC3339),
		"v.windowPeriod", "30m",
	}
	for name, v := range demoVars {
		r = append(r, "${"+name+":regex}", v, "${"+name+"}", v, "$"+name, v)
	}
	return strings.NewReplacer(r...).Replace(q)
}

// fluxRows runs a Flux query through the 1.8 server's /api/v2/query and
// returns its data rows (annotated CSV without header and blank lines).
func fluxRows(t *testing.T, db *testpeer.InfluxDB, q string) []string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q, "type": "flux"})
	req, _ := http.NewRequest(http.MethodPost, db.URL()+"/api/v2/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/csv")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("flux query: status %d: %s", resp.StatusCode, raw)
	}
	var rows []string
	header := true
	for _, line := range strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			header = true
		case header:
			if strings.Contains(line, ",error,") {
				t.Fatalf("flux query failed: %s", raw)
			}
			header = false
		default:
			rows = append(rows, line)
		}
	}
	return rows
}

func TestQueriesReturnDemoData(t *testing.T) {
	db := testpeer.StartInfluxDB(t, "shelterwatch")
	loadDemo(t, db)
	n := 0
	for p, d := range dashboards(t) {
		for _, pa := range d.Panels {
			for _, tg := range pa.Targets {
				if tg.Datasource == nil || (tg.Datasource.UID != InfluxQLUID && tg.Datasource.UID != FluxUID) {
					continue
				}
				n++
				q := substitute(tg.Query)
				t.Run(fmt.Sprintf("%s/%s/%s", p, pa.Title, tg.RefID), func(t *testing.T) {
					if tg.Datasource.UID == FluxUID {
						if rows := fluxRows(t, db, q); len(rows) == 0 {
							t.Fatalf("no rows for the demo facility:\n%s", q)
						}
						return
					}
					series, err := db.TryQuery("shelterwatch", q)
					if err != nil {
						t.Fatal(err)
					}
					rows := 0
					for _, s := range series {
						rows += len(s.Values)
					}
					if rows == 0 {
						t.Fatalf("no rows for the demo facility:\n%s", q)
					}
				})
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d InfluxDB targets found", n)
	}
}
