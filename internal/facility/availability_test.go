package facility

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

// at is t0 plus n minutes.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

// data is one data event a minute from minute first to last included.
func data(first, last int) []Event {
	var evs []Event
	for n := first; n <= last; n++ {
		evs = append(evs, Event{At: at(n), Kind: EventData})
	}
	return evs
}

func online(n int, seq uint64) Event  { return Event{At: at(n), Kind: EventOnline, Seq: seq} }
func offline(n int, seq uint64) Event { return Event{At: at(n), Kind: EventOffline, Seq: seq} }

func events(groups ...[]Event) []Event { return slices.Concat(groups...) }

// rel writes t as minutes after t0 ("+22m", "-60m"), or as a duration when
// not a whole minute.
func rel(t time.Time) string {
	d := t.Sub(t0)
	if d%time.Minute != 0 {
		if d > 0 {
			return "+" + d.String()
		}
		return d.String()
	}
	return fmt.Sprintf("%+dm", d/time.Minute)
}

// state writes an availability with its cause: "online", "unknown(no_data)",
// "offline(silent)".
func state(a Availability, c Cause) string {
	if c == CauseNone {
		return a.String()
	}
	return a.String() + "(" + c.String() + ")"
}

// timeline writes segments as "+0m..+5m unknown(no_data), +5m..+22m online".
func timeline(segs []Segment) string {
	var parts []string
	for _, s := range segs {
		parts = append(parts, rel(s.Start)+".."+rel(s.End)+" "+state(s.State, s.Cause))
	}
	return strings.Join(parts, ", ")
}

// seeded are the signs of life of a temperature sensor reporting once a
// minute, offline after 10 minutes of silence:
//
//	+5m..+12m  data every minute
//	+40m..+45m data every minute
//	+50m       availability: offline
//	+70m..+75m data every minute
var seeded = events(data(5, 12), data(40, 45), []Event{offline(50, 1)}, data(70, 75))

