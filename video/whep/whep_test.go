package whep

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/video/camsim"
	"github.com/shelterwatch/shelterwatch/video/hub"
	"github.com/shelterwatch/shelterwatch/video/source"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// testCameras serves fixed hubs.
type testCameras map[string]*hub.Hub

func (c testCameras) Acquire(_ context.Context, name string, s Stream) (*hub.Hub, func(), error) {
	h, ok := c[name]
	if !ok {
		return nil, nil, ErrUnknownCamera
	}
	if s == StreamSub {
		return nil, nil, ErrNoSubStream
	}
	return h, func() {}, nil
}

// camera runs a simulated camera looping clip and a source pulling it
// into a hub, until the test ends.
type camera struct {
	sim  *camsim.Server
	addr string
	clip *camsim.Clip
	hub  *hub.Hub
	src  *source.Source
}

func startSim(t *testing.T, addr string, clip *camsim.Clip) *camsim.Server {
	t.Helper()
	sim, err := camsim.New(camsim.Options{Address: addr, Cameras: []camsim.Camera{{Path: "/cam", Clip: clip}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sim
}

// The 10 s GOP camera is shared: a new source joins the clip mid-GOP and
// may wait up to 10 s before it caches its first keyframe.
var (
	gop10Once sync.Once
	gop10     *camera
	gop10Stop func()
)

// TestMain stops the shared camera, then checks that no goroutine
// outlived its test.
func TestMain(m *testing.M) {
	code := m.Run()
	if gop10Stop != nil {
		gop10Stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func sharedGOP10(t *testing.T) *camera {
	gop10Once.Do(func() {
		gop10, gop10Stop = newCamera(t, "../camsim/testdata/gop10s.h264")
	})
	if gop10 == nil {
		t.Fatal("the 10 s GOP camera did not start")
	}
	return gop10
}

func startCamera(t *testing.T, clipPath string) *camera {
	t.Helper()
	c, stop := newCamera(t, clipPath)
	t.Cleanup(stop)
	return c
}

func newCamera(t *testing.T, clipPath string) (*camera, func()) {
	t.Helper()
	clip, err := camsim.LoadClip(clipPath)
	if err != nil {
		t.Fatal(err)
	}
	c := &camera{clip: clip, hub: hub.New(hub.Options{QueueLen: 400})}
	c.sim = startSim(t, "127.0.0.1:0", clip)
	c.addr = c.sim.Addr().String()
	c.src, err = source.New(source.Options{Name: "cam", URL: "rtsp://" + c.addr + "/cam", Transport: source.TransportTCP,
		Hub: c.hub, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.src.Run(ctx) }()
	stop := func() {
		cancel()
		<-done
		c.hub.Close()
		c.sim.Close()
	}
	// Let the GOP cache fill: a keyframe and a second of frames after it.
	deadline := time.Now().Add(25 * time.Second)
	for c.hub.Stats().CachedFrames < 15 {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("camera not live: %+v", c.src.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, stop
}

type audit struct {
	mu      sync.Mutex
	records []Record
}

func (a *audit) add(r Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	return nil
}

func (a *audit) ended() []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Record
	for _, r := range a.records {
		if !r.End.IsZero() {
			out = append(out, r)
		}
	}
	return out
}

const token = "viewer-token"

// allowAll lets the bearer tokens "viewer-token" and "second-token" see
// every camera and knows "other-token" (allowed nothing).
func allowAll(r *http.Request, camera string) (string, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer " + token:
		return "supervisor-li", nil
	case "Bearer second-token":
		return "nurse-wang", nil
	case "Bearer other-token":
		return "", ErrForbidden
	}
	return "", ErrUnauthorized
}

type gateway struct {
	srv   *Server
	http  *httptest.Server
	audit *audit
}

func startGateway(t *testing.T, cams Cameras, cfg Config) *gateway {
	t.Helper()
	g := &gateway{audit: &audit{}}
	cfg.UDPAddr = "127.0.0.1:0"
	cfg.Audit = g.audit.add
	var err error
	g.srv, err = New(cfg, cams)
	if err != nil {
		t.Fatal(err)
	}
	g.http = httptest.NewServer(g.srv.Handler("/api/v1/cameras", allowAll))
	t.Cleanup(func() {
		g.http.Close()
		g.srv.Close()
	})
	return g
}

// viewer is a WHEP player session from the test's point of view.
type viewer struct {
	*whepclient.Client
	resp     *http.Response
	body     string // the refusal's body, when refused
	location string
	aus      <-chan whepclient.AccessUnit
}

// connect dials a viewer that the test's cleanup closes.
func (g *gateway) connect(t *testing.T, camera, auth string) *viewer {
	t.Helper()
	return g.connectWith(t, camera, auth, nil)
}

// watch connects a viewer with the allowed token and fails the test
// unless the offer is accepted.
func (g *gateway) watch(t *testing.T, camera string) *viewer {
	t.Helper()
	v := g.connect(t, camera, token)
	if v.resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s", v.resp.Status)
	}
	return v
}

func (g *gateway) connectWith(t *testing.T, camera, auth string, only *webrtc.RTPCodecCapability) *viewer {
	t.Helper()
	v := g.dial(t, camera, auth, only)
	t.Cleanup(func() { v.Close() })
	return v
}

// dial connects a viewer; the caller closes it. A refused offer is not a
// test failure here: resp says what happened.
func (g *gateway) dial(t *testing.T, camera, auth string, only *webrtc.RTPCodecCapability) *viewer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, whepclient.Options{URL: g.http.URL + "/api/v1/cameras/" + camera + "/whep",
		Token: auth, Video: only, Loopback: true})
	var se *whepclient.StatusError
	if err != nil && !errors.As(err, &se) {
		t.Fatal(err)
	}
	v := &viewer{Client: c, resp: c.Response, aus: c.AccessUnits()}
	if se != nil {
		v.body = se.Body
	}
	if v.resp.StatusCode == http.StatusCreated {
		v.location = v.resp.Header.Get("Location")
	}
	return v
}

// postOffer POSTs a receive-only offer (that no player will answer) with
// the allowed token to camera hall's WHEP URL plus query, and returns
// the status.
func (g *gateway) postOffer(t *testing.T, query string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.http.URL+"/api/v1/cameras/hall/whep"+query, strings.NewReader(recvOnlyOffer(t)))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// keyframe waits for an IDR access unit with SPS and PPS.
func (v *viewer) keyframe(t *testing.T, within time.Duration) whepclient.AccessUnit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	au, err := v.Keyframe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return au
}

func (g *gateway) hangUp(t *testing.T, v *viewer, auth string) int {
	t.Helper()
	code, err := v.HangUp(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestRoundTripFirstKeyframeAtOnce: a camera with a 10 s keyframe
// interval; a new viewer gets a complete keyframe (SPS, PPS, IDR) within
// 300 ms of its POST, from the GOP cache, then live frames carrying the
// camera's send-time stamps; DELETE ends the session and the audit log
// has who, camera, address and bytes.
func TestRoundTripFirstKeyframeAtOnce(t *testing.T) {
	cam := sharedGOP10(t)
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{ICEServers: []ICEServer{
		{URLs: []string{"stun:stun.example.org:3478"}, ClientOnly: true},
		{URLs: []string{"turn:turn.example.org:3478?transport=udp"}, Secret: "s3cret", TTL: time.Hour, ClientOnly: true},
	}})
	// Join well inside a GOP: without the cache the wait would be seconds.
	v := g.watch(t, "hall")
	h := v.resp.Header
	if !strings.HasPrefix(v.location, "/api/v1/cameras/hall/whep/") || h.Get("ETag") == "" ||
		h.Get("Content-Type") != "application/sdp" || h.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" {
		t.Fatalf("WHEP headers: %v", h)
	}
	links := h.Values("Link")
	if len(links) != 2 || !strings.Contains(links[0], `<stun:stun.example.org:3478>; rel="ice-server"`) ||
		!strings.Contains(links[1], `username="`) || !strings.Contains(links[1], `:supervisor-li"`) {
		t.Fatalf("Link headers: %q", links)
	}
	first := v.keyframe(t, 5*time.Second)
	// The race detector slows DTLS and SDP handling several times over;
	// there the bound only proves the cache (no wait for the next of the
	// camera's keyframes, 10 s apart). make test also runs this test
	// without it, and make bench measures the distribution.
	limit := 300 * time.Millisecond
	if raceBuild {
		limit = 2 * time.Second
	}
	d := first.At.Sub(v.Posted)
	t.Logf("first complete keyframe %v after the POST", d)
	if d > limit {
		t.Fatalf("first complete keyframe %v after the POST, want ≤ %v", d, limit)
	}
	// Then it plays live: stamps from the camera arrive, increasing.
	var last time.Time
	for n := 0; n < 20; {
		select {
		case au := <-v.aus:
			ts, ok := camsim.ParseStamp(au.NALUs)
			if !ok {
				t.Fatal("access unit without the camera's stamp")
			}
			if ts.Before(last) {
				t.Fatalf("stamps out of order: %v after %v", ts, last)
			}
			last = ts
			n++
		case <-time.After(5 * time.Second):
			t.Fatal("live frames stopped")
		}
	}
	if n := len(g.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions", n)
	}
	if code := g.hangUp(t, v, token); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	testpeer.WaitFor(t, "the session to end", 5*time.Second, func() bool { return len(g.audit.ended()) == 1 })
	rec := g.audit.ended()[0]
	if rec.Camera != "hall" || rec.Who != "supervisor-li" || !strings.HasPrefix(rec.Remote, "127.0.0.1:") ||
		rec.Bytes < 10_000 || rec.Reason != "the viewer hung up" || !rec.End.After(rec.Start) {
		t.Fatalf("audit record %+v", rec)
	}
	if code := g.hangUp(t, v, token); code != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", code)
	}
}

func TestRefusals(t *testing.T) {
	h := stillCamera(t, hub.CodecH265)
	g := startGateway(t, testCameras{"hall": h}, Config{})
	for _, tc := range []struct {
		name, camera, auth string
		want               int
	}{
		{"no token", "hall", "", http.StatusUnauthorized},
		{"unknown token", "hall", "guess", http.StatusUnauthorized},
		{"not allowed this camera", "hall", "other-token", http.StatusForbidden},
		{"unknown camera", "yard", token, http.StatusNotFound},
		// A player without H.265: say so rather than play nothing.
		{"codec the player lacks", "hall", token, http.StatusNotAcceptable},
	} {
		v := g.connectWith(t, tc.camera, tc.auth, &capH264)
		if v.resp.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d", tc.name, v.resp.Status, tc.want)
		}
	}
	for _, tc := range []struct {
		ctype, body string
		want        int
	}{
		{"text/plain", "v=0", http.StatusUnsupportedMediaType},
		{"application/sdp", "not sdp", http.StatusBadRequest},
		{"application/sdp", strings.Repeat("a", maxSDP+1), http.StatusRequestEntityTooLarge},
	} {
		req, _ := http.NewRequest("POST", g.http.URL+"/api/v1/cameras/hall/whep", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST %s %q…: %d, want %d", tc.ctype, truncate(tc.body, 10), resp.StatusCode, tc.want)
		}
	}
	if n := len(g.srv.Sessions()); n != 0 {
		t.Fatalf("%d sessions after refusals", n)
	}
}

