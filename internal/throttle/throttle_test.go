package throttle

import (
	"testing"
	"time"
)

func TestPenaltiesDoubleAndResetOnSuccess(t *testing.T) {
	th := New(Limits{FreeFailures: 3, Penalty: time.Second, MaxPenalty: 8 * time.Second})
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if b, _ := th.Blocked("10.0.0.9", "zhang.wei", now); b {
			t.Fatalf("blocked after %d failures, the first 3 are free", i)
		}
		th.Failed("10.0.0.9", "zhang.wei", now)
	}
	// The 3rd failure starts a 1 s penalty; each further one doubles it,
	// up to the cap.
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		b, until := th.Blocked("10.0.0.9", "zhang.wei", now)
		if !b || until.Sub(now) != want {
			t.Fatalf("blocked=%v for %v, want %v", b, until.Sub(now), want)
		}
		// Another address is held back by the username's penalty too.
		if b, _ := th.Blocked("10.0.0.10", "zhang.wei", now); !b {
			t.Fatal("the username's penalty does not hold on another address")
		}
		now = until
		th.Failed("10.0.0.9", "zhang.wei", now)
	}
	now = now.Add(time.Minute)
	th.Succeeded("10.0.0.9", "zhang.wei")
	if b, _ := th.Blocked("10.0.0.9", "zhang.wei", now); b {
		t.Fatal("still blocked after a success")
	}
}

// Someone failing with a username from elsewhere does not lock its owner
// out of an address it logged in from before.
func TestKnownAddressKeepsItsOwnCount(t *testing.T) {
	th := New(Limits{FreeFailures: 2, Penalty: time.Second, MaxPenalty: time.Minute})
	now := time.Unix(1_700_000_000, 0)
	th.Succeeded("10.0.0.5", "chen.admin")
	for range 10 {
		th.Failed("10.0.0.66", "chen.admin", now)
	}
	if b, _ := th.Blocked("10.0.0.66", "chen.admin", now); !b {
		t.Fatal("the guessing address is not blocked")
	}
	if b, _ := th.Blocked("10.0.0.5", "chen.admin", now); b {
		t.Fatal("the owner is locked out of the address they use")
	}
}

// The table stays bounded however many addresses fail.
func TestBounded(t *testing.T) {
	th := New(Limits{FreeFailures: 1, Penalty: time.Second, MaxPenalty: time.Second})
	now := time.Unix(1_700_000_000, 0)
	for i := range maxTracked + 200 {
		th.Failed(string(rune('a'+i%26))+string(rune(i)), "", now)
	}
	if n := len(th.keys); n > maxTracked {
		t.Fatalf("%d keys tracked, bound %d", n, maxTracked)
	}
}
