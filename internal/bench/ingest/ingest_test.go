package ingest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/gateway"
	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"go.uber.org/goleak"
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
