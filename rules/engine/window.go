package engine

import (
	"fmt"
	"strings"
	"time"
)

// window is a daily time window on some weekdays, in the facility's time
// zone.
type window struct {
	from, to int     // minutes after midnight; to < from wraps midnight
	days     [7]bool // indexed by time.Weekday
	text     string  // as configured, for messages
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func parseWindow(c *ActiveConfig) (*window, error) {
	w := &window{text: c.Between}
	a, b, ok := strings.Cut(c.Between, "-")
	if !ok {
		return nil, fmt.Errorf("between: want HH:MM-HH:MM, got %q", c.Between)
	}
	var err error
	if w.from, err = clockMinutes(strings.TrimSpace(a)); err != nil {
		return nil, err
	}
	if w.to, err = clockMinutes(strings.TrimSpace(b)); err != nil {
		return nil, err
	}
	if w.from == w.to {
		return nil, fmt.Errorf("between: empty window %q", c.Between)
	}
	if len(c.Days) == 0 {
		for i := range w.days {
			w.days[i] = true
		}
	}
	for _, d := range c.Days {
		wd, ok := dayNames[strings.ToLower(d)]
		if !ok {
			return nil, fmt.Errorf("days: unknown day %q (use mon, tue, wed, thu, fri, sat, sun)", d)
		}
		w.days[wd] = true
	}
	return w, nil
}

func clockMinutes(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("between: want HH:MM, got %q", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// contains reports whether t (already in the facility's zone) is inside the
// window. A window past midnight belongs to the day it starts on: with
// days [fri] and 22:00-06:00, Saturday 03:00 is inside.
func (w *window) contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if w.from < w.to {
		return m >= w.from && m < w.to && w.days[t.Weekday()]
	}
	if m >= w.from {
		return w.days[t.Weekday()]
	}
	if m < w.to {
		return w.days[(t.Weekday()+6)%7]
	}
	return false
}
