package app

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// api calls the gateway's API with the test token.
func api(t *testing.T, a *App, method, path, body string) (int, []byte) {
	t.Helper()
	return apiAs(t, a, testToken, method, path, body)
}

func activeAlarms(t *testing.T, a *App) []alarm.Alarm {
	t.Helper()
	code, b := api(t, a, http.MethodGet, "/api/v1/alarms", "")
	var out struct{ Alarms []alarm.Alarm }
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET /api/v1/alarms: %d %s", code, b)
	}
	return out.Alarms
}

// TestSmokeAlarmThroughTheAPI: a Zigbee2MQTT smoke payload over the
// embedded broker raises the built-in smoke alarm; a manager acknowledges
// it and, once the smoke is gone, resets it through the API; the audit log
// shows each step and who took it.
func TestSmokeAlarmThroughTheAPI(t *testing.T) {
	a := startApp(t, testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n"))
	c, err := connect(t, "tcp://"+a.BrokerAddr(), "kitchen-smoke", "kitchen-smoke", "pw-kitchen-smoke")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(t, c, "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":90,"linkquality":120,"tamper":false}`); err != nil {
		t.Fatal(err)
	}
	const id = "smoke@dev:kitchen-smoke"
	var act []alarm.Alarm
	testpeer.WaitFor(t, "smoke alarm in the API", 5*time.Second, func() bool {
		act = activeAlarms(t, a)
		return len(act) == 1
	})
	if act[0].ID != id || act[0].State != alarm.StateFiring || act[0].Severity != alarm.SeverityCritical ||
		!strings.Contains(act[0].Title.ZH, "烟雾报警") {
		t.Fatalf("alarm: %+v", act[0])
	}
	if code, b := api(t, a, http.MethodPost, "/api/v1/alarms/"+id+"/reset", ""); code != http.StatusConflict || !strings.Contains(string(b), "still holds") {
		t.Fatalf("reset while smoke: %d %s", code, b)
	}
	if code, b := api(t, a, http.MethodPost, "/api/v1/alarms/"+id+"/ack", `{"comment":"on my way"}`); code != http.StatusOK {
		t.Fatalf("ack: %d %s", code, b)
	}
	if act = activeAlarms(t, a); act[0].State != alarm.StateAcknowledged || act[0].AckedBy != "t" || act[0].AckComment != "on my way" {
		t.Fatalf("after ack: %+v", act[0])
	}
	if err := publish(t, c, "zigbee2mqtt/kitchen/smoke", `{"smoke":false,"battery":90,"linkquality":120}`); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "reset accepted once the smoke cleared", 5*time.Second, func() bool {
		code, _ := api(t, a, http.MethodPost, "/api/v1/alarms/"+id+"/reset", `{"comment":"burnt toast"}`)
		return code == http.StatusOK
	})
	if act = activeAlarms(t, a); len(act) != 0 {
		t.Fatalf("after reset: %+v", act)
	}
	code, b := api(t, a, http.MethodGet, "/api/v1/audit?alarm="+id, "")
	var audit struct{ Audit []audit.Entry }
	if code != http.StatusOK || json.Unmarshal(b, &audit) != nil {
		t.Fatalf("audit: %d %s", code, b)
	}
	var steps []string
	for i := len(audit.Audit) - 1; i >= 0; i-- {
		steps = append(steps, audit.Audit[i].Action+":"+audit.Audit[i].By)
	}
	if got := strings.Join(steps, " "); got != "fired: acknowledged:t condition_cleared: reset:t resolved:t" {
		t.Fatalf("audit trail: %s", got)
	}
	// The audit log is read-only through the API.
	if code, _ := api(t, a, http.MethodDelete, "/api/v1/audit", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE audit: %d", code)
	}
}

// TestRulesList: the API lists the rules the engine runs, built-in and
// gateway rules alike, with what each means.
func TestRulesList(t *testing.T) {
	a := startApp(t, testConfig(t, ""))
	code, body := api(t, a, http.MethodGet, "/api/v1/rules", "")
	var rules []struct {
		ID, Type, Scope, Severity string
		Kinds                     []string
		Latched                   bool
		Title                     struct{ EN, ZH string }
	}
	if code != http.StatusOK || json.Unmarshal(body, &rules) != nil {
		t.Fatalf("GET /api/v1/rules: %d %s", code, body)
	}
	byID := map[string]int{}
	for i, r := range rules {
		byID[r.ID] = i
	}
	for _, id := range []string{"smoke", "confirmed-fire", "device-offline", "sensor-fault", "bridge-down", "camera-down"} {
		if _, ok := byID[id]; !ok {
			t.Errorf("rule %s not listed", id)
		}
	}
	if s := rules[byID["smoke"]]; s.Severity != "critical" || !s.Latched || len(s.Kinds) != 1 || s.Kinds[0] != "smoke" || !strings.Contains(s.Title.ZH, "烟雾报警") {
		t.Fatalf("smoke rule: %+v", s)
	}
}
