package whep

import (
	"context"
	"net"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/netsim"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// encodeClip makes a testsrc2 clip with ffmpeg: size, bit rate, a
// keyframe every second at 15 fps.
func encodeClip(t *testing.T, size, rate string) string {
	t.Helper()
	ffmpeg := testpeer.Require(t, "ffmpeg", "ffmpeg")
	out := filepath.Join(t.TempDir(), size+".h264")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size="+size+":rate=15",
		"-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-bf", "0",
		"-x264-params", "keyint=15:min-keyint=15:scenecut=0", "-b:v", rate, "-maxrate", rate, "-bufsize", rate, "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// overNetwork plays the gateway's camera "hall" with quality=auto through
// an emulated network: media through a UDP relay, the POST through a
// proxy that delays it by the round trip, strips the player's candidates
// and points the answer's at the relay.
func overNetwork(t *testing.T, g *gateway, profile string) (*viewer, *netsim.UDPRelay) {
	t.Helper()
	p, err := netsim.Lookup(profile)
	if err != nil {
		t.Fatal(err)
	}
	ice := g.srv.UDPAddr().(*net.UDPAddr)
	relay, err := netsim.NewUDP(ice, p, netsim.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	target, _ := url.Parse(g.http.URL)
	from, to := ice.AddrPort(), relay.Addr().AddrPort()
	proxy := httptest.NewServer(netsim.NewWHEPProxyWith(target, netsim.ProxyOptions{
		Answer: func(s string) string { return netsim.RewriteCandidates(s, from, to) },
		Offer:  netsim.StripCandidates, Delay: p.RTT}))
	t.Cleanup(proxy.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, whepclient.Options{URL: proxy.URL + "/api/v1/cameras/hall/whep?quality=auto", Token: token, Loopback: true})
	if err != nil {
		t.Fatalf("%s: %v", profile, err)
	}
	t.Cleanup(func() { c.Close() })
	return &viewer{Client: c, resp: c.Response, aus: c.AccessUnits()}, relay
}

// watchWidths reads the viewer's frames for d and returns the width of
// every keyframe in order and the longest gap between frames.
func watchWidths(t *testing.T, v *viewer, d time.Duration, stopAt int) (widths []int, longest time.Duration) {
	t.Helper()
	end := time.After(d)
	var last time.Time
	for {
		select {
		case au, ok := <-v.aus:
			if !ok {
				t.Fatal("the session ended")
			}
			if !last.IsZero() {
				longest = max(longest, au.At.Sub(last))
			}
			last = au.At
			if whepclient.IsKeyframe(au.NALUs) {
				widths = append(widths, width(t, au))
				if widths[len(widths)-1] == stopAt {
					return widths, longest
				}
			}
		case <-end:
			return widths, longest
		}
	}
}

// Over an emulated 4G link (60 ms ± 20 ms, 1 % loss, 4 Mbit/s) an auto
// viewer plays the 1.5 Mbit/s main stream (at once, or after the sub
// stream when its ICE checks saw a round trip over 100 ms); over poor 4G
// (150 ms, 3 % loss, 1 Mbit/s) it stays on the sub stream and keeps
// playing. Every packet crosses the relay.
func TestAutoOverEmulatedNetworks(t *testing.T) {
	mainCam := startCamera(t, encodeClip(t, "960x540", "1500k"))
	subCam := startCamera(t, encodeClip(t, "320x180", "200k"))
	g := startGateway(t, twoStreams{main: mainCam.hub, sub: subCam.hub}, Config{})
	for _, tc := range []struct {
		profile string
		want    int // the width it must end on
		within  time.Duration
	}{
		{"4g", 960, 30 * time.Second},
		{"poor4g", 320, 20 * time.Second},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			v, relay := overNetwork(t, g, tc.profile)
			first := width(t, v.keyframe(t, 10*time.Second))
			if tc.profile == "poor4g" && first != 320 {
				t.Fatalf("an auto viewer 150 ms away started %d wide, want the sub stream", first)
			}
			stopAt := 0
			if tc.want == 960 {
				if first == 960 {
					return // a 4G viewer within 100 ms starts on main
				}
				stopAt = 960
			}
			widths, longest := watchWidths(t, v, tc.within, stopAt)
			if len(widths) == 0 || widths[len(widths)-1] != tc.want {
				t.Fatalf("keyframe widths over %s: %v, want to end on %d", tc.profile, widths, tc.want)
			}
			if tc.want == 320 && longest > 2*time.Second {
				t.Errorf("over %s the sub stream stopped for %s", tc.profile, longest)
			}
			if st := relay.Stats(); st.Down.Delivered == 0 || st.Up.Delivered == 0 {
				t.Fatalf("nothing crossed the emulated link: %+v", st)
			}
			t.Logf("%s: keyframe widths %v, longest gap %s, %+v, relay %+v", tc.profile, widths, longest, v.Seq(), relay.Stats().Down)
		})
	}
}
