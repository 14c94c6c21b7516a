package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/shelterwatch/shelterwatch/inspection/filing"
	"github.com/shelterwatch/shelterwatch/inspection/report"
)

// Reports is what the API needs of the kept summary reports
// (inspection/filing).
type Reports interface {
	List() []filing.Entry
	Get(id string) (filing.Entry, error)
	Report(id string) (*report.Report, error)
	XLSX(id string) ([]byte, string, error)
	Generate(ctx context.Context, kind string, ref time.Time, last bool, by string) (filing.Entry, error)
}

type reportsJSON struct {
	Reports []filing.Entry `json:"reports"`
}

// reportsList serves GET /api/v1/reports: the kept reports, newest first.
func (a *api) reportsList(w http.ResponseWriter, r *http.Request) {
	if a.opts.Reports == nil {
		httpError(w, http.StatusNotFound, "no summary reports")
		return
	}
	out := reportsJSON{Reports: a.opts.Reports.List()}
	if out.Reports == nil {
		out.Reports = []filing.Entry{}
	}
	writeJSON(w, out)
}

type reportGenerateBody struct {
	// Kind is month, quarter or notice.
	Kind string `json:"kind"`
	// At picks the period containing it (default now); Last the last
	// complete one before it instead.
	At   time.Time `json:"at"`
	Last bool      `json:"last"`
}

// reportGenerate serves POST /api/v1/reports: generate (and keep, and
// mail) the report of a period now.
func (a *api) reportGenerate(w http.ResponseWriter, r *http.Request) {
	if a.opts.Reports == nil {
		httpError(w, http.StatusNotFound, "no summary reports")
		return
	}
	var b reportGenerateBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	at := b.At
	if at.IsZero() {
		at = a.opts.Clock()
	}
	if at.After(a.opts.Clock().Add(time.Minute)) {
		httpError(w, http.StatusBadRequest, "at: a report of a period that has not begun has nothing to count")
		return
	}
	e, err := a.opts.Reports.Generate(r.Context(), b.Kind, at, b.Last, tokenName(r.Context()))
	switch {
	case errors.Is(err, filing.ErrBadKind):
		httpError(w, http.StatusBadRequest, "kind: want month, quarter or notice")
	case err != nil && r.Context().Err() != nil:
		httpError(w, http.StatusServiceUnavailable, "request cancelled")
	case err != nil:
		a.opts.Logger.Error("httpapi: generate report", "err", err)
		httpError(w, http.StatusInternalServerError, "the report could not be generated; the gateway log says why")
	default:
		w.Header().Set("Location", "/api/v1/reports/"+e.ID)
		writeJSONStatus(w, http.StatusCreated, e)
	}
}

type reportJSON struct {
	Entry  filing.Entry   `json:"entry"`
	Report *report.Report `json:"report"`
}

// reportGet serves GET /api/v1/reports/{id}: the report as generated,
// for the console's printable page.
func (a *api) reportGet(w http.ResponseWriter, r *http.Request) {
	e, ok := a.reportEntry(w, r)
	if !ok {
		return
	}
	rep, err := a.opts.Reports.Report(e.ID)
	if err != nil {
		a.reportFileError(w, err)
		return
	}
	writeJSON(w, reportJSON{Entry: e, Report: rep})
}

// reportXLSX serves GET /api/v1/reports/{id}/xlsx: the spreadsheet.
func (a *api) reportXLSX(w http.ResponseWriter, r *http.Request) {
	e, ok := a.reportEntry(w, r)
	if !ok {
		return
	}
	b, name, err := a.opts.Reports.XLSX(e.ID)
	if err != nil {
		a.reportFileError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// reportCSV serves GET /api/v1/reports/{id}/csv?table=…&lang=zh|en: one
// summary table or drill-down list.
func (a *api) reportCSV(w http.ResponseWriter, r *http.Request) {
	e, ok := a.reportEntry(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	lang := q.Get("lang")
	if lang != "" && lang != report.LangZH && lang != report.LangEN {
		httpError(w, http.StatusBadRequest, "lang: want zh or en (none: column ids)")
		return
	}
	rep, err := a.opts.Reports.Report(e.ID)
	if err != nil {
		a.reportFileError(w, err)
		return
	}
	table := q.Get("table")
	if rep.Table(table) == nil {
		httpError(w, http.StatusBadRequest, "table: no table or drill-down list "+strconv.Quote(table)+" in this report")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+e.ID+"-"+csvName(table)+`.csv"`)
	if err := rep.CSV(w, table, lang); err != nil {
		a.opts.Logger.Error("httpapi: report csv", "report", e.ID, "err", err)
	}
}

// csvName keeps a table id safe in a file name.
func csvName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (a *api) reportEntry(w http.ResponseWriter, r *http.Request) (filing.Entry, bool) {
	if a.opts.Reports == nil {
		httpError(w, http.StatusNotFound, "no summary reports")
		return filing.Entry{}, false
	}
	e, err := a.opts.Reports.Get(r.PathValue("id"))
	if err != nil {
		httpError(w, http.StatusNotFound, "no report "+strconv.Quote(r.PathValue("id")))
		return filing.Entry{}, false
	}
	return e, true
}

func (a *api) reportFileError(w http.ResponseWriter, err error) {
	if errors.Is(err, filing.ErrNotFound) {
		httpError(w, http.StatusNotFound, "no such report")
		return
	}
	a.opts.Logger.Error("httpapi: read a kept report", "err", err)
	httpError(w, http.StatusInternalServerError, "the kept report could not be read")
}
