package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
)

// audit serves the append-only audit log, newest first, as far as the
// caller may see it: a viewing session only for a camera the token may
// watch (as the camera and WHEP routes decide), nothing else for a
// supervisor (whose audit is their cameras' viewing), and the viewer's
// network address only with PermPersonalData (managers and admins). The camera rule applies while the
// log is read, so limit counts only entries the caller may see.
func (a *api) audit(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 200, 1, 10000)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if a.opts.Audit == nil {
		writeJSON(w, map[string]any{"audit": []audit.Entry{}})
		return
	}
	tok := tokenOf(r.Context())
	q := r.URL.Query()
	videoOnly := tok.Role.may(PermAuditVideoOnly)
	f := audit.Filter{AlarmID: q.Get("alarm"), Camera: q.Get("camera")}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := q.Get(p.name); s != "" {
			if *p.t, err = timeParam(s); err != nil {
				httpError(w, http.StatusBadRequest, p.name+": "+err.Error())
				return
			}
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		httpError(w, http.StatusBadRequest, "from must be before to")
		return
	}
	// action is one action or several, comma-separated (a kind of entry:
	// "login,login_failed,logout"); one goes to the reader, which then
	// decodes only the lines that may match.
	actions := map[string]bool{}
	for _, a := range strings.Split(q.Get("action"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			actions[a] = true
		}
	}
	if len(actions) == 1 {
		for a := range actions {
			f.Action = a
		}
	}
	by := q.Get("by")
	f.Visible = func(e *audit.Entry) bool {
		if len(actions) > 1 && !actions[e.Action] || by != "" && e.By != by {
			return false
		}
		if e.Video == nil {
			return !videoOnly
		}
		return tok.mayView(e.Video.Camera)
	}
	entries, err := a.opts.Audit.Read(f, limit)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "could not read the audit log")
		a.opts.Logger.Error("httpapi: audit", "err", err)
		return
	}
	if !tok.Role.may(PermPersonalData) {
		for i := range entries {
			entries[i] = withoutPersonalData(entries[i])
		}
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	writeJSON(w, map[string]any{"audit": entries})
}

// withoutPersonalData is e without what identifies a person beyond the
// staff names the log is for: a viewer's or a login's network address (at
// a relief station often a phone on the guest Wi-Fi).
func withoutPersonalData(e audit.Entry) audit.Entry {
	if e.Video != nil && e.Video.Remote != "" {
		v := *e.Video
		v.Remote = ""
		e.Video = &v
	}
	if e.Login != nil {
		e.Login = nil // its one field is the address
	}
	return e
}
