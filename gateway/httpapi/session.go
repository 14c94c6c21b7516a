package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/throttle"
)

// Console sessions: a person logs in with the name and password of the
// users file and gets a session cookie; machines keep their bearer tokens.
//
// The cookie is HttpOnly, SameSite=Strict, Secure under HTTPS, and a new
// one is issued at every login (a cookie planted before the login is never
// promoted: no fixation). A session ends after SessionIdle without a
// request, after SessionMax in any case, at logout, and when its user's
// epoch moves on (a new password, disabled, a new role, "log out
// everywhere"). A request with a session cookie that changes something
// must carry the session's CSRF token in X-CSRF-Token: SameSite=Strict
// already keeps other sites' requests from carrying the cookie; the token
// is the second lock, for browsers and proxies that do not honour it.

// SessionCookie is the session cookie's name.
const SessionCookie = "sw_session"

// CSRFHeader carries a cookie session's CSRF token.
const CSRFHeader = "X-CSRF-Token"

// Session defaults.
const (
	DefaultSessionIdle = 8 * time.Hour  // one shift without a request
	DefaultSessionMax  = 24 * time.Hour // then log in again, whatever
	maxSessionsPerUser = 10             // a user's oldest goes first
	maxSessions        = 10000          // all users; past it logins wait for expiry
	maxConcurrentLogin = 2              // argon2id checks at once (19 MiB each)
	loginWait          = 5 * time.Second
	maxLoginBody       = 4 << 10
)

// Users is what the API needs of the console's accounts: logins and
// sessions, and their administration (admins).
type Users interface {
	Get(name string) (users.User, error)
	Authenticate(name, password string) (users.User, error)
	EndSessions(name string) error
	List() ([]users.User, error)
	// As is the file for edits made by who: each user it changes
	// records who as ChangedBy, and the gateway's audit of the users
	// file (gateway/app, watchAccounts) names them.
	As(who string) *users.File
}

type session struct {
	user    string
	epoch   uint64
	csrf    string
	created time.Time
	seen    time.Time
}

// sessions is the table of open console sessions, keyed by the SHA-256 of
// the cookie's value (the table holds no usable cookie).
type sessions struct {
	idle, max time.Duration
	mu        sync.Mutex
	byID      map[[32]byte]*session
	// ended is closed (and replaced) when endUser ends a user's
	// sessions, so that live update streams look again at once.
	ended chan struct{}
}

func newSessions(idle, max time.Duration) *sessions {
	if idle <= 0 {
		idle = DefaultSessionIdle
	}
	if max <= 0 {
		max = DefaultSessionMax
	}
	return &sessions{idle: idle, max: max, byID: map[[32]byte]*session{}, ended: make(chan struct{})}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *sessions) expired(se *session, now time.Time) bool {
	return now.Sub(se.seen) > s.idle || now.Sub(se.created) > s.max
}