// TestCameraRestartKeepsTheViewer: the camera process dies and comes back
// on the same address; the same session receives frames again, with no new
// offer.
func TestCameraRestartKeepsTheViewer(t *testing.T) {
	cam := startCamera(t, "../camsim/testdata/gop2s.h264")
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{})
	v := g.watch(t, "hall")
	v.keyframe(t, 5*time.Second)
	if err := cam.sim.Close(); err != nil {
		t.Fatal(err)
	}
	testpeer.WaitFor(t, "the source to notice", 15*time.Second, func() bool { return cam.src.Status().State == source.StateFailed })
	// Drain what was sent before the camera died.
	for drained := false; !drained; {
		select {
		case <-v.aus:
		case <-time.After(200 * time.Millisecond):
			drained = true
		}
	}
	restarted := time.Now()
	cam.sim = startSim(t, cam.addr, cam.clip)
	au := v.keyframe(t, 10*time.Second)
	if d := au.At.Sub(restarted); d > 3*time.Second {
		t.Fatalf("frames again %v after the camera restarted, want ≤ 3s", d)
	}
	if n := len(g.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions, want the same one", n)
	}
}

// TestSlowViewerDoesNotDelayAFastOne: one player reads its packets slowly
// (its buffers overflow); another on the same camera gets every frame,
// in order, as the camera sends them.
func TestSlowViewerDoesNotDelayAFastOne(t *testing.T) {
	cam := startCamera(t, "../camsim/testdata/gop2s.h264")
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{})
	slow := g.connect(t, "hall", token)
	slow.SetReadDelay(20 * time.Millisecond)
	fast := g.connect(t, "hall", token)
	for _, v := range []*viewer{slow, fast} {
		if v.resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %s", v.resp.Status)
		}
	}
	fast.keyframe(t, 5*time.Second)
	// 3 s of live video: consecutive stamps 1/15 s apart (the clip's
	// rate), none missing, and none late compared with the camera's pace.
	var prev time.Time
	gaps := 0
	var worst time.Duration
	for n := 0; n < 45; n++ {
		select {
		case au := <-fast.aus:
			ts, ok := camsim.ParseStamp(au.NALUs)
			if !ok {
				t.Fatal("no stamp")
			}
			if !prev.IsZero() && ts.Sub(prev) > 100*time.Millisecond {
				gaps++
				worst = max(worst, ts.Sub(prev))
			}
			prev = ts
		case <-time.After(5 * time.Second):
			t.Fatal("the fast viewer stalled")
		}
	}
	// A busy test machine may lose the odd UDP packet on loopback; a
	// viewer held back by the slow one would miss runs of frames.
	if gaps > 4 || worst > time.Second {
		t.Fatalf("the fast viewer missed frames: %d gaps in the stamps, the longest %v", gaps, worst)
	}
}

