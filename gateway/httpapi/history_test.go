package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
)

func TestReadingsMaxPoints(t *testing.T) {
	s := newServer(t)
	seedHistory(t, s)
	m := time.Minute
	for _, tc := range []struct {
		name, query string
		wantWidth   string
		wantStarts  []time.Duration // of dorm3-temp temperature buckets
	}{
		// 2h / 4 = 30m, a nice width already.
		{"exact nice width", "max_points=4&from=" + at(0) + "&to=" + at(2*time.Hour), "30m0s", []time.Duration{0, 30 * m, 60 * m, 90 * m}},
		// 2h / 3 = 40m, rounded up to 1h.
		{"rounded up", "max_points=3&from=" + at(0) + "&to=" + at(2*time.Hour), "1h0m0s", []time.Duration{0, 60 * m}},
		// 2h10m / 1000 = 7.8s → 10s.
		{"fine", "max_points=1000&from=" + at(0) + "&to=" + at(130*m), "10s", []time.Duration{5 * m, 35 * m, 65 * m, 95 * m, 125 * m}},
		// An unaligned range of 2h would touch 3 one-hour buckets: 2h.
		{"unaligned range", "max_points=2&from=" + at(30*m) + "&to=" + at(150*m), "2h0m0s", []time.Duration{-60 * m, 60 * m}},
		{"bucket=auto takes max_points=1000", "bucket=auto&from=" + at(0) + "&to=" + at(1000*time.Hour), "1h0m0s", []time.Duration{0, 60 * m, 120 * m}},
		// Buckets are aligned to the epoch: 02:00 and 04:00 UTC.
		{"an explicit bucket wins", "bucket=2h&max_points=1000&from=" + at(0) + "&to=" + at(3*time.Hour), "2h0m0s", []time.Duration{-60 * m, 60 * m}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.get(t, "/api/v1/readings?device=dorm3-temp&kind=temperature&"+tc.query, "Bearer "+viewerSecret)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s", resp.Status, body)
			}
			if got := resp.Header.Get("X-Bucket-Width"); got != tc.wantWidth {
				t.Errorf("X-Bucket-Width = %q, want %q", got, tc.wantWidth)
			}
			var got struct {
				Bucket        string
				BucketSeconds float64 `json:"bucket_seconds"`
				Series        []store.SeriesBuckets
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			width, _ := time.ParseDuration(tc.wantWidth)
			if got.Bucket != tc.wantWidth || got.BucketSeconds != width.Seconds() {
				t.Errorf("bucket = %q (%vs), want %q", got.Bucket, got.BucketSeconds, tc.wantWidth)
			}
			if len(got.Series) != 1 {
				t.Fatalf("series: %+v", got.Series)
			}
			var starts []time.Duration
			for _, b := range got.Series[0].Buckets {
				starts = append(starts, b.Start.Sub(t0))
			}
			if !slices.Equal(starts, tc.wantStarts) {
				t.Errorf("bucket starts = %v, want %v", starts, tc.wantStarts)
			}
		})
	}
	t.Run("csv carries the width in a header", func(t *testing.T) {
		resp, body := s.get(t, "/api/v1/readings?device=dorm3-temp&kind=temperature&format=csv&max_points=3&from="+at(0)+"&to="+at(2*time.Hour), "Bearer "+viewerSecret)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Bucket-Width") != "1h0m0s" {
			t.Fatalf("%s X-Bucket-Width %q: %s", resp.Status, resp.Header.Get("X-Bucket-Width"), body)
		}
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil || len(rows) != 3 || rows[0][3] != "start" {
			t.Fatalf("CSV %q: %v", body, err)
		}
	})
}

// TestReadingsMaxPointsIsNeverExceeded: for any range and max_points the
// answer has at most max_points buckets per series.
func TestReadingsMaxPointsIsNeverExceeded(t *testing.T) {
	s := newServer(t)
	var rs []reading.Reading
	for i := range 3000 {
		rs = append(rs, temp("dorm3-temp", "dorm3", time.Duration(i)*7*time.Minute+13*time.Second, float64(i%50)))
	}
	if err := s.st.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	for _, span := range []time.Duration{90 * time.Second, 47 * time.Minute, 25 * time.Hour, 13 * 24 * time.Hour} {
		for _, maxPoints := range []int{1, 2, 7, 100, 1000} {
			from := t0.Add(37*time.Minute + 11*time.Second)
			q := fmt.Sprintf("device=dorm3-temp&max_points=%d&from=%s&to=%s", maxPoints,
				url.QueryEscape(from.Format(time.RFC3339)), url.QueryEscape(from.Add(span).Format(time.RFC3339)))
			var got struct{ Series []store.SeriesBuckets }
			if err := json.Unmarshal(s.getOK(t, "/api/v1/readings?"+q), &got); err != nil {
				t.Fatal(err)
			}
			if n := len(got.Series[0].Buckets); n > maxPoints || n == 0 && span > time.Hour {
				t.Errorf("span %v, max_points=%d: %d buckets", span, maxPoints, n)
			}
		}
	}
}

