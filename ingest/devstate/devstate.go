// Package devstate keeps what the gateway knows about each device now: its
// last value per kind, when it was last heard from, whether it is online, and
// its battery and link quality. The rules engine, the API and the console
// read it; the ingest pipeline writes it after each durable append.
//
// Online is decided from two sources: availability messages (Zigbee2MQTT
// availability, Tasmota and ESPHome LWT, Homie $state), which are explicit,
// and silence: a device not heard from for its OfflineAfter is offline even
// if nobody said so (battery devices die quietly). The rules are those of
// facility's availability model; the tracker feeds it the messages as they
// arrive.
//
// Concurrency: one mutex; Observe is cheap (a map update) and snapshots copy.
package devstate

import (
	"sort"
	"sync"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// LastValue is the newest value of one kind.
type LastValue struct {
	Value reading.Value `json:"-"`
	Time  time.Time     `json:"time"`
}

// State is a snapshot of one device.
type State struct {
	Device string       `json:"device"`
	Zone   string       `json:"zone"`
	Kind   reading.Kind `json:"kind"`
	// LastSeen is the receive time of the newest message; zero if never.
	LastSeen time.Time `json:"last_seen,omitzero"`
	Online   bool      `json:"online"`
	// OfflineReason is "never_seen", "silent" or "availability" when offline.
	OfflineReason string                     `json:"offline_reason,omitempty"`
	Battery       *float64                   `json:"battery,omitempty"`
	LinkQuality   *float64                   `json:"link_quality,omitempty"`
	Last          map[reading.Kind]LastValue `json:"-"`
}

type entry struct {
	dev *facility.Device
	// status holds the receive time of the newest message and whether the
	// last availability message, with no data since, said offline.
	status  facility.Status
	battery *float64
	lqi     *float64
	last    lastValues
}

// lastValues is a device's newest value per kind. A device reports a few
// kinds (one to six): a short list searched in order costs a tenth of a
// map's memory, which at 10,000 devices was 8 MB.
type lastValues []kindValue

type kindValue struct {
	kind reading.Kind
	LastValue
}

func (l lastValues) get(k reading.Kind) (LastValue, bool) {
	for i := range l {
		if l[i].kind == k {
			return l[i].LastValue, true
		}
	}
	return LastValue{}, false
}

func (l *lastValues) set(k reading.Kind, v LastValue) {
	for i := range *l {
		if (*l)[i].kind == k {
			(*l)[i].LastValue = v
			return
		}
	}
	*l = append(*l, kindValue{kind: k, LastValue: v})
}

// Tracker holds the state of every configured device.
type Tracker struct {
	clock func() time.Time
	mu    sync.RWMutex
	devs  map[string]*entry
}

// New returns a tracker for the given devices, which it keeps and reads
// (they must not change). clock may be nil (time.Now).
func New(devices []facility.Device, clock func() time.Time) *Tracker {
	if clock == nil {
		clock = time.Now
	}
	t := &Tracker{clock: clock, devs: make(map[string]*entry, len(devices))}
	for i := range devices {
		t.devs[devices[i].ID] = &entry{dev: &devices[i]}
	}
	return t
}

// Observe records the readings of one message from device id, received at
// received. A message without readings (a heartbeat) still counts as a sign
// of life. Unknown devices are ignored.
func (t *Tracker) Observe(id string, received time.Time, rs []reading.Reading) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.devs[id]
	if e == nil {
		return
	}
	sawData := false
	for i := range rs {
		r := &rs[i]
		if lv, ok := e.last.get(r.Kind); !ok || !r.Time.Before(lv.Time) {
			e.last.set(r.Kind, LastValue{Value: r.Value, Time: r.Time})
		}
		if r.Kind == reading.KindAvailability || r.Kind == reading.KindReach {
			// Reach "ok" (the device's bridge is back) is a sign of life
			// by itself; the other values make the device unknown.
			e.status = e.status.Apply(facility.EventOf(r.Kind, r.Value, received, uint64(i)))
			continue
		}
		sawData = true
		if r.Battery != nil {
			b := *r.Battery
			e.battery = &b
		} else if r.Kind == reading.KindBattery {
			b := r.Value.Num
			e.battery = &b
		}
		if r.LinkQuality != nil {
			q := *r.LinkQuality
			e.lqi = &q
		}
	}
	if sawData || len(rs) == 0 {
		// Data from a device proves it is online whatever its last LWT said:
		// at the same instant data comes after availability messages.
		e.status = e.status.Apply(facility.Event{At: received, Kind: facility.EventData})
	}
}

