package report

import (
	"fmt"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// Period kinds. A notice period is one of the four-month stretches the
// civil-affairs notice fixes its reporting dates by: they end on the last
// day of April, August and December.
const (
	KindMonth   = "month"
	KindQuarter = "quarter"
	KindNotice  = "notice"
)

// Period is the stretch [From, To) a report covers, in the facility's
// time zone: From and To are local midnights.
type Period struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Kind  string    `json:"kind"`
	Label Text      `json:"label"`
}

// PeriodContaining returns the period of kind that contains ref, computed
// in loc (the facility's time zone).
func PeriodContaining(kind string, ref time.Time, loc *time.Location) (Period, error) {
	if loc == nil {
		loc = time.UTC
	}
	months, err := periodMonths(kind)
	if err != nil {
		return Period{}, err
	}
	l := ref.In(loc)
	first := time.Month((int(l.Month())-1)/months*months + 1)
	from := time.Date(l.Year(), first, 1, 0, 0, 0, 0, loc)
	to := time.Date(l.Year(), first+time.Month(months), 1, 0, 0, 0, 0, loc)
	return Period{From: from, To: to, Kind: kind, Label: periodLabel(kind, from, to)}, nil
}

// LastCompletePeriod returns the newest period of kind that ended at or
// before ref: the one a report filed at ref is due for.
func LastCompletePeriod(kind string, ref time.Time, loc *time.Location) (Period, error) {
	cur, err := PeriodContaining(kind, ref, loc)
	if err != nil {
		return Period{}, err
	}
	// The instant before the current period starts is in the one before.
	return PeriodContaining(kind, cur.From.Add(-time.Nanosecond), loc)
}

func periodMonths(kind string) (int, error) {
	switch kind {
	case KindMonth:
		return 1, nil
	case KindQuarter:
		return 3, nil
	case KindNotice:
		return 4, nil
	}
	return 0, fmt.Errorf("report: period kind %q: want %q, %q or %q", kind, KindMonth, KindQuarter, KindNotice)
}

func periodLabel(kind string, from, to time.Time) Text {
	last := to.AddDate(0, 0, -1)
	switch kind {
	case KindMonth:
		return Text{ZH: fmt.Sprintf("%d年%d月", from.Year(), from.Month()), EN: from.Format("January 2006")}
	case KindQuarter:
		q := (int(from.Month())-1)/3 + 1
		return Text{ZH: fmt.Sprintf("%d年第%d季度", from.Year(), q), EN: fmt.Sprintf("Q%d %d", q, from.Year())}
	}
	return Text{
		ZH: fmt.Sprintf("%d年%d月%d日至%d月%d日", from.Year(), from.Month(), from.Day(), last.Month(), last.Day()),
		EN: fmt.Sprintf("%s – %s", from.Format("2 January"), last.Format("2 January 2006")),
	}
}

// seasonSpans returns the stretches of season s that overlap [from, to),
// in loc, oldest first. A To of 29 February ends on 1 March in other
// years (time.Date normalises it).
func seasonSpans(s facility.Season, from, to time.Time, loc *time.Location) []span {
	var out []span
	wraps := s.ToMonth < s.FromMonth || (s.ToMonth == s.FromMonth && s.ToDay < s.FromDay)
	for y := from.In(loc).Year() - 1; y <= to.In(loc).Year(); y++ {
		start := time.Date(y, s.FromMonth, s.FromDay, 0, 0, 0, 0, loc)
		endYear := y
		if wraps {
			endYear++
		}
		end := time.Date(endYear, s.ToMonth, s.ToDay+1, 0, 0, 0, 0, loc)
		if sp, ok := (span{start, end}).clip(from, to); ok {
			out = append(out, sp)
		}
	}
	return out
}

// span is a stretch of time [from, to).
type span struct{ from, to time.Time }

// clip returns the part of s within [from, to), and false when none.
func (s span) clip(from, to time.Time) (span, bool) {
	if s.from.Before(from) {
		s.from = from
	}
	if s.to.After(to) {
		s.to = to
	}
	return s, s.to.After(s.from)
}

func (s span) hours() float64 { return s.to.Sub(s.from).Hours() }
