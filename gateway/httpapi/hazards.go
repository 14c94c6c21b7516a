package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/inspection/hazard"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Hazards is what the API needs of the hazard list (inspection/hazard).
type Hazards interface {
	Items(ctx context.Context) ([]hazard.Item, error)
	Item(ctx context.Context, id string) (hazard.Item, error)
	Create(ctx context.Context, m hazard.Manual, by string) (hazard.Item, error)
	Rectify(ctx context.Context, id, by, note string) (hazard.Item, error)
	Verify(ctx context.Context, id, by, note string) (hazard.Item, error)
	Reopen(ctx context.Context, id, by, note string) (hazard.Item, error)
	Change(ctx context.Context, id, by string, u hazard.Update) (hazard.Item, error)
}

type hazardsJSON struct {
	Items []hazard.Item `json:"items"`
}

// hazardsList serves GET /api/v1/hazards: status (open, rectified,
// verified, overdue; several comma-separated), zone, format=json|csv.
func (a *api) hazardsList(w http.ResponseWriter, r *http.Request) {
	if a.opts.Hazards == nil {
		httpError(w, http.StatusNotFound, "no hazard list")
		return
	}
	q := r.URL.Query()
	format, err := formatParam(q.Get("format"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	want := map[string]bool{}
	if s := q.Get("status"); s != "" {
		for _, st := range strings.Split(s, ",") {
			switch st {
			case "open", "rectified", "verified", "overdue":
				want[st] = true
			default:
				httpError(w, http.StatusBadRequest, "status: want open, rectified, verified or overdue (comma-separated)")
				return
			}
		}
	}
	zone := q.Get("zone")
	if zone != "" && a.opts.Facility.zone(zone) == nil {
		httpError(w, http.StatusBadRequest, "zone: no zone "+strconv.Quote(zone)+" in this facility")
		return
	}
	items, err := a.opts.Hazards.Items(r.Context())
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "hazard list not answering")
		return
	}
	out := hazardsJSON{Items: []hazard.Item{}}
	for _, it := range items {
		if zone != "" && it.Zone != zone {
			continue
		}
		if len(want) > 0 && !want[string(it.Status)] && !(it.Overdue && want["overdue"]) {
			continue
		}
		out.Items = append(out.Items, it)
	}
	if format == "csv" {
		cw := csvWriter(w)
		_ = cw.Write([]string{"id", "status", "overdue", "rule", "zone", "subject", "title_zh", "title_en", "standard_zh", "standard_en",
			"responsible", "since", "opened", "deadline", "rectified_at", "rectified_by", "evidence", "verified_at", "verified_by", "reopened"})
		ts := func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		}
		for _, it := range out.Items {
			_ = cw.Write([]string{it.ID, string(it.Status), strconv.FormatBool(it.Overdue), it.Rule, it.Zone, it.Subject,
				it.Title.ZH, it.Title.EN, it.Standard.ZH, it.Standard.EN, it.Responsible, ts(it.Since), ts(it.Opened), ts(it.Deadline),
				ts(it.RectifiedAt), it.RectifiedBy, it.Evidence, ts(it.VerifiedAt), it.VerifiedBy, strconv.Itoa(it.Reopened)})
		}
		cw.Flush()
		return
	}
	writeJSON(w, out)
}

// hazardGet serves GET /api/v1/hazards/{id}.
func (a *api) hazardGet(w http.ResponseWriter, r *http.Request) {
	if a.opts.Hazards == nil {
		httpError(w, http.StatusNotFound, "no hazard list")
		return
	}
	it, err := a.opts.Hazards.Item(r.Context(), r.PathValue("id"))
	a.hazardReply(w, r, it, err, http.StatusOK)
}

