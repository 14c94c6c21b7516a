package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Live updates for the console: GET /api/v1/events is a server-sent event
// stream of what changes in alarms, device state and camera state.
//
// One poller (running only while someone listens) looks at the alarms,
// the devices and the cameras every EventsEvery and turns what changed
// into numbered events, kept in a ring of the last ringSize. A stream
// starts with a "snapshot" of everything the caller may see and then sends
// the changes; a browser that reconnects sends Last-Event-ID and gets the
// changes it missed, or a new snapshot when they have left the ring. Each
// event goes only to callers whose role may see it (alarms: PermAlarmsRead;
// devices: PermDevices; a camera: PermCameras and that camera granted).
//
// Event types: snapshot {"alarms", "devices", "cameras"}; alarm (an
// alarm opened or changed: the alarm as /api/v1/alarms gives it);
// alarm_closed {"id"}; device (as /api/v1/devices); camera (as
// /api/v1/cameras). A comment line every 15 s keeps proxies and dead
// connections in check; a console session is checked again then, so a
// logout or a new password ends its streams (at once when the change is
// made through this API: sessions.endUser wakes every stream).

// Event stream limits.
const (
	DefaultEventsEvery = 500 * time.Millisecond
	ringSize           = 1024
	maxStreams         = 64 // in all
	maxStreamsPerName  = 4  // per token or user
	heartbeatEvery     = 15 * time.Second
	minChangeGap       = 50 * time.Millisecond // between looks prompted by alarm changes
)

type event struct {
	id   uint64
	kind string // alarm, alarm_closed, device, camera
	key  string // the camera, for camera events
	data []byte
}

// eventHub owns the poller and the ring.
type eventHub struct {
	a     *api
	every time.Duration

	mu       sync.Mutex
	seq      uint64
	ring     []event // oldest first, at most ringSize
	floor    uint64  // every event after this id is in the ring
	alarms   map[string][]byte
	devices  map[string][]byte
	cameras  map[string][]byte
	primed   bool // the maps hold a first look
	wake     chan struct{}
	streams  int
	perName  map[string]int
	polling  bool
	stopPoll chan struct{}
}

func newEventHub(a *api, every time.Duration) *eventHub {
	if every <= 0 {
		every = DefaultEventsEvery
	}
	return &eventHub{a: a, every: every, wake: make(chan struct{}), perName: map[string]int{}}
}

// look takes the current alarms, devices and cameras, JSON-encoded by
// key.
func (h *eventHub) look() (alarms, devices, cameras map[string][]byte) {
	alarms, devices, cameras = map[string][]byte{}, map[string][]byte{}, map[string][]byte{}
	if h.a.opts.Alarms != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		list, err := h.a.opts.Alarms.Active(ctx)
		cancel()
		if err == nil {
			for _, al := range list {
				b, _ := json.Marshal(al)
				alarms[al.ID] = b
			}
		} else if h.primed {
			alarms = h.alarms // the engine did not answer: nothing changed
		}
	}
	if h.a.opts.State != nil {
		for _, s := range h.a.opts.State.Snapshot() {
			d := deviceJSON{State: s, Values: make(map[reading.Kind]valueJSON, len(s.Last))}
			for k, v := range s.Last {
				d.Values[k] = valueJSON{Value: v.Value.Any(), Time: v.Time}
			}
			b, _ := json.Marshal(d)
			devices[s.Device] = b
		}
	}
	if h.a.opts.Video != nil && h.a.opts.Video.Cameras != nil {
		for _, c := range h.a.opts.Video.Cameras() {
			b, _ := json.Marshal(c)
			cameras[c.ID] = b
		}
	}
	return alarms, devices, cameras
}

// poll compares a new look with the last one and records the changes.
func (h *eventHub) poll() {
	alarms, devices, cameras := h.look()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.primed {
		// A fresh start (nobody was listening): what changed meanwhile was
		// not recorded, so nothing before now can be resumed from.
		h.alarms, h.devices, h.cameras, h.primed = alarms, devices, cameras, true
		h.ring, h.floor = h.ring[:0], h.seq
		return
	}
	changed := false
	add := func(kind, key string, data []byte) {
		h.seq++
		h.ring = append(h.ring, event{id: h.seq, kind: kind, key: key, data: data})
		if len(h.ring) > ringSize {
			h.ring = h.ring[len(h.ring)-ringSize:]
			h.floor = h.ring[0].id - 1
		}
		changed = true
	}
	for id, b := range alarms {
		if !bytes.Equal(h.alarms[id], b) {
			add("alarm", id, b)
		}
	}
	for id := range h.alarms {
		if _, ok := alarms[id]; !ok {
			b, _ := json.Marshal(map[string]string{"id": id})
			add("alarm_closed", id, b)
		}
	}
	for id, b := range devices {
		if !bytes.Equal(h.devices[id], b) {
			add("device", id, b)
		}
	}
	for id, b := range cameras {
		if !bytes.Equal(h.cameras[id], b) {
			add("camera", id, b)
		}
	}
	h.alarms, h.devices, h.cameras = alarms, devices, cameras
	if changed {
		close(h.wake)
		h.wake = make(chan struct{})
	}
}