func TestHistoryBadParameters(t *testing.T) {
	s := newServer(t)
	rng := "&from=" + at(0) + "&to=" + at(time.Hour)
	for _, tc := range []struct {
		name, path, param string
	}{
		{"max_points zero", "/api/v1/readings?max_points=0" + rng, "max_points"},
		{"max_points over the cap", "/api/v1/readings?max_points=10001" + rng, "max_points"},
		{"max_points not a number", "/api/v1/readings?max_points=lots" + rng, "max_points"},
		{"max_points empty", "/api/v1/readings?max_points=" + rng, "max_points"},
		{"max_points without a range", "/api/v1/readings?max_points=100", "max_points"},
		{"max_points without to", "/api/v1/readings?max_points=100&from=" + at(0), "max_points"},
		{"bucket=auto without a range", "/api/v1/readings?bucket=auto", "bucket"},
		{"bad bucket with max_points", "/api/v1/readings?bucket=soon&max_points=10" + rng, "bucket"},
		{"from before 1678", "/api/v1/readings?from=1600-01-01T00:00:00Z", "from"},
		{"to after 2262", "/api/v1/readings?to=2300-01-01T00:00:00Z", "to"},
		{"availability: from not RFC 3339", "/api/v1/availability?from=monday", "from"},
		{"availability: to not RFC 3339", "/api/v1/availability?to=1764471600", "to"},
		{"availability: from equal to to", "/api/v1/availability?from=" + at(0) + "&to=" + at(0), "from"},
		{"availability: from after to", "/api/v1/availability?from=" + at(time.Hour) + "&to=" + at(0), "from"},
		{"availability: from after now", "/api/v1/availability?from=" + at(time.Hour), "from"},
		{"availability: silence zero", "/api/v1/availability?silence=0s", "silence"},
		{"availability: silence negative", "/api/v1/availability?silence=-5m", "silence"},
		{"availability: silence under a second", "/api/v1/availability?silence=200ms", "silence"},
		{"availability: silence not a duration", "/api/v1/availability?silence=long", "silence"},
		{"availability: unknown format", "/api/v1/availability?format=xlsx", "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.get(t, tc.path, "Bearer "+viewerSecret)
			checkParamError(t, resp, body, tc.param)
		})
	}
	t.Run("availability needs a token", func(t *testing.T) {
		resp, body := s.get(t, "/api/v1/availability", "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s %s, want 401", resp.Status, body)
		}
	})
}

func avail(device string, at time.Duration, online bool) reading.Reading {
	r := temp(device, "dorm3", at, 0)
	r.Kind, r.Value, r.Format = reading.KindAvailability, reading.Bool(online), "zigbee2mqtt"
	return r
}

// seedAvailability stores the signs of life of dorm3-temp (offline after 10
// minutes of silence), one reading a minute while it reports:
//
//	+5m..+12m  temperature every minute
//	+40m..+45m temperature every minute
//	+50m       availability: offline
//	+70m..+75m temperature every minute
//
// and an old reading of kitchen-smoke at t0-1h.
func seedAvailability(t *testing.T, s *testServer) {
	t.Helper()
	var rs []reading.Reading
	for _, run := range [][2]int{{5, 12}, {40, 45}, {70, 75}} {
		for m := run[0]; m <= run[1]; m++ {
			rs = append(rs, temp("dorm3-temp", "dorm3", time.Duration(m)*time.Minute, 20))
		}
	}
	rs = append(rs, avail("dorm3-temp", 50*time.Minute, false), smoke(-time.Hour, false))
	if err := s.st.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
}

type spanT struct {
	Start   time.Time
	End     time.Time
	Seconds float64
	Cause   string
	Ongoing bool
}

type availabilityT struct {
	Device         string
	Zone           string
	Silence        string
	OnlineSeconds  float64 `json:"online_seconds"`
	OfflineSeconds float64 `json:"offline_seconds"`
	UnknownSeconds float64 `json:"unknown_seconds"`
	OnlinePercent  float64 `json:"online_percent"`
	OfflinePercent float64 `json:"offline_percent"`
	UnknownPercent float64 `json:"unknown_percent"`
	Outages        []spanT
	Unknown        []spanT
}

