package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// sessions binds every client id to the user that holds it, from CONNECT
// until its session ends (at disconnect for a clean session, at expiry or
// eviction for a persistent one), and counts each user's sessions.
//
// A client id held by one user is refused to every other: without this,
// one device's login could take over the Zigbee2MQTT bridge's client id and
// knock the bridge offline. A user at its cap of sessions gets a new one
// only by ending its own oldest disconnected session; when all of them are
// connected, the new CONNECT is refused. Evicting rather than refusing
// keeps a device that reconnects with a fresh random client id (and
// clean_session=false) from locking itself out for a day, and refusing
// once every session is live bounds what one login can hold: the
// "2,000 persistent sessions holding 444 MB" attack stops at the cap.
type sessions struct {
	max int // per user; 0: no cap

	mu     sync.Mutex
	byID   map[string]*session
	counts map[string]int // sessions per user
}

type session struct {
	user     string
	cl       *mqtt.Client // the client that holds the id now
	evicting bool
}

func newSessions(max int) *sessions {
	return &sessions{max: max, byID: map[string]*session{}, counts: map[string]int{}}
}

// claim binds cl.ID to user for cl. It returns why it is refused (a metric
// label), or the session to end (evict) before cl's CONNACK.
func (s *sessions) claim(user string, cl *mqtt.Client, capped bool) (evict *mqtt.Client, refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.byID[cl.ID]; cur != nil {
		switch {
		case cur.user != user:
			return nil, "client_id_taken"
		case cur.evicting:
			return nil, "session_ending" // ended a moment ago; try again
		}
		cur.cl = cl // the same user reconnects: mochi hands the session over
		return nil, ""
	}
	if capped && s.max > 0 && s.counts[user] >= s.max {
		victim := s.oldestDisconnected(user)
		if victim == nil {
			return nil, "too_many_sessions"
		}
		victim.evicting = true
		evict = victim.cl
	}
	s.byID[cl.ID] = &session{user: user, cl: cl}
	s.counts[user]++
	return evict, ""
}

// oldestDisconnected returns user's disconnected session that ended first.
func (s *sessions) oldestDisconnected(user string) *session {
	var oldest *session
	for _, x := range s.byID {
		if x.user != user || x.evicting {
			continue
		}
		if t := x.cl.StopTime(); t != 0 && (oldest == nil || t < oldest.cl.StopTime()) {
			oldest = x
		}
	}
	return oldest
}

// release ends the binding of cl's id if cl still holds it (a session
// taken over by a reconnect of the same user stays bound).
func (s *sessions) release(cl *mqtt.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.byID[cl.ID]; cur != nil && cur.cl == cl {
		delete(s.byID, cl.ID)
		if s.counts[cur.user]--; s.counts[cur.user] <= 0 {
			delete(s.counts, cur.user)
		}
	}
}

// len is the number of sessions, connected or kept.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}
