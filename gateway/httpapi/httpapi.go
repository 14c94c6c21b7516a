// Package httpapi serves the gateway's HTTP interface: health and readiness
// probes and Prometheus metrics for operators, and the JSON API (device
// state, sensor history, dead letters) behind bearer-token authentication.
//
// Authorisation is enforced here, on the server: every /api/ request needs a
// token whose SHA-256 matches a configured one, and the token's role must
// allow the endpoint. Tokens are compared as digests in constant time and are
// never logged.
package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
)

// Role orders what a token may do; a higher role may do everything a lower one may.
type Role int

// Roles, lowest first.
const (
	RoleViewer Role = iota + 1
	RoleManager
	RoleAdmin
)

// ParseRole maps a config role name to a Role.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "manager":
		return RoleManager, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, fmt.Errorf("httpapi: unknown role %q", s)
}

// Token is a configured API token: its name, role and SHA-256 digest.
type Token struct {
	Name   string
	Role   Role
	Digest [32]byte
}

// ParseToken builds a Token from the hex digest in the config.
func ParseToken(name, role, sha256Hex string) (Token, error) {
	r, err := ParseRole(role)
	if err != nil {
		return Token{}, err
	}
	b, err := hex.DecodeString(sha256Hex)
	if err != nil || len(b) != 32 {
		return Token{}, fmt.Errorf("httpapi: token %q: sha256 must be 64 hex digits", name)
	}
	t := Token{Name: name, Role: r}
	copy(t.Digest[:], b)
	return t, nil
}

// Options wire the API to the rest of the gateway.
type Options struct {
	Store    *store.Store
	State    *devstate.Tracker
	Gatherer prometheus.Gatherer
	Tokens   []Token
	// Ready reports whether the gateway can take readings ("" when ready,
	// else the reason).
	Ready  func() string
	Logger *slog.Logger
}

// Handler returns the HTTP handler.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	mux.Handle("GET /api/v1/devices", a.auth(RoleViewer, a.devices))
	mux.Handle("GET /api/v1/readings", a.auth(RoleViewer, a.readings))
	mux.Handle("GET /api/v1/dead-letters", a.auth(RoleManager, a.deadLetters))
	return mux
}

type api struct{ opts Options }

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if a.opts.Ready != nil {
		if reason := a.opts.Ready(); reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + reason + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (a *api) auth(need Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme name is case-insensitive (RFC 7235).
		hdr := r.Header.Get("Authorization")
		raw, ok := "", len(hdr) > 7 && strings.EqualFold(hdr[:7], "Bearer ")
		if ok {
			raw = hdr[7:]
		}
		if !ok || raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shelterwatch"`)
			httpError(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		d := sha256.Sum256([]byte(raw))
		var tok *Token
		for i := range a.opts.Tokens {
			// Compare every token so timing does not reveal which matched.
			if subtle.ConstantTimeCompare(d[:], a.opts.Tokens[i].Digest[:]) == 1 {
				tok = &a.opts.Tokens[i]
			}
		}
		if tok == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shelterwatch", error="invalid_token"`)
			httpError(w, http.StatusUnauthorized, "unknown token")
			return
		}
		if tok.Role < need {
			a.opts.Logger.Warn("httpapi: forbidden", "token", tok.Name, "path", r.URL.Path)
			httpError(w, http.StatusForbidden, "this token's role may not use "+r.URL.Path)
			return
		}
		h(w, r)
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

type deviceJSON struct {
	devstate.State
	Values map[reading.Kind]valueJSON `json:"values"`
}

type valueJSON struct {
	Value any       `json:"value"`
	Time  time.Time `json:"time"`
}

func (a *api) devices(w http.ResponseWriter, r *http.Request) {
	states := a.opts.State.Snapshot()
	out := make([]deviceJSON, 0, len(states))
	for _, s := range states {
		d := deviceJSON{State: s, Values: make(map[reading.Kind]valueJSON, len(s.Last))}
		for k, v := range s.Last {
			d.Values[k] = valueJSON{Value: v.Value.Any(), Time: v.Time}
		}
		out = append(out, d)
	}
	writeJSON(w, map[string]any{"devices": out})
}

func (a *api) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 100, 1, 10000)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	dls, err := a.opts.Store.DeadLetters(limit)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "list dead letters failed")
		a.opts.Logger.Error("httpapi: list dead letters", "err", err)
		return
	}
	writeJSON(w, map[string]any{"dead_letters": dls})
}

