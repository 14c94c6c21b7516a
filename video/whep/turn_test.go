package whep

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// TestViewerThroughTURNWithRESTCredentials: a viewer that may reach the
// gateway only through a TURN relay (a strict NAT) gets the TURN server
// from the endpoint's Link headers, with credentials the gateway derived
// from the shared secret; a real TURN server checks them the way coturn's
// use-auth-secret does, relays the media, and the viewer plays.
func TestViewerThroughTURNWithRESTCredentials(t *testing.T) {
	const secret = "turn-shared-secret"
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	ts, err := turn.NewServer(turn.ServerConfig{
		Realm:         "shelterwatch.test",
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(secret, lf.NewLogger("turn")),
		LoggerFactory: lf,
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.ParseIP("127.0.0.1"), Address: "127.0.0.1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()

	cam := startCamera(t, "../camsim/testdata/gop2s.h264")
	turnURL := fmt.Sprintf("turn:%s?transport=udp", udp.LocalAddr())
	g := startGateway(t, testCameras{"hall": cam.hub}, Config{ICEServers: []ICEServer{
		{URLs: []string{turnURL}, Secret: secret, TTL: time.Hour, ClientOnly: true},
	}})
	c, pair := g.play(t, whepclient.Options{RelayOnly: true})
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Fatalf("selected pair %v, want the viewer's side relayed", pair)
	}
	if sdp := c.PC.LocalDescription().SDP; !strings.Contains(sdp, "typ relay") {
		t.Fatalf("the viewer offered no relay candidate:\n%s", sdp)
	}

	// A credential made with another secret is refused by the TURN
	// server: the viewer gathers no relay candidate, so it cannot connect.
	bad := startGateway(t, testCameras{"hall": cam.hub}, Config{ICEServers: []ICEServer{
		{URLs: []string{turnURL}, Secret: "wrong-secret", TTL: time.Hour, ClientOnly: true},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := whepclient.Dial(ctx, whepclient.Options{URL: bad.http.URL + "/api/v1/cameras/hall/whep", Token: token,
		Loopback: true, RelayOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if sdp := b.PC.LocalDescription().SDP; strings.Contains(sdp, "typ relay") {
		t.Fatalf("the TURN server granted a relay to credentials from the wrong secret:\n%s", sdp)
	}
}
