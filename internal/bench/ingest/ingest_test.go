package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/bench/gateway"
	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/report"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// TestMain lets the test binary play the gateway and publisher roles: the
// bench re-executes its own binary, which in a test is this one.
func TestMain(m *testing.M) {
	if code, ok := proc.RunRole(os.Args[1:], gateway.Role, PublishRole); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// testOptions runs a scenario briefly, with child logs in the test log.
func testOptions(t *testing.T) Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{Runs: 1, Exe: exe, Mosquitto: "/usr/sbin/mosquitto", Warmup: 500 * time.Millisecond,
		Duration: 2 * time.Second, Window: 8, Log: t.Output(), MaxInFlight: 200}
}

// TestBenchMeasuresStoredWork runs small quick scenarios end to end and
// checks that the figures come from real work: messages went through the
// broker into the store, every acknowledged publish is there, and the table
// shows the row.
func TestBenchMeasuresStoredWork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway, publishers and possibly mosquitto: not a -short test")
	}
	for _, sc := range []Scenario{
		{Devices: 20, Mode: modeEmbedded, Conns: 4},
		{Devices: 20, Mode: modeMosquitto, Conns: 4},
	} {
		t.Run(sc.Name(), func(t *testing.T) {
			o := testOptions(t)
			needMosquitto(t, o, sc)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := runScenario(ctx, o, sc)
			if errors.Is(err, errNoMosquitto) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatalf("runScenario: %v", err)
			}
			if res.MsgsPerSec <= 0 || res.Msgs <= 0 {
				t.Errorf("msgs/s = %v over %v (%v messages): want > 0", res.MsgsPerSec, res.Window, res.Msgs)
			}
			if res.Acked == 0 {
				t.Fatal("no publish was acknowledged")
			}
			if res.StoredReadings < res.AckedReadings || res.StoredReadings < res.Acked {
				t.Errorf("store holds %d readings; publishers had %d messages with %d readings acknowledged: acked publishes are missing from the store",
					res.StoredReadings, res.Acked, res.AckedReadings)
			}
			if res.Failed == 0 && res.StoredReadings != res.AckedReadings {
				t.Errorf("store holds %d readings, want exactly the %d readings of the acknowledged publishes", res.StoredReadings, res.AckedReadings)
			}
			if res.PeakRSS <= 0 || res.GatewayCPU <= 0 {
				t.Errorf("gateway process figures missing: peak RSS %d bytes, CPU %v", res.PeakRSS, res.GatewayCPU)
			}

			var out bytes.Buffer
			printReport(&out, []summary{median([]result{res})}, o)
			row := ""
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(line, "| "+sc.Name()+" |") {
					row = line
				}
			}
			if row == "" {
				t.Fatalf("no table row for %s in:\n%s", sc.Name(), out.String())
			}
			cells := strings.Split(row, "|")
			if len(cells) < 3 || strings.TrimSpace(cells[2]) == "0" {
				t.Errorf("row shows no throughput: %s", row)
			}
			t.Logf("%s (acked %d, stored %d readings)", row, res.Acked, res.StoredReadings)
		})
	}
}

// TestBurstStoresEveryAcknowledgedMessage runs small bursts end to end:
// in mosquitto mode the backlog queued for the gateway's session while it
// was away reaches the store of the gateway that comes back, and in both
// modes every acknowledged reading is stored exactly once.
func TestBurstStoresEveryAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway, publishers and possibly mosquitto: not a -short test")
	}
	for _, sc := range []Scenario{
		{Devices: 20, Mode: modeEmbedded, Burst: 20},
		{Devices: 20, Mode: modeMosquitto, Burst: 20},
	} {
		t.Run(sc.Name(), func(t *testing.T) {
			o := testOptions(t)
			needMosquitto(t, o, sc)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := runBurst(ctx, o, sc)
			if err != nil {
				t.Fatalf("runBurst: %v", err)
			}
			if want := uint64(sc.Devices * sc.Burst); res.Msgs != want {
				t.Errorf("%d messages acknowledged to the publishers, want %d", res.Msgs, want)
			}
			if res.StoredReadings != res.AckedReadings || res.AckedReadings == 0 {
				t.Errorf("store gained %d readings; the publishers had %d acknowledged", res.StoredReadings, res.AckedReadings)
			}
			if res.PeakRSS <= 0 || res.Drain <= 0 {
				t.Errorf("figures missing: peak RSS %d bytes, drain %v", res.PeakRSS, res.Drain)
			}
			var out bytes.Buffer
			printBurstReport(&out, []burstSummary{medianBurst([]burstResult{res})})
			if !strings.Contains(out.String(), "| "+sc.Name()+" |") {
				t.Errorf("no table row for %s in:\n%s", sc.Name(), out.String())
			}
		})
	}
}

