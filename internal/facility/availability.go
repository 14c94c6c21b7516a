package facility

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Device availability: whether a device is online, offline or of unknown
// state, and why. The live device state and the availability history both
// decide it here, from the same events and by the same rules:
//
//   - An availability message (Zigbee2MQTT availability, Tasmota and ESPHome
//     LWT, Homie $state) says online or offline. Offline lasts, with cause
//     CauseReported, until the next event of any kind: silence does not end
//     it.
//   - Any other message (a reading, a heartbeat) proves the device online,
//     whatever its last availability message said.
//   - An online device from which nothing arrives for longer than its
//     offline_after is offline with cause CauseSilent until its next event.
//     An offline_after of zero (or less) means silence never makes it
//     offline.
//   - Before its first event a device's state is unknown (CauseNoData).
//   - A reach reading (reading.KindReach, written by the gateway) saying
//     the device cannot be reached — its bridge went offline
//     (CauseBridgeOffline) or it was removed (CauseRemoved) — makes it
//     unknown with that cause until its next event: neither online nor
//     silent, so it raises no offline alarm of its own. A reach reading
//     saying "ok" (the bridge is back) counts as a sign of life: the
//     device is online again without waiting for its own next message.
//
// Events are taken in the order of Compare: by time; at the same instant
// availability messages before data, so that data wins; availability
// messages of the same instant in arrival order (Seq).

// Availability is whether a device is online.
type Availability uint8

const (
	// Unknown: nothing has been heard from the device yet.
	Unknown Availability = iota
	// Online: the device is alive.
	Online
	// Offline: the device said it is offline, or fell silent.
	Offline
)

// String returns "unknown", "online" or "offline".
func (a Availability) String() string {
	switch a {
	case Unknown:
		return "unknown"
	case Online:
		return "online"
	case Offline:
		return "offline"
	}
	return "Availability(" + strconv.Itoa(int(a)) + ")"
}

// Cause is why a device has the availability it has.
type Cause uint8

const (
	// CauseNone goes with Online.
	CauseNone Cause = iota
	// CauseNoData goes with Unknown: no event from the device yet.
	CauseNoData
	// CauseReported goes with Offline: the device, or its availability
	// (LWT) topic, said it is offline.
	CauseReported
	// CauseSilent goes with Offline: nothing arrived from the device for
	// longer than its offline_after.
	CauseSilent
	// CauseBridgeOffline goes with Unknown: the bridge the device reaches
	// the gateway through (Zigbee2MQTT) is offline.
	CauseBridgeOffline
	// CauseRemoved goes with Unknown: the device said it was taken out of
	// service (Homie's empty $state).
	CauseRemoved
)

// String returns "none", "no_data", "reported_offline" or "silent"; the last
// two are the outage causes of the availability history API.
func (c Cause) String() string {
	switch c {
	case CauseNone:
		return "none"
	case CauseNoData:
		return "no_data"
	case CauseReported:
		return "reported_offline"
	case CauseSilent:
		return "silent"
	case CauseBridgeOffline:
		return "bridge_offline"
	case CauseRemoved:
		return "removed"
	}
	return "Cause(" + strconv.Itoa(int(c)) + ")"
}

// EventKind is what an event says about whether its device is online.
type EventKind uint8

const (
	// EventData is any message other than an availability message (a
	// reading, a heartbeat): proof of life.
	EventData EventKind = iota
	// EventOnline is an availability message saying online.
	EventOnline
	// EventOffline is an availability message saying offline.
	EventOffline
	// EventUnreachable is a reach reading saying the device cannot be
	// reached; Event.Cause says why.
	EventUnreachable
)

