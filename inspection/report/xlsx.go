package report

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/xuri/excelize/v2"
)

// The spreadsheet, laid out as the civil-affairs summary table
// (情况汇总表) is filed: sheet 1 in Chinese, sheet 2 the same in
// English, then one sheet of drill-down lists per summary table.

// Sheet names.
const (
	SheetZH           = "汇总表"
	SheetEN           = "Summary"
	detailSheetPrefix = "明细 Details - "
)

// DetailSheet is the name of the sheet holding the drill-down lists of
// summary table id.
func DetailSheet(table string) string { return detailSheetPrefix + table }

// XLSX writes the report as an Excel workbook. Figures are numbers, so a
// spreadsheet reads them back as values; every figure links to its
// drill-down list.
func (r *Report) XLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	x := &xlsx{f: f, r: r, loc: r.Location(), anchors: map[string]string{}}
	if err := x.build(); err != nil {
		return fmt.Errorf("report: xlsx: %w", err)
	}
	if err := f.Write(w); err != nil {
		return fmt.Errorf("report: xlsx: write: %w", err)
	}
	return nil
}

type xlsx struct {
	f   *excelize.File
	r   *Report
	loc *time.Location
	// anchors: drill-down id → its title cell ("'sheet'!A5"), the target
	// of the summary's links.
	anchors map[string]string

	title, subtitle, section, header, textCell, intCell, decCell, note, plain, signLine int
}

func (x *xlsx) build() error {
	if err := x.styles(); err != nil {
		return err
	}
	if err := x.f.SetSheetName("Sheet1", SheetZH); err != nil {
		return err
	}
	if _, err := x.f.NewSheet(SheetEN); err != nil {
		return err
	}
	// Before the drill-down sheets exist: SetActiveSheet reads every
	// sheet back into memory, and theirs are the large ones, streamed.
	x.f.SetActiveSheet(0)
	// Drill-downs first: the summaries link to where they landed.
	groups, order := map[string][]*Table{}, []string{}
	for i := range x.r.Details {
		d := &x.r.Details[i]
		t, _, _ := strings.Cut(d.ID, ".")
		if groups[t] == nil {
			order = append(order, t)
		}
		groups[t] = append(groups[t], d)
	}
	for _, t := range order {
		if err := x.details(DetailSheet(t), groups[t]); err != nil {
			return fmt.Errorf("sheet %s: %w", DetailSheet(t), err)
		}
	}
	for _, s := range []struct{ sheet, lang string }{{SheetZH, LangZH}, {SheetEN, LangEN}} {
		if err := x.summary(s.sheet, s.lang); err != nil {
			return fmt.Errorf("sheet %s: %w", s.sheet, err)
		}
	}
	return nil
}

func (x *xlsx) styles() error {
	thin := []excelize.Border{{Type: "left", Color: "000000", Style: 1}, {Type: "right", Color: "000000", Style: 1},
		{Type: "top", Color: "000000", Style: 1}, {Type: "bottom", Color: "000000", Style: 1}}
	font := func(size float64, bold bool) *excelize.Font {
		// SimSun is the font of Chinese government forms; LibreOffice and
		// Excel fall back to a CJK font where it is missing.
		return &excelize.Font{Family: "SimSun", Size: size, Bold: bold}
	}
	center := &excelize.Alignment{Horizontal: "center", Vertical: "center", WrapText: true}
	left := &excelize.Alignment{Horizontal: "left", Vertical: "center", WrapText: true}
	for _, s := range []struct {
		id    *int
		style excelize.Style
	}{
		{&x.title, excelize.Style{Font: font(18, true), Alignment: center}},
		{&x.subtitle, excelize.Style{Font: font(11, false), Alignment: left}},
		{&x.section, excelize.Style{Font: font(12, true), Alignment: &excelize.Alignment{Horizontal: "left", Vertical: "center"}}},
		{&x.header, excelize.Style{Font: font(10, true), Alignment: center, Border: thin,
			Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"D9D9D9"}}}},
		{&x.textCell, excelize.Style{Font: font(10, false), Alignment: left, Border: thin}},
		{&x.intCell, excelize.Style{Font: font(10, false), Alignment: center, Border: thin, NumFmt: 1}}, // 0
		{&x.decCell, excelize.Style{Font: font(10, false), Alignment: center, Border: thin, NumFmt: 2}}, // 0.00
		{&x.note, excelize.Style{Font: &excelize.Font{Family: "SimSun", Size: 9, Italic: true}, Alignment: left}},
		{&x.plain, excelize.Style{Font: font(11, false), Alignment: &excelize.Alignment{Vertical: "bottom"}}},
		{&x.signLine, excelize.Style{Border: []excelize.Border{{Type: "bottom", Color: "000000", Style: 1}}}},
	} {
		id, err := x.f.NewStyle(&s.style)
		if err != nil {
			return err
		}
		*s.id = id
	}
	return nil
}

