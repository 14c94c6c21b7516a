package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/video/source"
)

// TestGatewayFaultsAreAlarms: a camera goes dark (the ffmpeg pushing it
// dies) and an InfluxDB target stalls (influxd frozen with SIGSTOP). Each
// fault fires through the rules engine as an ordinary alarm, is notified
// through the configured webhook, escalates, is silenced, acknowledged
// and, once the camera is back and InfluxDB answers again, reset through
// /api/v1/alarms; every one of those actions is in the audit log.
func TestGatewayFaultsAreAlarms(t *testing.T) {
	ffmpeg := testpeer.Require(t, "ffmpeg", "ffmpeg")
	db := testpeer.StartInfluxDB(t, "shelter")
	addr := startCamsim(t)
	push := pushLive(t, ffmpeg, addr, "/live")

	hook, notifyYAML := startHook(t)

	a := startApp(t, testConfig(t, fmt.Sprintf(`broker: {embedded: {listen: "127.0.0.1:0"}}
cameras:
  - {id: ward-cam, name: Ward corridor, zone: secure-ward, url: "rtsp://%s/live", transport: tcp, down_alarm_after: 1s}
influxdb:
  - {id: province, url: %q, version: 1, database: shelter, stalled_after: 2s, timeout: 1s, linger: 0s, backoff_max: 500ms}
alarms: {escalation: [2s]}
`, addr, db.URL())+notifyYAML))

	const (
		camID = "camera-down@dev:gateway.camera.ward-cam"
		fwdID = "forward-stalled@dev:gateway.influx.province"
	)
	testpeer.WaitFor(t, "the camera to be live", 15*time.Second, func() bool { return cameraState(t, a, "ward-cam").State == source.StateLive })

	// Both faults happen: the camera's encoder dies, InfluxDB hangs while
	// a sensor keeps reporting.
	_ = push.Process.Kill()
	db.Freeze(t)
	sensor, err := connect(t, "tcp://"+a.BrokerAddr(), "kitchen-smoke", "kitchen-smoke", "pw-kitchen-smoke")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(t, sensor, "zigbee2mqtt/kitchen/smoke", `{"smoke":false,"battery":90}`); err != nil {
		t.Fatal(err)
	}
	byID := func() map[string]alarm.Alarm {
		out := map[string]alarm.Alarm{}
		for _, al := range activeAlarms(t, a) {
			out[al.ID] = al
		}
		return out
	}
	testpeer.WaitFor(t, "both faults to fire and escalate", 30*time.Second, func() bool {
		open := byID()
		return open[camID].Level >= 1 && open[fwdID].Level >= 1
	})
	open := byID()
	if c := open[camID]; c.Severity != alarm.SeverityTrouble || c.Zone != "secure-ward" || !strings.Contains(c.Title.EN, "Ward corridor") ||
		!strings.Contains(c.Body.EN, "no video for 1s") || !c.Latched {
		t.Errorf("camera alarm: %+v", c)
	}
	if f := open[fwdID]; f.Severity != alarm.SeverityTrouble || !strings.Contains(f.Body.EN, "confirmed nothing for more than 2s") {
		t.Errorf("forwarder alarm: %+v", f)
	}

	// A silence naming a device that does not exist is refused with its
	// name (a typo must not leave the real one paging).
	if code, b := api(t, a, http.MethodPost, "/api/v1/silences", `{"device":"gateway.camera.ward-cma","duration":"1h","comment":"typo"}`); code != http.StatusBadRequest ||
		!strings.Contains(string(b), `no device \"gateway.camera.ward-cma\"`) {
		t.Fatalf("silence for an unknown device: %d %s", code, b)
	}
	// Silence, acknowledge; reset is refused while the fault lasts.
	for _, dev := range []string{"gateway.camera.ward-cam", "gateway.influx.province"} {
		code, b := api(t, a, http.MethodPost, "/api/v1/silences",
			fmt.Sprintf(`{"device":%q,"duration":"1h","comment":"technician on the way"}`, dev))
		if code != http.StatusCreated {
			t.Fatalf("silence %s: %d %s", dev, code, b)
		}
	}
	for _, id := range []string{camID, fwdID} {
		if al := byID()[id]; !al.Silenced {
			t.Errorf("%s not silenced: %+v", id, al)
		}
		if code, b := api(t, a, http.MethodPost, "/api/v1/alarms/"+id+"/ack", `{"comment":"seen"}`); code != http.StatusOK {
			t.Fatalf("ack %s: %d %s", id, code, b)
		}
		if code, b := api(t, a, http.MethodPost, "/api/v1/alarms/"+id+"/reset", `{}`); code != http.StatusConflict {
			t.Fatalf("reset %s while the fault lasts: %d %s", id, code, b)
		}
	}

	// The camera comes back and InfluxDB answers again: a manager resets.
	pushLive(t, ffmpeg, addr, "/live")
	db.Thaw(t)
	for _, id := range []string{camID, fwdID} {
		testpeer.WaitFor(t, id+" reset once its fault cleared", 60*time.Second, func() bool {
			code, _ := api(t, a, http.MethodPost, "/api/v1/alarms/"+id+"/reset", `{"comment":"checked the gap"}`)
			return code == http.StatusOK
		})
	}
	if open := byID(); len(open) != 0 {
		t.Fatalf("open alarms after the resets: %v", open)
	}

	// The audit log holds the whole life of each, with who did what.
	for _, id := range []string{camID, fwdID} {
		code, b := api(t, a, http.MethodGet, "/api/v1/audit?alarm="+id, "")
		var got struct{ Audit []audit.Entry }
		if code != http.StatusOK || json.Unmarshal(b, &got) != nil {
			t.Fatalf("audit %s: %d %s", id, code, b)
		}
		var steps []string
		for i := len(got.Audit) - 1; i >= 0; i-- {
			steps = append(steps, got.Audit[i].Action+":"+got.Audit[i].By)
		}
		want := "fired: escalated: silenced: acknowledged:t condition_cleared: reset:t resolved:t"
		if s := strings.Join(steps, " "); s != want {
			t.Errorf("audit of %s:\n got %s\nwant %s", id, s, want)
		}
	}
	// Both were paged through the same channel as a smoke alarm.
	hook.mu.Lock()
	paged := strings.Join(hook.ids, " ")
	hook.mu.Unlock()
	for _, id := range []string{camID, fwdID} {
		if !strings.Contains(paged, id) {
			t.Errorf("no webhook for %s (got %s)", id, paged)
		}
	}
}
