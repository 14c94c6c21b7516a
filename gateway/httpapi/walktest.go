package httpapi

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// WalkTests is what the API needs of the rules engine for walk tests
// (rules/engine/walktest.go).
type WalkTests interface {
	StartWalkTest(ctx context.Context, w engine.WalkTest) (engine.WalkTest, error)
	EndWalkTest(ctx context.Context, by string) (engine.WalkTest, error)
	WalkTests(ctx context.Context) (*engine.WalkTest, []engine.WalkTest, error)
}

// DefaultWalkTest is how long a walk test runs when the request does not
// say.
const DefaultWalkTest = 30 * time.Minute

type walkTestsJSON struct {
	Current *engine.WalkTest  `json:"current"`
	Recent  []engine.WalkTest `json:"recent"`
}

// walkTests lists the running walk test and the finished ones.
func (a *api) walkTests(w http.ResponseWriter, r *http.Request) {
	if a.opts.WalkTests == nil {
		httpError(w, http.StatusNotFound, "no rules engine")
		return
	}
	cur, done, err := a.opts.WalkTests.WalkTests(r.Context())
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "rules engine not answering")
		return
	}
	if done == nil {
		done = []engine.WalkTest{}
	}
	writeJSON(w, walkTestsJSON{Current: cur, Recent: done})
}

type walkTestBody struct {
	Zones    []string `json:"zones"`
	Duration string   `json:"duration"`
	Comment  string   `json:"comment"`
}

// startWalkTest starts a walk test of some zones (or the whole facility).
func (a *api) startWalkTest(w http.ResponseWriter, r *http.Request) {
	if a.opts.WalkTests == nil {
		httpError(w, http.StatusNotFound, "no rules engine")
		return
	}
	var b walkTestBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	d := DefaultWalkTest
	if b.Duration != "" {
		fd, err := facility.ParseDuration(b.Duration)
		if err != nil || fd.Std() <= 0 {
			httpError(w, http.StatusBadRequest, "duration must be a positive duration like 30m or 2h")
			return
		}
		d = fd.Std()
	}
	if d > engine.MaxWalkTest {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("duration longer than %v: a walk test must end", engine.MaxWalkTest))
		return
	}
	now := a.opts.Clock()
	wt, err := a.opts.WalkTests.StartWalkTest(r.Context(), engine.WalkTest{ID: "w-" + strconv.FormatInt(now.UnixMilli(), 10),
		Zones: b.Zones, Ends: now.Add(d), By: tokenName(r.Context()), Comment: strings.TrimSpace(b.Comment)})
	switch {
	case errors.Is(err, engine.ErrWalkTestRunning):
		httpError(w, http.StatusConflict, err.Error())
		return
	case errors.Is(err, engine.ErrUnknownName):
		httpError(w, http.StatusBadRequest, "walk test refused: "+err.Error())
		return
	case err != nil && r.Context().Err() == nil && !errors.Is(err, context.DeadlineExceeded):
		httpError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, "rules engine not answering")
		return
	}
	writeJSONStatus(w, http.StatusCreated, wt)
}

// endWalkTest ends the running walk test and returns its record.
func (a *api) endWalkTest(w http.ResponseWriter, r *http.Request) {
	if a.opts.WalkTests == nil {
		httpError(w, http.StatusNotFound, "no rules engine")
		return
	}
	wt, err := a.opts.WalkTests.EndWalkTest(r.Context(), tokenName(r.Context()))
	switch {
	case errors.Is(err, engine.ErrNoWalkTest):
		httpError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, "rules engine not answering")
		return
	}
	writeJSON(w, wt)
}

// walkTestRecord is the commissioning record of one walk test as CSV: a
// row per device, with the test's own facts repeated so that each row
// stands alone in a spreadsheet.
func (a *api) walkTestRecord(w http.ResponseWriter, r *http.Request) {
	if a.opts.WalkTests == nil {
		httpError(w, http.StatusNotFound, "no rules engine")
		return
	}
	id := r.PathValue("id")
	cur, done, err := a.opts.WalkTests.WalkTests(r.Context())
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "rules engine not answering")
		return
	}
	var wt *engine.WalkTest
	if cur != nil && cur.ID == id {
		wt = cur
	}
	for i := range done {
		if done[i].ID == id {
			wt = &done[i]
		}
	}
	if wt == nil {
		httpError(w, http.StatusNotFound, "no walk test "+strconv.Quote(id))
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="walk-test-%s.csv"`, wt.ID))
	cw := csv.NewWriter(w)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	num := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	zones := strings.Join(wt.Zones, " ")
	if zones == "" {
		zones = "*"
	}
	_ = cw.Write([]string{"walk_test", "zones", "started", "ended", "started_by", "ended_by", "zone", "device", "name", "kind",
		"reported", "triggered", "sensor_fault", "first_report", "last_report", "readings", "min", "max"})
	for _, d := range wt.Devices {
		_ = cw.Write([]string{wt.ID, zones, ts(wt.Started), ts(wt.Ended), wt.By, wt.EndedBy, d.Zone, d.Device, d.Name, d.Kind,
			strconv.FormatBool(d.Reported), strconv.FormatBool(d.Triggered), strconv.FormatBool(d.Fault),
			ts(d.First), ts(d.Last), strconv.Itoa(d.Readings), num(d.Min), num(d.Max)})
	}
	cw.Flush()
}