// TestKeyframeRequestAnsweredFromCache: a PLI from the player makes the
// gateway resend the cached GOP from its keyframe at once (the camera
// cannot be asked for one over RTSP).
func TestKeyframeRequestAnsweredFromCache(t *testing.T) {
	cam := sharedGOP10(t)
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{})
	v := g.watch(t, "hall")
	v.keyframe(t, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr, err := v.VideoTrack(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the resync limit is once a second
	asked := time.Now()
	if err := v.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}}); err != nil {
		t.Fatal(err)
	}
	au := v.keyframe(t, 2*time.Second) // the next camera keyframe is up to 10 s away
	if d := au.At.Sub(asked); d > time.Second {
		t.Fatalf("keyframe %v after the PLI", d)
	}
	if n := testutil.ToFloat64(g.srv.metrics.resyncs); n != 1 {
		t.Fatalf("%v resyncs, want the PLI answered from the cache", n)
	}
}

func TestLimits(t *testing.T) {
	cam := startCamera(t, "../camsim/testdata/gop2s.h264")
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{MaxViewersPerCamera: 1})
	if v := g.connect(t, "hall", token); v.resp.StatusCode != http.StatusCreated {
		t.Fatalf("first viewer: %s", v.resp.Status)
	}
	v := g.connect(t, "hall", token)
	if v.resp.StatusCode != http.StatusServiceUnavailable || v.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second viewer: %s %v", v.resp.Status, v.resp.Header)
	}
}

