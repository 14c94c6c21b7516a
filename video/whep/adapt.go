package whep

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/pion/rtcp"
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
// A viewer on the gateway's own network is paced as a link of at least
// lanEstimate: GCC's estimate starts low and grows only as the stream
// lets it, which on a LAN held a long GOP's cache back for seconds.
//
// Pacing never goes below paceFactor times the stream's own bitrate: a
// link that cannot carry the stream is handled by moving to the sub
// stream, not by queueing frames in the gateway.
//
// Which stream a session starts on: the requested one, except that when
// the main stream's cache cannot be caught up within catchupBudget at the
// estimate, a session that may use the sub stream starts on it and moves
// to the main stream at the main stream's next keyframe (it would
// otherwise fall seconds behind the camera, or wait seconds for a
// keyframe).
//
// With quality=auto a viewer whose ICE round trip is under nearRTT starts
// as a main session would (its link is trusted to carry main until its
// reports say otherwise); a farther one starts on the sub stream. The
// session then moves by what the player's receiver reports say of the
// link: down when
// its reports show congestion (loss of congestedLoss or more, or the
// round trip grown by congestedRTT over its least, a queue filling) for
// congestedFor, or one shows heavy loss; up only after a probe, RTP padding sent for
// probeFor on top of the sub stream up to the main stream's rate, that
// the reports show did not congest the link (and that the estimator's
// delay detector did not stop early). The GCC estimate paces, sizes the
// catch-up and gates probes (none while it is below half the main
// stream's rate), but does not move sessions by itself: measured over
// links with jitter it drops to the received rate at a single false
// overuse, and while a session sends the sub stream it has seen nothing
// that tests the link. Probes back off (doubling, up to maxProbeEvery) after a failed
// probe or a move down, so a link at the edge does not flap. A switch
// happens at a keyframe of the new stream, with the same SSRC and
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
	// upHeadroom: the estimate a session needs above the main stream's
	// bitrate to start on it when it may not start on the sub stream.
	upHeadroom = 1.2
	// A receiver report shows congestion with this loss, or this growth of
	// the round trip; heavyLoss moves a session down at once.
	congestedLoss = 0.10
	heavyLoss     = 0.25
	congestedRTT  = 150 * time.Millisecond
	// congestedFor: reports must show congestion this long, with no clean
	// one between, to move a session down. A camera's keyframe queues up
	// on a 4G link for a few hundred milliseconds, and Chromium sends a
	// report with every NACK: counting reports moved sessions down at
	// keyframes.
	congestedFor = 1500 * time.Millisecond
	probeFor     = 2500 * time.Millisecond
	// probeRamp: a probe climbs to its rate over this long. Over 500 ms
	// a probe on a 1 Mbit/s link filled the link's queue before the
	// delay detector's feedback came back and lost the sub stream's
	// packets with the padding (up to 64 % reported loss, freezes over
	// a second); over 1.5 s the detector stops most of them first, and
	// the probe's last second, which judges it, is still at full rate.
	probeRamp  = 1500 * time.Millisecond
	probeJudge = time.Second
	// probeGate: no probe while the estimate is below this share of the
	// main stream's rate. A probe that fails still costs the sub stream
	// a second of loss; a link whose estimate sits far below main (a
	// lossy link, where GCC's loss side holds the estimate down) is not
	// worth the try.
	probeGate     = 0.5
	probeHeadroom = 1.3
	// lanRTT: a viewer this close is on the gateway's network; nearRTT:
	// one this close is on a link trusted to carry the main stream until
	// its reports say otherwise. Links with longer round trips (a poor
	// cell, a satellite hop) start on the sub stream and must probe.
	lanRTT  = 10 * time.Millisecond
	nearRTT = 100 * time.Millisecond
	// lanEstimate is the least a viewer on the gateway's network is
	// paced by (session.paceEstimate).
	lanEstimate = 50_000_000
	// lanGrace: after its first keyframe a LAN viewer is paced by GCC
	// this long still (session.paceEstimate).
	lanGrace = 100 * time.Millisecond
	// firstProbeAfter: the estimate needs feedback before it can gate a
	// probe (it starts at initialEstimate, which would let any link be
	// probed).
	firstProbeAfter = 10 * time.Second
	maxProbeEvery   = time.Minute
	// dtlsRetransmit is the first DTLS retransmission timeout.
	dtlsRetransmit = 200 * time.Millisecond
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

// paceRate is the pacer's rate (bit/s) for a stream of rate on a link of
// estimate: paceFactor above the larger of the two. Pacing exists to
// spread bursts (a cache, a keyframe); pacing below the stream's own rate
// would only pile frames up in the gateway, so a stream the link cannot
// carry is moved to the sub stream or left to the network instead.
func paceRate(rate, estimate float64) float64 {
	return paceFactor * max(estimate, rate)
}

