package whep

import (
	"testing"
	"time"
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

// The start choice: what the viewer asked for, unless main's cache would
// take longer than the budget to catch up, then the sub stream.
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
		want     Stream
	}{
		{"no sub stream", Preference{Quality: QualitySub}, large, streamInfo{}, 3 * mbit, StreamMain},
		{"sub asked", Preference{Quality: QualitySub}, small, sub, 50 * mbit, StreamSub},
		{"grid", grid, small, sub, 50 * mbit, StreamSub},
		{"auto, small cache", auto, small, sub, 3 * mbit, StreamMain},
		{"auto, large cache on a slow link", auto, large, sub, 3 * mbit, StreamSub},
		{"auto, large cache on a fast link", auto, large, sub, 20 * mbit, StreamMain},
		{"main, large cache on a slow link: start on sub", main, large, sub, 3 * mbit, StreamSub},
		{"main, sub not started yet", main, large, streamInfo{}, 3 * mbit, StreamMain},
		{"link slower than the stream", main, small, sub, 1 * mbit, StreamSub},
	} {
		if got := chooseStart(tc.p, tc.main, tc.sub, tc.estimate); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// The adapter as a timeline: down after a second below the main
// stream's rate; up only after a probe that held; probes back off after
// a failure.
func TestAdapterTimeline(t *testing.T) {
	const mainRate = 2_000_000
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	a := newAdapter(Preference{Quality: QualityAuto}, StreamMain, true, t0)
	steps := []struct {
		at       time.Duration
		estimate float64
		want     action
	}{
		{0, 3_000_000, actNone},
		{250 * time.Millisecond, 2_100_000, actNone}, // below 1.1×: the clock starts
		{time.Second, 2_100_000, actNone},
		{1250 * time.Millisecond, 2_100_000, actSwitchSub},
		{1500 * time.Millisecond, 500_000, actNone}, // pending: nothing until switched
	}
	for _, s := range steps {
		if got := a.step(at(s.at), s.estimate, mainRate); got != s.want {
			t.Fatalf("at %s (estimate %.0f): action %d, want %d", s.at, s.estimate, got, s.want)
		}
	}
	a.switched(StreamSub)
	// The move down delayed the next probe by the doubled backoff (6 s).
	if got := a.step(at(5*time.Second), 5_000_000, mainRate); got != actNone {
		t.Fatalf("probed %d too soon after moving down", got)
	}
	if got := a.step(at(7300*time.Millisecond), 5_000_000, mainRate); got != actProbe {
		t.Fatalf("no probe after the backoff: %d", got)
	}
	// The link gives way during the probe: stop, back off 12 s.
	if got := a.step(at(7600*time.Millisecond), 1_000_000, mainRate); got != actEndProb {
		t.Fatalf("a failing probe went on: %d", got)
	}
	if got := a.step(at(15*time.Second), 5_000_000, mainRate); got != actNone {
		t.Fatalf("probed again before the doubled backoff: %d", got)
	}
	if got := a.step(at(20*time.Second), 5_000_000, mainRate); got != actProbe {
		t.Fatalf("no probe after 12 s: %d", got)
	}
	if got := a.step(at(21*time.Second), 5_000_000, mainRate); got != actNone {
		t.Fatalf("probe cut short: %d", got)
	}
	if got := a.step(at(21600*time.Millisecond), 5_000_000, mainRate); got != actSwitchMain {
		t.Fatalf("a probe that held did not move up: %d", got)
	}
	a.switched(StreamMain)
	if got := a.step(at(22*time.Second), 5_000_000, mainRate); got != actNone {
		t.Fatalf("after moving up: %d", got)
	}
	// Unknown main rate (main not pulled yet): no decision.
	b := newAdapter(Preference{Quality: QualityAuto}, StreamSub, true, t0)
	if got := b.step(at(time.Minute), 50_000_000, 0); got != actNone {
		t.Fatalf("probed without knowing the main rate: %d", got)
	}
}

// A main session that started on the sub stream moves to main at once;
// if that fails it stays on sub. A fixed session never probes.
func TestAdapterFixedSessions(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := newAdapter(Preference{Quality: QualityMain}, StreamSub, true, t0)
	if got := a.step(t0, 100_000, 2_000_000); got != actSwitchMain {
		t.Fatalf("main session on sub: %d", got)
	}
	a.abandon(t0)
	if got := a.step(t0.Add(time.Minute), 100_000, 2_000_000); got != actNone {
		t.Fatalf("retried a failed move: %d", got)
	}
	s := newAdapter(Preference{Quality: QualitySub}, StreamSub, true, t0)
	g := newAdapter(Preference{Quality: QualityAuto, Tiles: 9}, StreamSub, true, t0)
	for _, x := range []*adapter{s, g} {
		if got := x.step(t0.Add(time.Minute), 50_000_000, 2_000_000); got != actNone {
			t.Fatalf("fixed sub session acted: %d", got)
		}
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
