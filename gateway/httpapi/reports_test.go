package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// The alarm report through the real handler and a real audit log: ten
// days of alarms, acknowledged fast, slowly, never, or still open.
func TestAlarmReport(t *testing.T) {
	t1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := t1.Add(10 * 24 * time.Hour)
	l, err := audit.Open(filepath.Join(t.TempDir(), audit.FileName), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var entries []audit.Entry
	ev := func(at time.Time, action, id string, seq uint64, rule, severity string) {
		entries = append(entries, audit.Entry{Time: at, Action: action, By: "wang.fang",
			Alarm: &audit.Alarm{AlarmID: id, Seq: seq, Rule: rule, Severity: severity}})
	}
	h, d := time.Hour, 24*time.Hour
	// An alarm fired before the period, acknowledged in it: not counted.
	ev(t1.Add(-h), "fired", "smoke@dev:kitchen-smoke", 1, "smoke", "fire")
	ev(t1.Add(5*time.Minute), "acknowledged", "smoke@dev:kitchen-smoke", 1, "smoke", "")
	ev(t1.Add(6*time.Minute), "reset", "smoke@dev:kitchen-smoke", 1, "smoke", "")
	ev(t1.Add(6*time.Minute), "resolved", "smoke@dev:kitchen-smoke", 1, "smoke", "")
	// Smoke in the kitchen three times: acknowledged after 30 s, 90 s, 10 min.
	for i, ack := range []time.Duration{30 * time.Second, 90 * time.Second, 10 * time.Minute} {
		at, seq := t1.Add(time.Duration(i+1)*d), uint64(2+i)
		ev(at, "fired", "smoke@dev:kitchen-smoke", seq, "smoke", "fire")
		ev(at.Add(ack), "acknowledged", "smoke@dev:kitchen-smoke", seq, "smoke", "")
		ev(at.Add(ack/2), "escalated", "smoke@dev:kitchen-smoke", seq, "smoke", "")
	}
	// Heat in dormitory 3: resolved by itself unacknowledged; acknowledged
	// after an hour; still open and unacknowledged.
	ev(t1.Add(4*d+h), "fired", "heat@zone:dorm3", 5, "heat", "critical")
	ev(t1.Add(4*d+h+5*time.Minute), "resolved", "heat@zone:dorm3", 5, "heat", "")
	ev(t1.Add(7*d), "fired", "heat@zone:dorm3", 6, "heat", "critical")
	ev(t1.Add(7*d+h), "acknowledged", "heat@zone:dorm3", 6, "heat", "")
	ev(t1.Add(9*d), "fired", "heat@zone:dorm3", 7, "heat", "critical")
	// A gateway fault with the ward camera's zone, and a gateway-wide one.
	ev(t1.Add(5*d), "fired", "camera-down@dev:gateway.camera.ward-cam", 8, "camera-down", "trouble")
	ev(t1.Add(5*d+2*time.Minute), "acknowledged", "camera-down@dev:gateway.camera.ward-cam", 8, "camera-down", "")
	ev(t1.Add(6*d), "fired", "no-readings@gateway", 9, "no-readings", "trouble")
	ev(t1.Add(6*d+h), "resolved", "no-readings@gateway", 9, "no-readings", "")
	// Other entries are not alarms.
	entries = append(entries, audit.Entry{Time: t1.Add(8 * d), Action: audit.ActionLogin, By: "wang.fang", Login: &audit.Login{Remote: "10.0.0.7"}})
	slices.SortStableFunc(entries, func(x, y audit.Entry) int { return x.Time.Compare(y.Time) })
	if err := l.Append(entries...); err != nil {
		t.Fatal(err)
	}

	var tokens []httpapi.Token
	for _, role := range []string{"inspector", "viewer", "manager", "supervisor", "metrics"} {
		tok, err := httpapi.ParseToken(role, role, sha256Hex(role+"-secret"))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{Tokens: tokens, Audit: l, Gatherer: prometheus.NewRegistry(),
		Clock: func() time.Time { return now },
		Facility: httpapi.Facility{ID: "harbin-3", Timezone: "Asia/Shanghai",
			Zones: []facility.Zone{{ID: "dorm3"}, {ID: "kitchen"}, {ID: "hall"}},
			Devices: []facility.Device{{ID: "kitchen-smoke", Zone: "kitchen"}, {ID: "dorm3-temp", Zone: "dorm3"},
				{ID: "gateway.camera.ward-cam", Zone: "hall", Builtin: true}}}}))
	t.Cleanup(srv.Close)

	const (
		camera = `{"rule":"camera-down","zone":"hall","severity":"trouble","raised":1,"acknowledged":1,"never_acknowledged":0,"open_unacknowledged":0,"ack_seconds":{"median":120,"p90":120,"max":120}}`
		heat   = `{"rule":"heat","zone":"dorm3","severity":"critical","raised":3,"acknowledged":1,"never_acknowledged":1,"open_unacknowledged":1,"ack_seconds":{"median":3600,"p90":3600,"max":3600}}`
		noRead = `{"rule":"no-readings","zone":"","severity":"trouble","raised":1,"acknowledged":0,"never_acknowledged":1,"open_unacknowledged":0,"ack_seconds":null}`
		smoke  = `{"rule":"smoke","zone":"kitchen","severity":"fire","raised":3,"acknowledged":3,"never_acknowledged":0,"open_unacknowledged":0,"ack_seconds":{"median":90,"p90":600,"max":600}}`
	)
	for _, tc := range []struct {
		name, role, query string
		code              int
		want              string // the whole body; for errors a piece of it
	}{
		{"ten days, every zone", "inspector", "from=2026-12-01T00:00:00Z&to=2026-12-11T00:00:00Z", 200,
			`{"from":"2026-12-01T00:00:00Z","to":"2026-12-11T00:00:00Z","groups":[` + camera + `,` + heat + `,` + noRead + `,` + smoke + `],` +
				`"totals":{"raised":8,"acknowledged":5,"never_acknowledged":2,"open_unacknowledged":1,"ack_seconds":{"median":120,"p90":3600,"max":3600}}}`},
		{"one zone", "viewer", "from=2026-12-01T00:00:00Z&zone=kitchen", 200,
			`{"from":"2026-12-01T00:00:00Z","to":"2026-12-11T00:00:00Z","zone":"kitchen","groups":[` + smoke + `],` +
				`"totals":{"raised":3,"acknowledged":3,"never_acknowledged":0,"open_unacknowledged":0,"ack_seconds":{"median":90,"p90":600,"max":600}}}`},
		{"an acknowledgement after the period does not count", "manager", "from=2026-12-08T00:00:00Z&to=2026-12-08T00:30:00%2B00:00", 200,
			`{"from":"2026-12-08T00:00:00Z","to":"2026-12-08T00:30:00Z","groups":[` +
				`{"rule":"heat","zone":"dorm3","severity":"critical","raised":1,"acknowledged":0,"never_acknowledged":0,"open_unacknowledged":1,"ack_seconds":null}],` +
				`"totals":{"raised":1,"acknowledged":0,"never_acknowledged":0,"open_unacknowledged":1,"ack_seconds":null}}`},
		{"a period with no alarms", "inspector", "from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z", 200,
			`{"from":"2025-01-01T00:00:00Z","to":"2025-02-01T00:00:00Z","groups":[],` +
				`"totals":{"raised":0,"acknowledged":0,"never_acknowledged":0,"open_unacknowledged":0,"ack_seconds":null}}`},
		{"CSV", "inspector", "from=2026-12-01T00:00:00Z&format=csv", 200,
			"rule,zone,severity,raised,acknowledged,never_acknowledged,open_unacknowledged,ack_median_seconds,ack_p90_seconds,ack_max_seconds\n" +
				"camera-down,hall,trouble,1,1,0,0,120,120,120\n" +
				"heat,dorm3,critical,3,1,1,1,3600,3600,3600\n" +
				"no-readings,,trouble,1,0,1,0,,,\n" +
				"smoke,kitchen,fire,3,3,0,0,90,600,600\n" +
				"*,*,*,8,5,2,1,120,3600,3600\n"},
		{"an unknown zone", "inspector", "zone=attic", 400, `zone: no zone \"attic\"`},
		{"from after to", "inspector", "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", 400, "from must be before to"},
		{"from after the default to", "inspector", "from=2027-01-01T00:00:00Z", 400, "from must be before to (to defaults to now)"},
		{"more than a year", "inspector", "from=2025-01-01T00:00:00Z&to=2026-12-01T00:00:00Z", 400, "at most 366 days"},
		{"a bad time", "inspector", "from=yesterday", 400, "from: want an RFC 3339 time"},
		{"a bad format", "inspector", "format=xlsx", 400, "format must be json or csv"},
		{"nor a metrics token", "metrics", "", 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/reports/alarms?"+tc.query, nil)
			req.Header.Set("Authorization", "Bearer "+tc.role+"-secret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.code)
			}
			got := strings.TrimSuffix(string(body), "\n")
			if tc.code == 200 && got != strings.TrimSuffix(tc.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
			if tc.code != 200 && !strings.Contains(got, tc.want) {
				t.Fatalf("got %s, want it to contain %s", got, tc.want)
			}
		})
	}

	// By default the 30 days before now: the alarm fired just before
	// 1 December is in it.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/reports/alarms", nil)
	req.Header.Set("Authorization", "Bearer inspector-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep struct {
		From, To time.Time
		Totals   struct{ Raised, Acknowledged int }
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if !rep.To.Equal(now) || !rep.From.Equal(now.Add(-30*d)) || rep.Totals.Raised != 9 || rep.Totals.Acknowledged != 6 {
		t.Fatalf("default period: %+v, want the 30 days before %s with 9 alarms, 6 acknowledged", rep, now)
	}
}