// outage is an expected outage in minutes after t0.
type outage struct {
	from, to int
	cause    string
	ongoing  bool
}

func (o outage) String() string {
	return fmt.Sprintf("+%dm..+%dm %s ongoing=%v", o.from, o.to, o.cause, o.ongoing)
}

func TestAvailability(t *testing.T) {
	s := newServer(t)
	seedAvailability(t, s)
	now := t0.Add(3 * time.Hour)
	s.now.Store(&now)
	for _, tc := range []struct {
		name                      string
		query                     string
		device                    string
		online, offline, unknown  float64 // minutes
		onlinePct                 float64
		outages                   []outage
		unknownFrom, unknownUntil int // minutes; equal when none
		silence                   string
	}{
		{
			name:  "unknown until the first reading, silent gaps, reported offline, silent to the end",
			query: "device=dorm3-temp&from=" + at(0) + "&to=" + at(2*time.Hour), device: "dorm3-temp",
			// online 5-22, 40-50, 70-85; unknown 0-5
			online: 17 + 10 + 15, offline: 18 + 20 + 35, unknown: 5, onlinePct: 35,
			outages:     []outage{{22, 40, "silent", false}, {50, 70, "reported_offline", false}, {85, 120, "silent", true}},
			unknownFrom: 0, unknownUntil: 5, silence: "10m0s",
		},
		{
			name:  "a longer silence parameter hides the short gap",
			query: "device=dorm3-temp&silence=30m&from=" + at(0) + "&to=" + at(2*time.Hour), device: "dorm3-temp",
			online: 45 + 35, offline: 20 + 15, unknown: 5, onlinePct: 66.667,
			outages:     []outage{{50, 70, "reported_offline", false}, {105, 120, "silent", true}},
			unknownFrom: 0, unknownUntil: 5, silence: "30m0s",
		},
		{
			name:  "state at from comes from the readings before it",
			query: "device=dorm3-temp&from=" + at(30*time.Minute) + "&to=" + at(60*time.Minute), device: "dorm3-temp",
			online: 10, offline: 10 + 10, onlinePct: 33.333,
			outages: []outage{{30, 40, "silent", false}, {50, 60, "reported_offline", true}},
			silence: "10m0s",
		},
		{
			name:  "offline reported before from",
			query: "device=dorm3-temp&from=" + at(55*time.Minute) + "&to=" + at(65*time.Minute), device: "dorm3-temp",
			offline: 10, outages: []outage{{55, 65, "reported_offline", true}}, silence: "10m0s",
		},
		{
			name:  "time after now is not counted",
			query: "device=dorm3-temp&from=" + at(150*time.Minute) + "&to=" + at(5*time.Hour), device: "dorm3-temp",
			offline: 30, outages: []outage{{150, 180, "silent", true}}, silence: "10m0s",
		},
		{
			name:  "a configured device never heard from is unknown throughout",
			query: "device=hall-door&from=" + at(0) + "&to=" + at(time.Hour), device: "hall-door",
			unknown: 60, unknownFrom: 0, unknownUntil: 60, silence: "10m0s",
		},
		{
			name:  "silent since before the period",
			query: "zone=kitchen&from=" + at(0) + "&to=" + at(time.Hour), device: "kitchen-smoke",
			offline: 60, outages: []outage{{0, 60, "silent", true}}, silence: "10m0s",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				From, To time.Time
				Devices  []availabilityT
			}
			body := s.getOK(t, "/api/v1/availability?"+tc.query)
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if len(got.Devices) != 1 || got.Devices[0].Device != tc.device {
				t.Fatalf("devices: %s", body)
			}
			d := got.Devices[0]
			min := func(x float64) float64 { return x * 60 }
			if d.OnlineSeconds != min(tc.online) || d.OfflineSeconds != min(tc.offline) || d.UnknownSeconds != min(tc.unknown) {
				t.Errorf("online/offline/unknown = %v/%v/%v s, want %v/%v/%v min", d.OnlineSeconds, d.OfflineSeconds, d.UnknownSeconds, tc.online, tc.offline, tc.unknown)
			}
			if d.OnlinePercent != tc.onlinePct || d.Silence != tc.silence {
				t.Errorf("online %v%%, silence %q; want %v%%, %q", d.OnlinePercent, d.Silence, tc.onlinePct, tc.silence)
			}
			if sum := d.OnlinePercent + d.OfflinePercent + d.UnknownPercent; sum < 99.99 || sum > 100.01 {
				t.Errorf("percentages add up to %v", sum)
			}
			var outages []outage
			for _, o := range d.Outages {
				outages = append(outages, outage{int(o.Start.Sub(t0).Minutes()), int(o.End.Sub(t0).Minutes()), o.Cause, o.Ongoing})
				if o.Seconds != o.End.Sub(o.Start).Seconds() {
					t.Errorf("outage %+v: seconds do not match start and end", o)
				}
			}
			if !slices.Equal(outages, tc.outages) {
				t.Errorf("outages = %v, want %v", outages, tc.outages)
			}
			if tc.unknownFrom == tc.unknownUntil {
				if len(d.Unknown) != 0 {
					t.Errorf("unknown = %+v, want none", d.Unknown)
				}
			} else if len(d.Unknown) != 1 || !d.Unknown[0].Start.Equal(t0.Add(time.Duration(tc.unknownFrom)*time.Minute)) ||
				!d.Unknown[0].End.Equal(t0.Add(time.Duration(tc.unknownUntil)*time.Minute)) {
				t.Errorf("unknown = %+v, want +%dm..+%dm", d.Unknown, tc.unknownFrom, tc.unknownUntil)
			}
		})
	}
}

