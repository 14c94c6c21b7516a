package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shelterwatch/shelterwatch/gateway/users"
)

func TestUserCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", "users.json")
	run := func(stdin string, args ...string) (string, string, error) {
		return runCLI(t, stdin, append([]string{"user"}, append(args, "--file", file)...)...)
	}

	if out, _, err := run("", "list"); err != nil || !strings.Contains(out, "no users") {
		t.Fatalf("list with no file: %v %q", err, out)
	}
	// The first admin, with a password from stdin.
	if _, _, err := run("admin pass phrase 2026\n", "add", "chen.admin", "--role", "admin", "--display", "陈主任", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	// A supervisor with a generated password, printed once.
	out, _, err := run("", "add", "zhang.wei", "--role", "supervisor", "--cameras", "ward-cam,dorm2-hall", "--generate")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`password for zhang.wei / zhang.wei 的密码: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no generated password in %q", out)
	}
	f := users.Open(file)
	if u, err := f.Authenticate("zhang.wei", m[1]); err != nil || len(u.Cameras) != 2 {
		t.Fatalf("log in with the generated password: %+v %v", u, err)
	}
	// The change names who made it, for the audit log.
	if u, _ := f.Get("zhang.wei"); !strings.HasPrefix(u.ChangedBy, "cli") {
		t.Fatalf("changed_by %q, want the terminal's user", u.ChangedBy)
	}

	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"add", "li.na", "--role", "viewer", "--generate"}, "unknown role"},
		{"", []string{"add", "li.na", "--role", "inspector", "--cameras", "ward-cam", "--generate"}, "does not watch video"},
		{"short\n", []string{"add", "li.na", "--role", "inspector", "--password-stdin"}, "at least 10 characters"},
		{"", []string{"add", "Li Na", "--role", "inspector", "--generate"}, "not valid"},
		{"", []string{"add", "chen.admin", "--role", "admin", "--generate"}, "user exists"},
		{"", []string{"add", "li.na", "--role", "inspector"}, "no terminal"},
		{"", []string{"passwd", "nobody", "--generate"}, "no such user"},
		{"", []string{"disable", "nobody"}, "no such user"},
	} {
		_, _, err := run(c.stdin, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("user %v: %v, want an error about %q", c.args, err, c.want)
		}
	}
	if _, _, err := runCLI(t, "", "user", "list"); err == nil || !strings.Contains(err.Error(), "--config or --file") {
		t.Errorf("list without a file: %v", err)
	}

	// passwd ends sessions (the epoch rises); disable refuses the login.
	if _, _, err := run("a brand new passphrase\n", "passwd", "zhang.wei", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if u, err := f.Authenticate("zhang.wei", "a brand new passphrase"); err != nil || u.Epoch != 2 {
		t.Fatalf("after passwd: %+v %v", u, err)
	}
	if _, _, err := run("", "disable", "zhang.wei"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate("zhang.wei", "a brand new passphrase"); err == nil {
		t.Fatal("a disabled user logged in")
	}
	out, _, err = run("", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"chen.admin", "陈主任", "admin", "zhang.wei", "supervisor", "ward-cam,dorm2-hall", "disabled"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := run("", "enable", "zhang.wei"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate("zhang.wei", "a brand new passphrase"); err != nil {
		t.Fatalf("enabled user: %v", err)
	}
	b, _ := os.ReadFile(file)
	if strings.Contains(string(b), "admin pass phrase 2026") || strings.Contains(string(b), m[1]) {
		t.Fatal("a password is in the users file")
	}
}

// With --config, the file is the config's http.users_file, or users.json
// in alarms.dir.
func TestUserCommandFindsTheFileFromTheConfig(t *testing.T) {
	src, err := os.ReadFile("../../../configs/shelterwatch.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gw.yaml")
	// The sample's store is under /var/lib; keep this one in the test's
	// directory (relative paths are relative to the config file).
	src = []byte(strings.Replace(string(src), "dir: /var/lib/shelterwatch ", "dir: store ", 1))
	if !strings.Contains(string(src), "dir: store ") {
		t.Fatal("the sample config's store.dir line changed; update this test")
	}
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", "user", "add", "ops.admin", "--role", "admin", "--generate", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store-alarms", "users.json")); err != nil {
		t.Fatalf("users.json not in alarms.dir (store.dir + \"-alarms\"): %v", err)
	}
}
