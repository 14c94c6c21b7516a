package decode

import (
	"bytes"
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// A one-pass reader of JSON objects for the hot path. encoding/json
// reads a payload twice (a validity scan, then a decode by reflection);
// for a Zigbee2MQTT state that was about a tenth of the gateway's CPU per
// message. scanObject validates the object and hands out each member's
// raw value in the same pass; scanMap and scanStruct read it as
// encoding/json reads one into a map or a struct of json.RawMessage
// fields, and a member whose value is an object (a Tasmota sensor) is
// read by scanning that value again. They answer only when they are sure
// to agree with encoding/json: anything they do not handle the same way (a
// key that needs escapes or Unicode case folding, nesting deeper than
// maxScanDepth, and every malformed payload, whose error message
// encoding/json words) makes them return false, and the caller decodes
// with encoding/json.

const maxScanDepth = 64

// scanObject reads p as one JSON object surrounded by optional
// whitespace, calling member for each member in order with its key (as
// written, without quotes) and its value's bytes. It returns false when p
// is not such an object, when a key holds escapes, or when member returns
// false.
func scanObject(p []byte, member func(key, value []byte) bool) bool {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return false
	}
	i, ok := scanMembers(p, i, 0, member)
	return ok && skipSpace(p, i) == len(p)
}

// scanMembers returns the index after the object starting at p[i] (a
// brace). With a member function it hands out each member as scanObject
// does and refuses keys with escapes, which member could only read as
// written; without one it only validates.
func scanMembers(p []byte, i, depth int, member func(key, value []byte) bool) (int, bool) {
	if depth > maxScanDepth {
		return i, false
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(p) || p[i] != '"' {
			return i, false
		}
		end, escaped, ok := scanString(p, i)
		if !ok || (escaped && member != nil) {
			return end, false
		}
		key := p[i+1 : end-1]
		i = skipSpace(p, end)
		if i >= len(p) || p[i] != ':' {
			return i, false
		}
		vs := skipSpace(p, i+1)
		if i, ok = scanValue(p, vs, depth); !ok {
			return i, false
		}
		if member != nil && !member(key, p[vs:i]) {
			return i, false
		}
		var more bool
		if i, more, ok = scanSeparator(p, i, '}'); !more {
			return i, ok
		}
	}
}

// scanSeparator reads what follows a member or an element: a comma, after
// which more follow, or the closing byte of the object or the array.
func scanSeparator(p []byte, i int, closing byte) (next int, more, ok bool) {
	i = skipSpace(p, i)
	if i < len(p) {
		switch p[i] {
		case ',':
			return skipSpace(p, i+1), true, true
		case closing:
			return i + 1, false, true
		}
	}
	return i, false, false
}

// jsonMember is one member of a JSON object: its key as written, without
// quotes, and its value's bytes.
type jsonMember struct {
	key   []byte
	value json.RawMessage
}

// scanMap reads p, a JSON object, as encoding/json reads it into a
// map[string]json.RawMessage, but as its members sorted by key, each key
// once (the last of duplicates wins), so that a decoder ranges over them
// as over the map's sorted keys. The members are appended to buf and share
// p's bytes. False when scanObject is: a key with escapes would need
// unquoting to become the map's key.
func scanMap(p []byte, buf []jsonMember) ([]jsonMember, bool) {
	ms := buf
	if !scanObject(p, func(key, value []byte) bool {
		ms = append(ms, jsonMember{key, value})
		return true
	}) {
		return nil, false
	}
	// Stable, so that of equal keys the one written last comes last.
	slices.SortStableFunc(ms, func(a, b jsonMember) int { return bytes.Compare(a.key, b.key) })
	out := ms[:0]
	for i, m := range ms {
		if i+1 < len(ms) && bytes.Equal(m.key, ms[i+1].key) {
			continue
		}
		out = append(out, m)
	}
	return out, true
}

// mapMembers turns a map encoding/json made into the members scanMap
// would have read, appended to buf.
func mapMembers(m map[string]json.RawMessage, buf []jsonMember) []jsonMember {
	ms := buf
	for k, v := range m {
		ms = append(ms, jsonMember{[]byte(k), v})
	}
	slices.SortFunc(ms, func(a, b jsonMember) int { return bytes.Compare(a.key, b.key) })
	return ms
}

