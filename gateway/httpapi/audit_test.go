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
)

// The audit log through the real handler and a real log on disk: each
// token sees the alarm actions, viewing sessions only of the cameras it
// may watch, and viewers' addresses only with a manager's or admin's role.
func TestAuditVisibility(t *testing.T) {
	l, err := audit.Open(filepath.Join(t.TempDir(), audit.FileName), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	t1 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	view := func(action, camera, session, remote string, min int) audit.Entry {
		return audit.Entry{Time: t1.Add(time.Duration(min) * time.Minute), Action: action, By: "supervisor-li",
			Video: &audit.Video{Camera: camera, Session: session, Remote: remote, Started: t1}}
	}
	// Oldest first; the door camera's sessions are the newest, so a
	// filter applied after a limited read would leave a viewer of the
	// ward camera short.
	if err := l.Append(
		audit.Entry{Time: t1, Action: "fired", Alarm: &audit.Alarm{AlarmID: "smoke@dev:kitchen-smoke", Seq: 1, Rule: "smoke"}},
		view(audit.ActionVideoViewStarted, "ward-cam", "w1", "10.0.0.7:50000", 1),
		view(audit.ActionVideoViewEnded, "ward-cam", "w1", "10.0.0.7:50000", 2),
		audit.Entry{Time: t1.Add(3 * time.Minute), Action: "acknowledged", By: "shift-lead", Alarm: &audit.Alarm{AlarmID: "smoke@dev:kitchen-smoke", Seq: 1}},
		view(audit.ActionVideoViewStarted, "door-cam", "d1", "10.0.0.9:50001", 4),
		view(audit.ActionVideoViewEnded, "door-cam", "d1", "10.0.0.9:50001", 5),
	); err != nil {
		t.Fatal(err)
	}

	var tokens []httpapi.Token
	for _, tc := range []struct {
		name, role, secret string
		cameras            []string
	}{
		{"ward-viewer", "viewer", "ward-viewer-secret-1", []string{"ward-cam"}},
		{"no-camera-viewer", "viewer", "no-camera-secret-2", nil},
		{"door-manager", "manager", "door-manager-secret-3", []string{"door-cam"}},
		{"all-admin", "admin", "all-admin-secret-4", []string{"*"}},
		{"ward-supervisor", "supervisor", "ward-supervisor-secret-5", []string{"ward-cam"}},
		{"inspector", "inspector", "inspector-secret-6", []string{"*"}},
	} {
		tok, err := httpapi.ParseToken(tc.name, tc.role, sha256Hex(tc.secret))
		if err != nil {
			t.Fatal(err)
		}
		tok.Cameras = tc.cameras
		tokens = append(tokens, tok)
	}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{Tokens: tokens, Audit: l, Gatherer: prometheus.NewRegistry()}))
	t.Cleanup(srv.Close)

	// Each entry as "action camera remote", newest first.
	for _, tc := range []struct {
		name, secret, query string
		want                []string
	}{
		{"viewer of the ward camera: its sessions, no addresses", "ward-viewer-secret-1", "",
			[]string{"acknowledged - -", "video_view_ended ward-cam -", "video_view_started ward-cam -", "fired - -"}},
		{"limit counts what the viewer may see", "ward-viewer-secret-1", "?limit=2",
			[]string{"acknowledged - -", "video_view_ended ward-cam -"}},
		{"viewer asking for a camera it may not watch", "ward-viewer-secret-1", "?camera=door-cam", []string{}},
		{"viewer without cameras: alarm actions only", "no-camera-secret-2", "",
			[]string{"acknowledged - -", "fired - -"}},
		{"manager of the door camera: its sessions with addresses", "door-manager-secret-3", "",
			[]string{"video_view_ended door-cam 10.0.0.9:50001", "video_view_started door-cam 10.0.0.9:50001", "acknowledged - -", "fired - -"}},
		{"admin of every camera: everything", "all-admin-secret-4", "",
			[]string{"video_view_ended door-cam 10.0.0.9:50001", "video_view_started door-cam 10.0.0.9:50001", "acknowledged - -",
				"video_view_ended ward-cam 10.0.0.7:50000", "video_view_started ward-cam 10.0.0.7:50000", "fired - -"}},
		{"admin, one alarm", "all-admin-secret-4", "?alarm=smoke@dev:kitchen-smoke",
			[]string{"acknowledged - -", "fired - -"}},
		{"supervisor of the ward camera: only its viewing sessions, no addresses", "ward-supervisor-secret-5", "",
			[]string{"video_view_ended ward-cam -", "video_view_started ward-cam -"}},
		{"inspector, even granted cameras: no video, so no viewing sessions", "inspector-secret-6", "",
			[]string{"acknowledged - -", "fired - -"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/audit"+tc.query, nil)
			req.Header.Set("Authorization", "Bearer "+tc.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s", resp.Status, body)
			}
			var got struct{ Audit []audit.Entry }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			seen := []string{}
			for _, e := range got.Audit {
				cam, remote := "-", "-"
				if e.Video != nil {
					cam = e.Video.Camera
					if e.Video.Remote != "" {
						remote = e.Video.Remote
					}
				}
				seen = append(seen, e.Action+" "+cam+" "+remote)
			}
			if !slices.Equal(seen, tc.want) {
				t.Fatalf("entries\n %s\nwant\n %s", strings.Join(seen, "\n "), strings.Join(tc.want, "\n "))
			}
			if !strings.Contains(strings.Join(tc.want, " "), "10.0.0.") && strings.Contains(string(body), "10.0.0.") {
				t.Fatalf("the body carries an address this token may not see: %s", body)
			}
		})
	}
}

