// Package throttle refuses logins after repeated failures, per remote
// address and per username, with a penalty that doubles up to a cap: the
// embedded MQTT broker's device logins and the web console's logins share
// it. A refused login costs no password check and holds no goroutine.
package throttle

import (
	"sync"
	"time"
)

// Limits: after FreeFailures failed logins an address or a username is
// refused for Penalty, doubling with every further failure up to
// MaxPenalty.
type Limits struct {
	FreeFailures        int
	Penalty, MaxPenalty time.Duration
}

// maxTracked bounds the addresses and usernames the throttle remembers; a
// LAN has far fewer. Past it, entries whose penalty is over are forgotten
// first; an attacker with more addresses than that still meets the bound
// on concurrent checks.
const maxTracked = 4096

// Throttle counts failed logins per key ("addr:<ip>", "user:<name>",
// "pair:<ip> <name>") and says during which window a key is refused
// without a check. Nobody waits out a penalty: a login inside the window
// is refused at once, so a brute-force loop holds no goroutine and costs
// no bcrypt while it lasts.
//
// A username that has logged in from an address before (since the
// gateway started) is judged there by the failures of that pair alone:
// otherwise anyone could lock the Zigbee2MQTT bridge (or a manager) out by
// failing logins with its username, or every sensor behind a NAT router by
// failing logins from the router's address. Everyone else meets the
// address's and the username's penalties.
type Throttle struct {
	limits Limits
	mu     sync.Mutex
	keys   map[string]*failures
	known  map[string]map[string]bool // username → addresses it logged in from
}

type failures struct {
	n     int
	until time.Time // refused before this
	last  time.Time
}

// New returns an empty throttle.
func New(l Limits) *Throttle {
	return &Throttle{limits: l, keys: map[string]*failures{}, known: map[string]map[string]bool{}}
}

// Blocked reports whether a login by user from ip is refused at now
// without a check, and until when.
func (t *Throttle) Blocked(ip, user string, now time.Time) (bool, time.Time) {
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

// Failed records a failed login; user is "" when the username is unknown
// (only configured usernames are tracked, so the table stays bounded).
func (t *Throttle) Failed(ip, user string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fail("addr:"+ip, now)
	if user != "" {
		t.fail("user:"+user, now)
		t.fail("pair:"+ip+" "+user, now)
	}
}

func (t *Throttle) fail(key string, now time.Time) {
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
func (t *Throttle) prune(now time.Time) {
	for k, f := range t.keys {
		if now.Sub(f.last) > 10*t.limits.MaxPenalty && !now.Before(f.until) {
			delete(t.keys, k)
		}
	}
}

// Succeeded resets the address and the username, and remembers the
// address as one the username logs in from.
func (t *Throttle) Succeeded(ip, user string) {
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