type hazardBody struct {
	Zone        string     `json:"zone"`
	Device      string     `json:"device"`
	Camera      string     `json:"camera"`
	Title       alarm.Text `json:"title"`
	Standard    alarm.Text `json:"standard"`
	Responsible string     `json:"responsible"`
	Deadline    time.Time  `json:"deadline"`
	Note        string     `json:"note"`
}

// hazardCreate serves POST /api/v1/hazards: an inspector's own item.
func (a *api) hazardCreate(w http.ResponseWriter, r *http.Request) {
	if a.opts.Hazards == nil {
		httpError(w, http.StatusNotFound, "no hazard list")
		return
	}
	var b hazardBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	it, err := a.opts.Hazards.Create(r.Context(), hazard.Manual{Zone: b.Zone, Device: b.Device, Camera: b.Camera,
		Title: trimText(b.Title), Standard: trimText(b.Standard), Responsible: strings.TrimSpace(b.Responsible),
		Deadline: b.Deadline, Note: strings.TrimSpace(b.Note)}, tokenName(r.Context()))
	a.hazardReply(w, r, it, err, http.StatusCreated)
}

func trimText(t alarm.Text) alarm.Text {
	return alarm.Text{EN: strings.TrimSpace(t.EN), ZH: strings.TrimSpace(t.ZH)}
}

type hazardNoteBody struct {
	Note string `json:"note"`
}

// hazardAction serves POST /api/v1/hazards/{id}/rectify, verify and
// reopen: a status change with a note.
func (a *api) hazardAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Hazards == nil {
			httpError(w, http.StatusNotFound, "no hazard list")
			return
		}
		var b hazardNoteBody
		if err := readBody(r, &b); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		id, by, note := r.PathValue("id"), tokenName(r.Context()), strings.TrimSpace(b.Note)
		var it hazard.Item
		var err error
		switch action {
		case "rectify":
			it, err = a.opts.Hazards.Rectify(r.Context(), id, by, note)
		case "verify":
			it, err = a.opts.Hazards.Verify(r.Context(), id, by, note)
		case "reopen":
			it, err = a.opts.Hazards.Reopen(r.Context(), id, by, note)
		}
		a.hazardReply(w, r, it, err, http.StatusOK)
	}
}

type hazardPatchBody struct {
	Responsible string    `json:"responsible"`
	Deadline    time.Time `json:"deadline"`
	Note        string    `json:"note"`
}

// hazardPatch serves PATCH /api/v1/hazards/{id}: a new responsible
// person or deadline.
func (a *api) hazardPatch(w http.ResponseWriter, r *http.Request) {
	if a.opts.Hazards == nil {
		httpError(w, http.StatusNotFound, "no hazard list")
		return
	}
	var b hazardPatchBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	it, err := a.opts.Hazards.Change(r.Context(), r.PathValue("id"), tokenName(r.Context()),
		hazard.Update{Responsible: strings.TrimSpace(b.Responsible), Deadline: b.Deadline, Note: strings.TrimSpace(b.Note)})
	a.hazardReply(w, r, it, err, http.StatusOK)
}

// hazardReply maps the hazard list's answer to a response.
func (a *api) hazardReply(w http.ResponseWriter, r *http.Request, it hazard.Item, err error, okStatus int) {
	switch {
	case err == nil:
		writeJSONStatus(w, okStatus, it)
	case errors.Is(err, hazard.ErrNotFound):
		httpError(w, http.StatusNotFound, "no hazard item "+strconv.Quote(r.PathValue("id")))
	case errors.Is(err, hazard.ErrInvalid):
		httpError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, hazard.ErrConditionHolds):
		httpErrorReason(w, http.StatusConflict, "condition_holds", err.Error())
	case errors.Is(err, hazard.ErrStatus):
		httpErrorReason(w, http.StatusConflict, "status", err.Error())
	case r.Context().Err() != nil:
		httpError(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		a.opts.Logger.Error("httpapi: hazard list", "err", err)
		httpError(w, http.StatusServiceUnavailable, "hazard list not answering")
	}
}