func TestAvailabilityDevicesAndFormats(t *testing.T) {
	s := newServer(t)
	seedAvailability(t, s)
	now := t0.Add(time.Hour)
	s.now.Store(&now)
	rng := "&from=" + at(0) + "&to=" + at(time.Hour)

	// A gateway fault series is no sensor: it is not listed.
	if err := s.st.Append(context.Background(), []reading.Reading{{Facility: "north", Device: "gateway.camera.hall-cam", Zone: "hall",
		Kind: reading.KindFault, Value: reading.State("ok"), Time: t0.Add(10 * time.Minute), Received: t0.Add(10 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	t.Run("every configured or reporting sensor, sorted", func(t *testing.T) {
		var got struct{ Devices []availabilityT }
		if err := json.Unmarshal(s.getOK(t, "/api/v1/availability?"+rng[1:]), &got); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range got.Devices {
			ids = append(ids, d.Device+"@"+d.Zone)
			if d.Outages == nil || d.Unknown == nil {
				t.Errorf("%s: outages and unknown must be lists", d.Device)
			}
		}
		if want := []string{"dorm3-temp@dorm3", "hall-door@hall", "kitchen-smoke@kitchen"}; !slices.Equal(ids, want) {
			t.Errorf("devices = %v, want %v", ids, want)
		}
	})
	t.Run("defaults: the last 24 hours up to now", func(t *testing.T) {
		var got struct{ From, To time.Time }
		if err := json.Unmarshal(s.getOK(t, "/api/v1/availability?device=dorm3-temp"), &got); err != nil {
			t.Fatal(err)
		}
		if !got.To.Equal(now) || !got.From.Equal(now.Add(-24*time.Hour)) {
			t.Errorf("period = %v..%v, want the 24h before %v", got.From, got.To, now)
		}
	})
	t.Run("unknown device", func(t *testing.T) {
		if body := strings.TrimSpace(string(s.getOK(t, "/api/v1/availability?device=nobody"+rng))); !strings.Contains(body, `"devices":[]`) {
			t.Errorf("body = %s, want an empty device list", body)
		}
	})
	t.Run("csv timeline", func(t *testing.T) {
		resp, body := s.get(t, "/api/v1/availability?device=dorm3-temp&format=csv"+rng, "Bearer "+viewerSecret)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("%s %s", resp.Status, body)
		}
		got, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"device", "zone", "state", "cause", "start", "end", "seconds"},
			{"dorm3-temp", "dorm3", "unknown", "", "2026-11-30T03:00:00Z", "2026-11-30T03:05:00Z", "300"},
			{"dorm3-temp", "dorm3", "online", "", "2026-11-30T03:05:00Z", "2026-11-30T03:22:00Z", "1020"},
			{"dorm3-temp", "dorm3", "offline", "silent", "2026-11-30T03:22:00Z", "2026-11-30T03:40:00Z", "1080"},
			{"dorm3-temp", "dorm3", "online", "", "2026-11-30T03:40:00Z", "2026-11-30T03:50:00Z", "600"},
			{"dorm3-temp", "dorm3", "offline", "reported_offline", "2026-11-30T03:50:00Z", "2026-11-30T04:00:00Z", "600"},
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
}