// catchUpTime is how long replaying cacheBytes takes while the stream
// goes on at rate, at the pace the estimate allows (<0: never).
func catchUpTime(cacheBytes int, rate, estimate float64) time.Duration {
	spare := paceRate(rate, estimate) - rate
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

// reach is how far the viewer is, by the round trip of its ICE checks.
type reach int

const (
	reachFar  reach = iota // unknown, or a round trip of nearRTT or more
	reachNear              // under nearRTT: an office line, a good 4G cell
	reachLAN               // under lanRTT: the gateway's own network
)

func reachOf(rtt time.Duration) reach {
	switch {
	case rtt <= 0 || rtt >= nearRTT:
		return reachFar
	case rtt < lanRTT:
		return reachLAN
	}
	return reachNear
}

// chooseStart picks the stream a session starts on.
func chooseStart(p Preference, main, sub streamInfo, estimate float64, r reach) Stream {
	if !sub.ok {
		return StreamMain
	}
	if p.Quality == QualitySub || (p.Quality == QualityAuto && (p.grid() || r == reachFar)) {
		return StreamSub
	}
	if p.Quality == QualityAuto && main.rate > 0 && estimate < upHeadroom*main.rate {
		return StreamSub // the link is not known to carry main
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
	actProbe   // start probing at probeRate
	actEndProb // stop probing
)

// linkSignal is what the session knows of the link at a tick.
type linkSignal struct {
	// mainRate is the main stream's bitrate (0: unknown); estimate the
	// GCC estimate of the link.
	mainRate, estimate float64
	// report is set when a receiver report came since the last tick;
	// congested and heavy say what it showed.
	report, congested, heavy bool
}

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

	cur Stream
	// upFree: the link is trusted (near) and the session started on the
	// sub stream only because main's cache was too long: it moves up at
	// main's next keyframe without a probe, once.
	upFree  bool
	pending bool // a switch waits for the new stream's keyframe
	// badSince is the first of the congested reports in a row (zero:
	// the last report was clean).
	badSince   time.Time
	probeUntil time.Time
	probeSeen  bool // a clean report came in the probe's last probeJudge
	nextProbe  time.Time
	backoff    time.Duration
}

func newAdapter(p Preference, start Stream, haveSub bool, r reach, now time.Time) *adapter {
	a := &adapter{cur: start, backoff: firstProbeAfter, nextProbe: now.Add(firstProbeAfter), upFree: r != reachFar}
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

// step returns what to do at now.
func (a *adapter) step(now time.Time, sig linkSignal) action {
	if sig.report {
		if sig.congested {
			if a.badSince.IsZero() {
				a.badSince = now
			}
		} else {
			a.badSince = time.Time{}
		}
	}
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
		if sig.report && sig.congested {
			// The link gave way during the probe: stop at once.
			a.probeUntil = time.Time{}
			a.failProbe(now)
			return actEndProb
		}
		if sig.report && !now.Before(a.probeUntil.Add(-probeJudge)) {
			// Only a report from the probe's last second judges it: the
			// link's queue takes that long to fill at full rate.
			a.probeSeen = true
		}
		if now.Before(a.probeUntil) || !a.probeSeen {
			if now.Sub(a.probeUntil) > probeFor {
				// No report for a whole probe again: give up.
				a.probeUntil = time.Time{}
				a.failProbe(now)
				return actEndProb
			}
			return actNone
		}
		a.probeUntil = time.Time{}
		if sig.mainRate <= 0 {
			a.failProbe(now)
			return actEndProb
		}
		a.backoff = firstProbeAfter
		a.pending = true
		return actSwitchMain
	}
	if a.upFree && a.cur == StreamSub {
		a.upFree, a.pending = false, true
		return actSwitchMain
	}
	switch a.cur {
	case StreamMain:
		if !(sig.report && sig.heavy) && (a.badSince.IsZero() || !sig.report || now.Sub(a.badSince) < congestedFor) {
			return actNone
		}
		a.badSince, a.upFree = time.Time{}, false
		a.failProbe(now) // a move down delays the next probe like a failed one
		a.pending = true
		return actSwitchSub
	default:
		if sig.mainRate <= 0 || now.Before(a.nextProbe) || sig.estimate < probeGate*sig.mainRate {
			return actNone
		}
		a.probeUntil, a.probeSeen, a.badSince = now.Add(probeFor), false, time.Time{}
		return actProbe
	}
}

func (a *adapter) failProbe(now time.Time) {
	a.backoff = min(2*a.backoff, maxProbeEvery)
	a.nextProbe = now.Add(a.backoff)
}

// abortProbe: the session stopped a probe that was congesting the link.
func (a *adapter) abortProbe(now time.Time) {
	if !a.probeUntil.IsZero() {
		a.probeUntil = time.Time{}
		a.failProbe(now)
	}
}

// switched tells the adapter the session now plays s.
func (a *adapter) switched(s Stream) {
	a.cur, a.pending, a.badSince = s, false, time.Time{}
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

// linkReports keeps what the player's receiver reports (RTCP RR) say of
// the video: the loss of the last one, the round trip and its least.
// Written by the session's RTCP reader, read by its media goroutine.
type linkReports struct {
	mu      sync.Mutex
	fresh   bool // a loss window closed or a round trip came since the last take
	loss    float64
	rtt     time.Duration
	minRTT  time.Duration
	reports int
	// The loss window: cumulative lost and highest sequence number at its
	// start. Loss is measured over lossWindow, not per report: Chromium
	// sends a report with every NACK, and over a few packets one loss is
	// 20 %.
	winAt            time.Time
	winLost, winHigh uint32
	haveWin          bool
}

// lossWindow is the least time a loss figure is measured over.
const lossWindow = time.Second

// add books one reception report of the session's video; now is when it
// came.
func (l *linkReports) add(r rtcp.ReceptionReport, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reports++
	switch {
	case !l.haveWin:
		l.winAt, l.winLost, l.winHigh, l.haveWin = now, r.TotalLost, r.LastSequenceNumber, true
	case now.Sub(l.winAt) >= lossWindow:
		if expected := r.LastSequenceNumber - l.winHigh; expected > 0 && expected < 1<<30 {
			lost := float64(int32(r.TotalLost - l.winLost))
			l.loss = min(max(lost/float64(expected), 0), 1)
		}
		l.fresh = true
		l.winAt, l.winLost, l.winHigh = now, r.TotalLost, r.LastSequenceNumber
	}
	if r.LastSenderReport == 0 {
		return
	}
	l.fresh = true
	// RFC 3550 6.4.1: now − LSR − DLSR, in 1/65536 s.
	d := ntpMiddle(now) - r.LastSenderReport - r.Delay
	rtt := time.Duration(int64(d) * int64(time.Second) >> 16)
	if rtt <= 0 || rtt > 30*time.Second {
		return
	}
	l.rtt = rtt
	if l.minRTT == 0 || rtt < l.minRTT {
		l.minRTT = rtt
	}
}

// last is the round trip (ms) and loss of the last report.
func (l *linkReports) last() (rttMS, loss float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return float64(l.rtt.Microseconds()) / 1000, l.loss
}

// take returns the signal of the reports since the last take.
func (l *linkReports) take(mainRate, estimate float64) linkSignal {
	l.mu.Lock()
	defer l.mu.Unlock()
	sig := linkSignal{mainRate: mainRate, estimate: estimate, report: l.fresh}
	if l.fresh {
		sig.heavy = l.loss >= heavyLoss
		sig.congested = l.loss >= congestedLoss || l.minRTT > 0 && l.rtt-l.minRTT >= congestedRTT
	}
	l.fresh = false
	return sig
}

// ntpMiddle is the middle 32 bits of t's NTP timestamp.
func ntpMiddle(t time.Time) uint32 {
	const epochOffset = 2208988800 // 1900 to 1970, in seconds
	secs := uint64(t.Unix()) + epochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((secs<<32 | frac) >> 16)
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

// The estimate's ceiling. pion's GCC caps its increase at 1.5 times the
// received rate only while that rate is above its target, so a session
// that sends less than its estimate (a 2 Mbit/s camera on a link
// estimated at 3) is application-limited and its estimate grows 8 % a
// second without bound: on emulated 4G to GCC's 50 Mbit/s maximum within
// a minute. Paced and sized by that, a GOP replay went out far faster
// than the 4 Mbit/s link, lost much of itself in the link's queue and
// froze the player for 1.6 s. libwebrtc holds its estimate under 1.5
// times the acknowledged throughput plus 10 kbit/s; the gateway holds it
// under the same share of what it sent (the acknowledged share differs
// by the loss, which GCC's loss side answers for), and never below
// initialEstimate, so a session's start and its probes' gate are as
// before.
const (
	ceilingFactor = 1.5
	ceilingSlack  = 10_000
)

// sentRate is what a session sent over its last second, sampled at its
// ticks; owned by the session goroutine.
type sentRate struct {
	at    [5]time.Time
	total [5]uint64
	n     int
}

// add records the session's byte count at now and returns the
// estimate's ceiling in bit/s (0 until a second has been sampled).
func (r *sentRate) add(now time.Time, total uint64) float64 {
	r.at[r.n%len(r.at)], r.total[r.n%len(r.at)] = now, total
	r.n++
	if r.n < len(r.at) {
		return 0
	}
	old := r.n % len(r.at)
	d := now.Sub(r.at[old]).Seconds()
	if d <= 0 || total < r.total[old] {
		return 0
	}
	rate := float64(total-r.total[old]) * 8 / d
	return max(initialEstimate, ceilingFactor*rate+ceilingSlack)
}
