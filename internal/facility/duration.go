package facility

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Duration is a time.Duration written as in Go ("90s", "1h30m") or with a
// day suffix in front ("90d", "1d12h"). It is the one duration type of the
// config, the rules and the notification channels, so `for: 1d` means the
// same everywhere. Negative durations and durations that overflow int64
// nanoseconds (about 292 years) are refused.
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
		// Not produced by parsing, but a value built in code may hold it.
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

// quote quotes a value for a message, cut to 60 characters: the value
// comes from a file or a request and may be long.
func quote(s string) string {
	if utf8.RuneCountInString(s) > 60 {
		s = string([]rune(s)[:60]) + "…"
	}
	return strconv.Quote(s)
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
