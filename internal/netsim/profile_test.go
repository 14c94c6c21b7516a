package netsim

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProfiles(t *testing.T) {
	if got, want := Names(), []string{"lan", "office", "4g", "poor4g"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range Names() {
		p, err := Lookup(n)
		if err != nil || p.Name != n {
			t.Fatalf("Lookup(%q) = %+v, %v", n, p, err)
		}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := Lookup("4G")
	if p.RTT != 60*time.Millisecond || p.Jitter != 20*time.Millisecond || p.Loss != 0.01 || p.Rate != 4_000_000 {
		t.Fatalf("4g = %+v", p)
	}
	_, err := Lookup("dialup")
	if err == nil || !strings.Contains(err.Error(), "lan, office, 4g, poor4g") {
		t.Fatalf("unknown profile: %v, want an error naming the known ones", err)
	}
	for _, bad := range []Profile{{Loss: 1.5}, {Loss: math.NaN()}, {RTT: -1}, {Rate: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if d := (Profile{Rate: 10, UpRate: 3}).direction(true); d.rate != 3 || d.queue != DefaultQueue {
		t.Errorf("up direction %+v", d)
	}
	if d := (Profile{Rate: 10, UpRate: 3, RTT: 8}).direction(false); d.rate != 10 || d.delay != 4 {
		t.Errorf("down direction %+v", d)
	}
}

// testPipeline returns a pipeline fed by hand (admit) for exact checks of
// the schedule, without sockets or clocks.
func testPipeline(d direction, seed, number uint64) *pipeline {
	return newPipeline(d, false, seed, number, nil, nil, nil, &counters{}, func(string, ...any) {})
}

func queued(p *pipeline) []packet {
	var out []packet
	for p.q.n > 0 {
		out = append(out, p.q.pop())
	}
	return out
}

// TestScheduleRateAndQueue checks the bottleneck arithmetic: 1000 bytes
// take 8 ms at 1 Mbit/s, a packet that would wait more than Queue is
// dropped without booking the link.
func TestScheduleRateAndQueue(t *testing.T) {
	p := testPipeline(direction{delay: 10 * time.Millisecond, rate: 1_000_000, queue: 20 * time.Millisecond}, 1, 0)
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for range 4 {
		p.admit(packet{b: make([]byte, 1000), at: t0}) // departs 8, 16; 24 and 32 wait too long
	}
	p.admit(packet{b: make([]byte, 1000), at: ms(10)}) // departs 24: waits 14 ms
	p.admit(packet{b: make([]byte, 500), at: ms(100)}) // link idle: departs 104
	want := []time.Time{ms(18), ms(26), ms(34), ms(114)}
	got := queued(p)
	if len(got) != len(want) {
		t.Fatalf("%d packets queued, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].at.Equal(want[i]) {
			t.Errorf("packet %d delivered at +%v, want +%v", i, got[i].at.Sub(t0), want[i].Sub(t0))
		}
	}
	if st := p.c.snapshot(); st.Packets != 6 || st.Overflow != 2 || st.Bytes != 5500 {
		t.Errorf("stats %+v", st)
	}
}

// TestScheduleJitterKeepsOrder: jitter larger than the delay neither
// reorders nor delivers before arrival, and never delays past the
// largest one-way delay.
func TestScheduleJitterKeepsOrder(t *testing.T) {
	p := testPipeline(direction{delay: 10 * time.Millisecond, jitter: 30 * time.Millisecond}, 7, 0)
	t0 := time.Unix(1000, 0)
	var arrivals []time.Time
	for i := range 1000 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		arrivals = append(arrivals, at)
		p.admit(packet{b: []byte{1}, at: at})
	}
	prev := t0
	for i, pk := range queued(p) {
		if pk.at.Before(prev) || pk.at.Before(arrivals[i]) || pk.at.After(arrivals[i].Add(40*time.Millisecond)) {
			t.Fatalf("packet %d arrived +%v, delivered +%v after the previous at +%v", i, arrivals[i].Sub(t0), pk.at.Sub(t0), prev.Sub(t0))
		}
		prev = pk.at
	}
}

// TestScheduleLossIsSeeded: the same seed and pipeline number lose the
// same packets; another number other ones.
func TestScheduleLossIsSeeded(t *testing.T) {
	kept := func(number uint64) []byte {
		p := testPipeline(direction{loss: 0.5}, 42, number)
		for i := range 1000 {
			p.admit(packet{b: []byte{byte(i)}, at: time.Unix(0, 0)})
		}
		var out []byte
		for _, pk := range queued(p) {
			out = append(out, pk.b[0])
		}
		return out
	}
	a, b, c := kept(0), kept(0), kept(1)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different losses")
	}
	if slices.Equal(a, c) {
		t.Fatal("different pipelines, same losses")
	}
	if n := len(a); n < 400 || n > 600 {
		t.Fatalf("%d of 1000 kept at loss 0.5", n)
	}
}
