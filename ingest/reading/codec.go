package reading

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Binary encoding of a Reading as stored in the durable log. It is compact
// (about 80 bytes for a typical reading) and versioned so that a newer
// gateway can read what an older one wrote. Seq is not encoded: it is the
// log key.
//
//	version(1)=2
//	facility, device, zone, kind, format, channel: uvarint length + bytes each
//	time, received: varint Unix nanoseconds each
//	value type(1), then number: float64 bits(8) | bool(1) | state: uvarint length + bytes
//	flags(1): bit0 battery present, bit1 link quality present; float64 bits(8) each
//
// Version 1 had no channel; it is still read (as an empty channel).
const codecVersion = 2

// maxField bounds every string in an encoded reading, so a corrupt length
// cannot make the decoder allocate gigabytes.
const maxField = 1 << 16

// ErrCorrupt is returned for an encoded reading that cannot be decoded.
var ErrCorrupt = errors.New("reading: corrupt encoding")

// AppendBinary appends the encoding of r to dst and returns the result.
func AppendBinary(dst []byte, r *Reading) []byte {
	dst = append(dst, codecVersion)
	for _, s := range [...]string{r.Facility, r.Device, r.Zone, string(r.Kind), r.Format, r.Channel} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendVarint(dst, r.Time.UnixNano())
	dst = binary.AppendVarint(dst, r.Received.UnixNano())
	dst = AppendValue(dst, r.Value)
	var flags byte
	if r.Battery != nil {
		flags |= 1
	}
	if r.LinkQuality != nil {
		flags |= 2
	}
	dst = append(dst, flags)
	if r.Battery != nil {
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(*r.Battery))
	}
	if r.LinkQuality != nil {
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(*r.LinkQuality))
	}
	return dst
}

// AppendValue appends the encoding of v (type byte and payload).
func AppendValue(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.Type))
	switch v.Type {
	case TypeNumber:
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(v.Num))
	case TypeBool:
		b := byte(0)
		if v.Bool {
			b = 1
		}
		dst = append(dst, b)
	case TypeState:
		dst = binary.AppendUvarint(dst, uint64(len(v.State)))
		dst = append(dst, v.State...)
	}
	return dst
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
}

func (d *decoder) byte1(what string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) u64(what string) uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(what string) string {
	if d.err != nil {
		return ""
	}
	l, n := binary.Uvarint(d.b)
	if n <= 0 || l > maxField || uint64(len(d.b)-n) < l {
		d.fail(what)
		return ""
	}
	s := string(d.b[n : n+int(l)])
	d.b = d.b[n+int(l):]
	return s
}

func (d *decoder) value() Value {
	var v Value
	v.Type = ValueType(d.byte1("value type"))
	switch v.Type {
	case TypeNumber:
		v.Num = math.Float64frombits(d.u64("number"))
	case TypeBool:
		v.Bool = d.byte1("bool") == 1
	case TypeState:
		v.State = d.str("state")
	default:
		d.fail("value type")
	}
	return v
}

// UnmarshalBinary decodes an encoding made by AppendBinary into r.
// r.Seq is left untouched.
func UnmarshalBinary(b []byte, r *Reading) error {
	d := decoder{b: b}
	v := d.byte1("version")
	if d.err == nil && v != codecVersion && v != 1 {
		return fmt.Errorf("%w: unknown version %d", ErrCorrupt, v)
	}
	r.Facility = d.str("facility")
	r.Device = d.str("device")
	r.Zone = d.str("zone")
	r.Kind = Kind(d.str("kind"))
	r.Format = d.str("format")
	r.Channel = ""
	if v >= 2 {
		r.Channel = d.str("channel")
	}
	r.Time = time.Unix(0, d.varint("time"))
	r.Received = time.Unix(0, d.varint("received"))
	r.Value = d.value()
	flags := d.byte1("flags")
	r.Battery, r.LinkQuality = nil, nil
	if flags&1 != 0 {
		r.Battery = Ptr(math.Float64frombits(d.u64("battery")))
	}
	if flags&2 != 0 {
		r.LinkQuality = Ptr(math.Float64frombits(d.u64("link quality")))
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// DecodeValue decodes an encoding made by AppendValue.
func DecodeValue(b []byte) (Value, error) {
	d := decoder{b: b}
	v := d.value()
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return v, d.err
}
