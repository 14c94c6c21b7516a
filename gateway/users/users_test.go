package users

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const goodPassword = "correct horse battery"

func TestHashVerify(t *testing.T) {
	h, err := HashPassword(goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q: want argon2id PHC with the documented parameters", h)
	}
	if ok, err := VerifyPassword(h, goodPassword); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, err := VerifyPassword(h, goodPassword+"x"); ok || err != nil {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	h2, _ := HashPassword(goodPassword)
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	// A hash that asks for absurd work, or is not argon2id, is refused
	// before any work is done.
	parts := strings.Split(h, "$")
	for _, bad := range []string{
		"", "plain", "$2a$10$abcdefghijklmnopqrstuv", // bcrypt
		strings.Replace(h, "m=19456", "m=4194304", 1),
		strings.Replace(h, "t=2", "t=1000", 1),
		strings.Replace(h, "p=1", "p=64", 1),
		strings.Replace(h, "v=19", "v=16", 1),
		strings.Join(append(parts[:4:4], "!!", parts[5]), "$"),
	} {
		if _, err := VerifyPassword(bad, goodPassword); !errors.Is(err, ErrBadHash) {
			t.Errorf("VerifyPassword(%q) = %v, want ErrBadHash", bad, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		name, pw string
		bad      string // a piece of the English message; "" = accepted
	}{
		{"zhang.wei", goodPassword, ""},
		{"zhang.wei", "我们的救助站夜里也安全", ""}, // 11 characters, Chinese
		{"zhang.wei", "short", "at least 10 characters"},
		{"zhang.wei", "我们的救助站安全", "at least 10 characters"}, // 8 characters, 24 bytes
		{"zhang.wei", strings.Repeat("ab", 129), "longer than 256 bytes"},
		{"zhang.wei", "my-ZHANG.WEI-pass", "contain the user name"},
		{"zhang.wei", "WoAiNi1314", "common password"},
		{"zhang.wei", "aaaaaaaaaaaa", "repeated"},
		{"zhang.wei", "abcdefghijklm", "repeated"},
		{"zhang.wei", "zyxwvutsrqp", "repeated"},
		{"zhang.wei", "bad\xffutf8 password", "UTF-8"},
	} {
		err := CheckPassword(c.name, c.pw)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("CheckPassword(%q) = %v, want accepted", c.pw, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("CheckPassword(%q) = %v, want an error about %q", c.pw, err, c.bad)
		case err != nil && !strings.Contains(err.Error(), " / "):
			t.Errorf("message %q: want Chinese and English", err)
		}
	}
	for range 20 {
		p, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 16 || strings.ContainsAny(p, "0O1lI") {
			t.Fatalf("generated %q: want 16 characters without look-alikes", p)
		}
		if err := CheckPassword("someone", p); err != nil {
			t.Fatalf("generated %q refused: %v", p, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"zhang.wei": true, "li_na-2": true, "ab": true, "a": false, "Zhang": false, "张伟": false,
		"-x": false, "x y": false, strings.Repeat("a", 33): false, "": false,
	} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func newFile(t *testing.T) *File {
	t.Helper()
	return Open(filepath.Join(t.TempDir(), "state", "users.json"))
}

func TestAddAuthenticateAndChange(t *testing.T) {
	f := newFile(t)
	if us, err := f.List(); err != nil || len(us) != 0 {
		t.Fatalf("no file yet: %v %v, want no users", us, err)
	}
	u := User{Name: "zhang.wei", Display: "张伟", Role: RoleSupervisor, Cameras: []string{"dorm2-hall"}}
	if err := f.Add(u, goodPassword); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(u, goodPassword); !errors.Is(err, ErrExists) {
		t.Fatalf("second add: %v, want ErrExists", err)
	}
	if err := f.Add(User{Name: "li.na", Role: "viewer"}, goodPassword); err == nil || !strings.Contains(err.Error(), "unknown role") {
		t.Fatalf("unknown role: %v", err)
	}
	if err := f.Add(User{Name: "li.na", Role: RoleInspector}, "123"); err == nil {
		t.Fatal("a weak password was accepted")
	}

	got, err := f.Authenticate("zhang.wei", goodPassword)
	if err != nil || got.Display != "张伟" || got.Role != RoleSupervisor || got.Epoch != 1 || len(got.Cameras) != 1 {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if _, err := f.Authenticate("zhang.wei", "wrong password!"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := f.Authenticate("nobody", goodPassword); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("unknown user: %v, want the same error as a wrong password", err)
	}

	// A new password: the old one no longer works, sessions end.
	if err := f.SetPassword("zhang.wei", "another fine passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate("zhang.wei", goodPassword); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("old password after passwd: %v", err)
	}
	got, err = f.Authenticate("zhang.wei", "another fine passphrase")
	if err != nil || got.Epoch != 2 {
		t.Fatalf("new password: %+v %v, want epoch 2", got, err)
	}

	// Disabled: refused even with the right password; enabled again.
	if err := f.SetDisabled("zhang.wei", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate("zhang.wei", "another fine passphrase"); !errors.Is(err, ErrDisabled) {
		t.Fatalf("disabled: %v", err)
	}
	if err := f.SetDisabled("zhang.wei", false); err != nil {
		t.Fatal(err)
	}
	if got, err = f.Authenticate("zhang.wei", "another fine passphrase"); err != nil || got.Epoch != 3 {
		t.Fatalf("enabled again: %+v %v, want epoch 3", got, err)
	}
	if err := f.SetGrants("zhang.wei", RoleManager, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ = f.Get("zhang.wei"); got.Role != RoleManager || len(got.Cameras) != 0 || got.Epoch != 4 {
		t.Fatalf("after SetGrants: %+v", got)
	}
	if err := f.EndSessions("nobody"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("end sessions of nobody: %v", err)
	}

	// Nobody else on the box may read the hashes.
	for path, want := range map[string]os.FileMode{f.Path(): 0o600, filepath.Dir(f.Path()): 0o700 | os.ModeDir} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	b, _ := os.ReadFile(f.Path())
	if strings.Contains(string(b), "another fine passphrase") {
		t.Fatal("the password is in the file")
	}
}

// Editors that race do not lose each other's changes: each takes the lock
// and re-reads the file.
func TestConcurrentEditsKeepEveryChange(t *testing.T) {
	f := newFile(t)
	const n = 6
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			g := Open(f.Path()) // its own lock descriptor, as another process has
			if err := g.Add(User{Name: fmt.Sprintf("user%d", i), Role: RoleInspector}, goodPassword); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	us, err := f.List()
	if err != nil || len(us) != n {
		t.Fatalf("%d users (%v), want %d", len(us), err, n)
	}
}

func TestFileErrors(t *testing.T) {
	f := newFile(t)
	if err := os.MkdirAll(filepath.Dir(f.Path()), 0o700); err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{
		`{`:                          "parse",
		`{"version":2,"users":[]}`:   "format version 2",
		`{"version":1,"users":[{}]}`: "",
	} {
		if err := os.WriteFile(f.Path(), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := f.List()
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("file %q: %v, want %q", body, err, want)
		}
	}
}
