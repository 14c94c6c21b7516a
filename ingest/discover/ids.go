package discover

import (
	"strconv"
	"strings"
)

// maxIDLen is the longest device id (and channel) the gateway config
// accepts.
const maxIDLen = 64

// slug turns a device's name into an id: lower-case ASCII letters and
// digits, '-' and '_'; everything else ('/', spaces, other scripts) becomes
// one '-'. It may return "" (a name in Chinese only).
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
	}
	s := strings.Trim(b.String(), "_-")
	if len(s) > maxIDLen {
		s = strings.TrimRight(s[:maxIDLen], "_-")
	}
	return s
}

// channelID is the id of one channel of a board: the board's id and the
// channel's, without the words they start with in common (ESPHome object
// ids often repeat the node's name: node "dorm-2f-node", object
// "dorm_2f_smoke" → "dorm-2f-node-smoke").
func channelID(board, channel string) string {
	b, c := slug(board), slug(channel)
	if b == "" || c == "" {
		return b + c
	}
	words := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' })
	}
	bw, cw := words(b), words(c)
	i := 0
	for i < len(bw) && i < len(cw)-1 && bw[i] == cw[i] {
		i++
	}
	if i > 0 {
		c = strings.Join(cw[i:], "-")
	}
	return slug(b + "-" + c)
}

// idSet hands out unique ids.
type idSet map[string]bool

func newIDSet(o Options) idSet {
	s := idSet{}
	for _, c := range o.Configured {
		s[c.ID] = true
	}
	for _, r := range o.Reserved {
		s[r] = true
	}
	return s
}

// take returns want, or want with the smallest "-N" that is free, and
// marks it taken. An empty want becomes "device".
func (s idSet) take(want string) string {
	if want == "" {
		want = "device"
	}
	id := want
	for n := 2; s[id]; n++ {
		suffix := "-" + strconv.Itoa(n)
		base := want
		if len(base)+len(suffix) > maxIDLen {
			base = strings.TrimRight(base[:maxIDLen-len(suffix)], "_-")
		}
		id = base + suffix
	}
	s[id] = true
	return id
}
