package whep

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

// feedSynthetic publishes a synthetic camera into h until ctx ends: an access unit
// every 66 ms (a keyframe every 15) and an audio packet every 20 ms whose
// payload names its number.
func feedSynthetic(ctx context.Context, h *hub.Hub, key, delta [][]byte) {
	video := time.NewTicker(66 * time.Millisecond)
	audio := time.NewTicker(20 * time.Millisecond)
	defer video.Stop()
	defer audio.Stop()
	start := time.Now()
	for n, a := 0, 0; ; {
		select {
		case <-ctx.Done():
			return
		case now := <-video.C:
			au := delta
			if n%15 == 0 {
				au = key
			}
			h.Publish(&hub.Frame{NALUs: au, Key: n%15 == 0, PTS: now.Sub(start), Received: now})
			n++
		case now := <-audio.C:
			p := bytes.Repeat([]byte{0xd5}, 160)
			copy(p, fmt.Sprintf("audio-%06d", a))
			h.Publish(&hub.Frame{NALUs: [][]byte{p}, Audio: true, PTS: now.Sub(start), Received: now})
			a++
		}
	}
}

// TestCodecsPassThrough: H.265 video to a player that offers it, G.711 and
// Opus audio as the camera sent it (payloads untouched).
func TestCodecsPassThrough(t *testing.T) {
	h264Key := [][]byte{{0x67, 0x42, 0xc0, 0x1e, 1, 2}, {0x68, 0xce, 0x3c, 0x80}, append([]byte{0x65, 0x88}, bytes.Repeat([]byte{7}, 3000)...)}
	h264Delta := [][]byte{append([]byte{0x41, 0x9a}, bytes.Repeat([]byte{8}, 500)...)}
	h265Key := [][]byte{{0x40, 0x01, 0x0c, 0x01}, {0x42, 0x01, 0x01, 0x01}, {0x44, 0x01, 0xc1, 0x72}, append([]byte{0x26, 0x01, 0xaf}, bytes.Repeat([]byte{9}, 3000)...)}
	h265Delta := [][]byte{append([]byte{0x02, 0x01, 0xd0}, bytes.Repeat([]byte{5}, 500)...)}
	for _, tc := range []struct {
		media      hub.Media
		key, delta [][]byte
		videoMime  string
		audioMime  string
		keyTypes   []int
	}{
		{hub.Media{Video: hub.CodecH265, Audio: hub.CodecPCMU, AudioRate: 8000, AudioChannels: 1}, h265Key, h265Delta,
			webrtc.MimeTypeH265, webrtc.MimeTypePCMU, []int{32, 33, 34, 19}},
		{hub.Media{Video: hub.CodecH264, Audio: hub.CodecPCMA, AudioRate: 8000, AudioChannels: 1}, h264Key, h264Delta,
			webrtc.MimeTypeH264, webrtc.MimeTypePCMA, []int{7, 8, 5}},
		{hub.Media{Video: hub.CodecH264, Audio: hub.CodecOpus, AudioRate: 48000, AudioChannels: 2}, h264Key, h264Delta,
			webrtc.MimeTypeH264, webrtc.MimeTypeOpus, []int{7, 8, 5}},
	} {
		t.Run(tc.media.Video+"+"+tc.media.Audio, func(t *testing.T) {
			h := hub.New(hub.Options{})
			defer h.Close()
			h.SetMedia(tc.media)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go feedSynthetic(ctx, h, tc.key, tc.delta)
			g := startGateway(t, testCameras{"hall": h}, Config{})
			v := g.watch(t, "hall")
			tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
			defer tcancel()
			tr, err := v.VideoTrack(tctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.Codec().MimeType; !strings.EqualFold(got, tc.videoMime) {
				t.Fatalf("video codec %s, want %s", got, tc.videoMime)
			}
			// A keyframe arrives whole, parameter sets first.
			for found := false; !found; {
				select {
				case au := <-v.aus:
					var types []int
					for _, n := range au.NALUs {
						if tc.videoMime == webrtc.MimeTypeH265 {
							types = append(types, int(n[0]>>1)&0x3f)
						} else {
							types = append(types, int(n[0]&0x1f))
						}
					}
					if fmt.Sprint(types) == fmt.Sprint(tc.keyTypes) {
						if !bytes.Equal(au.NALUs[len(au.NALUs)-1], tc.key[len(tc.key)-1]) {
							t.Fatal("keyframe slice changed on the way")
						}
						found = true
					}
				case <-tctx.Done():
					t.Fatal("no keyframe")
				}
			}
			select {
			case p := <-v.Audio():
				if len(p) != 160 || !bytes.HasPrefix(p, []byte("audio-")) {
					t.Fatalf("audio payload %q… (%d bytes)", p[:min(12, len(p))], len(p))
				}
			case <-tctx.Done():
				t.Fatal("no audio")
			}
			audioMime := ""
			for _, tr := range v.PC.GetTransceivers() {
				if r := tr.Receiver(); r != nil && r.Track() != nil && r.Track().Kind() == webrtc.RTPCodecTypeAudio {
					audioMime = r.Track().Codec().MimeType
				}
			}
			if !strings.EqualFold(audioMime, tc.audioMime) {
				t.Fatalf("audio codec %q, want %s", audioMime, tc.audioMime)
			}
		})
	}
}

// TestLaggingViewerSkipsAhead: frames that reach a session more than 2 s
// after the camera sent them (a gateway starved of CPU) make it jump to the
// newest keyframe instead of playing ever further behind.
func TestLaggingViewerSkipsAhead(t *testing.T) {
	key := [][]byte{{0x67, 0x42, 0xc0, 0x1e, 1, 2}, {0x68, 0xce, 0x3c, 0x80}, append([]byte{0x65, 0x88}, bytes.Repeat([]byte{7}, 2000)...)}
	delta := [][]byte{append([]byte{0x41, 0x9a}, bytes.Repeat([]byte{8}, 300)...)}
	h := hub.New(hub.Options{})
	defer h.Close()
	h.SetMedia(hub.Media{Video: hub.CodecH264})
	start := time.Now()
	pts := func() time.Duration { return time.Since(start) }
	h.Publish(&hub.Frame{NALUs: key, Key: true, PTS: pts(), Received: time.Now()})
	g := startGateway(t, testCameras{"hall": h}, Config{})
	v := g.watch(t, "hall")
	v.keyframe(t, 10*time.Second)
	// Frames that have waited 3 s somewhere in the gateway.
	for range 3 {
		h.Publish(&hub.Frame{NALUs: delta, PTS: pts(), Received: time.Now().Add(-3 * time.Second)})
	}
	v.keyframe(t, 5*time.Second) // the newest keyframe again, from the cache
	if n := testutil.ToFloat64(g.srv.metrics.lagResyncs); n != 1 {
		t.Fatalf("%v lag resyncs, want 1", n)
	}
}