// One viewer (token) cannot take every slot of a camera: past its own
// limit it gets 429 with the limit in the body, while another viewer
// still gets in; ending a session frees the slot.
func TestPerViewerLimit(t *testing.T) {
	cam := startCamera(t, "../camsim/testdata/gop2s.h264")
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{MaxViewersPerCamera: 8, MaxViewersPerViewer: 1})
	first := g.connect(t, "hall", token)
	if first.resp.StatusCode != http.StatusCreated {
		t.Fatalf("first session: %s", first.resp.Status)
	}
	v := g.connect(t, "hall", token)
	if v.resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(v.body, "supervisor-li already watches 1 sessions") {
		t.Fatalf("second session of the same viewer: %s %q", v.resp.Status, v.body)
	}
	if other := g.connect(t, "hall", "second-token"); other.resp.StatusCode != http.StatusCreated {
		t.Fatalf("another viewer: %s", other.resp.Status)
	}
	if code, err := first.HangUp(context.Background()); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	testpeer.WaitFor(t, "the freed slot", 5*time.Second, func() bool {
		return g.connect(t, "hall", token).resp.StatusCode == http.StatusCreated
	})
}

func TestPeerThatNeverConnectsIsDropped(t *testing.T) {
	cam := startCamera(t, "../camsim/testdata/gop2s.h264")
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{ConnectTimeout: 300 * time.Millisecond})
	if code := g.postOffer(t, ""); code != http.StatusCreated {
		t.Fatalf("POST: %d", code)
	}
	// The player never applies the answer: the session must not linger.
	testpeer.WaitFor(t, "the abandoned session to end", 5*time.Second, func() bool { return len(g.srv.Sessions()) == 0 })
	if r := g.audit.ended(); len(r) != 1 || r[0].Reason != "the viewer's peer never connected" {
		t.Fatalf("audit %+v", r)
	}
}

