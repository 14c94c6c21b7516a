package app

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/inspection/hazard"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// apiAs calls the gateway's API with token.
func apiAs(t *testing.T, a *App, token, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+a.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestHazardOverdueNotifies: an inspector lists a blocked exit in the
// kitchen with a deadline two seconds away. Nobody rectifies it, so it
// turns overdue and the zone's hazard-overdue alarm reaches the duty
// webhook like any trouble alarm. The manager records the fix (the
// inspector may not), the alarm resolves, the inspector verifies, and
// the audit log holds every step with who took it.
func TestHazardOverdueNotifies(t *testing.T) {
	hook, notifyYAML := startHook(t)
	const inspector, manager = "token-of-inspector-wang", "token-of-manager-li"
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	yaml := fmt.Sprintf(`facility: {id: test-shelter, name: Test Shelter, timezone: Asia/Shanghai}
zones:
  - {id: kitchen, name: Kitchen, name_zh: 厨房, tags: [kitchen]}
devices:
  - {id: kitchen-smoke, kind: smoke, zone: kitchen, format: zigbee2mqtt, topic: zigbee2mqtt/kitchen/smoke}
broker: {embedded: {listen: "127.0.0.1:0"}}
%sstore: {dir: %q}
alarms: {dir: %q}
http:
  listen: 127.0.0.1:0
  tokens:
    - {name: wang.inspector, role: inspector, sha256: %s}
    - {name: li.manager, role: manager, sha256: %s}
`, notifyYAML, t.TempDir(), t.TempDir(), sum(inspector), sum(manager))
	cfg, err := config.Parse([]byte(yaml), "hazards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg)

	deadline := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	item := fmt.Sprintf(`{"zone":"kitchen","title":{"zh":"厨房安全出口被杂物堵塞","en":"Kitchen exit blocked"},
		"standard":{"zh":"安全出口保持畅通","en":"Exits kept clear"},"responsible":"Li (kitchen)","deadline":%q}`, deadline)
	if code, b := apiAs(t, a, manager, http.MethodPost, "/api/v1/hazards", item); code != http.StatusForbidden {
		t.Fatalf("a manager adding an item: %d %s, want 403", code, b)
	}
	code, b := apiAs(t, a, inspector, http.MethodPost, "/api/v1/hazards", item)
	var it hazard.Item
	if code != http.StatusCreated || json.Unmarshal(b, &it) != nil || it.ID != "HZ-0001" || it.Status != hazard.StatusOpen || it.By != "wang.inspector" {
		t.Fatalf("add item: %d %s", code, b)
	}
	if code, b := apiAs(t, a, inspector, http.MethodPost, "/api/v1/hazards", `{"zone":"attic","title":{"en":"x"}}`); code != http.StatusBadRequest ||
		!strings.Contains(string(b), `no zone \"attic\"`) {
		t.Fatalf("item in an unknown zone: %d %s", code, b)
	}

	const alarmID = "hazard-overdue@dev:gateway.hazards.kitchen"
	testpeer.WaitFor(t, "the hazard-overdue alarm at the webhook", 15*time.Second, hook.has(alarmID))
	var overdue struct{ Items []hazard.Item }
	code, b = apiAs(t, a, manager, http.MethodGet, "/api/v1/hazards?status=overdue", "")
	if code != http.StatusOK || json.Unmarshal(b, &overdue) != nil || len(overdue.Items) != 1 || !overdue.Items[0].Overdue {
		t.Fatalf("overdue items: %d %s", code, b)
	}
	var firing alarm.Alarm
	for _, al := range openAlarmsAs(t, a, manager) {
		if al.ID == alarmID {
			firing = al
		}
	}
	if firing.Severity != alarm.SeverityTrouble || firing.Zone != "kitchen" || !strings.Contains(firing.Body.EN, "HZ-0001 Kitchen exit blocked") ||
		!strings.Contains(firing.Title.ZH, "隐患整改逾期：厨房") {
		t.Fatalf("hazard-overdue alarm = %+v", firing)
	}

	if code, _ := apiAs(t, a, inspector, http.MethodPost, "/api/v1/hazards/HZ-0001/rectify", `{"note":"x"}`); code != http.StatusForbidden {
		t.Fatalf("an inspector recording a rectification: %d, want 403", code)
	}
	if code, _ := apiAs(t, a, manager, http.MethodPost, "/api/v1/hazards/HZ-0001/rectify", `{}`); code != http.StatusBadRequest {
		t.Fatalf("rectify without a note: %d, want 400", code)
	}
	if code, b := apiAs(t, a, manager, http.MethodPost, "/api/v1/hazards/HZ-0001/rectify", `{"note":"boxes moved to the store room"}`); code != http.StatusOK {
		t.Fatalf("rectify: %d %s", code, b)
	}
	testpeer.WaitFor(t, "the hazard-overdue alarm resolved", 10*time.Second, func() bool {
		return !slices.ContainsFunc(openAlarmsAs(t, a, manager), func(al alarm.Alarm) bool { return al.ID == alarmID })
	})
	if code, b := apiAs(t, a, inspector, http.MethodPost, "/api/v1/hazards/HZ-0001/verify", `{"note":"checked on site"}`); code != http.StatusOK ||
		!strings.Contains(string(b), `"status":"verified"`) {
		t.Fatalf("verify: %d %s", code, b)
	}
	if code, b := apiAs(t, a, inspector, http.MethodPost, "/api/v1/hazards/HZ-0001/verify", `{}`); code != http.StatusConflict ||
		!strings.Contains(string(b), `"reason":"status"`) {
		t.Fatalf("verify twice: %d %s, want 409 for its status", code, b)
	}
	if code, _ := apiAs(t, a, inspector, http.MethodGet, "/api/v1/hazards/HZ-0404", ""); code != http.StatusNotFound {
		t.Fatalf("unknown item: %d, want 404", code)
	}

	var got []string
	err = a.Audit.Each(audit.Filter{}, func(e *audit.Entry) bool {
		if e.Hazard != nil {
			got = append(got, e.Action+" by "+e.By)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got)
	want := []string{"hazard_opened by wang.inspector", "hazard_overdue by gateway", "hazard_rectified by li.manager", "hazard_verified by wang.inspector"}
	if !slices.Equal(got, want) {
		t.Fatalf("audit = %q, want %q", got, want)
	}
}

func openAlarmsAs(t *testing.T, a *App, token string) []alarm.Alarm {
	t.Helper()
	code, b := apiAs(t, a, token, http.MethodGet, "/api/v1/alarms", "")
	var out struct{ Alarms []alarm.Alarm }
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET /api/v1/alarms: %d %s", code, b)
	}
	return out.Alarms
}
