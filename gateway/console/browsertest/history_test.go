package browsertest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/users"
)

// TestHistoryChartAndCSV: an inspector opens a device's temperature
// history; the chart draws the gateway's readings, and the CSV the console
// downloads is the API's answer to the same question, row for row.
func TestHistoryChartAndCSV(t *testing.T) {
	f := startFixture(t)
	b := f.newBrowser(t, "inspector")
	b.login(users.RoleInspector)
	// The simulated climate sensor reports every 300 ms: wait for a few.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(string(f.apiGet("/api/v1/readings?device=dorm-1-climate&kind=temperature")), `"value"`) {
		if time.Now().After(deadline) {
			t.Fatal("no temperature readings of dorm-1-climate within 20s")
		}
		time.Sleep(200 * time.Millisecond) // readings arrive from the simulator: no event to await
	}

	b.open("/history?device=dorm-1-climate&kind=temperature")
	points := poll[string](b, "the chart with data", 15*time.Second,
		`(() => { const c = document.querySelector('[data-test=history-chart]'); return c && Number(c.dataset.points) > 0 && c.querySelector('canvas, svg') ? c.dataset.points : false })()`)
	n, _ := strconv.Atoi(points)
	t.Logf("chart draws %d points", n)

	// Catch what the download asks and what it saves.
	path, saved := b.download("[data-test=history-csv]")
	if !strings.HasPrefix(path, "/api/v1/readings?") || !strings.Contains(path, "format=csv") {
		t.Fatalf("the console downloaded %q, want the readings API as CSV", path)
	}
	fromAPI := string(f.apiGet(path))
	if saved != fromAPI {
		t.Errorf("the saved CSV differs from the API's answer to %s:\nsaved:\n%.400s\nAPI:\n%.400s", path, saved, fromAPI)
	}
	rows := strings.Split(strings.TrimSpace(saved), "\n")
	if !strings.HasPrefix(rows[0], "device,kind,zone,") {
		t.Errorf("CSV header %q", rows[0])
	}
	if len(rows)-1 != n {
		t.Errorf("CSV has %d rows, the chart %d points: want the same readings", len(rows)-1, n)
	}
}
