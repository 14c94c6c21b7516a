package whep

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestPlayoutPayload(t *testing.T) {
	// 300 ms and 2 s in 10 ms units: 30 = 0x01e, 200 = 0x0c8.
	if got, want := playoutPayload(300*time.Millisecond, 2*time.Second), []byte{0x01, 0xe0, 0xc8}; !bytes.Equal(got, want) {
		t.Errorf("payload %x, want %x", got, want)
	}
	if got, want := playoutPayload(time.Hour, time.Hour), []byte{0xff, 0xff, 0xff}; !bytes.Equal(got, want) {
		t.Errorf("payload %x, want %x (12 bits each at most)", got, want)
	}
}

// TestPlayoutDelayFollowsKeyframes: a far viewer is asked to hold frames
// for a keyframe's transfer, one and a half round trips and a margin (in
// 10 ms steps, at most playoutMost), and the delay never shrinks; a LAN
// viewer, a short total or a player that did not offer the extension get
// none.
func TestPlayoutDelayFollowsKeyframes(t *testing.T) {
	d := playoutDelay{id: 5}
	p := &rtp.Packet{Header: rtp.Header{Version: 2}}
	d.keyframe(10_000, 20e6, 20*time.Millisecond, reachNear) // 4 + 30 + 50 ms: an office line, no delay
	d.mark(p)
	if p.Header.Extension {
		t.Fatal("an office line was asked for a delay")
	}
	d.keyframe(33_000, 4e6, 60*time.Millisecond, reachNear) // 66 + 90 + 50 = 206 → 210 ms
	if d.min() != 210*time.Millisecond {
		t.Fatalf("delay %v, want 210ms", d.min())
	}
	d.keyframe(10_000, 4e6, 60*time.Millisecond, reachNear) // 160 ms: keeps 210 ms
	if d.min() != 210*time.Millisecond {
		t.Fatalf("delay shrank to %v", d.min())
	}
	d.keyframe(1_000_000, 1e6, 150*time.Millisecond, reachFar) // seconds: capped
	if d.min() != playoutMost {
		t.Fatalf("delay %v, want the cap %v", d.min(), playoutMost)
	}
	d.mark(p)
	if got := p.Header.GetExtension(5); !bytes.Equal(got, playoutPayload(playoutMost, playoutMax)) {
		t.Fatalf("extension %x", got)
	}

	lan := playoutDelay{id: 5}
	lan.keyframe(1_000_000, 1e6, time.Millisecond, reachLAN)
	none := playoutDelay{}
	none.keyframe(1_000_000, 1e6, 150*time.Millisecond, reachFar)
	if lan.min() != 0 || none.min() != 0 {
		t.Fatalf("LAN viewer %v, viewer without the extension %v: want no delay", lan.min(), none.min())
	}
}
