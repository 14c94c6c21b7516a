package report

import (
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/facility"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPeriods(t *testing.T) {
	sh := mustLoc(t, "Asia/Shanghai")
	d := func(y int, m time.Month, day, h int) time.Time { return time.Date(y, m, day, h, 0, 0, 0, sh) }
	for _, tc := range []struct {
		name           string
		kind           string
		ref            time.Time
		last           bool
		from, to       time.Time
		labelZH, label string
	}{
		{"month containing", KindMonth, d(2026, 3, 15, 12), false, d(2026, 3, 1, 0), d(2026, 4, 1, 0), "2026年3月", "March 2026"},
		{"month containing its first instant", KindMonth, d(2026, 3, 1, 0), false, d(2026, 3, 1, 0), d(2026, 4, 1, 0), "2026年3月", "March 2026"},
		{"last complete month", KindMonth, d(2026, 3, 15, 12), true, d(2026, 2, 1, 0), d(2026, 3, 1, 0), "2026年2月", "February 2026"},
		{"last complete month over new year", KindMonth, d(2026, 1, 3, 9), true, d(2025, 12, 1, 0), d(2026, 1, 1, 0), "2025年12月", "December 2025"},
		// 1 April 00:30 in Shanghai is still 31 March in UTC: the
		// facility's zone decides.
		{"last complete month at local midnight", KindMonth, time.Date(2026, 3, 31, 16, 30, 0, 0, time.UTC), true, d(2026, 3, 1, 0), d(2026, 4, 1, 0), "2026年3月", "March 2026"},
		{"quarter containing", KindQuarter, d(2026, 5, 20, 0), false, d(2026, 4, 1, 0), d(2026, 7, 1, 0), "2026年第2季度", "Q2 2026"},
		{"last complete quarter", KindQuarter, d(2026, 4, 2, 0), true, d(2026, 1, 1, 0), d(2026, 4, 1, 0), "2026年第1季度", "Q1 2026"},
		{"last complete quarter over new year", KindQuarter, d(2026, 2, 1, 0), true, d(2025, 10, 1, 0), d(2026, 1, 1, 0), "2025年第4季度", "Q4 2025"},
		{"notice containing, first", KindNotice, d(2026, 4, 30, 23), false, d(2026, 1, 1, 0), d(2026, 5, 1, 0), "2026年1月1日至4月30日", "1 January – 30 April 2026"},
		{"notice containing, second", KindNotice, d(2026, 5, 1, 0), false, d(2026, 5, 1, 0), d(2026, 9, 1, 0), "2026年5月1日至8月31日", "1 May – 31 August 2026"},
		{"notice containing, third", KindNotice, d(2026, 12, 31, 23), false, d(2026, 9, 1, 0), d(2027, 1, 1, 0), "2026年9月1日至12月31日", "1 September – 31 December 2026"},
		{"last complete notice", KindNotice, d(2026, 9, 10, 0), true, d(2026, 5, 1, 0), d(2026, 9, 1, 0), "2026年5月1日至8月31日", "1 May – 31 August 2026"},
		{"last complete notice over new year", KindNotice, d(2026, 3, 10, 0), true, d(2025, 9, 1, 0), d(2026, 1, 1, 0), "2025年9月1日至12月31日", "1 September – 31 December 2025"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			get := PeriodContaining
			if tc.last {
				get = LastCompletePeriod
			}
			p, err := get(tc.kind, tc.ref, sh)
			if err != nil {
				t.Fatal(err)
			}
			if !p.From.Equal(tc.from) || !p.To.Equal(tc.to) || p.Kind != tc.kind {
				t.Errorf("period = %s %s – %s, want %s – %s", p.Kind, p.From, p.To, tc.from, tc.to)
			}
			if p.From.Location() != sh {
				t.Errorf("period in %s, want the facility's zone", p.From.Location())
			}
			if p.Label != (Text{ZH: tc.labelZH, EN: tc.label}) {
				t.Errorf("label = %+v, want %q / %q", p.Label, tc.labelZH, tc.label)
			}
		})
	}
	if _, err := PeriodContaining("week", time.Now(), sh); err == nil {
		t.Error("kind week: no error")
	}
}

func TestSeasonSpans(t *testing.T) {
	sh := mustLoc(t, "Asia/Shanghai")
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, sh) }
	for _, tc := range []struct {
		name     string
		season   facility.Season
		from, to time.Time
		want     []span
	}{
		{"cold season over new year, within Q1", facility.DefaultColdSeason, d(2026, 1, 1), d(2026, 4, 1), []span{{d(2026, 1, 1), d(2026, 4, 1)}}},
		{"cold season, Q4 starts in November", facility.DefaultColdSeason, d(2025, 10, 1), d(2026, 1, 1), []span{{d(2025, 11, 1), d(2026, 1, 1)}}},
		{"cold season, notice period Jan-Apr", facility.DefaultColdSeason, d(2026, 1, 1), d(2026, 5, 1), []span{{d(2026, 1, 1), d(2026, 4, 1)}}},
		{"hot season, Q3 ends in September", facility.DefaultHotSeason, d(2026, 7, 1), d(2026, 10, 1), []span{{d(2026, 7, 1), d(2026, 10, 1)}}},
		{"hot season, not in Q1", facility.DefaultHotSeason, d(2026, 1, 1), d(2026, 4, 1), nil},
		{"a year holds two cold seasons' parts", facility.DefaultColdSeason, d(2026, 1, 1), d(2027, 1, 1), []span{{d(2026, 1, 1), d(2026, 4, 1)}, {d(2026, 11, 1), d(2027, 1, 1)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := seasonSpans(tc.season, tc.from, tc.to, sh)
			if len(got) != len(tc.want) {
				t.Fatalf("spans = %v, want %v", got, tc.want)
			}
			for i := range got {
				if !got[i].from.Equal(tc.want[i].from) || !got[i].to.Equal(tc.want[i].to) {
					t.Errorf("span %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