// join counts a stream in (refusing past the caps) and starts the poller
// for the first one.
func (h *eventHub) join(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams >= maxStreams {
		return errTooManyStreams
	}
	if h.perName[name] >= maxStreamsPerName {
		return errTooManyStreamsForName
	}
	h.streams++
	h.perName[name]++
	if !h.polling {
		h.polling = true
		h.stopPoll = make(chan struct{})
		go h.run(h.stopPoll)
	}
	return nil
}

func (h *eventHub) leave(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams--
	if h.perName[name]--; h.perName[name] <= 0 {
		delete(h.perName, name)
	}
	if h.streams == 0 && h.polling {
		h.polling = false
		close(h.stopPoll)
		// The next listener starts from a fresh look: nothing is missed,
		// since its stream begins with a snapshot.
		h.primed = false
	}
}

var (
	errTooManyStreams        = fmt.Errorf("too many live update streams open (%d)", maxStreams)
	errTooManyStreamsForName = fmt.Errorf("too many live update streams for this login (%d)", maxStreamsPerName)
)

// run polls until stop is closed.
func (h *eventHub) run(stop chan struct{}) {
	h.poll()
	last := time.Now()
	t := time.NewTicker(h.every)
	defer t.Stop()
	var soon <-chan time.Time // a look after an alarm changed
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.poll()
			last = time.Now()
		case <-h.a.opts.AlarmsChanged:
			// An alarm changed: look now, so a smoke alarm reaches the
			// boards without waiting for the tick; in a storm of alarm
			// events, at most one look per minChangeGap. A nil channel
			// never fires.
			if soon == nil {
				soon = time.After(max(0, minChangeGap-time.Since(last)))
			}
		case <-soon:
			soon = nil
			h.poll()
			last = time.Now()
		}
	}
}

// visible says whether the caller may see an event.
func visible(tok *Token, kind, key string) bool {
	switch kind {
	case "alarm", "alarm_closed":
		return tok.Role.may(PermAlarmsRead)
	case "device":
		return tok.Role.may(PermDevices)
	case "camera":
		return tok.Role.may(PermCameras) && tok.mayView(key)
	}
	return false
}

// snapshot is everything the caller may see now, with the id it is as of.
func (h *eventHub) snapshot(tok *Token) (uint64, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	list := func(kind string, m map[string][]byte) []json.RawMessage {
		out := []json.RawMessage{}
		for key, b := range m {
			if visible(tok, kind, key) {
				out = append(out, b)
			}
		}
		return out
	}
	b, _ := json.Marshal(map[string][]json.RawMessage{
		"alarms": list("alarm", h.alarms), "devices": list("device", h.devices), "cameras": list("camera", h.cameras),
	})
	return h.seq, b
}

// since returns the events after id (ok false when some have left the
// ring) and the channel closed at the next change.
func (h *eventHub) since(id uint64) (evs []event, ok bool, wake <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id > h.seq || id < h.floor {
		return nil, false, h.wake
	}
	for _, e := range h.ring {
		if e.id > id {
			evs = append(evs, e)
		}
	}
	return evs, true, h.wake
}

// events serves the stream.
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r.Context())
	h := a.hub
	if err := h.join(tok.Name); err != nil {
		w.Header().Set("Retry-After", "10")
		httpError(w, http.StatusTooManyRequests, err.Error())
		return
	}
	defer h.leave(tok.Name)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	// Where to start: after the caller's last event if the ring still has
	// what followed it, else at a snapshot. The first poll primes the
	// hub; wait for it so the snapshot is not empty.
	h.waitPrimed(r.Context())
	last, resumed := uint64(0), false
	if s := r.Header.Get("Last-Event-ID"); s != "" {
		if id, err := strconv.ParseUint(s, 10, 64); err == nil {
			if _, ok, _ := h.since(id); ok {
				last, resumed = id, true
			}
		}
	}
	if !resumed {
		id, snap := h.snapshot(tok)
		if !writeEvent(w, id, "snapshot", snap) {
			return
		}
		last = id
	}
	_ = rc.Flush()
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	ended := a.sessions.endedSignal()
	for {
		evs, ok, wake := h.since(last)
		if !ok {
			// Fell behind the ring: start over from a snapshot.
			id, snap := h.snapshot(tok)
			if !writeEvent(w, id, "snapshot", snap) {
				return
			}
			last = id
		}
		for _, e := range evs {
			if visible(tok, e.kind, e.key) && !writeEvent(w, e.id, e.kind, e.data) {
				return
			}
			last = e.id
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-ended:
			// An admin changed someone's account (a new role, disabled):
			// if it is this session's user, the stream ends now.
			ended = a.sessions.endedSignal()
			if tok.session {
				if _, _, err := a.principal(r); err != nil {
					return
				}
			}
		case <-heartbeat.C:
			// A session may have ended (logout, new password, disabled).
			if tok.session {
				if _, _, err := a.principal(r); err != nil {
					return
				}
			}
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		}
	}
}

// waitPrimed waits (briefly) for the poller's first look.
func (h *eventHub) waitPrimed(ctx context.Context) {
	for range 100 {
		h.mu.Lock()
		primed := h.primed
		h.mu.Unlock()
		if primed {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func writeEvent(w http.ResponseWriter, id uint64, kind string, data []byte) bool {
	_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id, kind, data)
	return err == nil
}
