// Package httpapi serves the gateway's HTTP interface: health and readiness
// probes and Prometheus metrics for operators, and the JSON API (device
// state, sensor history and availability, dead letters) behind bearer-token
// authentication. docs/api.md describes the history endpoints.
//
// Authorisation is enforced here, on the server: every /api/ request needs a
// token whose SHA-256 matches a configured one, and the token's role must
// allow the endpoint. /metrics needs a token of role metrics or admin, or
// is served without one by MetricsHandler on a listener of its own (the
// gateway allows that only on loopback). Tokens are compared as digests in
// constant time and are never logged.
//
// The server's write timeout bounds every response; a route whose answer
// takes longer by design opts out explicitly (longLived).
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/throttle"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
	"github.com/shelterwatch/shelterwatch/rules/notify"
	"github.com/shelterwatch/shelterwatch/video/cameras"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

// Role is what a token (or, later, a console user) may do: a set of
// permissions (rolePerms), not a rank.
type Role int

// Roles.
const (
	// RoleMetrics may read /metrics and nothing else: the token a
	// Prometheus server holds.
	RoleMetrics Role = iota + 1
	// RoleViewer reads everything but personal data (Grafana, scripts).
	RoleViewer
	RoleManager
	RoleAdmin
	RoleSupervisor
	RoleInspector
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
	case "metrics":
		return RoleMetrics, nil
	case "supervisor":
		return RoleSupervisor, nil
	case "inspector":
		return RoleInspector, nil
	}
	return 0, fmt.Errorf("httpapi: unknown role %q", s)
}

// Token is a configured API token: its name, role and SHA-256 digest, and
// the cameras it may watch.
type Token struct {
	Name   string
	Role   Role
	Digest [32]byte
	// Cameras are the camera ids this token may view; "*" allows all.
	Cameras []string
	// session: a console user's session, not a configured token.
	session bool
}

var roleNames = map[Role]string{RoleMetrics: "metrics", RoleViewer: "viewer", RoleManager: "manager",
	RoleAdmin: "admin", RoleSupervisor: "supervisor", RoleInspector: "inspector"}

func (r Role) String() string { return roleNames[r] }

// mayView reports whether the token may watch camera.
func (t *Token) mayView(camera string) bool {
	if !t.Role.may(PermVideoWatch) {
		return false
	}
	for _, c := range t.Cameras {
		if c == "*" || c == camera {
			return true
		}
	}
	return false
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
	Store    History
	State    Devices
	Gatherer prometheus.Gatherer
	// MetricsElsewhere leaves /metrics out of Handler: MetricsHandler
	// serves it on a listener of its own.
	MetricsElsewhere bool
	Tokens           []Token
	// Ready reports whether the gateway can take readings ("" when ready,
	// else the reason).
	Ready func() string
	// OfflineAfter returns a device's configured silence timeout
	// (devices[].offline_after), or 0 when it has none; availability then
	// uses the default for the device's kind. May be nil.
	OfflineAfter func(device string) time.Duration
	// Clock returns the current time (default time.Now); availability
	// counts no time after it.
	Clock func() time.Time
	// Forwarders reports the InfluxDB forwarders' status. May be nil.
	Forwarders func() []forward.Status
	// Alarms are the open alarms and what people do with them (the rules
	// engine): sensor alarms and the gateway's own faults alike. May be nil.
	Alarms Alarms
	// Rules lists the rules the engine runs (GET /api/v1/rules). May be
	// nil.
	Rules RuleList
	// Discovered is the onboarding list: devices that announce
	// themselves and the config entries proposed for them. May be nil.
	Discovered Discovered
	// WalkTests start, end and list walk tests (the rules engine). May be
	// nil.
	WalkTests WalkTests
	// Hazards is the hazard list (nil: its routes answer 404).
	Hazards Hazards
	// Reports are the kept summary reports (nil: their routes answer
	// 404).
	Reports Reports
	// Audit is the audit log. May be nil.
	Audit AuditLog
	// Reload re-reads the rules file. May be nil.
	Reload func(context.Context) error
	// Outbox reports notification deliveries per alarm. May be nil.
	Outbox Deliveries
	// Video serves the cameras. May be nil (no cameras).
	Video  *Video
	Logger *slog.Logger
	// Users are the web console's accounts (nil: no console login; bearer
	// tokens only).
	Users Users
	// AuditAppend records logins and logouts (nil: not recorded).
	AuditAppend func(...audit.Entry) error
	// SessionIdle and SessionMax bound a console session (0: the
	// defaults).
	SessionIdle, SessionMax time.Duration
	// Console serves the web console's files at every path no API route
	// matches (nil: none). It is open: the login page must load before
	// anyone has logged in, and the files hold no data.
	Console http.Handler
	// AlarmsChanged, when set, gets a value whenever an alarm opened,
	// changed or closed: the live update stream looks at once rather
	// than at its next tick (nil: every EventsEvery only).
	AlarmsChanged <-chan struct{}
	// EventsEvery is how often the live update stream looks for changes
	// (0: DefaultEventsEvery).
	EventsEvery time.Duration
	// Facility is the place the gateway serves: GET /api/v1/facility,
	// and the zones of the alarm report.
	Facility Facility
	// Version is the gateway's version.
	Version string
	// Started is when the gateway started (zero: uptime unknown).
	Started time.Time
	// BrokerClients reports the MQTT clients connected to the embedded
	// broker, or -1 when it cannot tell (nil: no embedded broker).
	BrokerClients func() int
	// StoreDisk reports the store's disk space (nil: unknown).
	StoreDisk func() (StoreDisk, error)
	// DeadLetterCount reports how many dead letters the store keeps
	// (nil: unknown).
	DeadLetterCount func() (int, error)
}

