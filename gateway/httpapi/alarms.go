package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// alarmsList serves the open alarms, most severe first.
func (a *api) alarmsList(w http.ResponseWriter, r *http.Request) {
	if a.opts.Alarms == nil {
		writeJSON(w, map[string]any{"alarms": []alarm.Alarm{}})
		return
	}
	list, err := a.opts.Alarms.Active(r.Context())
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "rules engine not answering")
		return
	}
	if list == nil {
		list = []alarm.Alarm{}
	}
	writeJSON(w, map[string]any{"alarms": list})
}

type actionBody struct {
	Comment string `json:"comment"`
}

// readBody decodes an optional small JSON body.
func readBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 16<<10+1))
	if err != nil {
		return errors.New("could not read the request body")
	}
	if len(b) > 16<<10 {
		return errors.New("request body larger than 16 KiB")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	return nil
}

// alarmAction acknowledges or resets an alarm as the calling token.
func (a *api) alarmAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Alarms == nil {
			httpError(w, http.StatusNotFound, "no rules engine")
			return
		}
		var body actionBody
		if err := readBody(r, &body); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		if len(body.Comment) > 1000 {
			httpError(w, http.StatusBadRequest, "comment longer than 1000 bytes")
			return
		}
		id, by := r.PathValue("id"), tokenName(r.Context())
		var err error
		switch action {
		case "ack":
			err = a.opts.Alarms.Acknowledge(r.Context(), id, by, body.Comment)
		case "reset":
			err = a.opts.Alarms.Reset(r.Context(), id, by, body.Comment)
		}
		switch {
		case errors.Is(err, engine.ErrNotFound):
			httpError(w, http.StatusNotFound, "no open alarm "+id)
		case err != nil:
			httpError(w, http.StatusConflict, err.Error())
		default:
			a.opts.Logger.Info("alarm "+action, "alarm", id, "by", by, "remote", r.RemoteAddr)
			writeJSON(w, map[string]any{"alarm": id, "action": action, "by": by})
		}
	}
}

type silenceBody struct {
	Device   string `json:"device"`
	Zone     string `json:"zone"`
	Rule     string `json:"rule"`
	Duration string `json:"duration"`
	Comment  string `json:"comment"`
}

// addSilence mutes matching alarms for a while (a detector under test).
func (a *api) addSilence(w http.ResponseWriter, r *http.Request) {
	if a.opts.Alarms == nil {
		httpError(w, http.StatusNotFound, "no rules engine")
		return
	}
	var b silenceBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	fd, err := facility.ParseDuration(b.Duration)
	d := fd.Std()
	switch {
	case err != nil || d <= 0:
		httpError(w, http.StatusBadRequest, "duration must be a positive duration like 30m, 2h or 1d")
		return
	case d > 7*24*time.Hour:
		httpError(w, http.StatusBadRequest, "duration longer than 7 days: a silence must end")
		return
	case b.Device == "" && b.Zone == "" && b.Rule == "":
		httpError(w, http.StatusBadRequest, "name a device, a zone or a rule: silencing everything is not allowed")
		return
	case strings.TrimSpace(b.Comment) == "":
		httpError(w, http.StatusBadRequest, "comment required: say why (it goes to the audit log)")
		return
	}
	now := a.opts.Clock()
	s := engine.Silence{ID: fmt.Sprintf("s-%d", now.UnixNano()), Device: b.Device, Zone: b.Zone, Rule: b.Rule,
		From: now, To: now.Add(d), By: tokenName(r.Context()), Comment: b.Comment}
	if err := a.opts.Alarms.AddSilence(r.Context(), s); errors.Is(err, engine.ErrUnknownName) {
		httpError(w, http.StatusBadRequest, "silence refused: "+err.Error())
		return
	} else if err != nil {
		httpError(w, http.StatusServiceUnavailable, "rules engine not answering")
		return
	}
	writeJSONStatus(w, http.StatusCreated, s)
}

// rulesList lists the rules the engine runs, for pick lists (Grafana's
// rule variable) and for reading what an alarm's rule means.
func (a *api) rulesList(w http.ResponseWriter, r *http.Request) {
	if a.opts.Rules == nil {
		httpError(w, http.StatusNotFound, "no rules engine")
		return
	}
	rs, err := a.opts.Rules.Rules(r.Context())
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "rules engine not answering")
		return
	}
	writeJSON(w, rs)
}

// reloadRules re-reads the rules file.
func (a *api) reloadRules(w http.ResponseWriter, r *http.Request) {
	if a.opts.Reload == nil {
		httpError(w, http.StatusNotFound, "no rules engine")
		return
	}
	if err := a.opts.Reload(r.Context()); err != nil {
		httpError(w, http.StatusUnprocessableEntity, "rules not reloaded, the running rules stay: "+err.Error())
		return
	}
	a.opts.Logger.Info("rules reloaded", "by", tokenName(r.Context()))
	writeJSON(w, map[string]any{"reloaded": true})
}

// deliveries lists the notifications of an alarm and where each stands
// (pending, delivered, failed with the receiver's answer).
func (a *api) deliveries(w http.ResponseWriter, r *http.Request) {
	if a.opts.Outbox == nil {
		writeJSON(w, map[string]any{"deliveries": []any{}})
		return
	}
	ds := a.opts.Outbox.Deliveries(r.PathValue("id"))
	if ds == nil {
		writeJSON(w, map[string]any{"deliveries": []any{}})
		return
	}
	writeJSON(w, map[string]any{"deliveries": ds})
}
