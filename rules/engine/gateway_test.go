package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// gatewayConfig is the test facility with the built-in rules and the
// gateway's own devices, as the gateway wires them.
func gatewayConfig() Config {
	cfg := testConfig(append(Builtin(), GatewayRules()...)...)
	cfg.Devices = append(cfg.Devices,
		facility.Device{ID: "gateway.camera.ward-cam", Name: "Ward corridor", Kind: reading.KindFault, Zone: "ward", Builtin: true},
		facility.Device{ID: "gateway.influx.province", Name: "province", Kind: reading.KindFault, Builtin: true},
		facility.Device{ID: "gateway.store", Name: "store", Kind: reading.KindFault, Builtin: true},
	)
	return cfg
}

func fault(s string) reading.Value { return reading.State(s) }

// A gateway fault is an alarm like any other: it fires, escalates, is
// acknowledged, and once its part reports ok again a manager resets it.
func TestGatewayFaultLifecycle(t *testing.T) {
	cfg := gatewayConfig()
	cfg.Escalation = Escalation{Levels: []time.Duration{5 * time.Minute}}
	tl := newTimeline(t, cfg)
	// Sensors keep reporting, so "no readings" stays quiet.
	tl.send("dorm1-temp", reading.KindTemperature, reading.Number(21))
	expect(t, "camera ok", tl.send("gateway.camera.ward-cam", reading.KindFault, fault("ok")), "")
	ev := tl.send("gateway.camera.ward-cam", reading.KindFault, fault("no video for 1m0s: 401 Unauthorized"))
	expect(t, "camera dark", ev, "firing:camera-down@dev:gateway.camera.ward-cam")
	a := ev[0].Alarm
	if a.Severity != "trouble" || a.Zone != "ward" || !strings.Contains(a.Body.EN, "no video for 1m0s: 401 Unauthorized. Remote supervision") ||
		!strings.Contains(a.Title.ZH, "摄像头无视频：Ward corridor（封闭病区）") {
		t.Fatalf("camera alarm: %+v", a)
	}
	tl.at(4 * time.Minute)
	tl.send("dorm1-temp", reading.KindTemperature, reading.Number(21))
	expect(t, "escalation", tl.at(5*time.Minute), "escalated:camera-down@dev:gateway.camera.ward-cam")
	if err := tl.c.Acknowledge("camera-down@dev:gateway.camera.ward-cam", "li.manager", "technician called", tl.now); err != nil {
		t.Fatal(err)
	}
	expect(t, "ack", tl.drain(), "acknowledged:camera-down@dev:gateway.camera.ward-cam")
	if err := tl.c.Reset("camera-down@dev:gateway.camera.ward-cam", "li.manager", "", tl.now); err == nil {
		t.Fatal("reset while the camera is still dark")
	}
	expect(t, "camera back", tl.send("gateway.camera.ward-cam", reading.KindFault, fault("ok")), "")
	if err := tl.c.Reset("camera-down@dev:gateway.camera.ward-cam", "li.manager", "checked the recording gap", tl.now); err != nil {
		t.Fatal(err)
	}
	expect(t, "reset", tl.drain(), "resolved:camera-down@dev:gateway.camera.ward-cam")
}

// Data loss is reported once (a fault, then ok at once): latched, it waits
// for a manager's reset.
func TestGatewayDataLossIsLatched(t *testing.T) {
	tl := newTimeline(t, gatewayConfig())
	tl.send("dorm1-temp", reading.KindTemperature, reading.Number(21))
	ev := tl.send("gateway.store", reading.KindFault, fault("deleted 12 readings (disk budget) before every InfluxDB target had them"))
	expect(t, "loss", ev, "firing:store-data-loss@dev:gateway.store")
	if ev[0].Alarm.Severity != "critical" {
		t.Fatalf("severity %s", ev[0].Alarm.Severity)
	}
	expect(t, "event over", tl.send("gateway.store", reading.KindFault, fault("ok")), "")
	if act := tl.c.Active(); len(act) != 1 {
		t.Fatalf("a latched loss must stay open: %+v", act)
	}
	if err := tl.c.Reset("store-data-loss@dev:gateway.store", "li.manager", "InfluxDB restored", tl.now); err != nil {
		t.Fatal(err)
	}
	expect(t, "reset", tl.drain(), "resolved:store-data-loss@dev:gateway.store")
}

// The gateway's own readings never hide a sensor outage and never count as
// sensors going silent.
func TestGatewayDevicesAreNotSensors(t *testing.T) {
	tl := newTimeline(t, gatewayConfig())
	tl.send("dorm1-temp", reading.KindTemperature, reading.Number(21))
	for m := 1; m <= 11; m++ {
		tl.at(time.Duration(m) * time.Minute)
		tl.send("gateway.influx.province", reading.KindFault, fault("ok"))
	}
	var ids []string
	for _, a := range tl.c.Active() {
		ids = append(ids, a.ID)
	}
	if strings.Join(ids, " ") != "no-readings@gateway" {
		t.Fatalf("open alarms %v; want only no-readings (fault readings are not sensor readings)", ids)
	}
	// Days later the gateway devices, which report only on change, are
	// not offline; sensors are.
	tl.at(26 * time.Hour)
	for _, a := range tl.c.Active() {
		if strings.Contains(a.ID, "gateway.") {
			t.Fatalf("a gateway device raised %s", a.ID)
		}
	}
}
