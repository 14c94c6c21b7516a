package config

import (
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// Duration is the facility model's one duration type ("90s", "1h30m",
// "90d", "1d12h"); config, rules and notification channels share it.
type Duration = facility.Duration

// ParseDuration parses s as a Duration.
func ParseDuration(s string) (Duration, error) { return facility.ParseDuration(s) }

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
