package config

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file.
type Error struct {
	// File is the name given to Parse (the path given to Load).
	File string
	// Line is the 1-based line of the key (or list item) the problem is
	// about; 0 when unknown, e.g. for a required section that is missing
	// altogether or a Config built in code.
	Line int
	// Key is the path of the key: "devices[2].zone"; empty for problems
	// with the file as a whole (YAML syntax).
	Key string
	// Msg says what is wrong.
	Msg string
}

// Error formats e as "file:line: key: msg", leaving out the parts that are
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in line order.
type Errors []*Error

// Error returns one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives errors.As and errors.Is access to each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors orders es by line, keeping the order of problems found on the
// same line (and of those without a line, which come first).
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
}

// asError returns es as an error: nil when empty, so that callers comparing
// with nil are not fooled by an empty non-nil slice.
func (es Errors) asError() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
