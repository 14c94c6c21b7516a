package config

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as in Go ("90s", "1h30m") or with a
// day suffix in front ("90d", "1d12h"). Negative durations are rejected.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// dayRE matches a leading count of days; the rest is a Go duration.
var dayRE = regexp.MustCompile(`^([0-9]+)d(.*)$`)

// ParseDuration parses s as a Duration.
func ParseDuration(s string) (Duration, error) {
	bad := fmt.Errorf("invalid duration %s", quote(s))
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative duration %s", quote(s))
	}
	var days int64
	rest := s
	m := dayRE.FindStringSubmatch(s)
	if m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return 0, bad
		}
		days, rest = n, m[2]
		if strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
			return 0, bad
		}
	}
	var d time.Duration
	if rest != "" || m == nil {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, bad
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %s", quote(s))
	}
	total := time.Duration(days) * 24 * time.Hour
	if d > math.MaxInt64-total {
		return 0, bad
	}
	return Duration(total + d), nil
}

// String formats d so that ParseDuration reads it back: days first, then
// the units down to nanoseconds that are not zero ("90d", "1d1h", "1h30m",
// "1s500ms", "0s").
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		// Not produced by parsing, but a Config built in code may hold it.
		return time.Duration(d).String()
	}
	var b strings.Builder
	rest := time.Duration(d)
	for _, u := range []struct {
		name string
		size time.Duration
	}{
		{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second},
		{"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond},
	} {
		if n := rest / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			rest -= n * u.size
		}
	}
	return b.String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ByteSize is a size in bytes, written as a plain number of bytes ("65536")
// or with a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
// (powers of 1024). Units are case-insensitive, a space before the unit and
// a decimal fraction ("1.5GiB") are allowed; fractions of a byte are
// dropped.
type ByteSize int64

// byteUnits are in the order String tries them: largest first, binary before
// decimal of similar size so that round binary sizes print as such.
var byteUnits = []struct {
	name string
	size int64
}{
	{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3},
}

var byteSizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)$`)

// ParseByteSize parses s as a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative byte size %s", quote(s))
	}
	m := byteSizeRE.FindStringSubmatch(s)
	if m == nil || len(m[1]) > 40 {
		return 0, fmt.Errorf("invalid byte size %s", quote(s))
	}
	mult := int64(-1)
	switch {
	case m[2] == "" || strings.EqualFold(m[2], "B"):
		mult = 1
	default:
		for _, u := range byteUnits {
			if strings.EqualFold(m[2], u.name) {
				mult = u.size
			}
		}
	}
	if mult < 0 {
		return 0, fmt.Errorf("invalid byte size %s: unknown unit %s (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", quote(s), quote(m[2]))
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("invalid byte size %s", quote(s))
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom()) // r >= 0: truncation is floor
	if !n.IsInt64() {
		return 0, fmt.Errorf("invalid byte size %s: too large", quote(s))
	}
	return ByteSize(n.Int64()), nil
}

// String formats b with the largest unit that divides it exactly ("4GiB",
// "64KiB", "10MB", "1000B" is "1KB", "123B").
func (b ByteSize) String() string {
	if b > 0 {
		for _, u := range byteUnits {
			if int64(b)%u.size == 0 {
				return strconv.FormatInt(int64(b)/u.size, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Secret holds a password, or a hash of one, that must not end up in logs.
// It prints, formats, logs and marshals to JSON as "[redacted]" (or "" when
// empty); string(s) or Reveal gives the value to the code that needs it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format implements fmt.Formatter, so no verb (%v, %#v, %x, %q...) prints the
// secret.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	io.WriteString(f, s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }
