package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/video/cameras"
	"github.com/shelterwatch/shelterwatch/video/camsim"
	"github.com/shelterwatch/shelterwatch/video/source"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

const supervisorToken = "supervisor-token-fedcba9876543210"

// pushLive starts ffmpeg encoding a test pattern with libx264 and pushing
// it into the simulator at path, as a live camera would stream.
func pushLive(t *testing.T, ffmpeg, addr, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=15",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0", "-g", "30",
		"-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+addr+path)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ffmpeg: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// startCamsim runs the camera simulator with cams and live pushes
// accepted, until the test ends, and returns its address.
func startCamsim(t *testing.T, cams ...camsim.Camera) string {
	t.Helper()
	sim, err := camsim.New(camsim.Options{Address: "127.0.0.1:0", Push: true, Cameras: cams})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim.Addr().String()
}

func cameraStatuses(t *testing.T, a *App, token string) (int, []cameras.Status) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+a.HTTPAddr()+"/api/v1/cameras", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []cameras.Status
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, out
}

func cameraState(t *testing.T, a *App, id string) cameras.Status {
	t.Helper()
	_, all := cameraStatuses(t, a, testToken)
	for _, c := range all {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("camera %s not listed", id)
	return cameras.Status{}
}

func dialCamera(t *testing.T, a *App, camera, token string) (*whepclient.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, whepclient.Options{URL: "http://" + a.HTTPAddr() + "/api/v1/cameras/" + camera + "/whep",
		Token: token, Loopback: true})
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func keyframe(t *testing.T, c *whepclient.Client) whepclient.AccessUnit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	au, err := c.Keyframe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return au
}

// TestLiveCameraThroughTheGateway is the whole video path with real peers:
// ffmpeg encodes a live test pattern with libx264 and pushes it into the
// camera simulator; the gateway pulls it over RTSP; a WebRTC player
// connects over WHEP with a token allowed that camera and depacketises a
// complete IDR access unit with SPS and PPS, still carrying the camera's
// send-time stamp. Tokens without the right get 401/403, the session is
// in the audit log with its bytes, an on-demand camera pulls only while
// watched, and a camera that dies raises camera-down.
func TestLiveCameraThroughTheGateway(t *testing.T) {
	ffmpeg := testpeer.Require(t, "ffmpeg", "ffmpeg")
	clip, err := camsim.LoadClip("../../video/camsim/testdata/gop2s.h264")
	if err != nil {
		t.Fatal(err)
	}
	addr := startCamsim(t, camsim.Camera{Path: "/door", Clip: clip})
	push := pushLive(t, ffmpeg, addr, "/live")

	sum := sha256.Sum256([]byte(supervisorToken))
	cfg := testConfigTokens(t, fmt.Sprintf(`cameras:
  - {id: ward-cam, zone: secure-ward, url: "rtsp://%[1]s/live", transport: tcp, down_alarm_after: 1s}
  - {id: door-cam, zone: dorm-1, url: "rtsp://%[1]s/door", transport: tcp, on_demand: true, grace: 500ms}
video:
  webrtc_udp: 127.0.0.1:0
`, addr), fmt.Sprintf("    - {name: supervisor-li, role: viewer, sha256: %s, cameras: [ward-cam]}\n", hex.EncodeToString(sum[:])))
	a := startApp(t, cfg)

	testpeer.WaitFor(t, "the pushed camera to be live", 15*time.Second, func() bool { return cameraState(t, a, "ward-cam").State == source.StateLive })
	if st := cameraState(t, a, "door-cam"); st.Pulling {
		t.Fatalf("on-demand camera pulling with nobody watching: %+v", st)
	}
	// The supervisor sees only the camera granted to them.
	if code, list := cameraStatuses(t, a, supervisorToken); code != http.StatusOK || len(list) != 1 || list[0].ID != "ward-cam" {
		t.Fatalf("supervisor's camera list: %d %+v", code, list)
	}

	c, err := dialCamera(t, a, "ward-cam", supervisorToken)
	if err != nil {
		t.Fatal(err)
	}
	au := keyframe(t, c)
	if _, ok := camsim.ParseStamp(au.NALUs); !ok {
		t.Fatal("the keyframe lost the camera's send-time stamp on the way")
	}
	for _, tc := range []struct {
		camera, token string
		want          int
	}{
		{"door-cam", supervisorToken, http.StatusForbidden},
		{"ward-cam", "", http.StatusUnauthorized},
		{"ward-cam", "wrong-token", http.StatusUnauthorized},
	} {
		_, err := dialCamera(t, a, tc.camera, tc.token)
		var se *whepclient.StatusError
		if !errors.As(err, &se) || se.Code != tc.want {
			t.Errorf("%s with token %q: %v, want %d", tc.camera, tc.token, err, tc.want)
		}
	}
	if code, err := c.HangUp(context.Background()); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	var ended audit.Entry
	testpeer.WaitFor(t, "the viewing session in the audit log", 5*time.Second, func() bool {
		entries, err := a.Audit.Read(audit.Filter{Action: audit.ActionVideoViewEnded}, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			ended = entries[0]
			return true
		}
		return false
	})
	if v := ended.Video; v == nil || ended.By != "supervisor-li" || v.Camera != "ward-cam" || !strings.HasPrefix(v.Remote, "127.0.0.1:") ||
		v.Bytes == 0 || v.Started.IsZero() || !ended.Time.After(v.Started) {
		t.Fatalf("audit entry %+v (video %+v)", ended, ended.Video)
	}

	// On demand: the first viewer starts the pull, the grace period ends it.
	d, err := dialCamera(t, a, "door-cam", testToken)
	if err != nil {
		t.Fatal(err)
	}
	keyframe(t, d)
	if st := cameraState(t, a, "door-cam"); !st.Pulling || st.Viewers != 1 {
		t.Fatalf("on-demand camera while watched: %+v", st)
	}
	if _, err := d.HangUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "the on-demand pull to stop", 10*time.Second, func() bool { return !cameraState(t, a, "door-cam").Pulling })

	// The live camera dies: camera-down is raised for the supervisors.
	_ = push.Process.Kill()
	testpeer.WaitFor(t, "camera-down@dev:gateway.camera.ward-cam", 20*time.Second, func() bool {
		act, err := a.Rules.Active(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, al := range act {
			if al.ID == "camera-down@dev:gateway.camera.ward-cam" && al.Severity == alarm.SeverityTrouble && al.Zone == "secure-ward" {
				return true
			}
		}
		return false
	})
}
