package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shelterwatch/shelterwatch/gateway/users"
)

// Accounts administration (PermUsers: admins): the console's users and a
// read-only list of the API tokens.
//
// Every edit goes through Users.As(<the admin>), so the user records who
// changed it and the gateway's audit of the users file names them; this
// package writes no audit entry of its own for it. An edit that ends a
// user's sessions (a new password, role or cameras, disabled, "end
// sessions") also ends them here at once, live update streams included.
// Checks that span users (the last enabled admin) and the edit that
// follows run under api.accountsMu, so two admins cannot each disable the
// other; `shelter-gateway user` at the same time is not covered (it is
// root at the console).

// maxDisplayChars bounds a display name.
const maxDisplayChars = 64

type userJSON struct {
	Name            string    `json:"name"`
	Display         string    `json:"display"`
	Role            string    `json:"role"`
	Cameras         []string  `json:"cameras"`
	Disabled        bool      `json:"disabled"`
	Created         time.Time `json:"created"`
	PasswordChanged time.Time `json:"password_changed"`
	ChangedBy       string    `json:"changed_by"`
}

func userOf(u users.User) userJSON {
	cams := u.Cameras
	if cams == nil {
		cams = []string{}
	}
	return userJSON{Name: u.Name, Display: u.Display, Role: string(u.Role), Cameras: cams, Disabled: u.Disabled,
		Created: u.Created, PasswordChanged: u.PasswordChanged, ChangedBy: u.ChangedBy}
}

// userAnswer is the answer to an edit: the user as it is now, and a
// generated password, shown this once.
type userAnswer struct {
	User     userJSON `json:"user"`
	Password string   `json:"password,omitempty"`
}

// Messages of refused account edits, in Chinese and English as the users
// package words its own.
var (
	errSelf      = errors.New("不能停用自己的账号或取消自己的管理员角色 / you cannot disable your own account or take away your own admin role")
	errLastAdmin = errors.New("这是最后一个启用的管理员账号，不能停用或改为其他角色 / this is the last enabled admin: it cannot be disabled or given another role")
	errNoConsole = errors.New("no console accounts on this gateway")
)

// editor is who an edit is recorded as: a session's user, or the token.
func editor(tok *Token) string {
	if tok.session {
		return tok.Name
	}
	return "token:" + tok.Name
}

func (a *api) usersList(w http.ResponseWriter, r *http.Request) {
	if a.opts.Users == nil {
		httpError(w, http.StatusNotFound, errNoConsole.Error())
		return
	}
	us, err := a.opts.Users.List()
	if err != nil {
		a.accountsFailed(w, "list users", err)
		return
	}
	out := make([]userJSON, 0, len(us))
	for _, u := range us {
		out = append(out, userOf(u))
	}
	writeJSON(w, map[string]any{"users": out})
}

type newUserBody struct {
	Name     string   `json:"name"`
	Display  string   `json:"display"`
	Role     string   `json:"role"`
	Cameras  []string `json:"cameras"`
	Password string   `json:"password"`
	Generate bool     `json:"generate"`
}

