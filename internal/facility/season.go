package facility

import (
	"fmt"
	"time"
)

// Season is a part of every year, from one month and day to another in
// the facility's time zone, both days included: the notice's campaign
// periods ("winter warmth" from November, "summer cooling" from June). A
// season may run over New Year (From after To).
type Season struct {
	FromMonth time.Month
	FromDay   int
	ToMonth   time.Month
	ToDay     int
}

// The seasons a facility gets when its config sets none: heating season
// November to March, hot season June to September.
var (
	DefaultColdSeason = Season{FromMonth: time.November, FromDay: 1, ToMonth: time.March, ToDay: 31}
	DefaultHotSeason  = Season{FromMonth: time.June, FromDay: 1, ToMonth: time.September, ToDay: 30}
)

// ParseSeason reads "MM-DD..MM-DD" (e.g. "11-01..03-31").
func ParseSeason(s string) (Season, error) {
	var z Season
	var fm, tm int
	if n, err := fmt.Sscanf(s, "%02d-%02d..%02d-%02d", &fm, &z.FromDay, &tm, &z.ToDay); err != nil || n != 4 || len(s) != len("01-01..12-31") {
		return Season{}, fmt.Errorf("season %q: want MM-DD..MM-DD, like 11-01..03-31", s)
	}
	z.FromMonth, z.ToMonth = time.Month(fm), time.Month(tm)
	for _, md := range [][2]int{{fm, z.FromDay}, {tm, z.ToDay}} {
		if md[0] < 1 || md[0] > 12 || md[1] < 1 || md[1] > daysIn(time.Month(md[0])) {
			return Season{}, fmt.Errorf("season %q: %02d-%02d is not a day of the year", s, md[0], md[1])
		}
	}
	return z, nil
}

// daysIn is the most days month has (February: 29).
func daysIn(m time.Month) int {
	return time.Date(2024, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// String returns the season as ParseSeason reads it.
func (z Season) String() string {
	return fmt.Sprintf("%02d-%02d..%02d-%02d", int(z.FromMonth), z.FromDay, int(z.ToMonth), z.ToDay)
}

// IsZero reports whether the season is unset.
func (z Season) IsZero() bool { return z.FromMonth == 0 }

// Contains reports whether t, in loc, falls on a day of the season.
func (z Season) Contains(t time.Time, loc *time.Location) bool {
	if z.IsZero() {
		return false
	}
	lt := t.In(loc)
	md := int(lt.Month())*100 + lt.Day()
	from, to := int(z.FromMonth)*100+z.FromDay, int(z.ToMonth)*100+z.ToDay
	if from <= to {
		return md >= from && md <= to
	}
	return md >= from || md <= to
}

// Start is the start (local midnight) of the season's days that contain
// t, or, when t is outside the season, zero.
func (z Season) Start(t time.Time, loc *time.Location) time.Time {
	if !z.Contains(t, loc) {
		return time.Time{}
	}
	lt := t.In(loc)
	y := lt.Year()
	start := time.Date(y, z.FromMonth, z.FromDay, 0, 0, 0, 0, loc)
	if start.After(lt) {
		start = time.Date(y-1, z.FromMonth, z.FromDay, 0, 0, 0, 0, loc)
	}
	return start
}
