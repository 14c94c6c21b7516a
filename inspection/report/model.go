package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Text is something a person reads, in both of the report's languages.
type Text struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

// In returns the text in lang ("zh" or "en"; anything else is English).
func (t Text) In(lang string) string {
	if lang == LangZH {
		return t.ZH
	}
	return t.EN
}

// Languages of the report's texts. The empty language is for machines:
// CSV headers are then the columns' ids.
const (
	LangZH = "zh"
	LangEN = "en"
)

// same is a text that reads the same in both languages (an id).
func same(s string) Text { return Text{ZH: s, EN: s} }

// notAvailable is what a figure shows when its source is not configured.
var notAvailable = Text{ZH: "不适用", EN: "n/a"}

// Column is one column of a table. Its ID is stable: the API, the CSV
// header for machines and the tests name columns by it.
type Column struct {
	ID    string `json:"id"`
	Title Text   `json:"title"`
	// Unit of the column's numbers (h, %, min); empty for counts and text.
	Unit Text `json:"unit,omitzero"`
}

// title is the column's header in lang, with its unit.
func (c Column) title(lang string) string {
	if lang != LangZH && lang != LangEN {
		return c.ID
	}
	t := c.Title.In(lang)
	switch u := c.Unit.In(lang); {
	case u == "":
	case lang == LangZH:
		t += "（" + u + "）"
	default:
		t += " (" + u + ")"
	}
	return t
}

// Cell is one value of a table: a number, a text, a time, or "n/a" (NA)
// when the figure's source is not configured; a zero Cell is blank.
type Cell struct {
	Num  *float64   `json:"num,omitempty"`
	Text *Text      `json:"text,omitempty"`
	Time *time.Time `json:"time,omitempty"`
	NA   bool       `json:"na,omitempty"`
	// Detail is the id of the drill-down list holding the records the
	// figure counts (Report.Details).
	Detail string `json:"detail,omitempty"`
}

func num(v float64, detail string) Cell { return Cell{Num: &v, Detail: detail} }
func count(n int, detail string) Cell   { return num(float64(n), detail) }
func text(t Text) Cell                  { return Cell{Text: &t} }
func id(s string) Cell                  { return text(same(s)) }
func na() Cell                          { return Cell{NA: true} }

func at(t time.Time) Cell {
	if t.IsZero() {
		return Cell{}
	}
	t = t.UTC()
	return Cell{Time: &t}
}

// round2 keeps two decimals: hours, minutes and percentages are read by
// people, and a figure must read back from a spreadsheet as it was shown.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// String returns the cell as the CSV and XLSX write it: times in loc.
func (c Cell) String(lang string, loc *time.Location) string {
	switch {
	case c.NA:
		return notAvailable.In(lang)
	case c.Num != nil:
		return strconv.FormatFloat(*c.Num, 'f', -1, 64)
	case c.Text != nil:
		return c.Text.In(lang)
	case c.Time != nil:
		return c.Time.In(loc).Format("2006-01-02 15:04:05")
	}
	return ""
}

// Table is a summary table, or the drill-down list behind some of its
// figures.
type Table struct {
	ID      string   `json:"id"`
	Title   Text     `json:"title"`
	Columns []Column `json:"columns"`
	Rows    [][]Cell `json:"rows"`
	// Note says how the table's figures were counted, where a reader may
	// ask (approximations, what is left out).
	Note Text `json:"note,omitzero"`
}

// Col returns the index of the column id, or -1.
func (t *Table) Col(id string) int {
	for i, c := range t.Columns {
		if c.ID == id {
			return i
		}
	}
	return -1
}

// FacilityInfo names the facility in the report.
type FacilityInfo struct {
	ID       string `json:"id"`
	Name     Text   `json:"name"`
	Timezone string `json:"timezone"`
}

// Report is one periodic summary report of one facility. Tables are the
// summary; every figure in them refers to one of Details.
type Report struct {
	Generated time.Time    `json:"generated"`
	Facility  FacilityInfo `json:"facility"`
	Period    Period       `json:"period"`
	// End is where the figures stop: Period.To, or the generation time
	// for a period still running.
	End     time.Time `json:"end"`
	Tables  []Table   `json:"tables"`
	Details []Table   `json:"details"`

	loc *time.Location
}

// Location returns the facility's time zone, in which the report's times
// are shown.
func (r *Report) Location() *time.Location {
	if r.loc == nil {
		// A report decoded from JSON: its time zone by name.
		r.loc = time.UTC
		if l, err := time.LoadLocation(r.Facility.Timezone); err == nil {
			r.loc = l
		}
	}
	return r.loc
}

// Table returns the summary table or drill-down list id, or nil.
func (r *Report) Table(id string) *Table {
	for _, ts := range [][]Table{r.Tables, r.Details} {
		for i := range ts {
			if ts[i].ID == id {
				return &ts[i]
			}
		}
	}
	return nil
}

// CSV writes the summary table or drill-down list id as CSV: a header of
// the columns' titles in lang ("zh", "en"; "" for their ids), then its
// rows. Times are in the facility's time zone, "n/a" cells are written as
// that text.
func (r *Report) CSV(w io.Writer, id, lang string) error {
	t := r.Table(id)
	if t == nil {
		return fmt.Errorf("report: csv: no table %q", id)
	}
	cw := csv.NewWriter(w)
	rec := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		rec[i] = c.title(lang)
	}
	if err := cw.Write(rec); err != nil {
		return fmt.Errorf("report: csv of %s: %w", id, err)
	}
	loc := r.Location()
	for _, row := range t.Rows {
		for i := range rec {
			rec[i] = ""
			if i < len(row) {
				rec[i] = row[i].String(lang, loc)
			}
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("report: csv of %s: %w", id, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: csv of %s: %w", id, err)
	}
	return nil
}