func TestReplay(t *testing.T) {
	for _, tc := range []struct {
		name         string
		from, end    int // minutes after t0
		offlineAfter time.Duration
		events       []Event
		want         string
	}{
		{
			name: "no events at all → unknown(no_data) throughout",
			from: 0, end: 60, offlineAfter: 10 * time.Minute,
			want: "+0m..+60m unknown(no_data)",
		},
		{
			name: "data at t0, silent past offline_after at t0+1h → offline(silent)",
			from: 0, end: 120, offlineAfter: time.Hour, events: data(0, 0),
			want: "+0m..+60m online, +60m..+120m offline(silent)",
		},
		{
			name: "data within offline_after keeps the device online in one segment",
			from: 0, end: 30, offlineAfter: 10 * time.Minute, events: events(data(0, 0), data(5, 5), data(10, 10)),
			want: "+0m..+20m online, +20m..+30m offline(silent)",
		},
		{
			name: "unknown until the first data at t0+5m, then silent gaps, reported offline at t0+50m, silent to the end",
			from: 0, end: 120, offlineAfter: 10 * time.Minute, events: seeded,
			want: "+0m..+5m unknown(no_data), +5m..+22m online, +22m..+40m offline(silent), +40m..+50m online, " +
				"+50m..+70m offline(reported_offline), +70m..+85m online, +85m..+120m offline(silent)",
		},
		{
			name: "offline_after 30m hides the 28m gap at t0+12m..t0+40m",
			from: 0, end: 120, offlineAfter: 30 * time.Minute, events: seeded,
			want: "+0m..+5m unknown(no_data), +5m..+50m online, +50m..+70m offline(reported_offline), " +
				"+70m..+105m online, +105m..+120m offline(silent)",
		},
		{
			name: "state at from comes from the events before it: silent since t0+22m",
			from: 30, end: 60, offlineAfter: 10 * time.Minute, events: seeded,
			want: "+30m..+40m offline(silent), +40m..+50m online, +50m..+60m offline(reported_offline)",
		},
		{
			name: "offline reported at t0+50m, before from → offline(reported_offline) from the start",
			from: 55, end: 65, offlineAfter: 10 * time.Minute, events: seeded,
			want: "+55m..+65m offline(reported_offline)",
		},
		{
			name: "last data at t0+75m, period t0+150m..t0+180m → offline(silent) throughout",
			from: 150, end: 180, offlineAfter: 10 * time.Minute, events: seeded,
			want: "+150m..+180m offline(silent)",
		},
		{
			name: "data at t0-1h only, silent since before the period",
			from: 0, end: 60, offlineAfter: 10 * time.Minute, events: data(-60, -60),
			want: "+0m..+60m offline(silent)",
		},
		{
			name: "data at t0-10m, offline_after 10m → offline(silent) from t0 exactly",
			from: 0, end: 30, offlineAfter: 10 * time.Minute, events: data(-10, -10),
			want: "+0m..+30m offline(silent)",
		},
		{
			name: "only the newest event before from counts: offline at t0-30m, data at t0-20m → online, silent at t0+10m",
			from: 0, end: 30, offlineAfter: 30 * time.Minute, events: events([]Event{offline(-30, 1)}, data(-20, -20)),
			want: "+0m..+10m online, +10m..+30m offline(silent)",
		},
		{
			name: "offline at t0, silence does not end it → offline(reported_offline) throughout",
			from: 0, end: 120, offlineAfter: 10 * time.Minute, events: []Event{offline(0, 1)},
			want: "+0m..+120m offline(reported_offline)",
		},
		{
			name: "online at t0 counts as a sign of life, silent at t0+10m",
			from: 0, end: 60, offlineAfter: 10 * time.Minute, events: []Event{online(0, 1)},
			want: "+0m..+10m online, +10m..+60m offline(silent)",
		},
		{
			name: "offline at t0+10m ends a silent outage with its own cause",
			from: 0, end: 30, offlineAfter: 5 * time.Minute, events: events(data(0, 0), []Event{offline(10, 1)}),
			want: "+0m..+5m online, +5m..+10m offline(silent), +10m..+30m offline(reported_offline)",
		},
		{
			name: "data at t0+20m ends a reported outage → online",
			from: 0, end: 40, offlineAfter: time.Hour, events: events([]Event{offline(0, 1)}, data(20, 20)),
			want: "+0m..+20m offline(reported_offline), +20m..+40m online",
		},
		{
			name: "online at t0+20m ends a reported outage → online",
			from: 0, end: 40, offlineAfter: time.Hour, events: []Event{offline(0, 1), online(20, 2)},
			want: "+0m..+20m offline(reported_offline), +20m..+40m online",
		},
		{
			name: "data and offline at the same instant t0+10m → online (data wins)",
			from: 0, end: 30, offlineAfter: time.Hour, events: events(data(0, 0), data(10, 10), []Event{offline(10, 99)}),
			want: "+0m..+30m online",
		},
		{
			name: "offline then online at the same instant t0+10m → online (arrival order)",
			from: 0, end: 30, offlineAfter: time.Hour, events: events(data(0, 0), []Event{online(10, 2), offline(10, 1)}),
			want: "+0m..+30m online",
		},
		{
			name: "online then offline at the same instant t0+10m → offline(reported_offline) (arrival order)",
			from: 0, end: 30, offlineAfter: time.Hour, events: events(data(0, 0), []Event{offline(10, 2), online(10, 1)}),
			want: "+0m..+10m online, +10m..+30m offline(reported_offline)",
		},
		{
			name: "offline_after 0: never silent",
			from: 0, end: 600, offlineAfter: 0, events: data(0, 0),
			want: "+0m..+600m online",
		},
		{
			name: "events at or after end change nothing",
			from: 0, end: 30, offlineAfter: time.Hour, events: events(data(0, 0), []Event{offline(30, 1), offline(40, 2)}),
			want: "+0m..+30m online",
		},
		{
			name: "end equal to from → no segments",
			from: 30, end: 30, offlineAfter: time.Hour, events: seeded,
			want: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Replay(at(tc.from), at(tc.end), tc.offlineAfter, tc.events)
			if s := timeline(got); s != tc.want {
				t.Errorf("Replay:\n got  %s\n want %s", s, tc.want)
			}
			// The order the events come in does not matter.
			rev := slices.Clone(tc.events)
			slices.Reverse(rev)
			if s := timeline(Replay(at(tc.from), at(tc.end), tc.offlineAfter, rev)); s != tc.want {
				t.Errorf("Replay of the events reversed:\n got  %s\n want %s", s, tc.want)
			}
		})
	}
}