func TestTURNRestCredentials(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	user, pass := restCredentials("secret", "li:a", now, time.Hour)
	if user != "1800003600:li_a" {
		t.Fatalf("user %q", user)
	}
	// What a TURN server with use-auth-secret computes for that name and
	// secret (base64 of HMAC-SHA1, worked out independently).
	if pass != "wkW71anRUt8xuGcNEVf8BuhEnvk=" {
		t.Fatalf("credential %q", pass)
	}
	u2, p2 := restCredentials("secret", "li:a", now, time.Hour)
	if u2 != user || p2 != pass {
		t.Fatal("credentials not deterministic")
	}
	if _, p3 := restCredentials("other", "li:a", now, time.Hour); p3 == pass {
		t.Fatal("credential does not depend on the secret")
	}
}

// TestJoinLeaveLeaksNothing: 100 viewers come and go; afterwards the
// goroutines are back where they were and the heap has not grown.
func TestJoinLeaveLeaksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("100 WebRTC sessions")
	}
	cam := startCamera(t, "../camsim/testdata/gop2s.h264")
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{})
	cycle := func() {
		v := g.dial(t, "hall", token, nil)
		defer v.Close()
		if v.resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %s", v.resp.Status)
		}
		v.keyframe(t, 5*time.Second)
		if code := g.hangUp(t, v, token); code != http.StatusOK {
			t.Fatalf("DELETE: %d", code)
		}
		v.Close()
		testpeer.WaitFor(t, "the session to end", 5*time.Second, func() bool { return len(g.srv.Sessions()) == 0 })
	}
	for range 5 { // warm up pools and caches
		cycle()
	}
	settle := func() (int, uint64) {
		var ms runtime.MemStats
		var n int
		for range 50 { // pion's goroutines end shortly after Close
			runtime.GC()
			n = runtime.NumGoroutine()
			time.Sleep(20 * time.Millisecond)
			if runtime.NumGoroutine() == n {
				break
			}
		}
		runtime.ReadMemStats(&ms)
		return n, ms.HeapAlloc
	}
	g0, h0 := settle()
	for range 100 {
		cycle()
	}
	testpeer.WaitFor(t, "goroutines to return", 10*time.Second, func() bool {
		n, _ := settle()
		return n <= g0+2
	})
	g1, h1 := settle()
	t.Logf("goroutines %d → %d, heap %d → %d KiB", g0, g1, h0>>10, h1>>10)
	if h1 > h0+8<<20 {
		t.Fatalf("heap grew by %d KiB over 100 sessions", (h1-h0)>>10)
	}
	if n := len(g.audit.ended()); n != 105 {
		t.Fatalf("%d audit records of ended sessions, want 105", n)
	}
}

// TestICETCP: a viewer whose network blocks UDP connects over the one
// ICE-TCP port.
func TestICETCP(t *testing.T) {
	cam := startCamera(t, "../camsim/testdata/gop2s.h264")
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{TCPAddr: "127.0.0.1:0"})
	_, pair := g.play(t, whepclient.Options{TCP: true})
	if pair.Local.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair %v, want TCP", pair)
	}
}

// play connects a player with opts (URL, token and loopback filled in) to
// camera "hall", waits for its first keyframe and returns it with the ICE
// candidate pair it uses.
func (g *gateway) play(t *testing.T, opts whepclient.Options) (*whepclient.Client, *webrtc.ICECandidatePair) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts.URL, opts.Token, opts.Loopback = g.http.URL+"/api/v1/cameras/hall/whep", token, true
	c, err := whepclient.Dial(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Keyframe(ctx); err != nil {
		t.Fatal(err)
	}
	pair, err := c.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected candidate pair (%v)", err)
	}
	return c, pair
}

// stillCamera is a hub that says it carries H.264 and never publishes:
// enough for signalling tests.
func stillCamera(t *testing.T, codec string) *hub.Hub {
	t.Helper()
	h := hub.New(hub.Options{})
	t.Cleanup(h.Close)
	h.SetMedia(hub.Media{Video: codec})
	return h
}

