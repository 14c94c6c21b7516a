package whep

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Over a far link a frame reaches the player late whenever one of its
// packets is lost (the retransmission costs a round trip) or the link's
// jitter holds it, and a keyframe, several times the size of the other
// frames, also takes long to send. Chromium counts a gap of about 200 ms
// between rendered frames as a freeze; on emulated 4G (60 ms round trip,
// ±20 ms jitter, 1 % loss) a 2 s keyframe interval froze the picture
// about ten times a minute although every packet arrived in the end. The
// playout delay RTP header extension (sent by the sender, honoured by
// Chromium's jitter buffer as a lower bound on its delay) lets the
// player hold every frame long enough for a keyframe and one
// retransmission to arrive, so the picture runs smoothly, a fraction of
// a second behind. The gateway asks for it only for viewers off its own
// network: on the LAN the picture stays as live as it is.

// playoutDelayURI is the extension's name in the SDP.
const playoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

const (
	// playoutFrom is the least delay worth asking for: below it (an
	// office line) the player's own jitter buffer does as well.
	playoutFrom = 100 * time.Millisecond
	// playoutMargin covers the player's decode and the jitter beyond the
	// round trip.
	playoutMargin = 50 * time.Millisecond
	// playoutMost bounds the delay asked for: past it, a slower link is
	// better served by the sub stream (the adapter moves it there).
	playoutMost = 600 * time.Millisecond
	// playoutMax is the upper bound sent with it: the player may hold
	// frames longer when its own jitter estimate says so.
	playoutMax = 2 * time.Second
)

// playoutDelay is a session's playout delay: the extension's id as
// negotiated (0: the player did not offer it) and the delay asked for
// now (0: none; the extension is then not sent, and the player plays as
// soon as it can). The session's goroutine sets it; the sessions list
// reads it.
type playoutDelay struct {
	id    uint8
	asked atomic.Int64 // time.Duration
}

// min is the delay asked for now.
func (d *playoutDelay) min() time.Duration { return time.Duration(d.asked.Load()) }

// keyframe updates the delay for a keyframe of size bytes over a link of
// rate bit/s with round trip rtt: its transfer, one retransmission and a
// margin. The delay only grows: a player whose delay shrank would have to
// skip frames to catch up, which is the freeze this avoids.
func (d *playoutDelay) keyframe(size int, rate float64, rtt time.Duration, r reach) {
	if d.id == 0 || r == reachLAN || rate <= 0 {
		return
	}
	transfer := time.Duration(float64(size*8) / rate * float64(time.Second))
	want := transfer + rtt*3/2 + playoutMargin
	if want < playoutFrom {
		return
	}
	want = min(playoutMost, (want+9*time.Millisecond)/(10*time.Millisecond)*(10*time.Millisecond))
	if want > d.min() {
		d.asked.Store(int64(want))
	}
}

// mark adds the extension to a video packet while a delay is asked for.
func (d *playoutDelay) mark(p *rtp.Packet) {
	lo := d.min()
	if d.id == 0 || lo <= 0 {
		return
	}
	_ = p.Header.SetExtension(d.id, playoutPayload(lo, playoutMax))
}

// playoutPayload encodes the extension: 12 bits of minimum and 12 of
// maximum delay, in 10 ms units.
func playoutPayload(lo, hi time.Duration) []byte {
	a, b := uint32(lo/(10*time.Millisecond)), uint32(hi/(10*time.Millisecond))
	a, b = min(a, 0xfff), min(b, 0xfff)
	v := a<<12 | b
	return []byte{byte(v >> 16), byte(v >> 8), byte(v)}
}