// History is what the API needs of the durable store: series, points and
// rollups for the history and availability endpoints, dead letters.
type History interface {
	Series(q store.Query) []store.Series
	Points(ctx context.Context, sr store.Series, from, to time.Time, fn func(store.Point) bool) error
	Downsample(ctx context.Context, q store.Query, width time.Duration) ([]store.SeriesBuckets, error)
	Activity(ctx context.Context, sr store.Series, from, to time.Time, grain time.Duration, fn func(first, last time.Time)) error
	LastBefore(sr store.Series, t time.Time) (store.Point, bool, error)
	DeadLetters(limit int) ([]store.DeadLetter, error)
}

// Devices is what the API needs of the live device state.
type Devices interface {
	Snapshot() []devstate.State
}

// Alarms is what the API needs of the rules engine.
type Alarms interface {
	Active(ctx context.Context) ([]alarm.Alarm, error)
	Acknowledge(ctx context.Context, id, by, comment string) error
	Reset(ctx context.Context, id, by, comment string) error
	AddSilence(ctx context.Context, s engine.Silence) error
}

// RuleList is what the API needs to list the running rules.
type RuleList interface {
	Rules(ctx context.Context) ([]engine.RuleInfo, error)
}

// AuditLog is what the API needs of the audit log.
type AuditLog interface {
	Read(f audit.Filter, limit int) ([]audit.Entry, error)
	Each(f audit.Filter, fn func(*audit.Entry) bool) error
}

// Deliveries is what the API needs of the notification outbox.
type Deliveries interface {
	Deliveries(alarmID string) []notify.Delivery
}

// Video is what the API needs of the cameras.
type Video struct {
	WHEP     *whep.Server
	Cameras  func() []cameras.Status
	Sessions func() []whep.Record
}

// Handler returns the HTTP handler.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	a := newAPI(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	if !opts.MetricsElsewhere {
		mux.Handle("GET /metrics", a.metrics(true))
	}
	// Logging in is the one API route open to anyone (throttled); the
	// API's own description is public too.
	mux.HandleFunc("POST /api/v1/session", a.login)
	mux.HandleFunc("GET /api/v1/openapi.yaml", serveOpenAPI)
	for _, rt := range routes {
		if rt.video && opts.Video == nil {
			continue
		}
		h := a.auth(rt.perm, rt.handler(a))
		if rt.long {
			h = longLived(h)
		}
		mux.Handle(rt.pattern, h)
	}
	if opts.Video != nil {
		// WHEP signalling answers once the camera streams (an on-demand
		// pull starts first) and ICE candidates are gathered: the WHEP
		// server bounds that time itself, not the API's write timeout.
		whepH := longLived(opts.Video.WHEP.Handler("/api/v1/cameras", a.authorizeCamera))
		// By method, as the WHEP server serves them: the console's
		// "GET /" below then takes no WHEP path's other methods.
		mux.Handle("POST /api/v1/cameras/{camera}/whep", whepH)
		mux.Handle("OPTIONS /api/v1/cameras/{camera}/whep", whepH)
		mux.Handle("PATCH /api/v1/cameras/{camera}/whep/{id}", whepH)
		mux.Handle("DELETE /api/v1/cameras/{camera}/whep/{id}", whepH)
	}
	if opts.Console != nil {
		// GET only: another method on an API path is still the
		// ServeMux's 405, an unknown path its 404.
		mux.Handle("GET /", opts.Console)
	}
	return mux
}

