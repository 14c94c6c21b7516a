package source

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

// freezer is a TCP relay in front of a camera that can freeze as a
// SIGSTOP'd server does: connections are still accepted (the kernel
// does that) but nothing moves either way until it thaws.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed while not frozen
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, thawed: make(chan struct{})}
	close(f.thawed)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.relay(c)
		}
	}()
	return f
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.frozen {
		f.frozen, f.thawed = true, make(chan struct{})
	}
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thawed)
	}
}

func (f *freezer) gate() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.thawed
}

func (f *freezer) relay(c net.Conn) {
	defer c.Close()
	<-f.gate()
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	defer up.Close()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				<-f.gate() // frozen: hold the bytes until thawed
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					return
				}
				return
			}
		}
	}
	done := make(chan struct{}, 2)
	go func() { pipe(up, c); done <- struct{}{} }()
	go func() { pipe(c, up); done <- struct{}{} }()
	<-done
}

// runSourceDefaults runs a source with the production backoff and stall
// settings.
func runSourceDefaults(t *testing.T, url string) (*Source, *hub.Hub) {
	t.Helper()
	h := hub.New(hub.Options{})
	t.Cleanup(h.Close)
	src, err := New(Options{Name: "cam", URL: url, Transport: TransportTCP, Hub: h})
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

// TestFrozenCameraIsStalledAndRecovers: a camera whose server stops
// answering with its connection open is stalled within about 2 s, with
// fps at zero and its GOP forgotten, and live again within 3 s of
// thawing.
func TestFrozenCameraIsStalledAndRecovers(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	defer cam.Close()
	fz := startFreezer(t, cam.Addr().String())
	src, h := runSourceDefaults(t, "rtsp://"+fz.ln.Addr().String()+"/cam1")
	v := h.Subscribe()
	defer v.Close()
	nextKeyframe(t, v, 10*time.Second)
	waitState(t, src, StateLive, 5*time.Second)

	fz.freeze()
	frozen := time.Now()
	// Within a second of the last frame the rate is already zero.
	time.Sleep(1200 * time.Millisecond) // the silence is what is measured
	if st := src.Status(); st.State == StateLive && (st.FPS != 0 || st.Bitrate != 0) {
		t.Errorf("1.2 s after the camera froze: %.1f fps, %.0f bit/s, want 0", st.FPS, st.Bitrate)
	}
	st := waitState(t, src, StateStalled, 3*time.Second)
	t.Logf("stalled %v after freezing: %s", time.Since(frozen).Round(10*time.Millisecond), st.Reason)
	if st.FPS != 0 || st.Bitrate != 0 || st.Reason == "" {
		t.Errorf("stalled status %+v: want no rate and a reason", st)
	}
	if n := h.Stats().CachedFrames; n != 0 {
		t.Errorf("%d frames of the frozen stream still cached", n)
	}

	fz.thaw()
	thawed := time.Now()
	waitState(t, src, StateLive, 3*time.Second)
	t.Logf("live %v after thawing", time.Since(thawed).Round(10*time.Millisecond))
	nextKeyframe(t, v, 5*time.Second)
}

// TestRestartedCameraIsPulledAtOnce: with the production settings, a
// camera whose port refused connections for 5 s is live again within 3 s
// of answering, whatever the backoff had grown to.
func TestRestartedCameraIsPulledAtOnce(t *testing.T) {
	cam := startCamera(t, "127.0.0.1:0")
	addr := cam.Addr().String()
	src, h := runSourceDefaults(t, "rtsp://"+addr+"/cam1")
	v := h.Subscribe()
	defer v.Close()
	nextKeyframe(t, v, 10*time.Second)
	if err := cam.Close(); err != nil {
		t.Fatal(err)
	}
	waitState(t, src, StateFailed, 15*time.Second)
	time.Sleep(5 * time.Second) // the outage: many refused reconnects
	back := time.Now()
	cam2 := startCamera(t, addr)
	defer cam2.Close()
	waitState(t, src, StateLive, 3*time.Second)
	t.Logf("live %v after the camera's port answered", time.Since(back).Round(10*time.Millisecond))
	nextKeyframe(t, v, 5*time.Second)
}