// widths tracks the widest text of each column of a sheet.
type widths []float64

func (w *widths) see(col int, s string) {
	for len(*w) < col {
		*w = append(*w, 0)
	}
	// A Chinese character is two columns wide; a long text wraps at 40.
	n := 0.0
	for _, line := range strings.Split(s, "\n") {
		m := 0.0
		for _, r := range line {
			if unicode.Is(unicode.Han, r) || r > 0x3000 {
				m += 2
			} else {
				m++
			}
		}
		n = max(n, m)
	}
	(*w)[col-1] = max((*w)[col-1], min(n+2, 40))
}

func cellName(col, row int) string {
	n, _ := excelize.CoordinatesToCellName(col, row)
	return n
}

// summary writes the summary sheet in lang.
func (x *xlsx) summary(sheet, lang string) error {
	f, r := x.f, x.r
	zh := lang == LangZH
	ncols := 6 // the signatures' block
	for _, t := range r.Tables {
		ncols = max(ncols, len(t.Columns))
	}
	last, _ := excelize.ColumnNumberToName(ncols)
	var ws widths
	row := 1
	// line writes one merged line of text across the sheet.
	line := func(s string, style int, height float64) error {
		a, b := cellName(1, row), fmt.Sprintf("%s%d", last, row)
		if err := f.MergeCell(sheet, a, b); err != nil {
			return err
		}
		if err := f.SetCellStr(sheet, a, s); err != nil {
			return err
		}
		if err := f.SetCellStyle(sheet, a, b, style); err != nil {
			return err
		}
		if height > 0 {
			if err := f.SetRowHeight(sheet, row, height); err != nil {
				return err
			}
		}
		row++
		return nil
	}
	name := r.Facility.Name.In(lang)
	lastDay := r.Period.To.In(x.loc).AddDate(0, 0, -1)
	days := fmt.Sprintf("%s – %s", r.Period.From.In(x.loc).Format("2006-01-02"), lastDay.Format("2006-01-02"))
	heads := []string{name + " safety summary report", "Facility: " + name,
		fmt.Sprintf("Period: %s (%s)", r.Period.Label.EN, days),
		fmt.Sprintf("Figures up to %s; generated %s (%s)", x.local(r.End), x.local(r.Generated), r.Facility.Timezone)}
	if zh {
		heads = []string{name + "安全情况汇总表", "机构名称：" + name,
			fmt.Sprintf("报告期：%s（%s）", r.Period.Label.ZH, days),
			fmt.Sprintf("统计截至：%s；生成时间：%s（%s）", x.local(r.End), x.local(r.Generated), r.Facility.Timezone)}
	}
	if err := line(heads[0], x.title, 36); err != nil {
		return err
	}
	for _, h := range heads[1:] {
		if err := line(h, x.subtitle, 0); err != nil {
			return err
		}
	}
	row++
	for _, t := range r.Tables {
		if err := line(t.Title.In(lang), x.section, 22); err != nil {
			return err
		}
		for i, c := range t.Columns {
			title := c.title(lang)
			ws.see(i+1, title)
			if err := f.SetCellStr(sheet, cellName(i+1, row), title); err != nil {
				return err
			}
		}
		if err := f.SetCellStyle(sheet, cellName(1, row), cellName(len(t.Columns), row), x.header); err != nil {
			return err
		}
		row++
		if len(t.Rows) == 0 {
			a, b := cellName(1, row), cellName(len(t.Columns), row)
			none := "（无）"
			if !zh {
				none = "(none)"
			}
			if err := f.MergeCell(sheet, a, b); err != nil {
				return err
			}
			if err := f.SetCellStr(sheet, a, none); err != nil {
				return err
			}
			if err := f.SetCellStyle(sheet, a, b, x.textCell); err != nil {
				return err
			}
			row++
		}
		for _, cells := range t.Rows {
			for i, c := range cells {
				if err := x.cell(sheet, i+1, row, c, lang, &ws); err != nil {
					return err
				}
			}
			row++
		}
		if note := t.Note.In(lang); note != "" {
			// A merged cell does not grow with its text: give the row the
			// height of the lines it wraps to.
			h := 14 * float64(1+len([]rune(note))/(ncols*8))
			if err := line(note, x.note, h); err != nil {
				return err
			}
		}
		row++
	}
	if err := x.signatures(sheet, row+1, zh); err != nil {
		return err
	}
	for i, w := range ws {
		c, _ := excelize.ColumnNumberToName(i + 1)
		if err := f.SetColWidth(sheet, c, c, max(w, 12)); err != nil {
			return err
		}
	}
	return f.SetPageLayout(sheet, &excelize.PageLayoutOptions{Orientation: ptr("landscape"), FitToWidth: ptr(1)})
}

func ptr[T any](v T) *T { return &v }

func (x *xlsx) local(t time.Time) string { return t.In(x.loc).Format("2006-01-02 15:04") }

