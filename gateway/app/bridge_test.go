package app

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// bridgeClient is a Zigbee2MQTT bridge as the broker sees it: one MQTT
// client with bridge/state retained and, as its last will, "offline"
// (Zigbee2MQTT's lib/mqtt.ts). kill closes its TCP connection without a
// DISCONNECT, as a crash or a power cut does, so the broker publishes the
// will.
type bridgeClient struct {
	c    paho.Client
	mu   sync.Mutex
	conn net.Conn
}

func connectBridge(t *testing.T, brokerURL, user, pass string) *bridgeClient {
	t.Helper()
	b := &bridgeClient{}
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID("z2m-bridge").
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).SetConnectTimeout(5*time.Second).
		SetBinaryWill("zigbee2mqtt/bridge/state", []byte(`{"state":"offline"}`), 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			b.mu.Lock()
			b.conn = conn
			b.mu.Unlock()
			return conn, err
		})
	b.c = paho.NewClient(o)
	tok := b.c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("bridge connect: %v", tok.Error())
	}
	t.Cleanup(func() { b.c.Disconnect(100) })
	return b
}

func (b *bridgeClient) publish(t *testing.T, topic, payload string, retained bool) {
	t.Helper()
	tok := b.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("bridge publish %s: %v", topic, tok.Error())
	}
}

func (b *bridgeClient) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.conn.Close()
}

// TestBridgeDown: Zigbee2MQTT's last will, published by the broker when
// the bridge's connection dies, makes both Zigbee devices unknown and
// raises one bridge-down alarm (and no offline alarm per device) within
// 2 s; the bridge coming back clears it and brings the devices back
// online. Over the embedded broker and over Mosquitto.
func TestBridgeDown(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-bridge"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (*App, string)
	}{
		{"embedded broker", func(t *testing.T) (*App, string) {
			a := startApp(t, testConfig(t, fmt.Sprintf(`broker:
  embedded:
    listen: "127.0.0.1:0"
    users:
      - {username: z2m-bridge, password_hash: %q, publish: ["zigbee2mqtt/#"], subscribe: ["zigbee2mqtt/#"], retain: ["zigbee2mqtt/bridge/state"], client_ids: [z2m-bridge]}
`, hash)))
			return a, "tcp://" + a.BrokerAddr()
		}},
		{"mosquitto", func(t *testing.T) (*App, string) {
			m := testpeer.StartMosquitto(t, "")
			a := startApp(t, testConfig(t, fmt.Sprintf("broker:\n  mode: external\n  external: {url: %q, client_id: gw-test, reconnect_max: 1s}\n", m.URL())))
			testpeer.WaitFor(t, "gateway subscribed to mosquitto", 10*time.Second, func() bool {
				return strings.Contains(metrics(t, a), `shelterwatch_mqttclient_connected{connection="main"} 1`)
			})
			time.Sleep(300 * time.Millisecond) // let the SUBACK land
			return a, m.URL()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, brokerURL := tc.setup(t)
			b := connectBridge(t, brokerURL, "z2m-bridge", "pw-bridge")
			b.publish(t, "zigbee2mqtt/bridge/state", `{"state":"online"}`, true)
			b.publish(t, "zigbee2mqtt/kitchen/smoke", `{"smoke":false,"battery":90,"linkquality":120}`, false)
			b.publish(t, "zigbee2mqtt/secure-ward/door", `{"contact":true,"battery":91,"linkquality":87}`, false)
			testpeer.WaitFor(t, "both Zigbee devices online", 5*time.Second, func() bool {
				s1, _ := a.State.Get("kitchen-smoke")
				s2, _ := a.State.Get("ward-door")
				return s1.Online && s2.Online
			})

			killed := time.Now()
			b.kill()
			const id = "bridge-down@dev:gateway.bridge.zigbee2mqtt"
			var act []alarm.Alarm
			testpeer.WaitFor(t, "bridge-down alarm after the bridge's will", 2*time.Second, func() bool {
				act = activeAlarms(t, a)
				return len(act) > 0
			})
			t.Logf("bridge-down raised %v after the connection died", time.Since(killed).Round(time.Millisecond))
			if len(act) != 1 || act[0].ID != id || act[0].Severity != alarm.SeverityCritical || !strings.Contains(act[0].Title.ZH, "Zigbee 网桥离线") {
				t.Fatalf("alarms after the bridge died: %+v, want exactly %s", act, id)
			}
			for _, d := range []string{"kitchen-smoke", "ward-door"} {
				if s, _ := a.State.Get(d); s.Online || s.OfflineReason != "bridge_offline" {
					t.Fatalf("%s behind the dead bridge: %+v, want unknown (bridge_offline)", d, s)
				}
			}

			// The bridge restarts: its birth clears the alarm, and the
			// devices are online without a message of their own.
			b2 := connectBridge(t, brokerURL, "z2m-bridge", "pw-bridge")
			b2.publish(t, "zigbee2mqtt/bridge/state", `{"state":"online"}`, true)
			testpeer.WaitFor(t, "bridge-down resolved and devices back", 5*time.Second, func() bool {
				s1, _ := a.State.Get("kitchen-smoke")
				s2, _ := a.State.Get("ward-door")
				return len(activeAlarms(t, a)) == 0 && s1.Online && s2.Online
			})
		})
	}
}