func TestStatusAt(t *testing.T) {
	h := time.Hour
	for _, tc := range []struct {
		name         string
		events       []Event // in arrival order
		now          time.Time
		offlineAfter time.Duration
		want         string
		lastSeen     time.Time
	}{
		{name: "nothing heard, at t0 → unknown(no_data)", now: t0, offlineAfter: h, want: "unknown(no_data)"},
		{name: "data at t0, at t0+59m → online", events: data(0, 0), now: at(59), offlineAfter: h, want: "online", lastSeen: t0},
		{name: "data at t0, at t0+1h exactly → still online", events: data(0, 0), now: at(60), offlineAfter: h, want: "online", lastSeen: t0},
		{name: "data at t0, at t0+1h+1ns → offline(silent)", events: data(0, 0), now: at(60).Add(1), offlineAfter: h, want: "offline(silent)", lastSeen: t0},
		{name: "data at t0, offline_after 0, at t0+1000h → online", events: data(0, 0), now: t0.Add(1000 * h), want: "online", lastSeen: t0},
		{name: "offline at t0, at t0+1m → offline(reported_offline)", events: []Event{offline(0, 1)}, now: at(1), offlineAfter: h, want: "offline(reported_offline)", lastSeen: t0},
		{name: "offline at t0, silent past offline_after at t0+2h → still offline(reported_offline)", events: []Event{offline(0, 1)}, now: at(120), offlineAfter: h, want: "offline(reported_offline)", lastSeen: t0},
		{name: "online at t0, at t0+30m → online", events: []Event{online(0, 1)}, now: at(30), offlineAfter: h, want: "online", lastSeen: t0},
		{name: "online at t0, silent past offline_after at t0+2h → offline(silent)", events: []Event{online(0, 1)}, now: at(120), offlineAfter: h, want: "offline(silent)", lastSeen: t0},
		{name: "offline at t0, data at t0+1m → online", events: events([]Event{offline(0, 1)}, data(1, 1)), now: at(2), offlineAfter: h, want: "online", lastSeen: at(1)},
		{name: "data at t0+1m, offline at t0+2m → offline(reported_offline)", events: events(data(1, 1), []Event{offline(2, 1)}), now: at(3), offlineAfter: h, want: "offline(reported_offline)", lastSeen: at(2)},
		{
			name:   "data at t0+10m, then a late offline stamped t0 → offline(reported_offline), last seen stays t0+10m",
			events: events(data(10, 10), []Event{offline(0, 1)}), now: at(11), offlineAfter: h, want: "offline(reported_offline)", lastSeen: at(10),
		},
		{
			name:   "data at t0+10m, then a late data stamped t0: silent at t0+1h10m, not t0+1h",
			events: events(data(10, 10), data(0, 0)), now: at(65), offlineAfter: h, want: "online", lastSeen: at(10),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Status
			for _, e := range tc.events {
				s = s.Apply(e)
			}
			if got := state(s.At(tc.now, tc.offlineAfter)); got != tc.want {
				t.Errorf("At(%s) = %s, want %s", rel(tc.now), got, tc.want)
			}
			if !s.LastSeen.Equal(tc.lastSeen) {
				t.Errorf("LastSeen = %v, want %v", s.LastSeen, tc.lastSeen)
			}
		})
	}
}

func TestOnlineUntil(t *testing.T) {
	seen := Status{LastSeen: t0}
	if u, ok := seen.OnlineUntil(time.Hour); !ok || !u.Equal(at(60)) {
		t.Errorf("online, offline_after 1h: OnlineUntil = %v, %v; want t0+1h", u, ok)
	}
	for name, s := range map[string]Status{"never seen": {}, "reported offline": {LastSeen: t0, ReportedOffline: true}} {
		if u, ok := s.OnlineUntil(time.Hour); ok {
			t.Errorf("%s: OnlineUntil = %v, true; want false", name, u)
		}
	}
	if u, ok := seen.OnlineUntil(0); ok {
		t.Errorf("offline_after 0: OnlineUntil = %v, true; want false", u)
	}
}

func TestEventOf(t *testing.T) {
	for _, tc := range []struct {
		kind reading.Kind
		v    reading.Value
		want EventKind
	}{
		{reading.KindAvailability, reading.Bool(false), EventOffline},
		{reading.KindAvailability, reading.Bool(true), EventOnline},
		{reading.KindTemperature, reading.Number(21.5), EventData},
		{reading.KindDoor, reading.Bool(false), EventData},
	} {
		if got := EventOf(tc.kind, tc.v, t0, 7); got != (Event{At: t0, Kind: tc.want, Seq: 7}) {
			t.Errorf("EventOf(%s, %v) = %+v, want kind %s", tc.kind, tc.v, got, tc.want)
		}
	}
}