// Get returns the state of one device.
func (t *Tracker) Get(id string) (State, bool) {
	now := t.clock()
	t.mu.RLock()
	defer t.mu.RUnlock()
	e := t.devs[id]
	if e == nil {
		return State{}, false
	}
	return e.snapshot(now), true
}

// Snapshot returns the state of every device, sorted by id.
func (t *Tracker) Snapshot() []State {
	now := t.clock()
	t.mu.RLock()
	out := make([]State, 0, len(t.devs))
	for _, e := range t.devs {
		out = append(out, e.snapshot(now))
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}

func (e *entry) snapshot(now time.Time) State {
	s := State{Device: e.dev.ID, Zone: e.dev.Zone, Kind: e.dev.Kind, LastSeen: e.status.LastSeen,
		Last: make(map[reading.Kind]LastValue, len(e.last))}
	for _, kv := range e.last {
		s.Last[kv.kind] = kv.LastValue
	}
	if e.battery != nil {
		b := *e.battery
		s.Battery = &b
	}
	if e.lqi != nil {
		q := *e.lqi
		s.LinkQuality = &q
	}
	a, cause := e.status.At(now, e.dev.OfflineAfter)
	s.Online = a == facility.Online
	s.OfflineReason = offlineReason(cause)
	return s
}

// offlineReason is the State.OfflineReason of a cause.
func offlineReason(c facility.Cause) string {
	switch c {
	case facility.CauseNoData:
		return "never_seen"
	case facility.CauseReported:
		return "availability"
	case facility.CauseSilent:
		return "silent"
	case facility.CauseBridgeOffline:
		return "bridge_offline"
	case facility.CauseRemoved:
		return "removed"
	}
	return ""
}

// Unreachable reports whether device id is unknown because its bridge is
// offline (the pipeline asks when the bridge comes back).
func (t *Tracker) Unreachable(id string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e := t.devs[id]
	return e != nil && e.status.Unreachable == facility.CauseBridgeOffline
}

// Restore seeds the tracker with a value read back from the store at start,
// so that a restart does not make every quiet battery sensor look "never
// seen". It never overrides a newer observation.
func (t *Tracker) Restore(id string, kind reading.Kind, lv LastValue) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.devs[id]
	if e == nil {
		return
	}
	if cur, ok := e.last.get(kind); !ok || lv.Time.After(cur.Time) {
		e.last.set(kind, lv)
	}
	if lv.Time.After(e.status.LastSeen) {
		e.status.LastSeen = lv.Time
	}
	// Series are restored in any order: an availability message counts only
	// if no data came after it (data proves the device online). One as new
	// as the newest data counts here, where facility.Compare would put the
	// data last.
	av, hasAv := e.last.get(reading.KindAvailability)
	e.status.ReportedOffline = hasAv && !av.Time.Before(e.newestData()) &&
		facility.EventOf(reading.KindAvailability, av.Value, av.Time, 0).Kind == facility.EventOffline
	// Likewise a reach reading saying the device cannot be reached, if
	// nothing came after it.
	e.status.Unreachable = facility.CauseNone
	if rc, ok := e.last.get(reading.KindReach); ok && !rc.Time.Before(e.newestData()) && (!hasAv || !av.Time.After(rc.Time)) {
		if ev := facility.EventOf(reading.KindReach, rc.Value, rc.Time, 0); ev.Kind == facility.EventUnreachable {
			e.status.Unreachable = ev.Cause
			e.status.ReportedOffline = false
		}
	}
	if kind == reading.KindBattery && lv.Value.Type == reading.TypeNumber {
		b := lv.Value.Num
		e.battery = &b
	}
}

func (e *entry) newestData() time.Time {
	var t time.Time
	for _, kv := range e.last {
		if kv.kind != reading.KindAvailability && kv.kind != reading.KindReach && kv.Time.After(t) {
			t = kv.Time
		}
	}
	return t
}
