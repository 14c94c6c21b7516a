package httpapi

import (
	"context"
	"net/http"

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