// String returns "data", "online" or "offline".
func (k EventKind) String() string {
	switch k {
	case EventData:
		return "data"
	case EventOnline:
		return "online"
	case EventOffline:
		return "offline"
	case EventUnreachable:
		return "unreachable"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one sign from a device.
type Event struct {
	At   time.Time
	Kind EventKind
	// Seq orders availability messages of the same instant: their arrival
	// order (for stored readings, the store's sequence number). It does not
	// order data against availability messages.
	Seq uint64
	// Cause is why an EventUnreachable device cannot be reached.
	Cause Cause
}

// EventOf returns the event a reading of kind with value v, at at, is. An
// availability reading is offline when its value is the boolean false and
// online otherwise; a reading of any other kind is data.
func EventOf(kind reading.Kind, v reading.Value, at time.Time, seq uint64) Event {
	e := Event{At: at, Kind: EventData, Seq: seq}
	switch kind {
	case reading.KindAvailability:
		e.Kind = EventOnline
		if v.Type == reading.TypeBool && !v.Bool {
			e.Kind = EventOffline
		}
	case reading.KindReach:
		// "ok" is data (a sign of life); the rest say why not.
		switch v.State {
		case reading.ReachBridgeOffline:
			e.Kind, e.Cause = EventUnreachable, CauseBridgeOffline
		case reading.ReachRemoved:
			e.Kind, e.Cause = EventUnreachable, CauseRemoved
		}
	}
	return e
}

// Compare orders events as they are applied, for slices.SortFunc: by time;
// at the same instant availability messages before data (data proves the
// device online, so it has the last word), and availability messages by
// Seq.
func Compare(a, b Event) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	if ad, bd := a.Kind == EventData, b.Kind == EventData; ad != bd {
		if ad {
			return 1
		}
		return -1
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// Status is what a device's availability follows from: its last events. The
// zero Status is a device never heard from.
type Status struct {
	// LastSeen is the time of the newest event; zero before the first.
	LastSeen time.Time
	// ReportedOffline is set when the last availability message said
	// offline and no data came after it.
	ReportedOffline bool
	// Unreachable is the cause of the last event when it was an
	// EventUnreachable; CauseNone otherwise.
	Unreachable Cause
}

// Apply returns the status after e. Events are applied in the order of
// Compare, or as they arrive. LastSeen never goes back: an event older than
// LastSeen still says what the device reported, but does not make it look
// silent sooner.
func (s Status) Apply(e Event) Status {
	if e.At.After(s.LastSeen) {
		s.LastSeen = e.At
	}
	s.ReportedOffline = e.Kind == EventOffline
	s.Unreachable = CauseNone
	if e.Kind == EventUnreachable {
		s.Unreachable = e.Cause
	}
	return s
}

// At returns the availability at now of a device with status s and the
// given offline_after: Unknown before its first event; Offline (reported)
// after an offline availability message; Offline (silent) once more than
// offlineAfter has passed since LastSeen (never when offlineAfter ≤ 0);
// Online otherwise.
func (s Status) At(now time.Time, offlineAfter time.Duration) (Availability, Cause) {
	a, c := s.reported()
	if a == Online && offlineAfter > 0 && now.Sub(s.LastSeen) > offlineAfter {
		return Offline, CauseSilent
	}
	return a, c
}

// reported is the availability s says before silence is counted.
func (s Status) reported() (Availability, Cause) {
	switch {
	case s.LastSeen.IsZero():
		return Unknown, CauseNoData
	case s.Unreachable != CauseNone:
		return Unknown, s.Unreachable
	case s.ReportedOffline:
		return Offline, CauseReported
	}
	return Online, CauseNone
}

// OnlineUntil returns the instant an online device falls silent if nothing
// more arrives: LastSeen + offlineAfter. At reports it silent after that
// instant, and in a Replay its silent outage starts there. ok is false when
// silence does not apply: the device was never seen, reported itself
// offline, or offlineAfter ≤ 0.
func (s Status) OnlineUntil(offlineAfter time.Duration) (until time.Time, ok bool) {
	if a, _ := s.reported(); a != Online || offlineAfter <= 0 {
		return time.Time{}, false
	}
	return s.LastSeen.Add(offlineAfter), true
}

// Segment is a stretch [Start, End) of one availability and cause.
type Segment struct {
	Start, End time.Time
	State      Availability
	Cause      Cause
}

// Replay returns the availability timeline of a device over [from, end):
// segments in order, contiguous, covering the period exactly (none when end
// is not after from), neighbours differing in state or cause. The events
// may come in any order; Replay applies them in the order of Compare.
// Events before from decide the state at from (give at least the newest
// one, or the device is unknown until its first event in the period);
// events at or after end change nothing.
func Replay(from, end time.Time, offlineAfter time.Duration, events []Event) []Segment {
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, Compare)
	var segs []Segment
	emit := func(start, stop time.Time, a Availability, c Cause) {
		if !stop.After(start) {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].State == a && segs[n-1].Cause == c && segs[n-1].End.Equal(start) {
			segs[n-1].End = stop
			return
		}
		segs = append(segs, Segment{Start: start, End: stop, State: a, Cause: c})
	}
	var s Status
	cur := from
	// advance emits the timeline from cur to the given time (cut to end)
	// under status s.
	advance := func(to time.Time) {
		if to.After(end) {
			to = end
		}
		if silent, ok := s.OnlineUntil(offlineAfter); ok && silent.Before(to) {
			if silent.After(cur) {
				emit(cur, silent, Online, CauseNone)
			} else {
				silent = cur
			}
			emit(silent, to, Offline, CauseSilent)
		} else {
			a, c := s.reported()
			emit(cur, to, a, c)
		}
		if to.After(cur) {
			cur = to
		}
	}
	for _, e := range evs {
		advance(e.At)
		s = s.Apply(e)
	}
	advance(end)
	return segs
}
