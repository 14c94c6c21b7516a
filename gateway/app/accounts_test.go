package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// Every change `shelter-gateway user` makes to the users file reaches the
// audit log, written by the gateway.
func TestAccountChangesAreAudited(t *testing.T) {
	dir := t.TempDir()
	f := users.Open(filepath.Join(dir, "users.json")).As("cli:operator")
	if err := f.Add(users.User{Name: "chen.admin", Role: users.RoleAdmin}, "first admin passphrase"); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(dir, audit.FileName), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- watchAccounts(ctx, f, l.Append, log, 20*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	// The watch's first view has the admin already there: not a change.
	time.Sleep(100 * time.Millisecond)

	steps := []struct {
		do   func() error
		want string
	}{
		{func() error {
			return f.Add(users.User{Name: "zhang.wei", Role: users.RoleSupervisor, Cameras: []string{"ward-cam"}}, "supervisor passphrase")
		}, "user_added zhang.wei role supervisor, cameras ward-cam"},
		{func() error { return f.SetGrants("zhang.wei", users.RoleManager, []string{"*"}) },
			"user_changed zhang.wei role supervisor → manager; cameras ward-cam → *"},
		{func() error { return f.SetPassword("zhang.wei", "another passphrase") }, "password_changed zhang.wei "},
		{func() error { return f.SetDisabled("zhang.wei", true) }, "user_disabled zhang.wei "},
		{func() error { return f.SetDisabled("zhang.wei", false) }, "user_enabled zhang.wei "},
		{func() error { return f.EndSessions("zhang.wei") }, "sessions_ended zhang.wei "},
	}
	audited := func() []string {
		entries, err := l.Read(audit.Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range slices.Backward(entries) {
			if e.Account != nil {
				if e.By != "cli:operator" {
					t.Errorf("entry %s by %q, want the editor cli:operator", e.Action, e.By)
				}
				out = append(out, e.Action+" "+e.Account.User+" "+e.Detail)
			}
		}
		return out
	}
	// One change at a time, each seen before the next: two within one
	// look would be one change (disabled and enabled again is none).
	var want, got []string
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
		want = append(want, st.want)
		testpeer.WaitFor(t, "in the audit log: "+st.want, 10*time.Second, func() bool {
			got = audited()
			return len(got) > i
		})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audited\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(want, "\n "))
	}
}
