package report

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// TestXLSXLibreOffice writes the workbook, has LibreOffice convert every
// sheet to CSV and the workbook to PDF, and reads every figure back: what
// a spreadsheet shows the inspector is what the report computed.
func TestXLSXLibreOffice(t *testing.T) {
	lo := testpeer.RequireLibreOffice(t)
	f, log, st := fixture(t)
	r := january(t, f, Options{Audit: log, Availability: storeAvailability(st), DepartmentLevel: 2})
	dir := t.TempDir()
	in := filepath.Join(dir, "report.xlsx")
	var b bytes.Buffer
	if err := r.XLSX(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	lo.Convert(t, in, testpeer.CSVFilter, dir)
	lo.Convert(t, in, "pdf", dir)

	pdf, err := os.ReadFile(filepath.Join(dir, "report.pdf"))
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("PDF: %v, starts with %q", err, pdf[:min(len(pdf), 8)])
	}
	loc := r.Location()
	for _, s := range []struct{ sheet, lang string }{{SheetZH, LangZH}, {SheetEN, LangEN}} {
		recs := readCSV(t, filepath.Join(dir, "report-"+s.sheet+".csv"))
		checkNumbersUnquoted(t, filepath.Join(dir, "report-"+s.sheet+".csv"), r, s.lang)
		if got, want := recs[0][0], r.Facility.Name.In(s.lang); !strings.HasPrefix(got, want) {
			t.Errorf("%s: title %q does not start with the facility's name %q", s.sheet, got, want)
		}
		for _, tb := range r.Tables {
			var cells [][]string
			for _, row := range tb.Rows {
				var c []string
				for _, cell := range row {
					c = append(c, cell.String(s.lang, loc))
				}
				cells = append(cells, c)
			}
			compareBlock(t, s.sheet, recs, tb.Title.In(s.lang), func(c Column) string { return c.title(s.lang) }, &tb, cells)
		}
		if !slices.ContainsFunc(recs, func(rec []string) bool {
			return slices.Contains(rec, map[string]string{LangZH: "审核人：", LangEN: "Checked by:"}[s.lang])
		}) {
			t.Errorf("%s: no signatures block", s.sheet)
		}
	}
	x := &xlsx{loc: loc}
	for _, d := range r.Details {
		sheet, _, _ := strings.Cut(d.ID, ".")
		recs := readCSV(t, filepath.Join(dir, "report-"+DetailSheet(sheet)+".csv"))
		var cells [][]string
		for _, row := range d.Rows {
			var c []string
			for _, cell := range row {
				c = append(c, x.both(cell))
			}
			cells = append(cells, c)
		}
		compareBlock(t, DetailSheet(sheet), recs, d.Title.ZH+" / "+d.Title.EN,
			func(c Column) string { return c.title(LangZH) + "\n" + c.title(LangEN) }, &d, cells)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	return testpeer.ReadCSV(t, path)
}

// compareBlock finds the table titled title in recs and compares its
// header and every cell with want; numbers are compared as numbers, so a
// figure stored as text would fail.
func compareBlock(t *testing.T, sheet string, recs [][]string, title string, head func(Column) string, tb *Table, want [][]string) {
	t.Helper()
	i := slices.IndexFunc(recs, func(rec []string) bool { return len(rec) > 0 && rec[0] == title })
	if i < 0 {
		t.Errorf("%s: no table titled %q", sheet, title)
		return
	}
	for j, c := range tb.Columns {
		if got := field(recs[i+1], j); got != head(c) {
			t.Errorf("%s: %s: column %d header %q, want %q", sheet, tb.ID, j, got, head(c))
		}
	}
	for ri, row := range want {
		if i+2+ri >= len(recs) {
			t.Errorf("%s: %s: row %d missing", sheet, tb.ID, ri)
			return
		}
		rec := recs[i+2+ri]
		for ci, w := range row {
			got := field(rec, ci)
			if c := tb.Rows[ri][ci]; c.Num != nil {
				v, err := strconv.ParseFloat(got, 64)
				if err != nil || v != *c.Num {
					t.Errorf("%s: %s row %d column %s: read back %q, want the number %v", sheet, tb.ID, ri, tb.Columns[ci].ID, got, *c.Num)
				}
				continue
			}
			if got != w {
				t.Errorf("%s: %s row %d column %s: read back %q, want %q", sheet, tb.ID, ri, tb.Columns[ci].ID, got, w)
			}
		}
	}
}

func field(rec []string, i int) string {
	if i < len(rec) {
		return rec[i]
	}
	return ""
}

// checkNumbersUnquoted checks that LibreOffice read every figure of the
// summary sheet as a number: with text cells quoted, a figure's field must
// not be. (The summary holds no line breaks, so a line is a row.)
func checkNumbersUnquoted(t *testing.T, path string, r *Report, lang string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	for _, tb := range r.Tables {
		title := `"` + tb.Title.In(lang) + `"`
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, title+",") })
		if i < 0 {
			t.Errorf("%s: no line starting with %s", path, title)
			continue
		}
		for ri, row := range tb.Rows {
			fields := strings.Split(lines[i+2+ri], ",") // no commas in these texts
			for ci, c := range row {
				if q := strings.HasPrefix(field(fields, ci), `"`); c.Num != nil && q {
					t.Errorf("%s: %s row %d column %s is text %s, want a number", filepath.Base(path), tb.ID, ri, tb.Columns[ci].ID, field(fields, ci))
				}
			}
		}
	}
}