// cell writes one figure: numbers as numbers, linked to their drill-down.
func (x *xlsx) cell(sheet string, col, row int, c Cell, lang string, ws *widths) error {
	f, name := x.f, cellName(col, row)
	style := x.textCell
	var err error
	switch {
	case c.Num != nil:
		style = x.intCell
		if *c.Num != float64(int64(*c.Num)) {
			style = x.decCell
		}
		err = f.SetCellFloat(sheet, name, *c.Num, -1, 64)
	default:
		err = f.SetCellStr(sheet, name, c.String(lang, x.loc))
	}
	if err != nil {
		return err
	}
	ws.see(col, c.String(lang, x.loc))
	if err := f.SetCellStyle(sheet, name, name, style); err != nil {
		return err
	}
	if a := x.anchors[c.Detail]; a != "" {
		return f.SetCellHyperLink(sheet, name, a, "Location")
	}
	return nil
}

// signatures writes the block the report is signed in: who filled it in,
// who checked it, who is responsible, and the date.
func (x *xlsx) signatures(sheet string, row int, zh bool) error {
	labels := [4]string{"Prepared by:", "Checked by:", "Head of facility:", "Date:"}
	date := "        /      /"
	if zh {
		labels = [4]string{"填报人：", "审核人：", "负责人：", "填报日期："}
		date = "      年    月    日"
	}
	for i, l := range labels {
		r, c := row+i/2*2, 1+i%2*3 // two pairs a line, a blank line between
		if err := x.f.SetCellStr(sheet, cellName(c, r), l); err != nil {
			return err
		}
		if err := x.f.SetCellStyle(sheet, cellName(c, r), cellName(c, r), x.plain); err != nil {
			return err
		}
		a, b := cellName(c+1, r), cellName(c+2, r)
		if err := x.f.MergeCell(sheet, a, b); err != nil {
			return err
		}
		if i == 3 {
			if err := x.f.SetCellStr(sheet, a, date); err != nil {
				return err
			}
		}
		if err := x.f.SetCellStyle(sheet, a, b, x.signLine); err != nil {
			return err
		}
		if err := x.f.SetRowHeight(sheet, r, 30); err != nil {
			return err
		}
	}
	return nil
}

// details writes the drill-down lists of one summary table, bilingual:
// they are read by both the inspector and the gateway's operator.
func (x *xlsx) details(sheet string, list []*Table) error {
	if _, err := x.f.NewSheet(sheet); err != nil {
		return err
	}
	sw, err := x.f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	// The stream writer wants the widths before the rows, so they are
	// measured first.
	var ws widths
	for _, d := range list {
		for i, c := range d.Columns {
			ws.see(i+1, c.title(LangZH))
			ws.see(i+1, c.title(LangEN))
		}
		for _, cells := range d.Rows {
			for i, c := range cells {
				ws.see(i+1, x.both(c))
			}
		}
	}
	for i, w := range ws {
		if err := sw.SetColWidth(i+1, i+1, max(w, 10)); err != nil {
			return err
		}
	}
	row := 1
	for _, d := range list {
		x.anchors[d.ID] = fmt.Sprintf("'%s'!%s", sheet, cellName(1, row))
		title := d.Title.ZH + " / " + d.Title.EN
		if err := sw.SetRow(cellName(1, row), []any{excelize.Cell{StyleID: x.section, Value: title}}, excelize.RowOpts{Height: 22}); err != nil {
			return err
		}
		row++
		head := make([]any, len(d.Columns))
		for i, c := range d.Columns {
			head[i] = excelize.Cell{StyleID: x.header, Value: c.title(LangZH) + "\n" + c.title(LangEN)}
		}
		if err := sw.SetRow(cellName(1, row), head, excelize.RowOpts{Height: 30}); err != nil {
			return err
		}
		row++
		vals := make([]any, len(d.Columns))
		for _, cells := range d.Rows {
			for i := range vals {
				vals[i] = excelize.Cell{StyleID: x.textCell, Value: ""}
				if i >= len(cells) {
					continue
				}
				switch c := cells[i]; {
				case c.Num != nil && *c.Num == float64(int64(*c.Num)):
					vals[i] = excelize.Cell{StyleID: x.intCell, Value: *c.Num}
				case c.Num != nil:
					vals[i] = excelize.Cell{StyleID: x.decCell, Value: *c.Num}
				default:
					vals[i] = excelize.Cell{StyleID: x.textCell, Value: x.both(c)}
				}
			}
			if err := sw.SetRow(cellName(1, row), vals); err != nil {
				return err
			}
			row++
		}
		row++ // a blank line between lists
	}
	return sw.Flush()
}

// both is a cell's text in both languages, once when they agree.
func (x *xlsx) both(c Cell) string {
	zh, en := c.String(LangZH, x.loc), c.String(LangEN, x.loc)
	if zh == en {
		return zh
	}
	return zh + " / " + en
}
