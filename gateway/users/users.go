// Package users keeps the web console's local accounts: who may log in,
// with which role and which cameras, and their argon2id password hashes.
//
// The accounts live in one JSON file (0600, in a 0700 directory) that
// `shelter-gateway user` edits and the running gateway reads: a change is
// a read-modify-write under an exclusive lock on a lock file beside it,
// written to a temporary file, synced and renamed over the old one, so a
// reader never sees half a file and two editors never lose each other's
// change. There is no default account and no default password.
package users

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Role is what a console user may do; the HTTP API enforces it.
type Role string

// Roles. A role is a set of permissions, not a rank: a supervisor watches
// video an inspector may not, an inspector reads history a supervisor
// does not need.
const (
	// RoleAdmin manages users and tokens and reloads rules.
	RoleAdmin Role = "admin"
	// RoleManager acknowledges, resets and silences alarms and sees
	// everything in the facility.
	RoleManager Role = "manager"
	// RoleSupervisor reads alarms and watches the cameras granted to
	// them, with those cameras' viewing audit.
	RoleSupervisor Role = "supervisor"
	// RoleInspector reads history, availability, reports and the audit
	// log; no video.
	RoleInspector Role = "inspector"
)

// Roles lists every role, for validation and help texts.
var Roles = []Role{RoleAdmin, RoleManager, RoleSupervisor, RoleInspector}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	if slices.Contains(Roles, Role(s)) {
		return Role(s), nil
	}
	return "", fmt.Errorf("角色 %q 未知（admin、manager、supervisor、inspector）/ unknown role %q (admin, manager, supervisor or inspector)", s, s)
}

