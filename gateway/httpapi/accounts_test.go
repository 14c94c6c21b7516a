package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/video/cameras"
)

const (
	adminPassword      = "admin night passphrase"
	supervisorPassword = "ward round passphrase"
	opsSecret          = "ops-admin-secret-7c1e"
	shiftLeadSecret    = "shift-lead-secret-90ad"
)

// newAccountsServer is newLoginServer's world with an admin (chen.jing), a
// manager (wang.fang), a supervisor of the ward camera (zhou.min) and an
// inspector (zhao.lei) in a real users file; two cameras; an admin token
// (ops, opsSecret) and a manager token (shift-lead, shiftLeadSecret).
func newAccountsServer(t *testing.T) *loginServer {
	t.Helper()
	dir := t.TempDir()
	s := &loginServer{users: users.Open(filepath.Join(dir, "users.json")), log: &syncBuffer{}}
	for _, u := range []struct {
		u  users.User
		pw string
	}{
		{users.User{Name: "chen.jing", Display: "陈静", Role: users.RoleAdmin}, adminPassword},
		{users.User{Name: "wang.fang", Display: "王芳", Role: users.RoleManager, Cameras: []string{"*"}}, managerPassword},
		{users.User{Name: "zhou.min", Role: users.RoleSupervisor, Cameras: []string{"ward-cam"}}, supervisorPassword},
		{users.User{Name: "zhao.lei", Role: users.RoleInspector}, inspectorPassword},
	} {
		if err := s.users.As("cli:root").Add(u.u, u.pw); err != nil {
			t.Fatal(err)
		}
	}
	var tokens []httpapi.Token
	for _, tc := range []struct{ name, role, secret string }{{"ops", "admin", opsSecret}, {"shift-lead", "manager", shiftLeadSecret}} {
		tok, err := httpapi.ParseToken(tc.name, tc.role, sha256Hex(tc.secret))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	tokens[1].Cameras = []string{"ward-cam"}
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	s.now.Store(&now)
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{
		Users: s.users, Tokens: tokens, Gatherer: prometheus.NewRegistry(),
		Clock:       func() time.Time { return *s.now.Load() },
		SessionIdle: time.Hour, SessionMax: 10 * time.Hour, EventsEvery: 20 * time.Millisecond,
		Video: &httpapi.Video{Cameras: func() []cameras.Status {
			return []cameras.Status{{ID: "ward-cam"}, {ID: "door-cam"}}
		}},
		Logger: slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// bearer makes a request with a token.
func (s *loginServer) bearer(t *testing.T, method, path, body, secret string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// send makes a changing request of a logged-in browser, CSRF token and all.
func (b *browser) send(method, path, body string) (int, string) {
	b.t.Helper()
	resp, out := b.do(method, path, body, map[string]string{httpapi.CSRFHeader: b.csrf, "Content-Type": "application/json"})
	return resp.StatusCode, out
}

type userAnswer struct {
	User struct {
		Name, Display, Role string
		Cameras             []string
		Disabled            bool
		ChangedBy           string `json:"changed_by"`
	}
	Password *string
}

// The accounts administration through the real handler and users file,
// one step after another: who may do it, what is refused and why, and
// what each edit leaves in the file.
func TestAccountsAdministration(t *testing.T) {
	s := newAccountsServer(t)
	admin := s.browser(t)
	if resp, body := admin.login("chen.jing", adminPassword); resp.StatusCode != 200 {
		t.Fatalf("admin login: %d %s", resp.StatusCode, body)
	}
	manager := s.browser(t)
	manager.login("wang.fang", managerPassword)

	type step struct {
		name         string
		as           string // "admin" (session), "manager" (session), "ops" (admin token), "shift-lead" (manager token)
		method, path string
		body         string
		code         int
		has          []string // pieces the answer must contain
	}
	do := func(st step) (int, string) {
		t.Helper()
		switch st.as {
		case "admin":
			return admin.send(st.method, st.path, st.body)
		case "manager":
			return manager.send(st.method, st.path, st.body)
		case "ops":
			return s.bearer(t, st.method, st.path, st.body, opsSecret)
		case "shift-lead":
			return s.bearer(t, st.method, st.path, st.body, shiftLeadSecret)
		}
		t.Fatalf("no caller %q", st.as)
		return 0, ""
	}
	const goodPW = "a long and quiet passphrase"
	for _, st := range []step{
		{"an admin lists the users", "admin", "GET", "/api/v1/users", "", 200,
			[]string{`"name":"chen.jing","display":"陈静","role":"admin","cameras":[],"disabled":false`, `"changed_by":"cli:root"`, `"zhou.min"`, `"password_changed":"`}},
		{"a manager may not", "manager", "GET", "/api/v1/users", "", 403, nil},
		{"nor a manager's token", "shift-lead", "GET", "/api/v1/users", "", 403, nil},
		{"add a supervisor", "admin", "POST", "/api/v1/users",
			`{"name":"li.na","display":"李娜","role":"supervisor","cameras":["door-cam"],"password":"` + goodPW + `"}`, 201,
			[]string{`"name":"li.na","display":"李娜","role":"supervisor","cameras":["door-cam"]`, `"changed_by":"chen.jing"`}},
		{"the same name again", "admin", "POST", "/api/v1/users", `{"name":"li.na","role":"inspector","password":"` + goodPW + `"}`, 409,
			[]string{"user li.na exists", "已存在"}},
		{"a bad name", "admin", "POST", "/api/v1/users", `{"name":"Li Na","role":"inspector","password":"` + goodPW + `"}`, 400,
			[]string{"user name", "用户名"}},
		{"a role consoles do not have", "admin", "POST", "/api/v1/users", `{"name":"sun.li","role":"viewer","password":"` + goodPW + `"}`, 400,
			[]string{"unknown role", "角色"}},
		{"a weak password", "admin", "POST", "/api/v1/users", `{"name":"sun.li","role":"inspector","password":"short"}`, 400,
			[]string{"password:", "at least 10 characters"}},
		{"no password", "admin", "POST", "/api/v1/users", `{"name":"sun.li","role":"inspector"}`, 400, []string{"password"}},
		{"a password and generate", "admin", "POST", "/api/v1/users", `{"name":"sun.li","role":"inspector","password":"` + goodPW + `","generate":true}`, 400,
			[]string{"not both"}},
		{"cameras for an inspector", "admin", "POST", "/api/v1/users", `{"name":"sun.li","role":"inspector","cameras":["ward-cam"],"generate":true}`, 400,
			[]string{"cameras:", "does not watch video"}},
		{"a camera the gateway does not have", "admin", "POST", "/api/v1/users", `{"name":"sun.li","role":"supervisor","cameras":["attic-cam"],"generate":true}`, 400,
			[]string{`no camera \"attic-cam\"`}},
		{"a field there is not", "admin", "POST", "/api/v1/users", `{"name":"sun.li","role":"inspector","generate":true,"admin":true}`, 400,
			[]string{"unknown field"}},
		{"without the CSRF token", "admin-no-csrf", "", "", "", 0, nil},
		{"a generated password, shown once", "ops", "POST", "/api/v1/users", `{"name":"sun.li","role":"inspector","generate":true}`, 201,
			[]string{`"name":"sun.li"`, `"password":"`, `"changed_by":"token:ops"`}},
		{"a new role", "admin", "PATCH", "/api/v1/users/zhou.min", `{"role":"manager"}`, 200,
			[]string{`"role":"manager","cameras":["ward-cam"]`, `"changed_by":"chen.jing"`}},
		{"new cameras", "admin", "PATCH", "/api/v1/users/zhou.min", `{"cameras":["*"]}`, 200, []string{`"cameras":["*"]`}},
		{"an inspector's role keeping cameras", "admin", "PATCH", "/api/v1/users/zhou.min", `{"role":"inspector"}`, 400,
			[]string{"does not watch video"}},
		{"an inspector's role without cameras", "admin", "PATCH", "/api/v1/users/zhou.min", `{"role":"inspector","cameras":[]}`, 200,
			[]string{`"role":"inspector","cameras":[]`}},
		{"a display name", "admin", "PATCH", "/api/v1/users/zhou.min", `{"display":"周敏"}`, 200, []string{`"display":"周敏"`, `"changed_by":"chen.jing"`}},
		{"a display name too long", "admin", "PATCH", "/api/v1/users/zhou.min", `{"display":"` + strings.Repeat("周", 65) + `"}`, 400, []string{"display:"}},
		{"disable", "admin", "PATCH", "/api/v1/users/zhou.min", `{"disabled":true}`, 200, []string{`"disabled":true`}},
		{"enable", "admin", "PATCH", "/api/v1/users/zhou.min", `{"disabled":false}`, 200, []string{`"disabled":false`}},
		{"no such user", "admin", "PATCH", "/api/v1/users/nobody", `{"disabled":true}`, 404, []string{"no user nobody"}},
		{"disable oneself", "admin", "PATCH", "/api/v1/users/chen.jing", `{"disabled":true}`, 409,
			[]string{"your own account", "自己"}},
		{"demote oneself", "admin", "PATCH", "/api/v1/users/chen.jing", `{"role":"manager"}`, 409, []string{"your own"}},
		{"the last enabled admin, by a token", "ops", "PATCH", "/api/v1/users/chen.jing", `{"disabled":true}`, 409,
			[]string{"last enabled admin", "最后一个"}},
		{"a second admin", "ops", "POST", "/api/v1/users", `{"name":"he.yun","role":"admin","password":"` + goodPW + `"}`, 201, nil},
		{"now the first may go", "ops", "PATCH", "/api/v1/users/chen.jing", `{"role":"manager"}`, 200, []string{`"role":"manager"`}},
		{"but not the second", "ops", "PATCH", "/api/v1/users/he.yun", `{"disabled":true}`, 409, []string{"last enabled admin"}},
		{"a new password", "ops", "POST", "/api/v1/users/zhao.lei/password", `{"password":"` + goodPW + `"}`, 200,
			[]string{`"name":"zhao.lei"`, `"changed_by":"token:ops"`}},
		{"a weak new password", "ops", "POST", "/api/v1/users/zhao.lei/password", `{"password":"zhao.lei-1234"}`, 400,
			[]string{"contain the user name"}},
		{"a generated new password", "ops", "POST", "/api/v1/users/zhao.lei/password", `{"generate":true}`, 200, []string{`"password":"`}},
		{"a password of nobody", "ops", "POST", "/api/v1/users/nobody/password", `{"generate":true}`, 404, nil},
		{"end a user's sessions", "ops", "POST", "/api/v1/users/wang.fang/end-sessions", "", 204, nil},
		{"end nobody's sessions", "ops", "POST", "/api/v1/users/nobody/end-sessions", "", 404, nil},
		{"the tokens", "ops", "GET", "/api/v1/tokens", "", 200,
			[]string{`{"tokens":[{"name":"ops","role":"admin","cameras":[]},{"name":"shift-lead","role":"manager","cameras":["ward-cam"]}]}`}},
		{"not for a manager", "shift-lead", "GET", "/api/v1/tokens", "", 403, nil},
	} {
		if st.as == "admin-no-csrf" {
			resp, _ := admin.do("POST", "/api/v1/users", `{"name":"sun.li","role":"inspector","generate":true}`, nil)
			if resp.StatusCode != 403 {
				t.Fatalf("%s: %d, want 403", st.name, resp.StatusCode)
			}
			continue
		}
		code, body := do(st)
		if code != st.code {
			t.Fatalf("%s: %s %s: %d %s, want %d", st.name, st.method, st.path, code, body, st.code)
		}
		for _, h := range st.has {
			if !strings.Contains(body, h) {
				t.Fatalf("%s: %s %s: %s\nwant it to contain %s", st.name, st.method, st.path, body, h)
			}
		}
		for _, secret := range []string{"password_hash", "$argon2id", sha256Hex(opsSecret)} {
			if strings.Contains(body, secret) {
				t.Fatalf("%s: the answer holds %s: %s", st.name, secret, body)
			}
		}
		if st.code == 400 || st.code == 404 || st.code == 409 {
			var e struct{ Error string }
			if json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Fatalf("%s: error %s: want {\"error\": \"...\"}", st.name, body)
			}
		}
	}

	// The file records who did what (the gateway's audit of the users
	// file names them), and generated passwords work and are not logged.
	for name, by := range map[string]string{"li.na": "chen.jing", "sun.li": "token:ops", "chen.jing": "token:ops", "zhou.min": "chen.jing"} {
		if u, err := s.users.Get(name); err != nil || u.ChangedBy != by {
			t.Errorf("%s: changed by %q (%v), want %q", name, u.ChangedBy, err, by)
		}
	}
	code, body := s.bearer(t, "POST", "/api/v1/users/zhao.lei/password", `{"generate":true}`, opsSecret)
	var ans userAnswer
	if err := json.Unmarshal([]byte(body), &ans); code != 200 || err != nil || ans.Password == nil || len(*ans.Password) != 16 {
		t.Fatalf("generated password: %d %s", code, body)
	}
	if resp, _ := s.browser(t).login("zhao.lei", *ans.Password); resp.StatusCode != 200 {
		t.Fatalf("login with the generated password: %d", resp.StatusCode)
	}
	if strings.Contains(s.log.String(), *ans.Password) {
		t.Fatal("the generated password is in the log")
	}
}

// Accounts administration without a users file: 404, as for the login.
func TestAccountsWithoutUsers(t *testing.T) {
	tok, err := httpapi.ParseToken("ops", "admin", sha256Hex(opsSecret))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{Tokens: []httpapi.Token{tok}, Gatherer: prometheus.NewRegistry()}))
	t.Cleanup(srv.Close)
	s := &loginServer{url: srv.URL}
	for _, r := range [][2]string{{"GET", "/api/v1/users"}, {"POST", "/api/v1/users"}, {"PATCH", "/api/v1/users/x"}, {"POST", "/api/v1/users/x/password"}, {"POST", "/api/v1/users/x/end-sessions"}} {
		if code, body := s.bearer(t, r[0], r[1], `{}`, opsSecret); code != 404 || !strings.Contains(body, "no console accounts") {
			t.Errorf("%s %s: %d %s, want 404", r[0], r[1], code, body)
		}
	}
	if code, body := s.bearer(t, "GET", "/api/v1/tokens", "", opsSecret); code != 200 || !strings.Contains(body, `"ops"`) {
		t.Errorf("tokens: %d %s", code, body)
	}
}

// An admin's change to a user's rights ends that user's sessions at once:
// the next request is refused, and a live update stream ends without
// waiting for its 15 s check; a change that changes nothing ends nothing.
func TestAccountChangesEndSessionsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		ends                     bool
	}{
		{"a new role", "PATCH", "/api/v1/users/wang.fang", `{"role":"inspector","cameras":[]}`, true},
		{"other cameras", "PATCH", "/api/v1/users/wang.fang", `{"cameras":["ward-cam"]}`, true},
		{"disabled", "PATCH", "/api/v1/users/wang.fang", `{"disabled":true}`, true},
		{"a new password", "POST", "/api/v1/users/wang.fang/password", `{"generate":true}`, true},
		{"sessions ended", "POST", "/api/v1/users/wang.fang/end-sessions", ``, true},
		{"the same role", "PATCH", "/api/v1/users/wang.fang", `{"role":"manager"}`, false},
		{"another user's role", "PATCH", "/api/v1/users/zhou.min", `{"role":"manager"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newAccountsServer(t)
			mgr := s.browser(t)
			mgr.login("wang.fang", managerPassword)
			ended := mgr.events()

			admin := s.browser(t)
			admin.login("chen.jing", adminPassword)
			if code, body := admin.send(tc.method, tc.path, tc.body); code/100 != 2 {
				t.Fatalf("%s %s: %d %s", tc.method, tc.path, code, body)
			}
			// Ending takes a moment; a stream that stays open is given less
			// time to end wrongly (it would do so at once, as the others).
			wait := 3 * time.Second
			if !tc.ends {
				wait = 300 * time.Millisecond
			}
			select {
			case <-ended:
				if !tc.ends {
					t.Fatal("the stream ended")
				}
			case <-time.After(wait):
				if tc.ends {
					t.Fatalf("the stream is still open %s after the change", wait)
				}
			}
			want := 200
			if tc.ends {
				want = 401
			}
			if got := mgr.status("GET", "/api/v1/session", false); got != want {
				t.Fatalf("the manager's next request: %d, want %d", got, want)
			}
		})
	}

	// Logged in again after a new role, the session has the new role.
	s := newAccountsServer(t)
	admin := s.browser(t)
	admin.login("chen.jing", adminPassword)
	if code, body := admin.send("PATCH", "/api/v1/users/wang.fang", `{"role":"inspector","cameras":[]}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	mgr := s.browser(t)
	if resp, body := mgr.login("wang.fang", managerPassword); resp.StatusCode != 200 || !strings.Contains(body, `"role":"inspector"`) {
		t.Fatalf("login after the change: %d %s", resp.StatusCode, body)
	}
	if got := mgr.status("POST", "/api/v1/alarms/smoke@dev:kitchen-smoke/ack", true); got != 403 {
		t.Fatalf("acknowledging as an inspector now: %d, want 403", got)
	}
}

// events opens the live update stream with the browser's cookie and
// returns a channel closed when the server ends it (after its snapshot).
func (b *browser) events() <-chan struct{} {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.s.url+"/api/v1/events", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b.t.Fatalf("events: %d", resp.StatusCode)
	}
	b.t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "event: snapshot" {
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
		}
	}()
	return done
}
