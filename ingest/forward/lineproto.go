package forward

import (
	"strconv"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// The line-protocol schema (also in README.md, "InfluxDB schema"):
//
//	<prefix><kind>,device=<device>,facility=<facility>,kind=<kind>[,sensor=<channel>],zone=<zone> value=<v>[,battery=<pct>][,link_quality=<lqi>] <time ns>
//
//   - One measurement per kind (temperature, smoke, door …), optionally
//     prefixed (measurement_prefix), so that a field keeps one type per
//     measurement: numbers are floats, on/off kinds are booleans (smoke=true
//     means smoke), state kinds are strings.
//   - Tags in sorted key order (InfluxDB's canonical order, cheapest to
//     index): device, facility, kind, sensor, zone. An empty zone or
//     sensor is left out. sensor is the reading's channel: the sub-sensor
//     of a multi-sensor board ("DS18B20-2"), so that two thermometers of
//     one board at one instant are two points, not one.
//   - The timestamp is the reading's time (the device's own when it sent
//     one), in nanoseconds. A series is identified by measurement and tags,
//     so writing the same reading twice overwrites it with identical values:
//     re-sent batches are idempotent, and at-least-once delivery gives
//     exactly-once data.
//
// Two readings of one device and kind with the same timestamp are one point
// in InfluxDB (the later arrival wins); the local store keeps both.

// appendLine appends r as one line (without the newline) to dst.
func appendLine(dst []byte, prefix string, r *reading.Reading) []byte {
	dst = appendMeasurement(dst, prefix)
	dst = appendMeasurement(dst, string(r.Kind))
	dst = appendTag(dst, "device", r.Device)
	dst = appendTag(dst, "facility", r.Facility)
	dst = appendTag(dst, "kind", string(r.Kind))
	dst = appendTag(dst, "sensor", r.Channel)
	dst = appendTag(dst, "zone", r.Zone)
	dst = append(dst, " value="...)
	switch r.Value.Type {
	case reading.TypeBool:
		dst = strconv.AppendBool(dst, r.Value.Bool)
	case reading.TypeState:
		dst = appendStringField(dst, r.Value.State)
	default:
		dst = appendFloat(dst, r.Value.Num)
	}
	if r.Battery != nil {
		dst = append(dst, ",battery="...)
		dst = appendFloat(dst, *r.Battery)
	}
	if r.LinkQuality != nil {
		dst = append(dst, ",link_quality="...)
		dst = appendFloat(dst, *r.LinkQuality)
	}
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, r.Time.UnixNano(), 10)
}

// appendFloat writes a float field value. 'g' formatting may give "21"
// (still a float in line protocol: integers need an "i" suffix) or
// "1e+06" (accepted by InfluxDB's parser).
func appendFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendMeasurement escapes commas and spaces (line protocol's measurement
// rules); newlines cannot be escaped at all and become spaces.
func appendMeasurement(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ',', ' ':
			dst = append(dst, '\\', c)
		case '\n', '\r':
			dst = append(dst, '\\', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendTag appends ",key=value" with commas, equals signs and spaces
// escaped, or nothing for an empty value (line protocol has no empty tags).
// A trailing backslash would escape the separator after it, so it is
// doubled.
func appendTag(dst []byte, key, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',')
	dst = append(dst, key...)
	dst = append(dst, '=')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case ',', '=', ' ':
			dst = append(dst, '\\', c)
		case '\n', '\r':
			dst = append(dst, '\\', ' ')
		case '\\':
			if i == len(value)-1 {
				dst = append(dst, '\\', '\\')
			} else {
				dst = append(dst, c)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendStringField appends a double-quoted string field value with
// backslashes and quotes escaped.
func appendStringField(dst []byte, s string) []byte {
	dst = append(dst, '"')
	if strings.ContainsAny(s, `"\`) {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c == '"' || c == '\\' {
				dst = append(dst, '\\')
			}
			dst = append(dst, s[i])
		}
	} else {
		dst = append(dst, s...)
	}
	return append(dst, '"')
}