type api struct {
	opts       Options
	hub        *eventHub
	sessions   *sessions
	throttle   *throttle.Throttle
	loginSlots chan struct{}
	// accountsMu makes an admin's check and edit of the accounts one
	// step (the last enabled admin stays).
	accountsMu sync.Mutex
}

func newAPI(opts Options) *api {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{opts: opts, sessions: newSessions(opts.SessionIdle, opts.SessionMax),
		throttle: newLoginThrottle(), loginSlots: make(chan struct{}, maxConcurrentLogin)}
	a.hub = newEventHub(a, opts.EventsEvery)
	return a
}

// MetricsHandler serves /metrics alone, for a listener of its own: with a
// token of role metrics or admin, or, when open, to anyone.
func MetricsHandler(opts Options, open bool) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := newAPI(opts)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics(!open))
	return mux
}

// metrics is the Prometheus handler, behind a token of role metrics or
// admin when withToken.
func (a *api) metrics(withToken bool) http.Handler {
	h := promhttp.HandlerFor(a.opts.Gatherer, promhttp.HandlerOpts{})
	if !withToken {
		return h
	}
	return a.auth(PermMetrics, h.ServeHTTP)
}

// longLived lets a route's response outlast the server's write timeout;
// the route bounds its own time.
func longLived(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A zero deadline clears the one the server set. The error only
		// says the writer cannot take deadlines (a test recorder).
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		h.ServeHTTP(w, r)
	})
}

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

// principal authenticates a request: by its bearer token, or else by its
// console session cookie (then with the session).
func (a *api) principal(r *http.Request) (*Token, *session, error) {
	if r.Header.Get("Authorization") == "" {
		if _, err := r.Cookie(SessionCookie); err == nil {
			return a.sessionToken(r)
		}
	}
	tok, err := a.token(r)
	return tok, nil, err
}

// token finds the request's bearer token; the error says what is wrong.
func (a *api) token(r *http.Request) (*Token, error) {
	// The scheme name is case-insensitive (RFC 7235).
	hdr := r.Header.Get("Authorization")
	raw, ok := "", len(hdr) > 7 && strings.EqualFold(hdr[:7], "Bearer ")
	if ok {
		raw = hdr[7:]
	}
	if !ok || raw == "" {
		return nil, errMissingToken
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
		return nil, errUnknownToken
	}
	return tok, nil
}

var (
	errMissingToken = errors.New("missing bearer token")
	errUnknownToken = errors.New("unknown token")
)

// auth lets a request through when its token's role has the permission.
func (a *api) auth(need Permission, h http.HandlerFunc) http.Handler {
	return a.authorize(func(t *Token) bool { return t.Role.may(need) }, h)
}

// authorize lets a request through when its token is one of the
// configured ones and allowed says yes.
func (a *api) authorize(allowed func(*Token) bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, se, err := a.principal(r)
		if err == errMissingToken {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shelterwatch"`)
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if err == errSession {
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if err == errCSRF {
			httpError(w, http.StatusForbidden, err.Error())
			return
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shelterwatch", error="invalid_token"`)
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if !allowed(tok) {
			a.opts.Logger.Warn("httpapi: forbidden", "token", tok.Name, "path", r.URL.Path)
			httpError(w, http.StatusForbidden, "this token's role may not use "+r.URL.Path)
			return
		}
		ctx := context.WithValue(r.Context(), tokenKey{}, tok)
		if se != nil {
			ctx = withSession(ctx, se)
		}
		h(w, r.WithContext(ctx))
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// httpErrorReason is httpError with a machine-readable reason, for the
// answers a client acts on rather than only shows.
func httpErrorReason(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg, "reason": reason})
}

func writeJSON(w http.ResponseWriter, v any) {
	writeJSONStatus(w, http.StatusOK, v)
}

// writeJSONStatus answers v with status: the header is set before the
// status is written (later changes to it are ignored).
func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
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