// needMosquitto skips a mosquitto scenario when mosquitto is missing, or
// fails it under CI.
func needMosquitto(t *testing.T, o Options, sc Scenario) {
	t.Helper()
	if sc.Mode != modeMosquitto {
		return
	}
	if _, err := os.Stat(o.Mosquitto); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mosquitto is required in CI: %v", err)
		}
		t.Skipf("mosquitto not installed: %v", err)
	}
}

// TestBurstForwardsEveryReadingToInfluxDB runs the CPU goal's scenario
// small, with real mosquitto and influxd: the drain waits for InfluxDB,
// InfluxDB then holds every acknowledged reading exactly once, and the
// table shows the forwarding columns and the goal's line.
func TestBurstForwardsEveryReadingToInfluxDB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mosquitto, influxd, two gateways and publishers: not a -short test")
	}
	sc := Scenario{Devices: 50, Mode: modeMosquitto, Burst: 20, Format: formatZigbee2MQTT, InfluxDB: true}
	o := testOptions(t)
	needMosquitto(t, o, sc)
	o.Influxd = testpeer.InfluxdBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := runBurst(ctx, o, sc)
	if err != nil {
		t.Fatalf("runBurst: %v", err)
	}
	if want := uint64(sc.Devices * sc.Burst); res.Msgs != want {
		t.Errorf("%d messages acknowledged to the publishers, want %d", res.Msgs, want)
	}
	if res.AckedReadings == 0 || res.StoredReadings != res.AckedReadings {
		t.Errorf("store gained %d readings; the publishers had %d acknowledged", res.StoredReadings, res.AckedReadings)
	}
	if res.InfluxPoints != res.StoredReadings {
		t.Errorf("InfluxDB holds %d of the devices' readings, the store %d: want each exactly once", res.InfluxPoints, res.StoredReadings)
	}
	if res.StartupCPU <= 0 || res.CPUStored <= 0 || res.CPUForwarded < res.CPUStored || res.ForwardDrain < res.Drain {
		t.Errorf("figures out of order: start-up CPU %v, CPU at stored %v, at confirmed %v; drain %v, confirmed after %v",
			res.StartupCPU, res.CPUStored, res.CPUForwarded, res.Drain, res.ForwardDrain)
	}

	var out bytes.Buffer
	printBurstReport(&out, []burstSummary{medianBurst([]burstResult{res})})
	text := out.String()
	row := tableRow(text, sc.Name())
	if row == "" {
		t.Fatalf("no table row for %s in:\n%s", sc.Name(), text)
	}
	cells := strings.Split(strings.Trim(row, "| "), " | ")
	if got, want := cells[len(cells)-1], report.Thousands(float64(res.StoredReadings)); got != want {
		t.Errorf("readings in InfluxDB shown as %q, want %q: %s", got, want, row)
	}
	for _, c := range cells[len(cells)-5:] {
		if c == "—" {
			t.Errorf("a forwarding column is empty on the InfluxDB row: %s", row)
		}
	}
	goal := "Goal for " + sc.Name() + ": ≤ 2.0 CPU-s per 100k msgs (start-up excluded), every reading in InfluxDB exactly once: "
	if !strings.Contains(text, goal) {
		t.Errorf("no goal line %q in:\n%s", goal, text)
	}
	t.Logf("\n%s", text)
}

