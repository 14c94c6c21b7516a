// Package cfgerr is the one shape of a configuration problem found outside
// the config package: the path of the key, relative to the section being
// checked, and what is wrong with it. The rules engine (the rule list) and
// the notification channels (the notify section) check their own sections
// and report problems this way; the config package adds the file and the
// line, and lists every problem of the file at once.
package cfgerr

import (
	"strconv"
	"strings"
)

// Problem is one problem: Key is the path of the key relative to the
// section ("[3].when" in the rule list, "channels[2].webhook.url" in
// notify), Msg what is wrong.
type Problem struct {
	Key string
	Msg string
}

func (p Problem) Error() string {
	if p.Key == "" {
		return p.Msg
	}
	return p.Key + ": " + p.Msg
}

// At returns the problem of item i of a list section: its key is "[i]" or
// "[i].key".
func At(i int, key, msg string) Problem {
	k := "[" + strconv.Itoa(i) + "]"
	if key != "" {
		k += "." + key
	}
	return Problem{Key: k, Msg: msg}
}

// Item splits the key of a problem about a list item: "[3].when" gives 3,
// "when", true; a key that does not start with an index gives false.
func Item(key string) (i int, rest string, ok bool) {
	if !strings.HasPrefix(key, "[") {
		return 0, key, false
	}
	end := strings.IndexByte(key, ']')
	if end < 0 {
		return 0, key, false
	}
	n, err := strconv.Atoi(key[1:end])
	if err != nil {
		return 0, key, false
	}
	return n, strings.TrimPrefix(key[end+1:], "."), true
}

// List is every problem of a section; as an error it reads one problem a
// line, each key under the section's name.
type List struct {
	// Section names the section in messages ("rules", "notify").
	Section  string
	Problems []Problem
}

func (l List) Error() string {
	lines := make([]string, len(l.Problems))
	for i, p := range l.Problems {
		if l.Section != "" {
			switch {
			case p.Key == "":
				p.Key = l.Section
			case strings.HasPrefix(p.Key, "["):
				p.Key = l.Section + p.Key
			default:
				p.Key = l.Section + "." + p.Key
			}
		}
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns the list as an error, nil when it holds no problem.
func Err(section string, ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return List{Section: section, Problems: ps}
}