// start opens a session for u and returns its cookie value.
func (s *sessions) start(u users.User, now time.Time) (id string, se *session, err error) {
	if id, err = randomToken(); err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	se = &session{user: u.Name, epoch: u.Epoch, csrf: csrf, created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest [32]byte
	var oldestAt time.Time
	mine := 0
	for k, o := range s.byID {
		if s.expired(o, now) {
			delete(s.byID, k)
			continue
		}
		if o.user == u.Name {
			mine++
			if oldestAt.IsZero() || o.created.Before(oldestAt) {
				oldest, oldestAt = k, o.created
			}
		}
	}
	if mine >= maxSessionsPerUser {
		delete(s.byID, oldest)
	}
	if len(s.byID) >= maxSessions {
		return "", nil, errTooManySessions
	}
	s.byID[sha256.Sum256([]byte(id))] = se
	return id, se, nil
}

var errTooManySessions = errors.New("too many sessions open")

// get returns the live session with cookie value id, touching it.
func (s *sessions) get(id string, now time.Time) *session {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.byID[k]
	if se == nil {
		return nil
	}
	if s.expired(se, now) {
		delete(s.byID, k)
		return nil
	}
	se.seen = now
	c := *se
	return &c
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.byID, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

func (s *sessions) endUser(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, se := range s.byID {
		if se.user == name {
			delete(s.byID, k)
		}
	}
	close(s.ended)
	s.ended = make(chan struct{})
}

// endedSignal is closed the next time endUser ends some user's sessions.
func (s *sessions) endedSignal() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// errSession is a session cookie that names no live session.
var errSession = errors.New("session ended or unknown: log in again")

// errCSRF is a changing request of a cookie session without its token.
var errCSRF = errors.New("missing or wrong " + CSRFHeader + " header")

// sessionToken authenticates a request by its session cookie, as the
// Token its user's role and cameras make.
func (a *api) sessionToken(r *http.Request) (*Token, *session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, errMissingToken
	}
	if a.opts.Users == nil {
		return nil, nil, errSession
	}
	se := a.sessions.get(c.Value, a.opts.Clock())
	if se == nil {
		return nil, nil, errSession
	}
	u, err := a.opts.Users.Get(se.user)
	if err != nil || u.Disabled || u.Epoch != se.epoch {
		a.sessions.end(c.Value)
		return nil, nil, errSession
	}
	role, err := ParseRole(string(u.Role))
	if err != nil {
		return nil, nil, errSession
	}
	if unsafeMethod(r.Method) && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(se.csrf)) != 1 {
		return nil, nil, errCSRF
	}
	return &Token{Name: u.Name, Role: role, Cameras: u.Cameras, session: true}, se, nil
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// sessionInfo is what the console learns about the caller.
type sessionInfo struct {
	Name        string   `json:"name"`
	Display     string   `json:"display,omitempty"`
	Role        string   `json:"role"`
	Cameras     []string `json:"cameras"`
	Permissions []string `json:"permissions"`
	// CSRFToken goes in X-CSRF-Token on every changing request.
	CSRFToken string    `json:"csrf_token,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
}

func (a *api) info(tok *Token, display string, se *session) sessionInfo {
	in := sessionInfo{Name: tok.Name, Display: display, Role: tok.Role.String(), Cameras: tok.Cameras, Permissions: []string{}}
	if in.Cameras == nil {
		in.Cameras = []string{}
	}
	for p := Permission(1); p != 0 && p <= permMax; p <<= 1 {
		if tok.Role.may(p) {
			in.Permissions = append(in.Permissions, p.String())
		}
	}
	if se != nil {
		in.CSRFToken = se.csrf
		in.Expires = se.created.Add(a.sessions.max)
	}
	return in
}

// login checks a name and password and opens a session.
func (a *api) login(w http.ResponseWriter, r *http.Request) {
	if a.opts.Users == nil {
		httpError(w, http.StatusNotFound, "no console accounts on this gateway")
		return
	}
	var body struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err := dec.Decode(&body); err != nil || body.Name == "" || body.Password == "" {
		httpError(w, http.StatusBadRequest, `want a JSON body {"name": "...", "password": "..."}`)
		return
	}
	ip := remoteIP(r)
	now := a.opts.Clock()
	// Only user names that exist are tracked (the table stays bounded),
	// and only they are written to the audit log: a name that is no
	// user's may be a password typed in the wrong field.
	tracked := ""
	if _, err := a.opts.Users.Get(body.Name); err == nil {
		tracked = body.Name
	}
	if blocked, until := a.throttle.Blocked(ip, tracked, now); blocked {
		a.auditLogin(audit.ActionLoginFailed, tracked, ip, "throttled")
		w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(now).Round(time.Second)/time.Second)+1))
		httpError(w, http.StatusTooManyRequests, "too many failed logins: wait before trying again / 登录失败次数过多，请稍后再试")
		return
	}
	select {
	case a.loginSlots <- struct{}{}:
		defer func() { <-a.loginSlots }()
	case <-time.After(loginWait):
		httpError(w, http.StatusServiceUnavailable, "busy checking other logins: try again / 服务器繁忙，请重试")
		return
	case <-r.Context().Done():
		return
	}
	u, err := a.opts.Users.Authenticate(body.Name, body.Password)
	if err != nil {
		a.throttle.Failed(ip, tracked, now)
		reason := "bad_password"
		switch {
		case errors.Is(err, users.ErrDisabled):
			reason = "disabled"
		case tracked == "":
			reason = "unknown_user"
		case !errors.Is(err, users.ErrBadPassword):
			reason = "error"
			a.opts.Logger.Error("httpapi: login", "user", tracked, "err", err)
		}
		a.auditLogin(audit.ActionLoginFailed, tracked, ip, reason)
		a.opts.Logger.Warn("httpapi: login refused", "user", tracked, "remote", ip, "reason", reason)
		// One answer for every refusal: it does not tell which names exist.
		httpError(w, http.StatusUnauthorized, "wrong user name or password / 用户名或密码错误")
		return
	}
	a.throttle.Succeeded(ip, u.Name)
	// A cookie the client came with (planted or stale) ends here; the
	// session gets a new one.
	if c, err := r.Cookie(SessionCookie); err == nil {
		a.sessions.end(c.Value)
	}
	id, se, err := a.sessions.start(u, now)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "cannot open a session now: "+err.Error())
		return
	}
	role, err := ParseRole(string(u.Role))
	if err != nil {
		a.sessions.end(id)
		httpError(w, http.StatusInternalServerError, "the user's role is unknown to this gateway")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(a.sessions.max / time.Second)})
	a.auditLogin(audit.ActionLogin, u.Name, ip, "")
	a.opts.Logger.Info("httpapi: login", "user", u.Name, "role", u.Role, "remote", ip)
	writeJSON(w, a.info(&Token{Name: u.Name, Role: role, Cameras: u.Cameras}, u.Display, se))
}

// whoami describes the caller: a session's user (with its CSRF token) or
// a token.
func (a *api) whoami(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r.Context())
	se, _ := r.Context().Value(sessionKey{}).(*session)
	display := ""
	if se != nil {
		if u, err := a.opts.Users.Get(tok.Name); err == nil {
			display = u.Display
		}
	}
	writeJSON(w, a.info(tok, display, se))
}

// logout ends the caller's session.
func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r.Context())
	if c, err := r.Cookie(SessionCookie); err == nil && tok.session {
		a.sessions.end(c.Value)
		a.auditLogin(audit.ActionLogout, tok.Name, remoteIP(r), "")
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// endAll ends every session of the caller's user, on every device.
func (a *api) endAll(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r.Context())
	if !tok.session {
		httpError(w, http.StatusBadRequest, "a token has no sessions")
		return
	}
	if err := a.opts.Users.EndSessions(tok.Name); err != nil {
		httpError(w, http.StatusInternalServerError, "could not end the sessions")
		a.opts.Logger.Error("httpapi: end sessions", "user", tok.Name, "err", err)
		return
	}
	a.sessions.endUser(tok.Name)
	a.auditLogin(audit.ActionSessionsEnded, tok.Name, remoteIP(r), "")
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) auditLogin(action, user, ip, reason string) {
	if a.opts.AuditAppend == nil {
		return
	}
	e := audit.Entry{Time: a.opts.Clock(), Action: action, By: user, Detail: reason, Login: &audit.Login{Remote: ip}}
	if err := a.opts.AuditAppend(e); err != nil {
		a.opts.Logger.Error("httpapi: audit log refused a login entry", "action", action, "user", user, "err", err)
	}
}

// remoteIP is the client's address without its port.
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

type sessionKey struct{}

func withSession(ctx context.Context, se *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, se)
}

func newLoginThrottle() *throttle.Throttle {
	return throttle.New(throttle.Limits{FreeFailures: 5, Penalty: time.Second, MaxPenalty: time.Minute})
}