// TestBurstWithoutInfluxdFails: the forwarding row is the CPU goal's only
// measurement; without influxd it fails loudly rather than leaving the
// table quietly.
func TestBurstWithoutInfluxdFails(t *testing.T) {
	sc := Scenario{Devices: 20, Mode: modeMosquitto, Burst: 20, Format: formatZigbee2MQTT, InfluxDB: true}
	o := testOptions(t)
	needMosquitto(t, o, sc)
	o.Influxd = filepath.Join(t.TempDir(), "influxd")
	var log strings.Builder
	o.Log, o.Scenarios = &log, []Scenario{sc}
	if _, err := runBurst(context.Background(), o, sc); !errors.Is(err, errNoInfluxd) {
		t.Errorf("runBurst without influxd: %v, want errNoInfluxd", err)
	}
	if err := Run(context.Background(), o, io.Discard); !errors.Is(err, ErrFailed) {
		t.Errorf("Run without influxd: %v, want ErrFailed", err)
	}
	if !strings.Contains(log.String(), sc.Name()+" FAILED: influxd not found") {
		t.Errorf("the log does not say the scenario failed for want of influxd:\n%s", log.String())
	}
}

// TestBurstReportColumns: rows without InfluxDB show "—" in the
// forwarding columns and get no CPU goal line; a row with it shows its
// figures and its verdict.
func TestBurstReportColumns(t *testing.T) {
	plain := burstResult{Scenario: "burst=20/devices=1/mode=mosquitto", Mode: modeMosquitto, Msgs: 20, AckedReadings: 60, StoredReadings: 60, Drain: time.Second}
	fwd := plain
	fwd.Scenario, fwd.InfluxDB = plain.Scenario+"/format=zigbee2mqtt/influxdb", true
	fwd.ForwardDrain, fwd.StartupCPU, fwd.CPUStored, fwd.CPUForwarded = 2*time.Second, 100*time.Millisecond, 200*time.Millisecond, 300*time.Millisecond
	for _, tc := range []struct {
		name    string
		r       burstResult
		cells   []string // the last five
		goalCPU string   // "" for none
	}{
		{"without InfluxDB", plain, []string{"—", "—", "—", "—", "—"}, ""},
		{"all in InfluxDB", with(fwd, 60), []string{"2.0", "0.20 / 0.30", "0.10", "1500.00 / 1000.00", "60"},
			"MISSED (1000.00 CPU-s per 100k msgs start-up excluded, 1500.00 whole process; 60 of 60 acknowledged readings in InfluxDB)"},
		{"one missing from InfluxDB", with(fwd, 59), []string{"2.0", "0.20 / 0.30", "0.10", "1500.00 / 1000.00", "59"},
			"MISSED (1000.00 CPU-s per 100k msgs start-up excluded, 1500.00 whole process; 59 of 60 acknowledged readings in InfluxDB)"},
		{"within the goal", withMsgs(with(fwd, 60), 100_000), []string{"2.0", "0.20 / 0.30", "0.10", "0.30 / 0.20", "60"},
			"met (0.20 CPU-s per 100k msgs start-up excluded, 0.30 whole process; 60 of 60 acknowledged readings in InfluxDB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			printBurstReport(&out, []burstSummary{medianBurst([]burstResult{tc.r})})
			row := tableRow(out.String(), tc.r.Scenario)
			cells := strings.Split(strings.Trim(row, "| "), " | ")
			if len(cells) < 5 || !slices.Equal(cells[len(cells)-5:], tc.cells) {
				t.Errorf("row %s\nwant it to end in %q", row, tc.cells)
			}
			goal := "Goal for " + tc.r.Scenario + ": ≤ 2.0 CPU-s per 100k msgs (start-up excluded), every reading in InfluxDB exactly once: "
			switch line := lineWith(out.String(), goal); {
			case tc.goalCPU == "" && line != "":
				t.Errorf("a row without InfluxDB got the CPU goal: %s", line)
			case tc.goalCPU != "" && line != goal+tc.goalCPU+".":
				t.Errorf("goal line %q, want %q", line, goal+tc.goalCPU+".")
			}
		})
	}
}

func with(r burstResult, inInflux uint64) burstResult { r.InfluxPoints = inInflux; return r }
func withMsgs(r burstResult, msgs uint64) burstResult { r.Msgs = msgs; return r }

