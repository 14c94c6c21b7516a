package whep

import (
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
		lan      bool
		want     Stream
	}{
		{"no sub stream", Preference{Quality: QualitySub}, large, streamInfo{}, 3 * mbit, false, StreamMain},
		{"sub asked", Preference{Quality: QualitySub}, small, sub, 50 * mbit, true, StreamSub},
		{"grid on the LAN", grid, small, sub, 50 * mbit, true, StreamSub},
		{"auto, remote", auto, small, sub, 50 * mbit, false, StreamSub},
		{"auto, LAN, small cache", auto, small, sub, 3 * mbit, true, StreamMain},
		{"auto, LAN, large cache, slow estimate", auto, large, sub, 3 * mbit, true, StreamSub},
		{"auto, LAN, large cache, fast", auto, large, sub, 50 * mbit, true, StreamMain},
		{"auto, LAN, link slower than main", auto, small, sub, 1 * mbit, true, StreamSub},
		{"main, large cache on a slow link: start on sub", main, large, sub, 3 * mbit, false, StreamSub},
		{"main, sub not started yet", main, large, streamInfo{}, 3 * mbit, false, StreamMain},
		// Asked for main: it is sent, paced no slower than its own rate.
		{"main, link slower than main", main, small, sub, 1 * mbit, false, StreamMain},
	} {
		if got := chooseStart(tc.p, tc.main, tc.sub, tc.estimate, tc.lan); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// The adapter as a timeline of receiver reports: down after two
// congested reports (or one with heavy loss); up only after a probe the
// reports show did not congest the link; probes back off after a
// failure.
func TestAdapterTimeline(t *testing.T) {
	const mainRate = 2_000_000
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const est = 3_000_000
	quiet := linkSignal{mainRate: mainRate, estimate: est}
	clean := linkSignal{mainRate: mainRate, estimate: est, report: true}
	congested := linkSignal{mainRate: mainRate, estimate: est, report: true, congested: true}
	heavy := linkSignal{mainRate: mainRate, estimate: est, report: true, congested: true, heavy: true}
	a := newAdapter(Preference{Quality: QualityAuto}, StreamMain, true, t0)
	for _, s := range []struct {
		at   time.Duration
		sig  linkSignal
		want action
	}{
		{0, clean, actNone},
		{time.Second, congested, actNone}, // one congested report: wait
		{1250 * time.Millisecond, quiet, actNone},
		{2 * time.Second, clean, actNone}, // the link recovered
		{3 * time.Second, congested, actNone},
		{4 * time.Second, congested, actSwitchSub}, // two in a row
		{4250 * time.Millisecond, heavy, actNone},  // pending: nothing until switched
	} {
		if got := a.step(at(s.at), s.sig); got != s.want {
			t.Fatalf("at %s: action %d, want %d", s.at, got, s.want)
		}
	}
	a.switched(StreamSub)
	// The move down delayed the next probe by the doubled backoff (6 s).
	if got := a.step(at(9*time.Second), clean); got != actNone {
		t.Fatalf("probed %d too soon after moving down", got)
	}
	if got := a.step(at(10100*time.Millisecond), quiet); got != actProbe {
		t.Fatalf("no probe after the backoff: %d", got)
	}
	// The link gives way during the probe: stop, back off 12 s.
	if got := a.step(at(11*time.Second), congested); got != actEndProb {
		t.Fatalf("a failing probe went on: %d", got)
	}
	if got := a.step(at(20*time.Second), clean); got != actNone {
		t.Fatalf("probed again before the doubled backoff: %d", got)
	}
	if got := a.step(at(23*time.Second), quiet); got != actProbe {
		t.Fatalf("no probe after 12 s: %d", got)
	}
	if got := a.step(at(24*time.Second), clean); got != actNone {
		t.Fatalf("probe cut short: %d", got)
	}
	if got := a.step(at(25600*time.Millisecond), quiet); got != actSwitchMain {
		t.Fatalf("a probe that held did not move up: %d", got)
	}
	a.switched(StreamMain)
	// Heavy loss on main: down at once.
	if got := a.step(at(30*time.Second), heavy); got != actSwitchSub {
		t.Fatalf("heavy loss on main: %d", got)
	}
	// A probe without any report in it does not move up.
	b := newAdapter(Preference{Quality: QualityAuto}, StreamSub, true, t0)
	if got := b.step(at(4*time.Second), quiet); got != actProbe {
		t.Fatalf("no first probe: %d", got)
	}
	if got := b.step(at(7*time.Second), quiet); got != actNone {
		t.Fatalf("probe without reports: %d", got)
	}
	if got := b.step(at(9100*time.Millisecond), quiet); got != actEndProb {
		t.Fatalf("probe without reports did not give up: %d", got)
	}
	// Unknown main rate (main not pulled yet): no probe; nor while the
	// estimate is far below main's rate.
	c := newAdapter(Preference{Quality: QualityAuto}, StreamSub, true, t0)
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

// A main session that started on the sub stream moves to main at once;
// if that fails it stays on sub. A fixed session never probes.
func TestAdapterFixedSessions(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	sig := linkSignal{mainRate: 2_000_000, report: true}
	a := newAdapter(Preference{Quality: QualityMain}, StreamSub, true, t0)
	if got := a.step(t0, sig); got != actSwitchMain {
		t.Fatalf("main session on sub: %d", got)
	}
	a.abandon(t0)
	if got := a.step(t0.Add(time.Minute), sig); got != actNone {
		t.Fatalf("retried a failed move: %d", got)
	}
	s := newAdapter(Preference{Quality: QualitySub}, StreamSub, true, t0)
	g := newAdapter(Preference{Quality: QualityAuto, Tiles: 9}, StreamSub, true, t0)
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
	l.add(rtcp.ReceptionReport{FractionLost: 2, LastSenderReport: lsr, Delay: dlsr}, now)
	sig := l.take(1, 0)
	if !sig.report || sig.congested || l.rtt < 59*time.Millisecond || l.rtt > 61*time.Millisecond {
		t.Fatalf("clean report: %+v, rtt %s", sig, l.rtt)
	}
	if l.take(1, 0).report {
		t.Fatal("the same report taken twice")
	}
	// The round trip grows by 200 ms: a queue is filling.
	l.add(rtcp.ReceptionReport{LastSenderReport: ntpMiddle(now.Add(-280 * time.Millisecond)), Delay: dlsr}, now)
	if sig := l.take(1, 0); !sig.congested || sig.heavy {
		t.Fatalf("queue growth: %+v", sig)
	}
	l.add(rtcp.ReceptionReport{FractionLost: 80}, now) // 31 %
	if sig := l.take(1, 0); !sig.congested || !sig.heavy {
		t.Fatalf("heavy loss: %+v", sig)
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