// userAdd creates a user with the given password or a generated one.
func (a *api) userAdd(w http.ResponseWriter, r *http.Request) {
	if a.opts.Users == nil {
		httpError(w, http.StatusNotFound, errNoConsole.Error())
		return
	}
	var b newUserBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	role, err := users.ParseRole(b.Role)
	if err == nil {
		err = users.CheckName(b.Name)
	}
	if err == nil {
		err = checkDisplay(b.Display)
	}
	if err == nil {
		err = a.checkCameras(role, b.Cameras)
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	password, generated, err := passwordOf(b.Name, b.Password, b.Generate)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := a.opts.Users.As(editor(tokenOf(r.Context())))
	err = f.Add(users.User{Name: b.Name, Display: b.Display, Role: role, Cameras: b.Cameras}, password)
	switch {
	case errors.Is(err, users.ErrExists):
		httpError(w, http.StatusConflict, fmt.Sprintf("用户 %s 已存在 / user %s exists", b.Name, b.Name))
		return
	case err != nil:
		a.accountsFailed(w, "add user "+b.Name, err)
		return
	}
	u, err := f.Get(b.Name)
	if err != nil {
		a.accountsFailed(w, "add user "+b.Name, err)
		return
	}
	a.opts.Logger.Info("httpapi: user added", "user", b.Name, "role", role, "by", editor(tokenOf(r.Context())))
	w.Header().Set("Location", "/api/v1/users/"+b.Name)
	writeJSONStatus(w, http.StatusCreated, userAnswer{User: userOf(u), Password: generated})
}

type userPatchBody struct {
	Display  *string   `json:"display"`
	Role     *string   `json:"role"`
	Cameras  *[]string `json:"cameras"`
	Disabled *bool     `json:"disabled"`
}

// userPatch changes a user's display name, role, cameras or disabled
// state; a change of rights ends the user's sessions, so nobody goes on
// with the old ones.
func (a *api) userPatch(w http.ResponseWriter, r *http.Request) {
	if a.opts.Users == nil {
		httpError(w, http.StatusNotFound, errNoConsole.Error())
		return
	}
	var b userPatchBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if b.Display != nil {
		if err := checkDisplay(*b.Display); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	name, tok := r.PathValue("name"), tokenOf(r.Context())
	a.accountsMu.Lock()
	defer a.accountsMu.Unlock()
	u, err := a.opts.Users.Get(name)
	if err != nil {
		a.noUser(w, name, err)
		return
	}
	role, cameras := u.Role, u.Cameras
	if b.Role != nil {
		if role, err = users.ParseRole(*b.Role); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if b.Cameras != nil {
		cameras = *b.Cameras
	}
	grants := role != u.Role || !slices.Equal(cameras, u.Cameras)
	if grants {
		if err := a.checkCameras(role, cameras); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	disable := b.Disabled != nil && *b.Disabled && !u.Disabled
	enable := b.Disabled != nil && !*b.Disabled && u.Disabled
	if u.Role == users.RoleAdmin && !u.Disabled && (disable || role != users.RoleAdmin) {
		if err := a.mayLoseAdmin(tok, name); err != nil {
			httpError(w, http.StatusConflict, err.Error())
			return
		}
	}
	f := a.opts.Users.As(editor(tok))
	if b.Display != nil && *b.Display != u.Display {
		if err := f.SetDisplay(name, *b.Display); err != nil {
			a.noUser(w, name, err)
			return
		}
	}
	if grants {
		if err := f.SetGrants(name, role, cameras); err != nil {
			a.noUser(w, name, err)
			return
		}
	}
	if disable || enable {
		if err := f.SetDisabled(name, disable); err != nil {
			a.noUser(w, name, err)
			return
		}
	}
	if grants || disable {
		a.sessions.endUser(name)
	}
	if u, err = f.Get(name); err != nil {
		a.noUser(w, name, err)
		return
	}
	a.opts.Logger.Info("httpapi: user changed", "user", name, "role", u.Role, "disabled", u.Disabled, "by", editor(tok))
	writeJSON(w, userAnswer{User: userOf(u)})
}

// mayLoseAdmin says why the enabled admin name may not stop being one:
// the caller is that admin, or the last enabled one.
func (a *api) mayLoseAdmin(tok *Token, name string) error {
	if tok.session && tok.Name == name {
		return errSelf
	}
	us, err := a.opts.Users.List()
	if err != nil {
		return fmt.Errorf("could not read the users: %w", err)
	}
	for _, o := range us {
		if o.Name != name && o.Role == users.RoleAdmin && !o.Disabled {
			return nil
		}
	}
	return errLastAdmin
}

type passwordBody struct {
	Password string `json:"password"`
	Generate bool   `json:"generate"`
}

// userPassword sets a user's password (given or generated), ending the
// user's sessions.
func (a *api) userPassword(w http.ResponseWriter, r *http.Request) {
	if a.opts.Users == nil {
		httpError(w, http.StatusNotFound, errNoConsole.Error())
		return
	}
	var b passwordBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	name, tok := r.PathValue("name"), tokenOf(r.Context())
	if _, err := a.opts.Users.Get(name); err != nil {
		a.noUser(w, name, err)
		return
	}
	password, generated, err := passwordOf(name, b.Password, b.Generate)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := a.opts.Users.As(editor(tok))
	if err := f.SetPassword(name, password); err != nil {
		a.noUser(w, name, err)
		return
	}
	a.sessions.endUser(name)
	u, err := f.Get(name)
	if err != nil {
		a.noUser(w, name, err)
		return
	}
	a.opts.Logger.Info("httpapi: password set", "user", name, "generated", generated != "", "by", editor(tok))
	writeJSON(w, userAnswer{User: userOf(u), Password: generated})
}

// userEndSessions ends every session of a user, on every device.
func (a *api) userEndSessions(w http.ResponseWriter, r *http.Request) {
	if a.opts.Users == nil {
		httpError(w, http.StatusNotFound, errNoConsole.Error())
		return
	}
	name, tok := r.PathValue("name"), tokenOf(r.Context())
	if err := a.opts.Users.As(editor(tok)).EndSessions(name); err != nil {
		a.noUser(w, name, err)
		return
	}
	a.sessions.endUser(name)
	a.opts.Logger.Info("httpapi: sessions ended", "user", name, "by", editor(tok))
	w.WriteHeader(http.StatusNoContent)
}

// passwordOf is the password of a body: the one given (checked), or a
// generated one (also returned as generated) when generate is set.
func passwordOf(name, password string, generate bool) (pw, generated string, err error) {
	switch {
	case generate && password != "":
		return "", "", errors.New(`password: give a password or "generate": true, not both`)
	case generate:
		// A generated password may, rarely, contain a short user name.
		for range 20 {
			if pw, err = users.GeneratePassword(); err != nil {
				return "", "", err
			}
			if users.CheckPassword(name, pw) == nil {
				return pw, pw, nil
			}
		}
		return "", "", errors.New("password: could not generate one for this user name; give one")
	case password == "":
		return "", "", errors.New(`password: give a password or "generate": true`)
	}
	if err := users.CheckPassword(name, password); err != nil {
		return "", "", fmt.Errorf("password: %w", err)
	}
	return password, "", nil
}

func checkDisplay(s string) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxDisplayChars || slices.ContainsFunc([]rune(s), unicode.IsControl) {
		return fmt.Errorf("display: 显示名称最多 %d 个字符，且不能含控制字符 / at most %d characters, without control characters", maxDisplayChars, maxDisplayChars)
	}
	return nil
}

// checkCameras checks a camera grant as `shelter-gateway user add` does
// (only supervisors and managers watch video) and, when the gateway has
// cameras, that each is one of them: a typo would grant nothing.
func (a *api) checkCameras(role users.Role, cameras []string) error {
	if len(cameras) > 0 && role != users.RoleSupervisor && role != users.RoleManager {
		return fmt.Errorf("cameras: %s 角色不能观看视频 / a %s does not watch video: cameras are for supervisors and managers", role, role)
	}
	var known []string
	if a.opts.Video != nil && a.opts.Video.Cameras != nil {
		for _, c := range a.opts.Video.Cameras() {
			known = append(known, c.ID)
		}
	}
	for _, c := range cameras {
		if c == "" || (known != nil && c != "*" && !slices.Contains(known, c)) {
			return fmt.Errorf("cameras: 没有摄像头 %q / no camera %q", c, c)
		}
	}
	return nil
}

// noUser answers an edit's error: 404 for a user that does not exist, a
// password the users package refuses as 400, else 500.
func (a *api) noUser(w http.ResponseWriter, name string, err error) {
	if errors.Is(err, users.ErrNoUser) {
		httpError(w, http.StatusNotFound, fmt.Sprintf("没有用户 %s / no user %s", name, name))
		return
	}
	a.accountsFailed(w, "edit user "+name, err)
}

func (a *api) accountsFailed(w http.ResponseWriter, what string, err error) {
	httpError(w, http.StatusInternalServerError, "could not "+what)
	a.opts.Logger.Error("httpapi: "+what, "err", err)
}

type tokenJSON struct {
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Cameras []string `json:"cameras"`
}

// tokens lists the configured API tokens (never their digests): which
// machines have access, and to what.
func (a *api) tokens(w http.ResponseWriter, r *http.Request) {
	out := make([]tokenJSON, 0, len(a.opts.Tokens))
	for _, t := range a.opts.Tokens {
		cams := t.Cameras
		if cams == nil {
			cams = []string{}
		}
		out = append(out, tokenJSON{Name: t.Name, Role: t.Role.String(), Cameras: cams})
	}
	writeJSON(w, map[string]any{"tokens": out})
}
