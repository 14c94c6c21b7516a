package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
)

// accountsCheckEvery is how often the users file is looked at for changes.
const accountsCheckEvery = 2 * time.Second

// watchAccounts writes every change to the console's accounts to the
// audit log: `shelter-gateway user` edits the users file, and the gateway,
// the audit log's one writer, records what changed (a new user, a role or
// cameras, disabled or enabled, a new password, sessions ended). A change
// the audit log refuses is tried again at the next look.
func watchAccounts(ctx context.Context, f *users.File, appendAudit func(...audit.Entry) error, log *slog.Logger, every time.Duration) error {
	limiter := ratelog.New(time.Minute)
	prev, err := f.List()
	if err != nil {
		log.Error("accounts: cannot read the users file; changes are audited once it reads", "path", f.Path(), "err", err)
		prev = nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := f.List()
		if err != nil {
			if n, ok := limiter.AllowCount("read"); ok {
				log.Error("accounts: cannot read the users file", "path", f.Path(), "err", err, "suppressed_since_last", n)
			}
			continue
		}
		entries := accountChanges(prev, cur, time.Now())
		if len(entries) == 0 {
			prev = cur
			continue
		}
		if err := appendAudit(entries...); err != nil {
			if n, ok := limiter.AllowCount("audit"); ok {
				log.Error("accounts: the audit log refused account changes; trying again", "changes", len(entries), "err", err, "suppressed_since_last", n)
			}
			continue
		}
		prev = cur
	}
}

// accountChanges lists what changed from prev to cur as audit entries.
func accountChanges(prev, cur []users.User, now time.Time) []audit.Entry {
	var out []audit.Entry
	var by string
	add := func(action, user, detail string) {
		out = append(out, audit.Entry{Time: now, Action: action, By: by, Detail: detail, Account: &audit.Account{User: user}})
	}
	// who made a user's change: the File.As of the edit, or else the
	// file (an edit by hand).
	who := func(u users.User) string {
		if u.ChangedBy != "" {
			return u.ChangedBy
		}
		return "users file"
	}
	old := map[string]users.User{}
	for _, u := range prev {
		old[u.Name] = u
	}
	seen := map[string]bool{}
	for _, u := range cur {
		seen[u.Name] = true
		by = who(u)
		o, ok := old[u.Name]
		if !ok {
			add(audit.ActionUserAdded, u.Name, "role "+string(u.Role)+", cameras "+cameraList(u.Cameras))
			continue
		}
		var changed []string
		if o.Role != u.Role {
			changed = append(changed, fmt.Sprintf("role %s → %s", o.Role, u.Role))
		}
		if !slices.Equal(o.Cameras, u.Cameras) {
			changed = append(changed, fmt.Sprintf("cameras %s → %s", cameraList(o.Cameras), cameraList(u.Cameras)))
		}
		if o.Display != u.Display {
			changed = append(changed, fmt.Sprintf("display name %q → %q", o.Display, u.Display))
		}
		if len(changed) > 0 {
			add(audit.ActionUserChanged, u.Name, strings.Join(changed, "; "))
		}
		switch {
		case !o.Disabled && u.Disabled:
			add(audit.ActionUserDisabled, u.Name, "")
		case o.Disabled && !u.Disabled:
			add(audit.ActionUserEnabled, u.Name, "")
		}
		if o.PasswordHash != u.PasswordHash {
			add(audit.ActionPasswordChanged, u.Name, "")
		} else if o.Epoch != u.Epoch && len(changed) == 0 && o.Disabled == u.Disabled {
			add(audit.ActionSessionsEnded, u.Name, "")
		}
	}
	for _, u := range prev {
		if !seen[u.Name] {
			by = "users file"
			add(audit.ActionUserRemoved, u.Name, "")
		}
	}
	return out
}

func cameraList(cs []string) string {
	if len(cs) == 0 {
		return "none"
	}
	return strings.Join(cs, ",")
}
