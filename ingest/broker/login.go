package broker

import (
	"sync"
	"time"
)

// LoginLimits bound what guessing passwords can cost. A bcrypt check takes
// tens of milliseconds of a small board's CPU, so failed logins are
// throttled per remote address and per username, and only a few checks run
// at once.
type LoginLimits struct {
	// FreeFailures is how many failed logins an address or a username may
	// have before the penalty starts: after that many, logins are refused
	// without a check for Penalty (0: DefaultFreeFailures).
	FreeFailures int
	// Penalty is the first penalty; it doubles with every further failure
	// up to MaxPenalty (0: DefaultPenalty, DefaultMaxPenalty).
	Penalty, MaxPenalty time.Duration
	// MaxConcurrentChecks caps the bcrypt checks running at once
	// (0: DefaultMaxConcurrentChecks). A login that finds every slot taken
	// waits for one for at most CheckWait, MaxQueuedChecks of them at a
	// time; the others are refused at once, without a check
	// (0: DefaultMaxQueuedChecks, DefaultCheckWait).
	MaxConcurrentChecks int
	MaxQueuedChecks     int
	CheckWait           time.Duration
}

// Login limit defaults.
const (
	DefaultFreeFailures        = 5
	DefaultPenalty             = time.Second
	DefaultMaxPenalty          = time.Minute
	DefaultMaxConcurrentChecks = 2
	DefaultMaxQueuedChecks     = 64
	DefaultCheckWait           = 5 * time.Second
)

func (l LoginLimits) withDefaults() LoginLimits {
	if l.FreeFailures <= 0 {
		l.FreeFailures = DefaultFreeFailures
	}
	if l.Penalty <= 0 {
		l.Penalty = DefaultPenalty
	}
	if l.MaxPenalty <= 0 {
		l.MaxPenalty = DefaultMaxPenalty
	}
	if l.MaxPenalty < l.Penalty {
		l.MaxPenalty = l.Penalty
	}
	if l.MaxConcurrentChecks <= 0 {
		l.MaxConcurrentChecks = DefaultMaxConcurrentChecks
	}
	if l.MaxQueuedChecks <= 0 {
		l.MaxQueuedChecks = DefaultMaxQueuedChecks
	}
	if l.CheckWait <= 0 {
		l.CheckWait = DefaultCheckWait
	}
	return l
}

// maxTracked bounds the addresses and usernames the throttle remembers; a
// LAN has far fewer. Past it, entries whose penalty is over are forgotten
// first; an attacker with more addresses than that still meets the bound
// on concurrent checks.
const maxTracked = 4096

// throttle counts failed logins per key ("addr:<ip>", "user:<name>",
// "pair:<ip> <name>") and says during which window a key is refused
// without a check. Nobody waits out a penalty: a login inside the window
// is refused at once, so a brute-force loop holds no goroutine and costs
// no bcrypt while it lasts.
//
// A username that has logged in from an address before (since the
// gateway started) is judged there by the failures of that pair alone:
// otherwise anyone could lock the Zigbee2MQTT bridge out by failing
// logins with its username, or every sensor behind a NAT router by
// failing logins from the router's address. Everyone else meets the
// address's and the username's penalties.
type throttle struct {
	limits LoginLimits
	mu     sync.Mutex
	keys   map[string]*failures
	known  map[string]map[string]bool // username → addresses it logged in from
}

type failures struct {
	n     int
	until time.Time // refused before this
	last  time.Time
}

func newThrottle(l LoginLimits) *throttle {
	return &throttle{limits: l, keys: map[string]*failures{}, known: map[string]map[string]bool{}}
}

// blocked reports whether a login by user from ip is refused at now
// without a check, and until when.
func (t *throttle) blocked(ip, user string, now time.Time) (bool, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := []string{"addr:" + ip, "user:" + user}
	switch {
	case user == "":
		keys = keys[:1]
	case t.known[user][ip]:
		keys = []string{"pair:" + ip + " " + user}
	}
	for _, k := range keys {
		if f := t.keys[k]; f != nil && now.Before(f.until) {
			return true, f.until
		}
	}
	return false, time.Time{}
}

// failed records a failed login; user is "" when the username is unknown
// (only configured usernames are tracked, so the table stays bounded).
func (t *throttle) failed(ip, user string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fail("addr:"+ip, now)
	if user != "" {
		t.fail("user:"+user, now)
		t.fail("pair:"+ip+" "+user, now)
	}
}

func (t *throttle) fail(key string, now time.Time) {
	f := t.keys[key]
	if f == nil {
		if len(t.keys) >= maxTracked {
			t.prune(now)
			if len(t.keys) >= maxTracked {
				return
			}
		}
		f = &failures{}
		t.keys[key] = f
	}
	f.n++
	f.last = now
	if over := f.n - t.limits.FreeFailures; over >= 0 {
		d := t.limits.MaxPenalty
		if over < 30 {
			d = min(t.limits.Penalty<<over, t.limits.MaxPenalty)
		}
		f.until = now.Add(d)
	}
}

// prune forgets keys whose last failure is long past.
func (t *throttle) prune(now time.Time) {
	for k, f := range t.keys {
		if now.Sub(f.last) > 10*t.limits.MaxPenalty && !now.Before(f.until) {
			delete(t.keys, k)
		}
	}
}

// succeeded resets the address and the username, and remembers the
// address as one the username logs in from.
func (t *throttle) succeeded(ip, user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, "addr:"+ip)
	if user == "" {
		return
	}
	delete(t.keys, "user:"+user)
	delete(t.keys, "pair:"+ip+" "+user)
	k := t.known[user]
	if k == nil || len(k) >= 16 {
		k = map[string]bool{}
		t.known[user] = k
	}
	k[ip] = true
}