const maxRawPoints = 100000

type pointJSON struct {
	Time  time.Time `json:"time"`
	Value any       `json:"value"`
}

// readings serves raw points, or buckets when "bucket" is given.
// Query: device, kind, zone, from, to (RFC 3339), bucket (Go duration),
// format=json|csv.
func (a *api) readings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sq := store.Query{Device: q.Get("device"), Kind: reading.Kind(q.Get("kind")), Zone: q.Get("zone")}
	var err error
	if sq.From, err = timeParam(q.Get("from")); err != nil {
		httpError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	if sq.To, err = timeParam(q.Get("to")); err != nil {
		httpError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	if !sq.From.IsZero() && !sq.To.IsZero() && !sq.From.Before(sq.To) {
		httpError(w, http.StatusBadRequest, "from must be before to")
		return
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		httpError(w, http.StatusBadRequest, "format must be json or csv")
		return
	}
	if b := q.Get("bucket"); b != "" {
		width, err := time.ParseDuration(b)
		if err != nil || width < time.Second {
			httpError(w, http.StatusBadRequest, "bucket must be a duration of at least 1s, like 1m or 1h")
			return
		}
		series, err := a.opts.Store.Downsample(r.Context(), sq, width)
		if err != nil {
			httpError(w, http.StatusInternalServerError, "query failed")
			a.opts.Logger.Error("httpapi: downsample", "err", err)
			return
		}
		// Empty results are empty lists, as for raw points: clients iterate.
		if series == nil {
			series = []store.SeriesBuckets{}
		}
		for i := range series {
			if series[i].Buckets == nil {
				series[i].Buckets = []store.Bucket{}
			}
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			cw := csv.NewWriter(w)
			_ = cw.Write([]string{"device", "kind", "zone", "start", "count", "min", "max", "mean", "last"})
			for _, s := range series {
				for _, b := range s.Buckets {
					_ = cw.Write([]string{s.Device, string(s.Kind), s.Zone, b.Start.UTC().Format(time.RFC3339),
						strconv.Itoa(b.Count), ff(b.Min), ff(b.Max), ff(b.Mean), ff(b.Last)})
				}
			}
			cw.Flush()
			return
		}
		writeJSON(w, map[string]any{"series": series})
		return
	}

	type seriesJSON struct {
		store.Series
		Points []pointJSON `json:"points"`
	}
	var out []seriesJSON
	total := 0
	for _, sr := range a.opts.Store.Series(sq) {
		sj := seriesJSON{Series: sr, Points: []pointJSON{}}
		err := a.opts.Store.Points(r.Context(), sr, sq.From, sq.To, func(p store.Point) bool {
			total++
			sj.Points = append(sj.Points, pointJSON{Time: p.Time, Value: p.Value.Any()})
			return total <= maxRawPoints
		})
		if err != nil {
			httpError(w, http.StatusInternalServerError, "query failed")
			a.opts.Logger.Error("httpapi: points", "err", err)
			return
		}
		out = append(out, sj)
		if total > maxRawPoints {
			httpError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("more than %d points: narrow the range or use bucket=", maxRawPoints))
			return
		}
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"device", "kind", "zone", "time", "value"})
		for _, s := range out {
			for _, p := range s.Points {
				_ = cw.Write([]string{s.Device, string(s.Kind), s.Zone, p.Time.UTC().Format(time.RFC3339Nano), fmt.Sprint(p.Value)})
			}
		}
		cw.Flush()
		return
	}
	if out == nil {
		out = []seriesJSON{}
	}
	writeJSON(w, map[string]any{"series": out})
}

func ff(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func timeParam(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("want an RFC 3339 time like 2026-11-30T03:00:00Z")
	}
	return t, nil
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
