package source

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// rtspServer is go2rtc (a widely used RTSP server and relay, built by
// make test into .tools/bin) serving the simulated camera again on its
// own RTSP port: a camera server that is not this project's, which the
// tests switch off, restart and freeze (SIGSTOP) as a camera's firmware
// would.
type rtspServer struct {
	t    *testing.T
	bin  string
	conf string
	port int
	cmd  *exec.Cmd
}

func startRTSPServer(t *testing.T, upstream string) *rtspServer {
	t.Helper()
	root, err := testpeer.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, ".tools", "bin", "go2rtc")
	if _, err := os.Stat(bin); err != nil {
		if testpeer.CI() {
			t.Fatalf("go2rtc missing (%v): make test builds it into .tools/bin", err)
		}
		t.Skipf("go2rtc missing: run make test (scripts/bench-deps.sh) to build it into .tools/bin")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(t.TempDir(), "go2rtc.yaml")
	text := fmt.Sprintf(`log: {level: error, output: stderr}
api: {listen: ""}
webrtc: {listen: ""}
srtp: {listen: ""}
rtsp: {listen: "127.0.0.1:%d"}
streams:
  cam: %s
`, port, upstream)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &rtspServer{t: t, bin: bin, conf: conf, port: port}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *rtspServer) url() string { return fmt.Sprintf("rtsp://127.0.0.1:%d/cam", s.port) }

// start runs the server and returns once its port answers.
func (s *rtspServer) start() time.Time {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-config", s.conf)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprint("127.0.0.1:", s.port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return time.Now()
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("go2rtc's RTSP port did not answer within 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a port: no event to await
	}
}

// kill stops the server as a power cut would.
func (s *rtspServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a frozen one must be able to die
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *rtspServer) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// TestThirdPartyServerOutagesAndFreeze: pulling from go2rtc, the source
// plays again within 3 s of the server's port answering after outages of
// 5, 30 and 90 s, and a frozen server (SIGSTOP) makes the camera stalled
// within 2 s (plus the check period) and live again within 3 s of
// SIGCONT. The same hub viewer gets keyframes throughout.
func TestThirdPartyServerOutagesAndFreeze(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	defer cam.Close()
	srv := startRTSPServer(t, "rtsp://"+cam.Addr().String()+"/cam1")
	src, h := runSourceDefaults(t, srv.url())
	v := h.Subscribe()
	defer v.Close()
	nextKeyframe(t, v, 15*time.Second)
	waitState(t, src, StateLive, 5*time.Second)

	// Frozen firmware first.
	srv.signal(syscall.SIGSTOP)
	frozen := time.Now()
	st := waitState(t, src, StateStalled, 3*time.Second)
	t.Logf("frozen: stalled after %v (%s)", time.Since(frozen).Round(10*time.Millisecond), st.Reason)
	srv.signal(syscall.SIGCONT)
	thawed := time.Now()
	waitState(t, src, StateLive, 3*time.Second)
	t.Logf("thawed: live after %v", time.Since(thawed).Round(10*time.Millisecond))
	nextKeyframe(t, v, 5*time.Second)

	for _, outage := range []time.Duration{5 * time.Second, 30 * time.Second, 90 * time.Second} {
		srv.kill()
		waitState(t, src, StateFailed, 5*time.Second)
		time.Sleep(outage) // the camera is off for this long
		answered := srv.start()
		waitState(t, src, StateLive, 3*time.Second)
		t.Logf("outage %v: live %v after the port answered", outage, time.Since(answered).Round(10*time.Millisecond))
		nextKeyframe(t, v, 5*time.Second)
	}
}
