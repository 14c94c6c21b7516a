package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/selfalarm"
	"github.com/shelterwatch/shelterwatch/ingest/forward"
)

// tokenKey carries the authenticated token's name in a request context.
type tokenKey struct{}

// tokenName is the name of the token that authenticated r ("" for none).
func tokenName(ctx context.Context) string {
	if t := tokenOf(ctx); t != nil {
		return t.Name
	}
	return ""
}

func tokenOf(ctx context.Context) *Token {
	t, _ := ctx.Value(tokenKey{}).(*Token)
	return t
}

type forwarderJSON struct {
	forward.Status
	BacklogSeconds float64 `json:"backlog_seconds"`
}

// forwarders lists the InfluxDB targets with their backlog.
func (a *api) forwarders(w http.ResponseWriter, r *http.Request) {
	out := []forwarderJSON{}
	if a.opts.Forwarders != nil {
		for _, s := range a.opts.Forwarders() {
			out = append(out, forwarderJSON{Status: s, BacklogSeconds: s.BacklogAge.Seconds()})
		}
	}
	writeJSON(w, map[string]any{"forwarders": out})
}

// selfAlarms lists the gateway's alarms about itself.
func (a *api) selfAlarms(w http.ResponseWriter, r *http.Request) {
	out := []selfalarm.Alarm{}
	if a.opts.Alarms != nil {
		out = a.opts.Alarms.Active()
	}
	writeJSON(w, map[string]any{"self_alarms": out})
}

// ackSelfAlarm removes a self-alarm, latched ones included, once a manager
// has seen it. Who did it is logged.
func (a *api) ackSelfAlarm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if a.opts.Alarms == nil || !a.opts.Alarms.Acknowledge(id) {
		httpError(w, http.StatusNotFound, "no active self-alarm "+id)
		return
	}
	a.opts.Logger.Info("self-alarm acknowledged", "alarm", id, "token", tokenName(r.Context()), "remote", r.RemoteAddr,
		"at", time.Now().UTC().Format(time.RFC3339))
	writeJSON(w, map[string]any{"acknowledged": id})
}