func TestStrings(t *testing.T) {
	for got, want := range map[fmt.Stringer]string{
		Unknown: "unknown", Online: "online", Offline: "offline", Availability(9): "Availability(9)",
		CauseNone: "none", CauseNoData: "no_data", CauseReported: "reported_offline", CauseSilent: "silent", Cause(9): "Cause(9)",
		EventData: "data", EventOnline: "online", EventOffline: "offline", EventKind(9): "EventKind(9)",
	} {
		if got.String() != want {
			t.Errorf("%#v.String() = %q, want %q", got, got.String(), want)
		}
	}
}

// FuzzReplay checks that a replay covers its period exactly, in order and
// without gaps, with causes that fit the states, and that it agrees with
// Status.At inside every segment. Each 4 bytes of raw are one event: kind,
// a signed 16-bit offset in seconds from the start of the period, and Seq.
func FuzzReplay(f *testing.F) {
	f.Add(int32(600), uint16(7200), []byte{0, 0, 0, 0, 2, 0x0b, 0xb8, 1, 0, 0x0b, 0xb8, 0, 1, 0xff, 0x00, 3})
	f.Add(int32(0), uint16(60), []byte{2, 0, 10, 1, 1, 0, 10, 1})
	f.Add(int32(-5), uint16(0), []byte{0, 0x80, 0, 0})
	f.Fuzz(func(t *testing.T, offlineAfterSec int32, spanSec uint16, raw []byte) {
		from := t0
		end := from.Add(time.Duration(spanSec) * time.Second)
		offlineAfter := time.Duration(offlineAfterSec) * time.Second
		var evs []Event
		for i := 0; i+4 <= len(raw) && len(evs) < 200; i += 4 {
			off := time.Duration(int16(binary.BigEndian.Uint16(raw[i+1:]))) * time.Second
			evs = append(evs, Event{At: from.Add(off), Kind: EventKind(raw[i] % 3), Seq: uint64(raw[i+3])})
		}
		given := slices.Clone(evs)
		segs := Replay(from, end, offlineAfter, evs)
		if !slices.Equal(evs, given) {
			t.Fatal("Replay changed the events it was given")
		}

		if end.Equal(from) {
			if len(segs) != 0 {
				t.Fatalf("empty period: %d segments", len(segs))
			}
			return
		}
		if len(segs) == 0 || !segs[0].Start.Equal(from) || !segs[len(segs)-1].End.Equal(end) {
			t.Fatalf("segments do not span the period: %s", timeline(segs))
		}
		var sum time.Duration
		for i, s := range segs {
			if !s.End.After(s.Start) {
				t.Fatalf("segment %d is empty or reversed: %s", i, timeline(segs))
			}
			sum += s.End.Sub(s.Start)
			if i > 0 {
				p := segs[i-1]
				if !p.End.Equal(s.Start) {
					t.Fatalf("gap or overlap before segment %d: %s", i, timeline(segs))
				}
				if p.State == s.State && p.Cause == s.Cause {
					t.Fatalf("segments %d and %d not merged: %s", i-1, i, timeline(segs))
				}
			}
			switch {
			case s.State == Online && s.Cause == CauseNone,
				s.State == Unknown && s.Cause == CauseNoData,
				s.State == Offline && (s.Cause == CauseReported || s.Cause == CauseSilent):
			default:
				t.Fatalf("segment %d: state %s with cause %s", i, s.State, s.Cause)
			}
			// Inside a segment, the status from the events up to then says
			// the same.
			mid := s.Start.Add(s.End.Sub(s.Start) / 2)
			if !mid.After(s.Start) {
				continue
			}
			sorted := slices.Clone(evs)
			slices.SortStableFunc(sorted, Compare)
			var st Status
			for _, e := range sorted {
				if e.At.After(mid) {
					break
				}
				st = st.Apply(e)
			}
			if a, c := st.At(mid, offlineAfter); a != s.State || c != s.Cause {
				t.Fatalf("segment %d %s, but At(%s) = %s", i, state(s.State, s.Cause), rel(mid), state(a, c))
			}
		}
		if sum != end.Sub(from) {
			t.Fatalf("durations add up to %v, want %v", sum, end.Sub(from))
		}
	})
}
