package app

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"crypto/sha256"

	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// TestWalkTest: an installer walk-tests dormitory 1. Two of its three
// Zigbee smoke detectors answer their test button (the payload Zigbee2MQTT
// publishes for a HEIMAN HS1SA: smoke true, then false when the test tone
// stops); the third stays silent. Their alarms are recorded but reach no
// channel. Meanwhile the kitchen detector reports real smoke: it is
// notified as usual. The record names the silent detector, in JSON and in
// the CSV an inspector downloads.
func TestWalkTest(t *testing.T) {
	hook, notifyYAML := startHook(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-bridge"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(testToken))
	yaml := fmt.Sprintf(`facility: {id: test-shelter, name: Test Shelter, timezone: Asia/Shanghai}
zones:
  - {id: dorm-1, tags: [dormitory]}
  - {id: kitchen, tags: [kitchen]}
devices:
  - {id: dorm1-smoke-a, kind: smoke, zone: dorm-1, format: zigbee2mqtt, topic: zigbee2mqtt/dorm1/smoke-a}
  - {id: dorm1-smoke-b, kind: smoke, zone: dorm-1, format: zigbee2mqtt, topic: zigbee2mqtt/dorm1/smoke-b}
  - {id: dorm1-smoke-c, kind: smoke, zone: dorm-1, format: zigbee2mqtt, topic: zigbee2mqtt/dorm1/smoke-c}
  - {id: kitchen-smoke, kind: smoke, zone: kitchen, format: zigbee2mqtt, topic: zigbee2mqtt/kitchen/smoke}
broker:
  embedded:
    listen: "127.0.0.1:0"
    users:
      - {username: z2m-bridge, password_hash: %q, publish: ["zigbee2mqtt/#"], subscribe: ["zigbee2mqtt/#"]}
%sstore: {dir: %q}
alarms: {dir: %q}
http:
  listen: 127.0.0.1:0
  tokens:
    - {name: installer, role: admin, sha256: %s, cameras: ["*"]}
`, hash, notifyYAML, t.TempDir(), t.TempDir(), hex.EncodeToString(sum[:]))
	cfg, err := config.Parse([]byte(yaml), "walktest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg)
	b := connectBridge(t, "tcp://"+a.BrokerAddr(), "z2m-bridge", "pw-bridge")

	code, body := api(t, a, http.MethodPost, "/api/v1/walktests", `{"zones":["dorm-1"],"duration":"30m","comment":"commissioning, Wang"}`)
	if code != http.StatusCreated {
		t.Fatalf("start walk test: %d %s", code, body)
	}
	var started engine.WalkTest
	if err := json.Unmarshal(body, &started); err != nil || len(started.Devices) != 3 || started.By != "installer" {
		t.Fatalf("started %s (%v), want the 3 detectors of dorm-1", body, err)
	}
	if code, _ := api(t, a, http.MethodPost, "/api/v1/walktests", `{"zones":["kitchen"]}`); code != http.StatusConflict {
		t.Fatalf("second walk test: %d, want 409", code)
	}

	for _, d := range []string{"smoke-a", "smoke-b"} {
		b.publish(t, "zigbee2mqtt/dorm1/"+d, `{"smoke":true,"battery_low":false,"battery":100,"linkquality":120}`, false)
	}
	// A real fire next door, during the test.
	b.publish(t, "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":90,"linkquality":110}`, false)
	testpeer.WaitFor(t, "the kitchen's smoke alarm notified", 5*time.Second, hook.has("smoke@dev:kitchen-smoke"))
	var held []alarm.Alarm
	testpeer.WaitFor(t, "both test alarms recorded, held by the walk test", 5*time.Second, func() bool {
		held = slices.DeleteFunc(activeAlarms(t, a), func(x alarm.Alarm) bool { return x.Zone != "dorm-1" })
		return len(held) >= 2
	})
	for _, x := range held {
		if !x.Silenced || !strings.HasPrefix(x.Reason, "walk test "+started.ID) {
			t.Fatalf("alarm of the tested zone %s: silenced=%v reason=%q, want held by the walk test", x.ID, x.Silenced, x.Reason)
		}
	}
	for _, d := range []string{"smoke-a", "smoke-b"} {
		b.publish(t, "zigbee2mqtt/dorm1/"+d, `{"smoke":false,"battery_low":false,"battery":100,"linkquality":120}`, false)
	}
	testpeer.WaitFor(t, "the test tones over", 5*time.Second, func() bool {
		for _, x := range activeAlarms(t, a) {
			if x.Zone == "dorm-1" && x.Device != "" && !strings.Contains(x.Reason, "walk test") {
				return false
			}
		}
		return true
	})

	code, body = api(t, a, http.MethodPost, "/api/v1/walktests/end", "")
	if code != http.StatusOK {
		t.Fatalf("end walk test: %d %s", code, body)
	}
	var rec engine.WalkTest
	if err := json.Unmarshal(body, &rec); err != nil {
		t.Fatal(err)
	}
	if s := rec.Silent(); !slices.Equal(s, []string{"dorm1-smoke-c"}) || rec.EndedBy != "installer" {
		t.Fatalf("record: silent %v, ended by %q; want [dorm1-smoke-c] by installer", s, rec.EndedBy)
	}
	// The test's alarms ended with it; the kitchen's is still open.
	testpeer.WaitFor(t, "only the kitchen's alarm left", 5*time.Second, func() bool {
		act := activeAlarms(t, a)
		return len(act) == 1 && act[0].ID == "smoke@dev:kitchen-smoke"
	})
	hook.mu.Lock()
	ids := slices.Clone(hook.ids)
	hook.mu.Unlock()
	for _, id := range ids {
		if strings.Contains(id, "dorm1") || strings.Contains(id, "dorm-1") {
			t.Fatalf("a channel was told about %s, an alarm of the walk test (all: %v)", id, ids)
		}
	}

	req, err := http.NewRequest(http.MethodGet, "http://"+a.HTTPAddr()+"/api/v1/walktests/"+rec.ID+"/record.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || resp.StatusCode != http.StatusOK || len(rows) != 4 {
		t.Fatalf("record.csv: %d, %d rows, %v", resp.StatusCode, len(rows), err)
	}
	col := slices.Index(rows[0], "reported")
	for _, row := range rows[1:] {
		if want := row[7] != "dorm1-smoke-c"; (row[col] == "true") != want {
			t.Fatalf("CSV row %v: reported=%s", row, row[col])
		}
	}
}
