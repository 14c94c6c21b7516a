package influxd

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// TestCountsPointsOncePerSeriesAndTime: the benches' exactness checks rest
// on Count, which must count every field type and a re-sent point once.
func TestCountsPointsOncePerSeriesAndTime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd: not a -short test")
	}
	s, err := Start(context.Background(), testpeer.InfluxdBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	lines := strings.Join([]string{
		"temperature,device=a value=21.5 1000",
		"temperature,device=a value=21.5 1000", // sent again: the same point
		"temperature,device=a value=21.7 2000",
		"smoke,device=b value=false 1000",
		`fault,device=gateway value="ok" 1000`,
	}, "\n")
	resp, err := http.Post(s.URL+"/write?db="+Database, "text/plain", strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
	ms, err := s.Measurements()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"fault", "smoke", "temperature"}; !slices.Equal(ms, want) {
		t.Errorf("measurements %v, want %v", ms, want)
	}
	for _, tc := range []struct {
		in   []string
		want int
	}{
		{[]string{"temperature"}, 2},
		{[]string{"temperature", "smoke"}, 3},
		{[]string{"temperature", "smoke", "fault"}, 4},
		{nil, 0},
	} {
		if n, err := s.Count(tc.in...); err != nil || n != tc.want {
			t.Errorf("Count(%v) = %d, %v; want %d", tc.in, n, err, tc.want)
		}
	}
	if s.CPU() <= 0 {
		t.Error("influxd's CPU time reads 0")
	}
}
