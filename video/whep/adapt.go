package whep

import (
	"fmt"
	"strconv"
	"time"
)

// How a session fits its video to the viewer's link.
//
// Every session has a send-side bandwidth estimate (GCC, from the
// player's transport-wide congestion control feedback). The session paces
// its video at paceFactor times that estimate, so that the GOP cache a new
// viewer is sent first, and a camera's keyframe, reach a slow link as a
// stream it can carry instead of one burst that a 4G cell drops. The first
// keyframe of a session goes out at once: it is the first picture, and
// every relay sends it so.
//
// Which stream a session starts on: the requested one, except that when
// the main stream's cache cannot be caught up within catchupBudget at the
// estimate, a session that may use the sub stream starts on it and moves
// to the main stream at the main stream's next keyframe (it would
// otherwise fall seconds behind the camera, or wait seconds for a
// keyframe).
//
// With quality=auto the session moves between the streams by the
// estimate: down when the estimate stays below the main stream's bitrate
// (with headroom), up only after a probe, padding sent for probeFor on top
// of the sub stream up to the main stream's rate, has not congested the
// link. The estimate alone cannot say the link would carry the main
// stream: while a session sends the sub stream, GCC has seen nothing that
// tests the link. Probes back off (doubling, up to maxProbeEvery) after a
// failed probe or a move down, so a link at the edge does not flap. A
// switch happens at a keyframe of the new stream, with the same SSRC and
// continuing sequence numbers and timestamps: the player sees one stream
// whose resolution changes, no renegotiation.

// Tunables of the adaptation.
const (
	// initialEstimate is assumed until the first feedback (a third of the
	// 4g profile's rate above a 2 Mbit/s camera).
	initialEstimate = 3_000_000
	minEstimate     = 100_000
	// paceFactor: the pacer runs above the estimate so that a stream that
	// fits the link gains no lag from the pacer itself.
	paceFactor = 1.5
	// catchupBudget bounds how long replaying a cache may take.
	catchupBudget = 2 * time.Second
	// headroom a stream needs above its bitrate to be chosen, and below
	// which (for downFor) a session moves down.
	upHeadroom, downHeadroom = 1.2, 1.1
	downFor                  = time.Second
	probeFor                 = 1500 * time.Millisecond
	probeHeadroom            = 1.3
	firstProbeAfter          = 3 * time.Second
	maxProbeEvery            = time.Minute
	// gridTiles: a viewer showing this many cameras or more gets sub
	// streams (the console says how many tiles it shows).
	gridTiles = 4
)

// Quality is what a viewer asks for: a stream, or auto.
type Quality string

// Qualities a WHEP offer may ask for (?quality=).
const (
	QualityAuto Quality = "auto"
	QualityMain Quality = "main"
	QualitySub  Quality = "sub"
)

// Preference is a viewer's choice of stream, from the WHEP URL.
type Preference struct {
	Quality Quality
	// Tiles is how many cameras the viewer shows at once (0: unknown).
	Tiles int
}

// parsePreference reads ?quality= and ?tiles=.
func parsePreference(quality, tiles string) (Preference, error) {
	p := Preference{Quality: Quality(quality)}
	switch p.Quality {
	case "":
		p.Quality = QualityAuto
	case QualityAuto, QualityMain, QualitySub:
	default:
		return p, fmt.Errorf("unknown quality %q (want main, sub or auto)", quality)
	}
	if tiles != "" {
		n, err := strconv.Atoi(tiles)
		if err != nil || n < 1 || n > 64 {
			return p, fmt.Errorf("tiles %q is not a number of cameras from 1 to 64", tiles)
		}
		p.Tiles = n
	}
	return p, nil
}

// grid: the viewer shows a camera wall, where sub streams are what fits.
func (p Preference) grid() bool { return p.Tiles >= gridTiles }

// catchUpTime is how long replaying cacheBytes takes while the stream
// goes on at rate, at the pace the estimate allows (<0: never).
func catchUpTime(cacheBytes int, rate, estimate float64) time.Duration {
	spare := paceFactor*estimate - rate
	if spare <= 0 {
		return -1
	}
	return time.Duration(float64(cacheBytes*8) / spare * float64(time.Second))
}

// fits: the cache is caught up within the budget.
func fits(cacheBytes int, rate, estimate float64) bool {
	t := catchUpTime(cacheBytes, rate, estimate)
	return t >= 0 && t <= catchupBudget
}

// streamInfo is what the start choice knows of one stream.
type streamInfo struct {
	ok         bool // held, with media known
	cacheBytes int
	rate       float64
}

// chooseStart picks the stream a session starts on.
func chooseStart(p Preference, main, sub streamInfo, estimate float64) Stream {
	if !sub.ok {
		return StreamMain
	}
	if p.Quality == QualitySub || (p.Quality == QualityAuto && p.grid()) {
		return StreamSub
	}
	if main.ok && fits(main.cacheBytes, main.rate, estimate) {
		return StreamMain
	}
	return StreamSub
}

