package app

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// bridgeDevices is a Zigbee2MQTT bridge/devices list in the shape of
// https://github.com/Koenkk/zigbee2mqtt.io/blob/master/docs/guide/usage/mqtt_topics_and_messages.md
// with the exposes of the HEIMAN HS1SA and Aqara WSDCGQ11LM device pages:
// the coordinator, the kitchen's detector (configured) and a climate
// sensor paired since (not configured).
const bridgeDevices = `[
 {"ieee_address":"0x00124b00120144ae","type":"Coordinator","network_address":0,"supported":false,"friendly_name":"Coordinator","definition":null,"power_source":null,"interview_completed":true},
 {"ieee_address":"0x00124b0000000001","type":"EndDevice","supported":true,"disabled":false,"friendly_name":"kitchen/smoke",
  "definition":{"model":"HS1SA","vendor":"HEIMAN","description":"Smoke detector",
   "exposes":[{"type":"binary","name":"smoke","property":"smoke","value_on":true,"value_off":false,"access":1},
              {"type":"numeric","name":"battery","property":"battery","unit":"%","access":1}]},
  "power_source":"Battery"},
 {"ieee_address":"0x00158d0000000003","type":"EndDevice","supported":true,"friendly_name":"dorm-1/climate",
  "definition":{"model":"WSDCGQ11LM","vendor":"Aqara","description":"Temperature, humidity and pressure sensor",
   "exposes":[{"type":"numeric","name":"battery","property":"battery","unit":"%","access":1},
              {"type":"numeric","name":"temperature","property":"temperature","unit":"°C","access":1},
              {"type":"numeric","name":"humidity","property":"humidity","unit":"%","access":1},
              {"type":"numeric","name":"pressure","property":"pressure","unit":"hPa","access":1}]},
  "power_source":"Battery"}
]`

// TestDiscoveredDevicesInTheAPI: the Zigbee2MQTT bridge publishes its
// device list on the embedded broker; the admin's onboarding list shows
// the climate sensor nobody configured (and knows the detector is), is
// refused to a manager, and turns it into config YAML with the zone the
// admin chose, which the gateway's own config check accepts.
func TestDiscoveredDevicesInTheAPI(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-bridge"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	managerSum := sha256.Sum256([]byte("manager-token-0123456789"))
	a := startApp(t, testConfigTokens(t, fmt.Sprintf(`broker:
  embedded:
    listen: "127.0.0.1:0"
    users:
      - {username: z2m-bridge, password_hash: %q, publish: ["zigbee2mqtt/#"], subscribe: ["zigbee2mqtt/#"], retain: ["zigbee2mqtt/bridge/devices"]}
`, hash), "    - {name: duty-manager, role: manager, sha256: "+hex.EncodeToString(managerSum[:])+"}\n"))
	b := connectBridge(t, "tcp://"+a.BrokerAddr(), "z2m-bridge", "pw-bridge")
	b.publish(t, "zigbee2mqtt/bridge/devices", bridgeDevices, true)

	type proposal struct{ ID, Kind, Format, Topic, Configured string }
	var list struct{ New, Configured []proposal }
	testpeer.WaitFor(t, "the bridge's list in the onboarding API", 5*time.Second, func() bool {
		code, body := api(t, a, http.MethodGet, "/api/v1/devices/discovered", "")
		if code != http.StatusOK {
			t.Fatalf("GET discovered: %d %s", code, body)
		}
		return json.Unmarshal(body, &list) == nil && len(list.New)+len(list.Configured) == 2
	})
	if len(list.New) != 1 || list.New[0].Topic != "zigbee2mqtt/dorm-1/climate" || list.New[0].Kind != "temperature" || list.New[0].Format != "zigbee2mqtt" {
		t.Fatalf("new: %+v, want the climate sensor", list.New)
	}
	if len(list.Configured) != 1 || list.Configured[0].Configured != "kitchen-smoke" {
		t.Fatalf("configured: %+v, want the kitchen detector covered by kitchen-smoke", list.Configured)
	}
	if m := metrics(t, a); !strings.Contains(m, "shelterwatch_ingest_ignored_total 1") || strings.Contains(m, `shelterwatch_ingest_dead_lettered_total{reason="unknown_device"} 1`) {
		t.Fatal("the announcement was not taken by the onboarding list (ignored, not dead-lettered)")
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+a.HTTPAddr()+"/api/v1/devices/discovered", nil)
	req.Header.Set("Authorization", "Bearer manager-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a manager asked for the onboarding list: %d, want 403", resp.StatusCode)
	}

	id := list.New[0].ID
	code, yaml := api(t, a, http.MethodPost, "/api/v1/devices/discovered/config", fmt.Sprintf(`{"zones":{%q:"dorm-1"}}`, id))
	if code != http.StatusOK || !strings.Contains(string(yaml), "zone: dorm-1") {
		t.Fatalf("config YAML: %d\n%s", code, yaml)
	}
	if code, body := api(t, a, http.MethodPost, "/api/v1/devices/discovered/config", fmt.Sprintf(`{"zones":{%q:"attic"}}`, id)); code != http.StatusBadRequest {
		t.Fatalf("an unknown zone: %d %s, want 400", code, body)
	}
	// The proposal, pasted into a config of the same facility, passes
	// the gateway's own check (shelter-gateway validate runs config.Parse).
	full := "facility: {id: test-shelter, name: Test Shelter, timezone: Asia/Shanghai}\n" +
		"zones:\n  - {id: kitchen, tags: [kitchen]}\n  - {id: secure-ward, tags: [secure-ward]}\n  - {id: dorm-1, tags: [dormitory]}\n" +
		string(yaml) + fmt.Sprintf("store: {dir: %q}\n", t.TempDir())
	cfg, err := config.Parse([]byte(full), "proposed.yaml")
	if err != nil {
		t.Fatalf("the proposed entry does not validate: %v\n%s", err, full)
	}
	if len(cfg.Devices) != 1 || cfg.Devices[0].Zone != "dorm-1" || cfg.Devices[0].Topic != "zigbee2mqtt/dorm-1/climate" {
		t.Fatalf("parsed devices: %+v", cfg.Devices)
	}
}
