package whep

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

const seedOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"a=fingerprint:sha-256 3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B:3B\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=rtcp-mux\r\na=recvonly\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:1\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=rtcp-mux\r\na=recvonly\r\na=rtpmap:0 PCMU/8000\r\n"

// FuzzOffer feeds hostile WHEP bodies through the whole answering path
// (our checks, then pion's SDP handling): nothing may panic, and a
// session that starts must end cleanly.
func FuzzOffer(f *testing.F) {
	f.Add([]byte(seedOffer))
	f.Add([]byte("v=0\r\n"))
	f.Add([]byte("m=video 0 RTP/AVP 96\r\n"))
	f.Add([]byte(seedOffer[:len(seedOffer)/2]))
	f.Add([]byte("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264\r\na=sendonly\r\n"))
	h := hub.New(hub.Options{})
	h.SetMedia(hub.Media{Video: hub.CodecH264, Audio: hub.CodecPCMU, AudioRate: 8000, AudioChannels: 1})
	s, err := New(Config{UDPAddr: "127.0.0.1:0", ConnectTimeout: 50 * time.Millisecond, MaxViewers: 1000, MaxViewersPerCamera: 1000},
		testCameras{"hall": h})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(); h.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxSDP {
			return // the handler refuses these before parsing
		}
		type result struct {
			ss     *session
			answer string
			err    error
		}
		done := make(chan result, 1)
		go func() {
			ss, answer, err := s.offer(context.Background(), "hall", "fuzz", "127.0.0.1:1", body, Preference{Quality: QualityAuto})
			done <- result{ss, answer, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("offer hung on %q\n%s", body, buf[:n])
		}
		ss, answer, err := r.ss, r.answer, r.err
		if err != nil {
			if _, ok := err.(*offerError); !ok {
				t.Fatalf("error without an HTTP status: %v", err)
			}
			return
		}
		if answer == "" {
			t.Fatal("session without an answer")
		}
		ss.stop("fuzz")
	})
}

// FuzzTrickleFragment: PATCH bodies never panic the parser.
func FuzzTrickleFragment(f *testing.F) {
	f.Add("a=ice-ufrag:abcd\r\na=ice-pwd:x\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n")
	f.Add("m=video 9\r\nm=audio 9\r\na=candidate:\r\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, body string) {
		ufrag, cands, err := parseFrag(body)
		if err != nil && (ufrag != "" || cands != nil) {
			t.Fatal("results alongside an error")
		}
		for _, c := range cands {
			if c.SDPMid == nil || c.SDPMLineIndex == nil {
				t.Fatal("candidate without its m-line")
			}
		}
	})
}
