package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/video/cameras"
	"github.com/shelterwatch/shelterwatch/video/source"
)

// The gateway health page in one answer: every part the gateway has, and
// null for what it does not have or know.
func TestGatewayHealth(t *testing.T) {
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for i, topic := range []string{"zigbee2mqtt/attic", "zigbee2mqtt/cellar"} {
		dl := store.DeadLetter{Time: now.Add(time.Duration(i-60) * time.Minute), Topic: topic, Reason: "unknown_device", Error: "no such device"}
		if err := st.AddDeadLetterWait(context.Background(), dl); err != nil {
			t.Fatal(err)
		}
	}
	al := &liveAlarms{}
	al.set(alarm.Alarm{ID: "heat@zone:kitchen"}, alarm.Alarm{ID: "camera-down@dev:gateway.camera.door-cam"})
	var tokens []httpapi.Token
	for _, role := range []string{"viewer", "manager", "admin", "inspector", "supervisor"} {
		tok, err := httpapi.ParseToken(role, role, sha256Hex(role+"-secret"))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	full := httpapi.Options{Tokens: tokens, Gatherer: prometheus.NewRegistry(), Clock: func() time.Time { return now },
		Version: "1.4.0", Started: now.Add(-26*time.Hour - 1500*time.Millisecond),
		Forwarders: func() []forward.Status {
			return []forward.Status{{Target: "province", State: "retrying", BacklogPoints: 1200, BacklogAge: 90 * time.Second, LastError: "connection refused"}}
		},
		Store:           st,
		DeadLetterCount: func() (int, error) { return 2, nil },
		BrokerClients:   func() int { return 17 },
		StoreDisk: func() (httpapi.StoreDisk, error) {
			return httpapi.StoreDisk{UsedBytes: 300 << 20, FreeBytes: 20 << 30, BudgetBytes: 4 << 30, ReserveBytes: 128 << 20}, nil
		},
		Video: &httpapi.Video{Cameras: func() []cameras.Status {
			return []cameras.Status{{ID: "ward-cam", Status: source.Status{State: "live"}}, {ID: "door-cam", Status: source.Status{State: "failed"}},
				{ID: "yard-cam", OnDemand: true, Status: source.Status{State: "idle"}}}
		}},
		Alarms: al,
	}
	bare := httpapi.Options{Tokens: tokens, Gatherer: prometheus.NewRegistry()}
	unknown := full
	unknown.BrokerClients = func() int { return -1 }
	unknown.StoreDisk = func() (httpapi.StoreDisk, error) { return httpapi.StoreDisk{}, errors.New("statfs: no such file") }
	unknown.DeadLetterCount = func() (int, error) { return 0, errors.New("closed") }

	for _, tc := range []struct {
		name string
		opts httpapi.Options
		role string
		code int
		want string
	}{
		{"a gateway with every part", full, "viewer", 200,
			`{"version":"1.4.0","uptime_seconds":93602,` +
				`"forwarders":[{"target":"province","state":"retrying","cursor":0,"draining":false,"backlog_points":1200,"backlog_age_ns":90000000000,` +
				`"last_success":"0001-01-01T00:00:00Z","last_error":"connection refused","auth_failing":false,"points_written":0,"dead_lettered":0,"retries":0,"backlog_seconds":90}],` +
				`"dead_letters":{"count":2,"newest":"2026-12-06T21:01:00Z"},"broker_clients":17,` +
				`"store":{"used_bytes":314572800,"free_bytes":21474836480,"budget_bytes":4294967296,"reserve_bytes":134217728},` +
				`"cameras":{"total":3,"live":1,"failed":1},"open_alarms":2}`},
		{"parts that do not answer", unknown, "manager", 200,
			`{"version":"1.4.0","uptime_seconds":93602,` +
				`"forwarders":[{"target":"province","state":"retrying","cursor":0,"draining":false,"backlog_points":1200,"backlog_age_ns":90000000000,` +
				`"last_success":"0001-01-01T00:00:00Z","last_error":"connection refused","auth_failing":false,"points_written":0,"dead_lettered":0,"retries":0,"backlog_seconds":90}],` +
				`"dead_letters":{"count":null,"newest":"2026-12-06T21:01:00Z"},"broker_clients":null,"store":null,` +
				`"cameras":{"total":3,"live":1,"failed":1},"open_alarms":2}`},
		{"a gateway without them", bare, "admin", 200,
			`{"version":"","uptime_seconds":null,"forwarders":[],"dead_letters":{"count":null,"newest":null},` +
				`"broker_clients":null,"store":null,"cameras":null,"open_alarms":null}`},
		{"not for an inspector", full, "inspector", 403, ""},
		{"nor a supervisor", full, "supervisor", 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(httpapi.Handler(tc.opts))
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/health", nil)
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
			if tc.want != "" && string(body) != tc.want+"\n" {
				t.Fatalf("got\n%s\nwant\n%s", body, tc.want)
			}
		})
	}
}
