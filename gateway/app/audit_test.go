package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/video/camsim"
	"github.com/shelterwatch/shelterwatch/video/source"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// A viewing session whose start cannot be written to the audit log is
// refused before a frame is sent, and the failing log is a gateway fault.
// The log's file is /dev/full, where every write fails with ENOSPC as on
// a full SD card, whoever runs the test.
func TestViewingRefusedWhenTheAuditLogCannotBeWritten(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full to make writes fail: %v", err)
	}
	clip, err := camsim.LoadClip("../../video/camsim/testdata/gop2s.h264")
	if err != nil {
		t.Fatal(err)
	}
	addr := startCamsim(t, camsim.Camera{Path: "/door", Clip: clip})
	cfg := testConfig(t, fmt.Sprintf(`cameras:
  - {id: door-cam, zone: dorm-1, url: "rtsp://%s/door", transport: tcp}
video:
  webrtc_udp: 127.0.0.1:0
`, addr))
	if err := os.MkdirAll(cfg.Alarms.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", filepath.Join(cfg.Alarms.Dir, audit.FileName)); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg)
	testpeer.WaitFor(t, "the camera to be live", 15*time.Second, func() bool { return cameraState(t, a, "door-cam").State == source.StateLive })

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, whepclient.Options{URL: "http://" + a.HTTPAddr() + "/api/v1/cameras/door-cam/whep",
		Token: testToken, Loopback: true})
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	var se *whepclient.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || !strings.Contains(se.Body, "audit log cannot record who watches") {
		t.Fatalf("offer with the audit log failing: %v; want 503 naming the audit log", err)
	}
	if ss := a.WHEP.Sessions(); len(ss) != 0 {
		t.Fatalf("sessions running after the refusal: %+v", ss)
	}
	if st := cameraState(t, a, "door-cam"); st.Viewers != 0 {
		t.Fatalf("camera counts %d viewers after the refusal", st.Viewers)
	}
	testpeer.WaitFor(t, "audit-log-failed@dev:gateway.audit", 20*time.Second, func() bool {
		act, err := a.Rules.Active(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, al := range act {
			if al.ID == "audit-log-failed@dev:gateway.audit" {
				return true
			}
		}
		return false
	})
}
