package reading

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

func sample() Reading {
	t := time.Date(2026, 11, 30, 3, 0, 0, 123456789, time.UTC)
	return Reading{
		Facility: "north-shelter-01", Device: "dorm3-smoke", Zone: "dorm-3",
		Kind: KindSmoke, Format: "zigbee2mqtt",
		Time: t, Received: t.Add(40 * time.Millisecond),
		Value: Bool(true), Battery: Ptr(87), LinkQuality: Ptr(120),
	}
}

// A log written by a gateway before channels existed (version 1) is read
// with an empty channel. The bytes are built by hand in that layout.
func TestCodecReadsVersion1(t *testing.T) {
	r := sample()
	enc := []byte{1}
	for _, s := range []string{r.Facility, r.Device, r.Zone, string(r.Kind), r.Format} {
		enc = binary.AppendUvarint(enc, uint64(len(s)))
		enc = append(enc, s...)
	}
	enc = binary.AppendVarint(enc, r.Time.UnixNano())
	enc = binary.AppendVarint(enc, r.Received.UnixNano())
	enc = AppendValue(enc, r.Value)
	enc = append(enc, 1)
	enc = binary.BigEndian.AppendUint64(enc, math.Float64bits(*r.Battery))
	got := Reading{Channel: "stale"}
	if err := UnmarshalBinary(enc, &got); err != nil {
		t.Fatalf("decode version 1: %v", err)
	}
	if got.Device != r.Device || got.Format != r.Format || got.Channel != "" || !got.Value.Bool || got.Battery == nil || *got.Battery != 87 || got.LinkQuality != nil {
		t.Fatalf("version 1 decoded as %+v", got)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	base := sample()
	cases := map[string]func(r *Reading){
		"bool with battery and lqi": func(r *Reading) {},
		"number":                    func(r *Reading) { r.Kind, r.Value = KindTemperature, Number(-12.25) },
		"state":                     func(r *Reading) { r.Value = State("ready") },
		"no attributes":             func(r *Reading) { r.Battery, r.LinkQuality = nil, nil },
		"only link quality":         func(r *Reading) { r.Battery = nil },
		"unicode zone":              func(r *Reading) { r.Zone = "三号宿舍" },
		"channel":                   func(r *Reading) { r.Kind, r.Value, r.Channel = KindTemperature, Number(20.5), "DS18B20-2" },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			r := base
			mut(&r)
			enc := AppendBinary(nil, &r)
			var got Reading
			if err := UnmarshalBinary(enc, &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			// time.Time from Unix carries the local location; compare instants.
			if !got.Time.Equal(r.Time) || !got.Received.Equal(r.Received) {
				t.Fatalf("times: got %v/%v want %v/%v", got.Time, got.Received, r.Time, r.Received)
			}
			got.Time, got.Received = r.Time, r.Received
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
			}
		})
	}
}

func TestCodecRejectsCorrupt(t *testing.T) {
	r := sample()
	enc := AppendBinary(nil, &r)
	cases := map[string][]byte{
		"empty":         nil,
		"bad version":   append([]byte{9}, enc[1:]...),
		"truncated":     enc[:len(enc)-3],
		"trailing":      append(append([]byte{}, enc...), 0),
		"huge length":   {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad value tag": func() []byte { v := r; v.Value = Value{Type: 77}; return AppendBinary(nil, &v) }(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var got Reading
			if err := UnmarshalBinary(b, &got); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("want ErrCorrupt, got %v", err)
			}
		})
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	r := sample()
	f.Add(AppendBinary(nil, &r))
	r.Value = Number(math.Pi)
	f.Add(AppendBinary(nil, &r))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got Reading
		if err := UnmarshalBinary(b, &got); err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		again := AppendBinary(nil, &got)
		var back Reading
		if err := UnmarshalBinary(again, &back); err != nil {
			t.Fatalf("re-encoded reading does not decode: %v", err)
		}
	})
}
