package devstate

import (
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

func TestOnlineFromAvailabilityAndSilence(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	now := t0
	tr := New([]facility.Device{{ID: "door-1", Zone: "ward", Kind: reading.KindDoor, OfflineAfter: time.Hour}}, func() time.Time { return now })
	avail := func(on bool) []reading.Reading {
		return []reading.Reading{{Device: "door-1", Kind: reading.KindAvailability, Time: now, Value: reading.Bool(on)}}
	}
	door := func(open bool) []reading.Reading {
		return []reading.Reading{{Device: "door-1", Kind: reading.KindDoor, Time: now, Value: reading.Bool(open), Battery: reading.Ptr(80)}}
	}
	steps := []struct {
		name    string
		advance time.Duration
		msg     []reading.Reading
		online  bool
		reason  string
	}{
		{"never seen", 0, nil, false, "never_seen"},
		{"first reading", 0, door(false), true, ""},
		{"LWT offline", time.Minute, avail(false), false, "availability"},
		{"data after LWT means online", time.Minute, door(true), true, ""},
		{"quiet but within offline_after", 59 * time.Minute, nil, true, ""},
		{"silent past offline_after", 2 * time.Minute, nil, false, "silent"},
		{"heartbeat revives", 0, []reading.Reading{}, true, ""},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		if st.msg != nil {
			tr.Observe("door-1", now, st.msg)
		}
		s, ok := tr.Get("door-1")
		if !ok {
			t.Fatal("device missing")
		}
		if s.Online != st.online || s.OfflineReason != st.reason {
			t.Fatalf("%s: online=%v reason=%q, want %v %q", st.name, s.Online, s.OfflineReason, st.online, st.reason)
		}
	}
	s, _ := tr.Get("door-1")
	if s.Battery == nil || *s.Battery != 80 {
		t.Fatalf("battery not kept: %v", s.Battery)
	}
	if lv := s.Last[reading.KindDoor]; !lv.Value.Bool {
		t.Fatalf("last door value = %v, want open", lv.Value)
	}
	tr.Observe("unknown", now, door(true)) // ignored, no panic
	if len(tr.Snapshot()) != 1 {
		t.Fatal("unknown device added to snapshot")
	}
}

func TestRestoreAfterRestart(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	now := t0.Add(2 * time.Hour)
	tests := []struct {
		name   string
		series map[reading.Kind]LastValue
		online bool
		reason string
	}{
		{"quiet battery sensor stays online", map[reading.Kind]LastValue{
			reading.KindSmoke: {Value: reading.Bool(false), Time: t0}}, true, ""},
		{"offline LWT after the last data", map[reading.Kind]LastValue{
			reading.KindSmoke:        {Value: reading.Bool(false), Time: t0},
			reading.KindAvailability: {Value: reading.Bool(false), Time: t0.Add(time.Minute)}}, false, "availability"},
		{"data after an old LWT", map[reading.Kind]LastValue{
			reading.KindAvailability: {Value: reading.Bool(false), Time: t0},
			reading.KindSmoke:        {Value: reading.Bool(false), Time: t0.Add(time.Minute)}}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Try both restore orders: the store lists series in any order.
			for _, reverse := range []bool{false, true} {
				tr := New([]facility.Device{{ID: "s", Kind: reading.KindSmoke, OfflineAfter: 25 * time.Hour}}, func() time.Time { return now })
				kinds := []reading.Kind{reading.KindSmoke, reading.KindAvailability}
				if reverse {
					kinds[0], kinds[1] = kinds[1], kinds[0]
				}
				for _, k := range kinds {
					if lv, ok := tc.series[k]; ok {
						tr.Restore("s", k, lv)
					}
				}
				s, _ := tr.Get("s")
				if s.Online != tc.online || s.OfflineReason != tc.reason {
					t.Fatalf("reverse=%v: online=%v reason=%q, want %v %q", reverse, s.Online, s.OfflineReason, tc.online, tc.reason)
				}
			}
		})
	}
}
