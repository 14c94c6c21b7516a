package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// What ReadLog serves from memory is what the log holds: every field, the
// times as decoded (no monotonic clock, local zone), whatever the read's
// start and length, and a reader further behind than the ring reads the
// log.
func TestTailReadsAsTheLog(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, TailReadings: 64})
	rng := rand.New(rand.NewPCG(1, 2))
	var want []reading.Reading // as appended, with their sequence numbers
	for batch := range 12 {
		var rs []reading.Reading
		for i := range 1 + rng.IntN(20) {
			now := time.Now() // with a monotonic reading
			r := reading.Reading{Facility: "f1", Device: fmt.Sprintf("d%d", i), Zone: "z1", Kind: reading.KindDoor,
				Format: "zigbee2mqtt", Channel: fmt.Sprintf("c%d", batch), Time: now.Add(-time.Second).In(time.UTC), Received: now,
				Value: reading.Bool(i%2 == 0)}
			switch i % 3 {
			case 1:
				r.Kind, r.Value, r.Battery = reading.KindTemperature, reading.Number(rng.Float64()*30), reading.Ptr(87)
			case 2:
				r.Kind, r.Value, r.LinkQuality = reading.KindFault, reading.State("open circuit"), reading.Ptr(120)
			}
			rs = append(rs, r)
		}
		if err := s.Append(context.Background(), rs); err != nil {
			t.Fatal(err)
		}
		want = append(want, rs...)
	}
	last := s.LastSeq()
	if int(last) != len(want) {
		t.Fatalf("last seq %d after %d readings", last, len(want))
	}
	type read struct {
		after uint64
		limit int
	}
	var reads []read
	for after := uint64(0); after <= last; after++ {
		reads = append(reads, read{after, 1 + rng.IntN(80)})
	}
	fromTail := map[read][]reading.Reading{}
	served := 0
	for _, rd := range reads {
		if _, ok := s.tail.read(nil, rd.after+1, last, rd.limit); ok {
			served++
		}
		got, err := s.ReadLog(rd.after, rd.limit)
		if err != nil {
			t.Fatal(err)
		}
		fromTail[rd] = got
	}
	if served < 60 || served == len(reads) {
		t.Fatalf("the tail served %d of %d reads: want the last 64 readings' reads, and not the older ones", served, len(reads))
	}
	// Reopened, the tail is empty: every read comes from the log.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: dir, TailReadings: 64})
	for _, rd := range reads {
		got, err := s.ReadLog(rd.after, rd.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, fromTail[rd]) {
			t.Fatalf("ReadLog(%d, %d): from memory %+v, from the log %+v", rd.after, rd.limit, fromTail[rd], got)
		}
		if n := min(rd.limit, int(last-rd.after)); len(got) != n {
			t.Fatalf("ReadLog(%d, %d) returned %d readings, want %d", rd.after, rd.limit, len(got), n)
		}
		for i, r := range got {
			w := want[int(rd.after)+i]
			if r.Seq != w.Seq || r.Device != w.Device || !r.Time.Equal(w.Time) || r.Value != w.Value {
				t.Fatalf("ReadLog(%d, %d)[%d] = %+v, appended %+v", rd.after, rd.limit, i, r, w)
			}
		}
	}
}

// A batch whose sequence numbers do not follow on from the ring's (the
// fsync of the one between failed) starts the ring again.
func TestTailStartsAgainAfterAGap(t *testing.T) {
	tl := newTail(8)
	batch := func(from, n uint64) []*appendReq {
		req := &appendReq{}
		for seq := from; seq < from+n; seq++ {
			req.readings = append(req.readings, reading.Reading{Seq: seq, Device: fmt.Sprint(seq)})
		}
		return []*appendReq{req}
	}
	tl.add(batch(1, 5))
	if got, ok := tl.read(nil, 2, 5, 10); !ok || len(got) != 4 || got[0].Seq != 2 {
		t.Fatalf("read(2..5) = %v, %v", got, ok)
	}
	tl.add(batch(9, 3)) // 6–8 were lost
	if _, ok := tl.read(nil, 5, 11, 10); ok {
		t.Fatal("served a read across the gap")
	}
	if got, ok := tl.read(nil, 9, 11, 10); !ok || len(got) != 3 || got[2].Device != "11" {
		t.Fatalf("read(9..11) = %v, %v", got, ok)
	}
	tl.add(batch(12, 10)) // past the ring's size: the oldest go
	if _, ok := tl.read(nil, 13, 21, 10); ok {
		t.Fatal("served a sequence number the ring no longer holds")
	}
	if got, ok := tl.read(nil, 14, 21, 10); !ok || len(got) != 8 || got[0].Device != "14" || got[7].Device != "21" {
		t.Fatalf("read(14..21) = %v, %v", got, ok)
	}
}