// TestAdvertisedAddress: behind 1:1 NAT the answer names the public
// address on the shared port, not the gateway's own.
func TestAdvertisedAddress(t *testing.T) {
	h := stillCamera(t, hub.CodecH264)
	g := startGateway(t, testCameras{"hall": h}, Config{AdvertiseIPs: []string{"203.0.113.7"}})
	offer := recvOnlyOffer(t)
	ss, answer, err := g.srv.offer(context.Background(), "hall", "li", "127.0.0.1:1", []byte(offer), Preference{Quality: QualityAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.stop("test over")
	port := g.srv.UDPAddr().(*net.UDPAddr).Port
	if want := fmt.Sprintf("203.0.113.7 %d typ host", port); !strings.Contains(answer, want) || strings.Contains(answer, "127.0.0.1") {
		t.Fatalf("answer candidates, want %q only:\n%s", want, answer)
	}
}

// TestTrickleAndOwnership: PATCH adds candidates under the session's ETag;
// a stale ETag, an ICE restart, a wrong body type or another viewer are
// refused; only the owner may DELETE.
func TestTrickleAndOwnership(t *testing.T) {
	h := stillCamera(t, hub.CodecH264)
	g := startGateway(t, testCameras{"hall": h}, Config{})
	v := g.watch(t, "hall")
	etag := v.resp.Header.Get("ETag")
	ufrag := ""
	for _, l := range strings.Split(v.PC.LocalDescription().SDP, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			ufrag = u
		}
	}
	patch := func(auth, ctype, ifMatch, body string) int {
		req, _ := http.NewRequest("PATCH", g.http.URL+v.location, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+auth)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("If-Match", ifMatch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	frag := "a=ice-ufrag:" + ufrag + "\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"
	const ct = "application/trickle-ice-sdpfrag"
	for _, tc := range []struct {
		name, auth, ctype, ifMatch, body string
		want                             int
	}{
		{"trickled candidate", token, ct, etag, frag, http.StatusNoContent},
		{"any ETag", token, ct, "*", frag, http.StatusNoContent},
		{"stale ETag", token, ct, `"stale"`, frag, http.StatusPreconditionFailed},
		{"ICE restart", token, ct, etag, strings.Replace(frag, ufrag, "newfrag1", 1), http.StatusMethodNotAllowed},
		{"wrong body type", token, "application/sdp", etag, frag, http.StatusUnsupportedMediaType},
		{"garbage", token, ct, etag, "hello", http.StatusBadRequest},
		{"no token", "", ct, etag, frag, http.StatusUnauthorized},
	} {
		if got := patch(tc.auth, tc.ctype, tc.ifMatch, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// Another viewer allowed this camera cannot end this one's session.
	req, _ := http.NewRequest("DELETE", g.http.URL+v.location, nil)
	req.Header.Set("Authorization", "Bearer second-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(g.srv.Sessions()) != 1 {
		t.Fatalf("DELETE by another viewer: %d, %d sessions", resp.StatusCode, len(g.srv.Sessions()))
	}
}

// TestPlayerThatClosesWithoutDeleteEndsItsSession: a tab closed without
// a DELETE (its peer connection closes) ends the session, and the audit
// log says so.
func TestPlayerThatClosesWithoutDeleteEndsItsSession(t *testing.T) {
	h := stillCamera(t, hub.CodecH264)
	g := startGateway(t, testCameras{"hall": h}, Config{})
	v := g.watch(t, "hall")
	testpeer.WaitFor(t, "the session to connect", 10*time.Second, func() bool {
		return v.PC.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	v.Close()
	testpeer.WaitFor(t, "the session to end", 20*time.Second, func() bool { return len(g.srv.Sessions()) == 0 })
	if r := g.audit.ended(); len(r) != 1 || r[0].Reason == "" || r[0].Reason == "the viewer hung up" {
		t.Fatalf("audit %+v", r)
	}
}

// recvOnlyOffer is the offer of a player that receives video and never
// connects (its peer connection is closed at the test's end).
func recvOnlyOffer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// downCameras are cameras that are all failed.
type downCameras struct{}

func (downCameras) Acquire(context.Context, string, Stream) (*hub.Hub, func(), error) {
	return nil, nil, fmt.Errorf("%w (failed): connect: dial tcp 10.0.0.9:554: connection refused", ErrCameraDown)
}

// A camera that is down is refused at once with its reason and a short
// Retry-After, not after the start timeout.
func TestCameraDownRefusedAtOnce(t *testing.T) {
	g := startGateway(t, downCameras{}, Config{})
	v := g.connect(t, "yard", token)
	if v.resp.StatusCode != http.StatusServiceUnavailable || v.resp.Header.Get("Retry-After") != "2" ||
		!strings.Contains(v.body, "connection refused") {
		t.Fatalf("offer to a failed camera: %s Retry-After %q %q", v.resp.Status, v.resp.Header.Get("Retry-After"), v.body)
	}
}