// action is what the adapter asks of its session.
type action int

const (
	actNone action = iota
	actSwitchMain
	actSwitchSub
	actProbe   // start sending padding up to probeRate
	actEndProb // stop padding
)

// adapter decides a quality=auto session's moves. It is a step function
// of the time and what the session measures, owned by the session's
// goroutine; tests drive it as a timeline.
type adapter struct {
	// fixed: the session stays on the stream it asked for (or the only
	// one), except a main session started on the sub stream, which moves
	// to main once.
	fixed bool
	// wantMain: the session ends up on main (quality main, or auto
	// without a grid).
	wantMain bool

	cur        Stream
	pending    bool // a switch waits for the new stream's keyframe
	lowSince   time.Time
	probeUntil time.Time
	nextProbe  time.Time
	backoff    time.Duration
}

func newAdapter(p Preference, start Stream, haveSub bool, now time.Time) *adapter {
	a := &adapter{cur: start, backoff: firstProbeAfter, nextProbe: now.Add(firstProbeAfter)}
	switch {
	case !haveSub || p.Quality == QualitySub:
		a.fixed = true
	case p.Quality == QualityMain:
		a.fixed, a.wantMain = true, true
	case p.Quality == QualityAuto && p.grid():
		a.fixed = true
	default:
		a.wantMain = true
	}
	return a
}

// probeRate is the total rate a probe sends at.
func probeRate(mainRate float64) float64 { return probeHeadroom * mainRate }

// step returns what to do at now, given the estimate and the main
// stream's bitrate (0: unknown).
func (a *adapter) step(now time.Time, estimate, mainRate float64) action {
	if a.pending {
		return actNone
	}
	if a.fixed {
		if a.wantMain && a.cur == StreamSub {
			a.pending = true
			return actSwitchMain
		}
		return actNone
	}
	if !a.probeUntil.IsZero() {
		if now.Before(a.probeUntil) {
			if mainRate > 0 && estimate < upHeadroom*mainRate {
				// The link gave way during the probe: stop at once.
				a.probeUntil = time.Time{}
				a.failProbe(now)
				return actEndProb
			}
			return actNone
		}
		a.probeUntil = time.Time{}
		if mainRate > 0 && estimate >= upHeadroom*mainRate {
			a.backoff = firstProbeAfter
			a.pending = true
			return actSwitchMain
		}
		a.failProbe(now)
		return actEndProb
	}
	switch a.cur {
	case StreamMain:
		if mainRate <= 0 || estimate >= downHeadroom*mainRate {
			a.lowSince = time.Time{}
			return actNone
		}
		if a.lowSince.IsZero() {
			a.lowSince = now
		}
		if now.Sub(a.lowSince) < downFor {
			return actNone
		}
		a.lowSince = time.Time{}
		a.failProbe(now) // a move down delays the next probe like a failed one
		a.pending = true
		return actSwitchSub
	default:
		if mainRate <= 0 || now.Before(a.nextProbe) {
			return actNone
		}
		a.probeUntil = now.Add(probeFor)
		return actProbe
	}
}

func (a *adapter) failProbe(now time.Time) {
	a.backoff = min(2*a.backoff, maxProbeEvery)
	a.nextProbe = now.Add(a.backoff)
}

// switched tells the adapter the session now plays s.
func (a *adapter) switched(s Stream) {
	a.cur, a.pending = s, false
}

// abandon tells the adapter a requested switch will not happen (the
// other stream is down or sends another codec).
func (a *adapter) abandon(now time.Time) {
	a.pending = false
	a.failProbe(now)
	if a.fixed {
		a.wantMain = false // a main session stays on sub rather than retry
	}
}

// pacer spaces a session's packets at its rate. It lets out what fits in
// slack at once, so it sleeps at most every few milliseconds and not once
// per packet.
type pacer struct {
	next time.Time // when what was sent is paid for
}

const (
	paceSlack = 5 * time.Millisecond
	// paceBurst is the credit a pacer may bank while idle.
	paceBurst = 20 * time.Millisecond
)

// delay returns how long to wait before sending size bytes at rate
// (bit/s), and books them.
func (p *pacer) delay(now time.Time, size int, rate float64) time.Duration {
	if p.next.Before(now.Add(-paceBurst)) {
		p.next = now.Add(-paceBurst)
	}
	var wait time.Duration
	if d := p.next.Sub(now); d > paceSlack {
		wait = d - paceSlack
	}
	p.next = p.next.Add(time.Duration(float64(size*8) / rate * float64(time.Second)))
	return wait
}

// skip books size bytes sent outside the pacer (the first keyframe).
func (p *pacer) skip(now time.Time) {
	if p.next.Before(now) {
		p.next = now
	}
}
