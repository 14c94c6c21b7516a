package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

// allowedRoles is the authorisation matrix, written down independently of
// the route table: which roles may use each route. A route in the table
// that is missing here fails the test, so no route ships without a rule.
var allowedRoles = map[string][]string{
	"GET /api/v1/devices":                    {"viewer", "inspector", "manager", "admin"},
	"GET /api/v1/readings":                   {"viewer", "inspector", "manager", "admin"},
	"GET /api/v1/availability":               {"viewer", "inspector", "manager", "admin"},
	"GET /api/v1/dead-letters":               {"manager", "admin"},
	"GET /api/v1/forwarders":                 {"viewer", "manager", "admin"},
	"GET /api/v1/health":                     {"viewer", "manager", "admin"},
	"GET /api/v1/alarms":                     {"viewer", "inspector", "supervisor", "manager", "admin"},
	"POST /api/v1/alarms/{id}/ack":           {"manager", "admin"},
	"POST /api/v1/alarms/{id}/reset":         {"manager", "admin"},
	"GET /api/v1/alarms/{id}/deliveries":     {"viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/audit":                      {"viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/reports/alarms":             {"viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/reports":                    {"viewer", "inspector", "supervisor", "manager", "admin"},
	"POST /api/v1/reports":                   {"inspector", "admin"},
	"GET /api/v1/reports/{id}":               {"viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/reports/{id}/xlsx":          {"viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/reports/{id}/csv":           {"viewer", "inspector", "supervisor", "manager", "admin"},
	"POST /api/v1/silences":                  {"manager", "admin"},
	"GET /api/v1/walktests":                  {"viewer", "inspector", "manager", "admin"},
	"GET /api/v1/hazards":                    {"viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/hazards/{id}":               {"viewer", "inspector", "supervisor", "manager", "admin"},
	"POST /api/v1/hazards":                   {"inspector"},
	"PATCH /api/v1/hazards/{id}":             {"inspector"},
	"POST /api/v1/hazards/{id}/rectify":      {"manager", "admin"},
	"POST /api/v1/hazards/{id}/verify":       {"inspector"},
	"POST /api/v1/hazards/{id}/reopen":       {"inspector"},
	"GET /api/v1/devices/discovered":         {"admin"},
	"GET /api/v1/rules":                      {"viewer", "inspector", "supervisor", "manager", "admin"},
	"POST /api/v1/devices/discovered/config": {"admin"},
	"POST /api/v1/walktests":                 {"admin"},
	"POST /api/v1/walktests/end":             {"admin"},
	"GET /api/v1/walktests/{id}/record.csv":  {"viewer", "inspector", "manager", "admin"},
	"POST /api/v1/rules/reload":              {"admin"},
	"GET /api/v1/cameras":                    {"viewer", "supervisor", "manager", "admin"},
	"GET /api/v1/video/sessions":             {"manager", "admin"},
	"GET /api/v1/session":                    {"metrics", "viewer", "inspector", "supervisor", "manager", "admin"},
	"DELETE /api/v1/session":                 {"metrics", "viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/events":                     {"metrics", "viewer", "inspector", "supervisor", "manager", "admin"},
	"POST /api/v1/session/end-all":           {"metrics", "viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/facility":                   {"metrics", "viewer", "inspector", "supervisor", "manager", "admin"},
	"GET /api/v1/users":                      {"admin"},
	"POST /api/v1/users":                     {"admin"},
	"PATCH /api/v1/users/{name}":             {"admin"},
	"POST /api/v1/users/{name}/password":     {"admin"},
	"POST /api/v1/users/{name}/end-sessions": {"admin"},
	"GET /api/v1/tokens":                     {"admin"},
	// Wired outside the table:
	"GET /metrics":                       {"metrics", "admin"},
	"WHEP /api/v1/cameras/{camera}/whep": {"viewer", "supervisor", "manager", "admin"},
}

var allRoles = []string{"metrics", "viewer", "inspector", "supervisor", "manager", "admin"}

func secretOf(role string) string { return "secret-of-" + role }

// matrixAPI is an api whose tokens are one per role, each granted every
// camera: what a role may do then depends on the role alone.
func matrixAPI(t *testing.T) *api {
	t.Helper()
	var toks []Token
	for _, role := range allRoles {
		d := sha256.Sum256([]byte(secretOf(role)))
		tok, err := ParseToken(role+"-token", role, hex.EncodeToString(d[:]))
		if err != nil {
			t.Fatal(err)
		}
		tok.Cameras = []string{"*"}
		toks = append(toks, tok)
	}
	return newAPI(Options{Tokens: toks, Users: fakeUsers{}})
}

// fakeUsers has one console user per role, named after it.
type fakeUsers struct{}

func (fakeUsers) Get(name string) (users.User, error) {
	return users.User{Name: name, Role: users.Role(name), Cameras: []string{"*"}, Epoch: 1}, nil
}
func (fakeUsers) Authenticate(string, string) (users.User, error) {
	return users.User{}, users.ErrBadPassword
}
func (fakeUsers) EndSessions(string) error    { return nil }
func (fakeUsers) List() ([]users.User, error) { return nil, nil }
func (fakeUsers) As(string) *users.File       { return nil }

// requestFor builds a request that matches pattern.
func requestFor(pattern, auth string) *http.Request {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.NewReplacer("{id}", "smoke@dev:kitchen-smoke", "{camera}", "ward-cam", "{name}", "wang.fang").Replace(path)
	r := httptest.NewRequest(method, path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

// TestAuthorisationMatrix: every route × every role, and without
// credentials or with an unknown token, against allowedRoles.
func TestAuthorisationMatrix(t *testing.T) {
	a := matrixAPI(t)
	reached := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }
	handlers := map[string]http.Handler{"GET /metrics": a.auth(PermMetrics, reached)}
	for _, rt := range routes {
		if _, dup := handlers[rt.pattern]; dup {
			t.Fatalf("route %s twice in the table", rt.pattern)
		}
		handlers[rt.pattern] = a.auth(rt.perm, reached)
	}
	for pattern := range handlers {
		if _, ok := allowedRoles[pattern]; !ok {
			t.Errorf("route %s has no rule in the authorisation matrix: add it to allowedRoles", pattern)
		}
	}
	for pattern := range allowedRoles {
		if _, ok := handlers[pattern]; !ok && !strings.HasPrefix(pattern, "WHEP ") {
			t.Errorf("allowedRoles names %s, which is not a route", pattern)
		}
	}
	for pattern, h := range handlers {
		for _, c := range []struct{ who, auth string }{{"no credentials", ""}, {"unknown token", "Bearer not-a-token"}, {"not bearer", "Basic YWRtaW46YWRtaW4="}} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, requestFor(pattern, c.auth))
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%s with %s: %d, want 401", pattern, c.who, w.Code)
			}
		}
		for _, role := range allRoles {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, requestFor(pattern, "Bearer "+secretOf(role)))
			want := http.StatusForbidden
			if slices.Contains(allowedRoles[pattern], role) {
				want = http.StatusTeapot
			}
			if w.Code != want {
				t.Errorf("%s as %s: %d, want %d", pattern, role, w.Code, want)
			}
		}
	}

	// A console session of every role, with and without its CSRF token:
	// a changing request without it is refused whatever the role; with it,
	// or for a reading request, the role decides as for a token.
	for _, role := range []string{"inspector", "supervisor", "manager", "admin"} {
		id, se, err := a.sessions.start(users.User{Name: role, Role: users.Role(role), Epoch: 1}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for pattern, h := range handlers {
			for _, withCSRF := range []bool{false, true} {
				r := requestFor(pattern, "")
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
				if withCSRF {
					r.Header.Set(CSRFHeader, se.csrf)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				want := http.StatusForbidden
				if slices.Contains(allowedRoles[pattern], role) && (withCSRF || !unsafeMethod(r.Method)) {
					want = http.StatusTeapot
				}
				if w.Code != want {
					t.Errorf("%s as a %s session (CSRF token %v): %d, want %d", pattern, role, withCSRF, w.Code, want)
				}
			}
		}
		r := requestFor("GET /api/v1/session", "")
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: id + "x"})
		w := httptest.NewRecorder()
		handlers["GET /api/v1/session"].ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("an unknown session cookie: %d, want 401", w.Code)
		}
	}

	// WHEP signalling is authorised per camera.
	pattern := "WHEP /api/v1/cameras/{camera}/whep"
	for _, role := range allRoles {
		_, err := a.authorizeCamera(requestFor("POST /api/v1/cameras/{camera}/whep", "Bearer "+secretOf(role)), "ward-cam")
		if allowed := slices.Contains(allowedRoles[pattern], role); allowed != (err == nil) || (!allowed && !errors.Is(err, whep.ErrForbidden)) {
			t.Errorf("WHEP as %s: %v, want allowed=%v", role, err, allowed)
		}
	}
	if _, err := a.authorizeCamera(requestFor("POST /api/v1/cameras/{camera}/whep", ""), "ward-cam"); !errors.Is(err, whep.ErrUnauthorized) {
		t.Errorf("WHEP without credentials: %v, want unauthorized", err)
	}
}