// lookup returns the value of key among members sorted by key, nil when
// there is none (as a map index would).
func lookup(ms []jsonMember, key string) json.RawMessage {
	i, ok := slices.BinarySearchFunc(ms, key, func(m jsonMember, k string) int {
		switch { // comparisons, where string(m.key) costs no copy
		case string(m.key) < k:
			return -1
		case string(m.key) > k:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return ms[i].value
}

// rawField is a json.RawMessage field of a struct and its JSON name.
type rawField struct {
	name string
	raw  *json.RawMessage
}

// scanStruct reads p, a JSON object, into fields as json.Unmarshal reads
// it into a struct of json.RawMessage fields with those names: a key sets
// the field whose name it equals, ignoring case, the last of duplicates
// wins, and other keys are skipped. encoding/json also folds Unicode (ſ
// matches s, the Kelvin sign k), so a key that is not ASCII makes it
// return false, as does anything scanObject leaves to encoding/json.
// The values share p's bytes.
func scanStruct(p []byte, fields ...rawField) bool {
	return scanObject(p, func(key, value []byte) bool {
		for _, c := range key {
			if c >= utf8.RuneSelf {
				return false
			}
		}
		for _, f := range fields {
			if equalFoldASCII(key, f.name) {
				*f.raw = value
				break
			}
		}
		return true
	})
}

// equalFoldASCII reports whether key equals name ignoring the case of
// ASCII letters, as encoding/json matches an ASCII key to a field name.
func equalFoldASCII(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range len(key) {
		a, b := key[i], name[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// scanValue returns the index after the JSON value starting at p[i].
func scanValue(p []byte, i, depth int) (int, bool) {
	if i >= len(p) {
		return i, false
	}
	switch c := p[i]; {
	case c == '"':
		end, _, ok := scanString(p, i)
		return end, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(p, i)
	case c == 't':
		return scanLiteral(p, i, "true")
	case c == 'f':
		return scanLiteral(p, i, "false")
	case c == 'n':
		return scanLiteral(p, i, "null")
	case c == '[':
		return scanArray(p, i, depth+1)
	case c == '{':
		return scanMembers(p, i, depth+1, nil)
	}
	return i, false
}

// scanString returns the index after the string starting at p[i] (a
// quote) and whether it holds escapes. Bytes below 0x20 are refused as
// encoding/json refuses them; other bytes pass (the payload was checked
// for UTF-8 before).
func scanString(p []byte, i int) (end int, escaped, ok bool) {
	for i++; i < len(p); i++ {
		switch c := p[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c < 0x20:
			return i, escaped, false
		case c == '\\':
			escaped = true
			i++
			if i >= len(p) {
				return i, escaped, false
			}
			switch p[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(p) {
					return i, escaped, false
				}
				for _, h := range p[i+1 : i+5] {
					if !isHex(h) {
						return i, escaped, false
					}
				}
				i += 4
			default:
				return i, escaped, false
			}
		}
	}
	return i, escaped, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanNumber follows JSON's number grammar:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func scanNumber(p []byte, i int) (int, bool) {
	if p[i] == '-' {
		i++
	}
	switch {
	case i < len(p) && p[i] == '0':
		i++
	case i < len(p) && p[i] >= '1' && p[i] <= '9':
		i = digits(p, i)
	default:
		return i, false
	}
	if i < len(p) && p[i] == '.' {
		j := digits(p, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		j := digits(p, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(p []byte, i int) int {
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	return i
}

func scanLiteral(p []byte, i int, lit string) (int, bool) {
	if len(p)-i < len(lit) || string(p[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

func scanArray(p []byte, i, depth int) (int, bool) {
	if depth > maxScanDepth {
		return i, false
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == ']' {
		return i + 1, true
	}
	for {
		var ok, more bool
		if i, ok = scanValue(p, i, depth); !ok {
			return i, false
		}
		if i, more, ok = scanSeparator(p, i, ']'); !more {
			return i, ok
		}
	}
}