// User is one console account.
type User struct {
	// Name is the login id (CheckName).
	Name string `json:"name"`
	// Display is the person's name as the console shows it (张伟).
	Display string `json:"display,omitempty"`
	Role    Role   `json:"role"`
	// Cameras this user may watch ("*": all). Only supervisors and
	// managers watch video; none by default.
	Cameras  []string `json:"cameras,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
	// PasswordHash is the argon2id PHC string (HashPassword).
	PasswordHash    string    `json:"password_hash"`
	PasswordChanged time.Time `json:"password_changed"`
	Created         time.Time `json:"created"`
	// Epoch is raised by a new password, disabling and "log out
	// everywhere": a session started under an older epoch is over.
	Epoch uint64 `json:"epoch"`
	// ChangedBy says who made the last change (File.As): the audit log
	// names them.
	ChangedBy string `json:"changed_by,omitempty"`
}

// Errors callers tell apart.
var (
	ErrNoUser      = errors.New("users: no such user")
	ErrExists      = errors.New("users: user exists")
	ErrDisabled    = errors.New("users: user disabled")
	ErrBadPassword = errors.New("users: wrong password")
)

type fileFormat struct {
	Version int    `json:"version"`
	Users   []User `json:"users"`
}

const formatVersion = 1

// File is the users file at a path.
type File struct {
	path string
	now  func() time.Time
	by   string // recorded as ChangedBy by this File's edits

	// The last read, kept while the file's size and time stay the same:
	// the API looks a session's user up on every request.
	mu     sync.Mutex
	cached []User
	stamp  fileStamp
}

type fileStamp struct {
	size int64
	mod  time.Time
	ino  uint64
}

// Open returns the users file at path (which need not exist yet: no file
// is no users).
func Open(path string) *File { return &File{path: path, now: time.Now} }

// As returns the file for edits made by who ("cli:root", an admin's
// name): each edited user records it as ChangedBy.
func (f *File) As(who string) *File { return &File{path: f.path, now: f.now, by: who} }

// Path is the file's path.
func (f *File) Path() string { return f.path }

// List returns every user, sorted by name.
func (f *File) List() ([]User, error) {
	return f.read()
}

// Get returns one user.
func (f *File) Get(name string) (User, error) {
	us, err := f.read()
	if err != nil {
		return User{}, err
	}
	for _, u := range us {
		if u.Name == name {
			return u, nil
		}
	}
	return User{}, fmt.Errorf("%w: %s", ErrNoUser, name)
}

// Add creates a user with password (checked by CheckPassword).
func (f *File) Add(u User, password string) error {
	if err := CheckName(u.Name); err != nil {
		return err
	}
	if _, err := ParseRole(string(u.Role)); err != nil {
		return err
	}
	if err := CheckPassword(u.Name, password); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return f.update(func(us []User) ([]User, error) {
		for _, o := range us {
			if o.Name == u.Name {
				return nil, fmt.Errorf("%w: %s", ErrExists, u.Name)
			}
		}
		now := f.now().UTC()
		u.PasswordHash, u.PasswordChanged, u.Created, u.Epoch, u.ChangedBy = hash, now, now, 1, f.by
		return append(us, u), nil
	})
}

// SetPassword gives a user a new password and ends their sessions.
func (f *File) SetPassword(name, password string) error {
	if err := CheckPassword(name, password); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return f.change(name, func(u *User) {
		u.PasswordHash, u.PasswordChanged = hash, f.now().UTC()
		u.Epoch++
	})
}

// SetDisabled disables (ending their sessions) or enables a user.
func (f *File) SetDisabled(name string, disabled bool) error {
	return f.change(name, func(u *User) {
		if disabled && !u.Disabled {
			u.Epoch++
		}
		u.Disabled = disabled
	})
}

// EndSessions ends every session of a user ("log out everywhere").
func (f *File) EndSessions(name string) error {
	return f.change(name, func(u *User) { u.Epoch++ })
}

// SetGrants changes a user's role and cameras, ending their sessions so
// that none goes on with the old rights.
func (f *File) SetGrants(name string, role Role, cameras []string) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	return f.change(name, func(u *User) {
		u.Role, u.Cameras = role, slices.Clone(cameras)
		u.Epoch++
	})
}

// SetDisplay changes the name the console shows for a user. It changes no
// right, so sessions go on.
func (f *File) SetDisplay(name, display string) error {
	return f.change(name, func(u *User) { u.Display = display })
}

// Authenticate checks a login. A missing user costs the same hash as a
// present one, so the time taken does not tell whether a name exists.
func (f *File) Authenticate(name, password string) (User, error) {
	if len(password) > MaxPasswordBytes {
		return User{}, ErrBadPassword
	}
	u, err := f.Get(name)
	if errors.Is(err, ErrNoUser) {
		_, _ = VerifyPassword(dummyHash(), password)
		return User{}, ErrBadPassword
	}
	if err != nil {
		return User{}, err
	}
	ok, err := VerifyPassword(u.PasswordHash, password)
	if err != nil {
		return User{}, fmt.Errorf("users: %s: %w", name, err)
	}
	if !ok {
		return User{}, ErrBadPassword
	}
	if u.Disabled {
		return User{}, ErrDisabled
	}
	return u, nil
}

// dummyHash is checked for names that do not exist (see Authenticate).
// It is made at the first such login, not at start: an argon2id hash
// takes about 90 ms and 19 MiB, which every start of the gateway and of
// each command would otherwise pay (the heap's peak at start was this
// hash).
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("not a password of anyone")
	if err != nil {
		panic(err)
	}
	return h
})

func (f *File) change(name string, edit func(*User)) error {
	return f.update(func(us []User) ([]User, error) {
		for i := range us {
			if us[i].Name == name {
				edit(&us[i])
				us[i].ChangedBy = f.by
				return us, nil
			}
		}
		return nil, fmt.Errorf("%w: %s", ErrNoUser, name)
	})
}

func (f *File) read() ([]User, error) {
	fi, err := os.Stat(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("users: read %s: %w", f.path, err)
	}
	st := fileStamp{size: fi.Size(), mod: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	f.mu.Lock()
	if f.cached != nil && f.stamp == st {
		us := slices.Clone(f.cached)
		f.mu.Unlock()
		return us, nil
	}
	f.mu.Unlock()
	us, err := f.readFile()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.cached, f.stamp = us, st
	f.mu.Unlock()
	return slices.Clone(us), nil
}

func (f *File) readFile() ([]User, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("users: read %s: %w", f.path, err)
	}
	var ff fileFormat
	if err := json.Unmarshal(b, &ff); err != nil {
		return nil, fmt.Errorf("users: parse %s: %w", f.path, err)
	}
	if ff.Version != formatVersion {
		return nil, fmt.Errorf("users: %s: format version %d, this gateway reads %d", f.path, ff.Version, formatVersion)
	}
	sort.Slice(ff.Users, func(i, j int) bool { return ff.Users[i].Name < ff.Users[j].Name })
	return ff.Users, nil
}

// update runs edit on the users under the file's lock and writes the
// result atomically.
func (f *File) update(edit func([]User) ([]User, error)) error {
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("users: create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(f.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("users: lock %s: %w", f.path, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("users: lock %s: %w", f.path, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	us, err := f.read()
	if err != nil {
		return err
	}
	if us, err = edit(us); err != nil {
		return err
	}
	sort.Slice(us, func(i, j int) bool { return us[i].Name < us[j].Name })
	b, err := json.MarshalIndent(fileFormat{Version: formatVersion, Users: us}, "", "  ")
	if err != nil {
		return fmt.Errorf("users: encode: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".users-*.tmp")
	if err != nil {
		return fmt.Errorf("users: write %s: %w", f.path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("users: write %s: %w", f.path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("users: write %s: %w", f.path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("users: sync %s: %w", f.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("users: write %s: %w", f.path, err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("users: replace %s: %w", f.path, err)
	}
	// The rename is durable only once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