// TestAuditFilters: several actions, one person, a period; bad times are
// refused with the parameter named.
func TestAuditFilters(t *testing.T) {
	l, err := audit.Open(filepath.Join(t.TempDir(), audit.FileName), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	if err := l.Append(
		audit.Entry{Time: base, Action: "login", By: "wang.fang"},
		audit.Entry{Time: base.Add(time.Hour), Action: "login_failed", By: "li.lei"},
		audit.Entry{Time: base.Add(2 * time.Hour), Action: "logout", By: "wang.fang"},
		audit.Entry{Time: base.Add(3 * time.Hour), Action: "rules_reloaded", By: "wang.fang"},
	); err != nil {
		t.Fatal(err)
	}
	tok, err := httpapi.ParseToken("ops", "admin", sha256Hex("ops-secret"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{Tokens: []httpapi.Token{tok}, Audit: l, Gatherer: prometheus.NewRegistry()}))
	t.Cleanup(srv.Close)
	cases := []struct {
		query string
		want  []string // actions, newest first
		code  int
	}{
		{"action=login,login_failed,logout", []string{"logout", "login_failed", "login"}, 200},
		{"action=login,logout&by=wang.fang", []string{"logout", "login"}, 200},
		{"by=li.lei", []string{"login_failed"}, 200},
		{"from=2026-12-01T09:00:00Z&to=2026-12-01T11:00:00Z", []string{"logout", "login_failed"}, 200},
		{"from=2026-12-01T10:00:00Z&action=rules_reloaded", []string{"rules_reloaded"}, 200},
		{"from=yesterday", nil, 400},
		{"from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", nil, 400},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/audit?"+c.query, nil)
			req.Header.Set("Authorization", "Bearer ops-secret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, c.code)
			}
			if c.code != 200 {
				return
			}
			var got struct{ Audit []audit.Entry }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			actions := []string{}
			for _, e := range got.Audit {
				actions = append(actions, e.Action)
			}
			if strings.Join(actions, " ") != strings.Join(c.want, " ") {
				t.Errorf("actions %v, want %v", actions, c.want)
			}
		})
	}
}
