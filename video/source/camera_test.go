package source

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/pion/rtp"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

// testCamera is an RTSP server (gortsplib's own) serving one stream on
// 127.0.0.1, any path.
type testCamera struct {
	url    string
	stream *gortsplib.ServerStream

	mu    sync.Mutex
	ready *gortsplib.ServerStream // nil until the stream is initialized
}

func (c *testCamera) current() (*base.Response, *gortsplib.ServerStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.ready, nil
}

func (c *testCamera) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return c.current()
}

func (c *testCamera) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return c.current()
}

func (c *testCamera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// startTestCamera serves medias until the test ends.
func startTestCamera(t *testing.T, medias ...*description.Media) *testCamera {
	t.Helper()
	c := &testCamera{}
	var ln net.Listener
	srv := &gortsplib.Server{
		Handler:     c,
		RTSPAddress: "127.0.0.1:0",
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			ln = l // Start calls Listen before it returns
			return l, err
		},
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	c.stream = &gortsplib.ServerStream{Server: srv, Desc: &description.Session{Medias: medias}}
	if err := c.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stream.Close)
	c.mu.Lock()
	c.ready = c.stream
	c.mu.Unlock()
	c.url = "rtsp://" + ln.Addr().String() + "/cam"
	return c
}

// feed calls step every interval until the test ends (step numbers count
// from 0), writing what it returns.
func (c *testCamera) feed(t *testing.T, interval time.Duration, step func(i int) []testPacket) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, p := range step(i) {
				// Errors only mean no reader yet, or the server closing.
				_ = c.stream.WritePacketRTP(p.media, p.pkt)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

type testPacket struct {
	media *description.Media
	pkt   *rtp.Packet
}

// runSource pulls url into a new hub over TCP until the test ends.
func runSource(t *testing.T, url string) (*Source, *hub.Hub) {
	t.Helper()
	h := hub.New(hub.Options{})
	t.Cleanup(h.Close)
	src, err := New(Options{Name: "cam", URL: url, Transport: TransportTCP, Hub: h,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return src, h
}

// mediaOf waits for the hub to learn the camera's media.
func mediaOf(t *testing.T, h *hub.Hub, within time.Duration) hub.Media {
	t.Helper()
	select {
	case <-h.MediaKnown():
	case <-time.After(within):
		t.Fatalf("media not known within %v", within)
	}
	m, _ := h.Media()
	return m
}

// nextFrame reads v until a frame matches, failing after within.
func nextFrame(t *testing.T, v *hub.Viewer, within time.Duration, what string, match func(*hub.Frame) bool) *hub.Frame {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-v.C:
			if !ok {
				t.Fatal("viewer closed")
			}
			if match(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, within)
		}
	}
}