// TestZigbee2MQTTOnlyMix: the goal's device mix is the Zigbee2MQTT part of
// the usual one, in its proportions, and the scenario's name says so (the
// existing names stay as they were, so that old tables still compare).
func TestZigbee2MQTTOnlyMix(t *testing.T) {
	devs, err := benchDevices(26, formatZigbee2MQTT)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[reading.Kind]int{}
	for i, d := range devs {
		if d.Format != formatZigbee2MQTT || !strings.HasPrefix(d.Base, "zigbee2mqtt/") {
			t.Errorf("device %d: format %q, topic %q: want Zigbee2MQTT", i, d.Format, d.Base)
		}
		kinds[d.Kind]++
	}
	if want := map[reading.Kind]int{reading.KindTemperature: 16, reading.KindSmoke: 8, reading.KindDoor: 2}; !maps.Equal(kinds, want) {
		t.Errorf("kinds of 26 devices: %v, want %v (two cycles of the mix's Zigbee2MQTT part)", kinds, want)
	}
	if _, err := benchDevices(1, "lorawan"); err == nil {
		t.Error("a format the mix does not have was accepted")
	}

	for _, tc := range []struct {
		sc   Scenario
		want string
	}{
		{Scenario{Devices: 1000, Mode: modeMosquitto, Burst: 200}, "burst=200000/devices=1000/mode=mosquitto"},
		{Scenario{Devices: 1000, Mode: modeEmbedded, Burst: 200}, "burst=200000/devices=1000/mode=embedded"},
		{Scenario{Devices: 1000, Mode: modeEmbedded, Rate: 1000}, "devices=1000/mode=embedded/rate=1000"},
		{Scenario{Devices: 1000, Mode: modeMosquitto, Burst: 200, Format: formatZigbee2MQTT, InfluxDB: true},
			"burst=200000/devices=1000/mode=mosquitto/format=zigbee2mqtt/influxdb"},
	} {
		if got := tc.sc.Name(); got != tc.want {
			t.Errorf("Name() = %q, want %q", got, tc.want)
		}
	}
	defaults := DefaultScenarios()
	i := slices.IndexFunc(defaults, func(s Scenario) bool { return s.InfluxDB })
	if i < 1 || defaults[i-1].Name() != "burst=200000/devices=1000/mode=mosquitto" || defaults[i].Name() != "burst=200000/devices=1000/mode=mosquitto/format=zigbee2mqtt/influxdb" {
		t.Errorf("the goal's scenario is not a default row right after the Mosquitto burst: %v", defaults)
	}
	for _, s := range defaults {
		if err := s.validate(); err != nil {
			t.Errorf("default scenario %s: %v", s.Name(), err)
		}
	}
	if err := (Scenario{Devices: 10, Mode: modeEmbedded, Burst: 2, InfluxDB: true}).validate(); err == nil {
		t.Error("InfluxDB with the embedded broker was accepted: its drain does not wait for InfluxDB")
	}
}

// TestPlanStampsReportsApart: with variants, every message of a device is
// a report of its own time, a minute after the one before, so that
// InfluxDB (a point per series and time) keeps every reading.
func TestPlanStampsReportsApart(t *testing.T) {
	devs, err := benchDevices(13, formatZigbee2MQTT)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 1, 2, 12, 0, 0, 0, time.UTC)
	const variants = 5
	plan, err := buildPlan(devs, now, variants)
	if err != nil {
		t.Fatal(err)
	}
	dec := decode.All()[formatZigbee2MQTT]
	for i, d := range devs {
		if len(plan[i]) != variants {
			t.Fatalf("device %s has %d messages planned, want %d", d.ID, len(plan[i]), variants)
		}
		for v, m := range plan[i] {
			res, err := dec.Decode(decode.Device{ID: d.ID, Kind: d.Kind, Base: d.Base, Location: time.UTC}, m.topic, m.payload)
			if err != nil {
				t.Fatal(err)
			}
			if want := now.Add(-time.Duration(variants-1-v) * planStep); !res.Time.Equal(want) {
				t.Errorf("device %s message %d stamped %v, want %v", d.ID, v, res.Time, want)
			}
		}
	}
}

// tableRow is the Markdown row of scenario name in text, or "".
func tableRow(text, name string) string { return lineWith(text, "| "+name+" |") }

// lineWith is the first line of text that starts with prefix, or "".
func lineWith(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}
