package decode

// A one-pass reader of flat JSON objects for the hot path. encoding/json
// reads a payload twice (a validity scan, then a decode by reflection);
// for a Zigbee2MQTT state that was about a tenth of the gateway's CPU per
// message. scanObject validates the object and hands out each member's
// raw value in the same pass. It answers only when it is sure to agree
// with encoding/json: anything it does not handle the same way (a key
// that needs escapes or case folding, nesting deeper than maxScanDepth,
// and every malformed payload, whose error message encoding/json words)
// makes it return false, and the caller decodes with encoding/json.

const maxScanDepth = 64

// scanObject reads p as one JSON object surrounded by optional
// whitespace, calling member for each member in order with its key (as
// written, without quotes) and its value's bytes. It returns false when p
// is not such an object, or when member returns false.
func scanObject(p []byte, member func(key, value []byte) bool) bool {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return false
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return skipSpace(p, i+1) == len(p)
	}
	for {
		if i >= len(p) || p[i] != '"' {
			return false
		}
		ks := i + 1
		end, escaped, ok := scanString(p, i)
		if !ok || escaped {
			return false
		}
		key := p[ks : end-1]
		i = skipSpace(p, end)
		if i >= len(p) || p[i] != ':' {
			return false
		}
		i = skipSpace(p, i+1)
		vs := i
		if i, ok = scanValue(p, i, 0); !ok {
			return false
		}
		if !member(key, p[vs:i]) {
			return false
		}
		i = skipSpace(p, i)
		if i >= len(p) {
			return false
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return skipSpace(p, i+1) == len(p)
		default:
			return false
		}
	}
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
		return scanNested(p, i, depth+1)
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
		var ok bool
		if i, ok = scanValue(p, i, depth); !ok {
			return i, false
		}
		i = skipSpace(p, i)
		if i >= len(p) {
			return i, false
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

func scanNested(p []byte, i, depth int) (int, bool) {
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
		end, _, ok := scanString(p, i)
		if !ok {
			return end, false
		}
		i = skipSpace(p, end)
		if i >= len(p) || p[i] != ':' {
			return i, false
		}
		if i, ok = scanValue(p, skipSpace(p, i+1), depth); !ok {
			return i, false
		}
		i = skipSpace(p, i)
		if i >= len(p) {
			return i, false
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}
