package whep

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func TestParsePreference(t *testing.T) {
	for _, tc := range []struct {
		quality, tiles string
		want           Preference
		bad            bool
	}{
		{"", "", Preference{Quality: QualityAuto}, false},
		{"sub", "", Preference{Quality: QualitySub}, false},
		{"auto", "9", Preference{Quality: QualityAuto, Tiles: 9}, false},
		{"hd", "", Preference{}, true},
		{"main", "0", Preference{}, true},
		{"main", "65", Preference{}, true},
		{"main", "x", Preference{}, true},
	} {
		p, err := parsePreference(tc.quality, tc.tiles)
		if (err != nil) != tc.bad || !tc.bad && p != tc.want {
			t.Errorf("quality=%q tiles=%q: %+v, %v", tc.quality, tc.tiles, p, err)
		}
	}
}

// The start choice: the sub stream for auto off the gateway's network
// and for walls; otherwise what was asked, unless main's cache would take
// longer than the budget to catch up, then the sub stream.
func TestChooseStart(t *testing.T) {
	const mbit = 1_000_000
	small := streamInfo{ok: true, cacheBytes: 100 << 10, rate: 2 * mbit}  // a keyframe and a little
	large := streamInfo{ok: true, cacheBytes: 2500 << 10, rate: 2 * mbit} // 9 s into a 10 s GOP
	sub := streamInfo{ok: true, cacheBytes: 40 << 10, rate: 0.3 * mbit}
	auto, main, grid := Preference{Quality: QualityAuto}, Preference{Quality: QualityMain}, Preference{Quality: QualityAuto, Tiles: 9}
	for _, tc := range []struct {
		name     string
		p        Preference
		main     streamInfo
		sub      streamInfo
		estimate float64
		reach    reach
		want     Stream
	}{
		{"no sub stream", Preference{Quality: QualitySub}, large, streamInfo{}, 3 * mbit, reachFar, StreamMain},
		{"sub asked", Preference{Quality: QualitySub}, small, sub, 50 * mbit, reachLAN, StreamSub},
		{"grid on the LAN", grid, small, sub, 50 * mbit, reachLAN, StreamSub},
		{"auto, far", auto, small, sub, 50 * mbit, reachFar, StreamSub},
		{"auto, near, small cache", auto, small, sub, 3 * mbit, reachNear, StreamMain},
		{"auto, LAN, small cache", auto, small, sub, 3 * mbit, reachLAN, StreamMain},
		{"auto, LAN, large cache, slow estimate", auto, large, sub, 3 * mbit, reachLAN, StreamSub},
		{"auto, LAN, large cache, fast", auto, large, sub, 50 * mbit, reachLAN, StreamMain},
		{"auto, LAN, link slower than main", auto, small, sub, 1 * mbit, reachLAN, StreamSub},
		{"main, large cache on a slow link: start on sub", main, large, sub, 3 * mbit, reachFar, StreamSub},
		{"main, sub not started yet", main, large, streamInfo{}, 3 * mbit, reachFar, StreamMain},
		// Asked for main: it is sent, paced no slower than its own rate.
		{"main, link slower than main", main, small, sub, 1 * mbit, reachFar, StreamMain},
	} {
		if got := chooseStart(tc.p, tc.main, tc.sub, tc.estimate, tc.reach); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// The adapter as a timeline of receiver reports: down after congestion
// reported for 1.5 s without a clean report between (or one report of
// heavy loss); up only after a probe the reports show did not congest
// the link; probes back off after a failure.
func TestAdapterTimeline(t *testing.T) {
	const mainRate = 2_000_000
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const est = 3_000_000
	quiet := linkSignal{mainRate: mainRate, estimate: est}
	clean := linkSignal{mainRate: mainRate, estimate: est, report: true}
	congested := linkSignal{mainRate: mainRate, estimate: est, report: true, congested: true}
	heavy := linkSignal{mainRate: mainRate, estimate: est, report: true, congested: true, heavy: true}
	a := newAdapter(Preference{Quality: QualityAuto}, StreamMain, true, reachNear, t0)
	for _, s := range []struct {
		at   time.Duration
		sig  linkSignal
		want action
	}{
		{0, clean, actNone},
		{time.Second, congested, actNone}, // congestion begins
		{1250 * time.Millisecond, congested, actNone},
		{1500 * time.Millisecond, congested, actNone}, // a keyframe's queue, reported three times
		{2 * time.Second, clean, actNone},             // and gone
		{3 * time.Second, congested, actNone},
		{4 * time.Second, congested, actNone},
		{4400 * time.Millisecond, quiet, actNone},
		{4500 * time.Millisecond, congested, actSwitchSub}, // 1.5 s of it
		{4750 * time.Millisecond, heavy, actNone},          // pending: nothing until switched
	} {
		if got := a.step(at(s.at), s.sig); got != s.want {
			t.Fatalf("at %s: action %d, want %d", s.at, got, s.want)
		}
	}
	a.switched(StreamSub)
	// The move down delayed the next probe by the doubled backoff (20 s).
	if got := a.step(at(20*time.Second), clean); got != actNone {
		t.Fatalf("probed %d too soon after moving down", got)
	}
	if got := a.step(at(25*time.Second), quiet); got != actProbe {
		t.Fatalf("no probe after the backoff: %d", got)
	}
	// The link gives way during the probe: stop, back off 40 s.
	if got := a.step(at(26*time.Second), congested); got != actEndProb {
		t.Fatalf("a failing probe went on: %d", got)
	}
	if got := a.step(at(60*time.Second), clean); got != actNone {
		t.Fatalf("probed again before the doubled backoff: %d", got)
	}
	if got := a.step(at(66500*time.Millisecond), quiet); got != actProbe {
		t.Fatalf("no probe after 40 s: %d", got)
	}
	if got := a.step(at(67200*time.Millisecond), clean); got != actNone {
		t.Fatalf("probe cut short: %d", got)
	}
	// A clean report early in the probe does not judge it: the queue
	// takes a second to fill.
	if got := a.step(at(69100*time.Millisecond), quiet); got != actNone {
		t.Fatalf("a probe judged by an early report moved up: %d", got)
	}
	if got := a.step(at(69300*time.Millisecond), clean); got != actSwitchMain {
		t.Fatalf("a probe that held did not move up: %d", got)
	}
	a.switched(StreamMain)
	// Heavy loss on main: down at once.
	if got := a.step(at(75*time.Second), heavy); got != actSwitchSub {
		t.Fatalf("heavy loss on main: %d", got)
	}
	// A probe without any report in it does not move up.
	b := newAdapter(Preference{Quality: QualityAuto}, StreamSub, true, reachFar, t0)
	if got := b.step(at(5*time.Second), quiet); got != actNone {
		t.Fatalf("probed before the estimate had feedback: %d", got)
	}
	if got := b.step(at(10500*time.Millisecond), quiet); got != actProbe {
		t.Fatalf("no first probe: %d", got)
	}
	if got := b.step(at(13500*time.Millisecond), quiet); got != actNone {
		t.Fatalf("probe without reports: %d", got)
	}
	if got := b.step(at(15600*time.Millisecond), quiet); got != actEndProb {
		t.Fatalf("probe without reports did not give up: %d", got)
	}
	// Unknown main rate (main not pulled yet): no probe; nor while the
	// estimate is far below main's rate.
	c := newAdapter(Preference{Quality: QualityAuto}, StreamSub, true, reachFar, t0)
	if got := c.step(at(time.Minute), linkSignal{report: true, estimate: est}); got != actNone {
		t.Fatalf("probed without knowing the main rate: %d", got)
	}
	if got := c.step(at(2*time.Minute), linkSignal{report: true, mainRate: mainRate, estimate: 200_000}); got != actNone {
		t.Fatalf("probed a link estimated at a tenth of main: %d", got)
	}
	if got := c.step(at(3*time.Minute), linkSignal{report: true, mainRate: mainRate, estimate: 1_500_000}); got != actProbe {
		t.Fatalf("no probe once the estimate came within reach: %d", got)
	}
}

// A near auto session that started on the sub stream (main's cache too
// long) moves up at once, without a probe; a far one waits for a probe.
func TestAdapterNearStartsUpWithoutProbe(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	sig := linkSignal{mainRate: 2_000_000, estimate: 3_000_000}
	if got := newAdapter(Preference{Quality: QualityAuto}, StreamSub, true, reachNear, t0).step(t0, sig); got != actSwitchMain {
		t.Fatalf("near session on sub: %d", got)
	}
	if got := newAdapter(Preference{Quality: QualityAuto}, StreamSub, true, reachFar, t0).step(t0, sig); got != actNone {
		t.Fatalf("far session on sub moved without a probe: %d", got)
	}
	for rtt, want := range map[time.Duration]reach{0: reachFar, 2 * time.Millisecond: reachLAN, 60 * time.Millisecond: reachNear, 150 * time.Millisecond: reachFar} {
		if got := reachOf(rtt); got != want {
			t.Errorf("reachOf(%s) = %d, want %d", rtt, got, want)
		}
	}
}

// A main session that started on the sub stream moves to main at once;
// if that fails it stays on sub. A fixed session never probes.
func TestAdapterFixedSessions(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	sig := linkSignal{mainRate: 2_000_000, report: true}
	a := newAdapter(Preference{Quality: QualityMain}, StreamSub, true, reachFar, t0)
	if got := a.step(t0, sig); got != actSwitchMain {
		t.Fatalf("main session on sub: %d", got)
	}
	a.abandon(t0)
	if got := a.step(t0.Add(time.Minute), sig); got != actNone {
		t.Fatalf("retried a failed move: %d", got)
	}
	s := newAdapter(Preference{Quality: QualitySub}, StreamSub, true, reachNear, t0)
	g := newAdapter(Preference{Quality: QualityAuto, Tiles: 9}, StreamSub, true, reachNear, t0)
	for _, x := range []*adapter{s, g} {
		if got := x.step(t0.Add(time.Minute), sig); got != actNone {
			t.Fatalf("fixed sub session acted: %d", got)
		}
	}
}

// Receiver reports: loss from the fraction lost, the round trip from LSR
// and DLSR (RFC 3550), congestion from either.
func TestLinkReports(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var l linkReports
	if sig := l.take(1, 0); sig.report {
		t.Fatal("a report before any came")
	}
	// Sent a sender report 80 ms ago, held 20 ms by the player: 60 ms.
	lsr := ntpMiddle(now.Add(-80 * time.Millisecond))
	dlsr := uint32(20 * 65536 / 1000)
	l.add(rtcp.ReceptionReport{LastSequenceNumber: 1000, LastSenderReport: lsr, Delay: dlsr}, now)
	sig := l.take(1, 0)
	if !sig.report || sig.congested || l.rtt < 59*time.Millisecond || l.rtt > 61*time.Millisecond {
		t.Fatalf("clean report: %+v, rtt %s", sig, l.rtt)
	}
	if l.take(1, 0).report {
		t.Fatal("the same report taken twice")
	}
	// A report 100 ms later with one packet lost of five (a NACK's
	// report, say) is no loss figure yet: the window is a second.
	l.add(rtcp.ReceptionReport{LastSequenceNumber: 1005, TotalLost: 1, FractionLost: 51}, now.Add(100*time.Millisecond))
	if sig := l.take(1, 0); sig.report || l.loss != 0 {
		t.Fatalf("a 100 ms report made a loss figure: %+v, loss %v", sig, l.loss)
	}
	// A second on: 300 packets expected, 6 lost, 2 %.
	l.add(rtcp.ReceptionReport{LastSequenceNumber: 1300, TotalLost: 6}, now.Add(time.Second))
	if sig := l.take(1, 0); !sig.report || sig.congested || l.loss < 0.019 || l.loss > 0.021 {
		t.Fatalf("1 s window: %+v, loss %v", sig, l.loss)
	}
	// The round trip grows by 200 ms: a queue is filling.
	l.add(rtcp.ReceptionReport{LastSequenceNumber: 1310, TotalLost: 6, LastSenderReport: ntpMiddle(now.Add(time.Second - 280*time.Millisecond)), Delay: dlsr}, now.Add(time.Second))
	if sig := l.take(1, 0); !sig.congested || sig.heavy {
		t.Fatalf("queue growth: %+v", sig)
	}
	// The next second loses 90 of 300: heavy.
	l.add(rtcp.ReceptionReport{LastSequenceNumber: 1600, TotalLost: 96}, now.Add(2*time.Second))
	if sig := l.take(1, 0); !sig.congested || !sig.heavy {
		t.Fatalf("heavy loss: %+v, loss %v", sig, l.loss)
	}
}

// The pacer lets out a burst of paceBurst worth and then spaces packets
// at the rate.
func TestPacer(t *testing.T) {
	var p pacer
	now := time.Unix(1_700_000_000, 0)
	const rate = 8_000_000 // 1 MB/s: 1000 bytes take 1 ms
	var waited time.Duration
	for range 100 {
		waited += p.delay(now.Add(waited), 1000, rate)
	}
	// 100 ms of data: the first 20 ms are banked credit, 5 ms slack.
	if waited < 70*time.Millisecond || waited > 80*time.Millisecond {
		t.Fatalf("100 kB at 1 MB/s waited %s, want 75 ms", waited)
	}
	// After a long idle no more than the burst is banked.
	later := now.Add(time.Second)
	if d := p.delay(later, 1000, rate); d != 0 {
		t.Fatalf("waited %s after idling", d)
	}
	if p.next.Sub(later) > 0 {
		t.Fatalf("credit beyond the burst: next %s after now", p.next.Sub(later))
	}
}

// TestLANViewerPacedAsLAN: a viewer on the gateway's network is paced,
// and its catch-ups sized, as a link of at least lanEstimate, whatever
// GCC's estimate (which starts at initialEstimate and grows only with
// what the stream lets it see): the 10 s GOP cache of a 2 Mbit/s camera
// (2.5 MB) is caught up within the budget, where pacing by GCC's start
// took about 8 s and left the viewer that far behind the camera. A far
// viewer keeps GCC's estimate.
func TestLANViewerPacedAsLAN(t *testing.T) {
	const cache, rate = 2_500_000, 2_000_000
	lan := &session{reach: reachLAN}
	if est := lan.paceEstimate(); est < lanEstimate {
		t.Fatalf("a LAN viewer is paced by %.0f bit/s, want at least %d", est, lanEstimate)
	}
	if d := catchUpTime(cache, rate, lan.paceEstimate()); d < 0 || d > catchupBudget {
		t.Fatalf("a LAN viewer catches a 10 s GOP up in %s, want within %s", d, catchupBudget)
	}
	far := &session{reach: reachFar}
	if est := far.paceEstimate(); est != initialEstimate {
		t.Fatalf("a far viewer without feedback is paced by %.0f bit/s, want GCC's start %d", est, initialEstimate)
	}
	if d := catchUpTime(cache, rate, far.paceEstimate()); d <= catchupBudget {
		t.Fatalf("at GCC's start the cache would be caught up in %s: the case above proves nothing", d)
	}
}

// runawayGCC is a GCC whose application-limited estimate has grown to
// its maximum, as pion's does on a link the stream does not fill.
type runawayGCC struct{ bps int }

func (g runawayGCC) GetTargetBitrate() int    { return g.bps }
func (g runawayGCC) GetStats() map[string]any { return map[string]any{"usage": "normal"} }

// TestEstimateHeldUnderWhatWasSent: GCC's estimate is held under 1.5 times
// what the session sent over the last second (never below GCC's start),
// so a viewer of a 2 Mbit/s camera is not paced, nor its replays sized,
// at the 50 Mbit/s an application-limited GCC climbs to on a 4 Mbit/s
// link; a probe's padding counts as sent, so probing can still lift it
// past the main stream.
func TestEstimateHeldUnderWhatWasSent(t *testing.T) {
	ss := &session{reach: reachFar, bwe: runawayGCC{bps: 50_000_000}}
	if est := ss.estimate(); est != 50_000_000 {
		t.Fatalf("before a second of sending the estimate is %.0f, want GCC's own", est)
	}
	start := time.Unix(1000, 0)
	var total uint64
	tick := func(i int, bps float64) float64 {
		total += uint64(bps / 8 / 4) // a quarter of a second's bytes
		return ss.sent.add(start.Add(time.Duration(i)*250*time.Millisecond), total)
	}
	for i := range 4 {
		if c := tick(i, 2_000_000); c != 0 {
			t.Fatalf("tick %d: ceiling %.0f before a second was sampled", i, c)
		}
	}
	c := tick(4, 2_000_000)
	if want := ceilingFactor*2_000_000 + ceilingSlack; c < want*0.99 || c > want*1.01 {
		t.Fatalf("ceiling at 2 Mbit/s sent: %.0f, want %.0f", c, want)
	}
	ss.ceiling.Store(math.Float64bits(c))
	if est := ss.estimate(); est != c {
		t.Fatalf("estimate %.0f with GCC at 50 Mbit/s, want the ceiling %.0f", est, c)
	}
	// A 10 s GOP cache of that camera no longer "fits" a replay.
	if fits(2_500_000, 2_000_000, ss.paceEstimate()) {
		t.Fatal("a 2.5 MB replay fits a viewer the gateway sends 2 Mbit/s: the ceiling did not reach the sizing")
	}
	// The sub stream alone: the floor is GCC's start, so probing stays possible.
	for i := 5; i < 10; i++ {
		c = tick(i, 300_000)
	}
	if c != initialEstimate {
		t.Fatalf("ceiling at 0.3 Mbit/s sent: %.0f, want the floor %d", c, initialEstimate)
	}
	// A probe at 1.3 times a 2 Mbit/s main stream lifts it past main.
	for i := 10; i < 15; i++ {
		c = tick(i, probeRate(2_000_000)+300_000)
	}
	if c < probeHeadroom*2_000_000 {
		t.Fatalf("ceiling while probing: %.0f, below what the probe must show", c)
	}
}
