package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppendRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	l, err := Open(path, Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	entries := []Entry{
		{Action: "fired", Alarm: &Alarm{AlarmID: "smoke@dev:k1", Seq: 1, Rule: "smoke", Severity: "critical"}},
		{Action: ActionVideoViewStarted, By: "supervisor", Video: &Video{Camera: "ward", Session: "s1", Remote: "10.0.0.9:5000", Started: t0}},
		{Action: "acknowledged", By: "manager", Comment: "checked", Alarm: &Alarm{AlarmID: "smoke@dev:k1", Seq: 1, Rule: "smoke"}},
		{Action: ActionRulesReloaded, Detail: "14 rules"},
		{Action: ActionVideoViewEnded, By: "supervisor", Detail: "viewer left", Video: &Video{Camera: "ward", Session: "s1", Bytes: 4096}},
	}
	if err := l.Append(entries...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		f     Filter
		limit int
		want  []string // actions, newest first
	}{
		{"all", Filter{}, 10, []string{ActionVideoViewEnded, ActionRulesReloaded, "acknowledged", ActionVideoViewStarted, "fired"}},
		{"newest two", Filter{}, 2, []string{ActionVideoViewEnded, ActionRulesReloaded}},
		{"one alarm", Filter{AlarmID: "smoke@dev:k1"}, 10, []string{"acknowledged", "fired"}},
		{"one camera", Filter{Camera: "ward"}, 10, []string{ActionVideoViewEnded, ActionVideoViewStarted}},
		{"one action", Filter{Action: "fired"}, 10, []string{"fired"}},
		{"no such alarm", Filter{AlarmID: "x"}, 10, nil},
		{"limit zero", Filter{}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.Read(tc.f, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var acts []string
			for _, e := range got {
				acts = append(acts, e.Action)
			}
			if strings.Join(acts, ",") != strings.Join(tc.want, ",") {
				t.Errorf("Read(%+v, %d) = %v; want %v", tc.f, tc.limit, acts, tc.want)
			}
		})
	}
	got, _ := l.Read(Filter{Action: ActionVideoViewEnded}, 1)
	if len(got) != 1 || got[0].Video == nil || got[0].Video.Bytes != 4096 || got[0].Alarm != nil || !got[0].Time.Equal(t0) {
		t.Fatalf("video entry read back as %+v", got)
	}
}

// The file is flat JSON Lines: a domain's fields sit beside the common
// ones, so existing tools (grep, jq) and older entries keep working.
func TestFlatOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(Entry{Action: "acknowledged", By: "m", Alarm: &Alarm{AlarmID: "a@gateway", Seq: 3}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(path)
	line := strings.TrimSpace(string(b))
	for _, want := range []string{`"action":"acknowledged"`, `"alarm_id":"a@gateway"`, `"seq":3`} {
		if !strings.Contains(line, want) {
			t.Errorf("line %s lacks %s", line, want)
		}
	}
	if strings.Contains(line, `"camera"`) || strings.Contains(line, `"Alarm"`) {
		t.Errorf("line %s carries fields of another domain or a nested object", line)
	}
	if err := l.Append(Entry{Action: "x"}); err == nil {
		t.Error("append after Close succeeded")
	}
}

func TestTornLastLineSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append(Entry{Action: "fired", Alarm: &Alarm{AlarmID: "a@gateway"}}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026-`)
	f.Close()
	got, err := l.Read(Filter{}, 10)
	if err != nil || len(got) != 1 || got[0].AlarmID() != "a@gateway" {
		t.Fatalf("Read = %+v, %v; want the one whole entry", got, err)
	}
}

func TestOnWriteReportsEveryOutcome(t *testing.T) {
	dir := t.TempDir()
	var outcomes []error
	l, err := Open(filepath.Join(dir, "audit.jsonl"), Options{OnWrite: func(err error) { outcomes = append(outcomes, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(Entry{Action: "fired"}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := l.Append(Entry{Action: "acknowledged"}); err == nil {
		t.Fatal("append to a closed log succeeded")
	}
	if len(outcomes) != 2 || outcomes[0] != nil || outcomes[1] == nil {
		t.Fatalf("outcomes %v; want success then failure", outcomes)
	}
}

// Readers never hold up appends, and never see half an entry while
// appends go on.
func TestReadWhileAppending(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "audit.jsonl"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	readWhileAppending(t, l, 500, 300, 50)
	if es, _ := l.Read(Filter{}, 1); len(es) != 1 || es[0].Alarm.Seq != 500 {
		t.Fatalf("last entry %+v, want seq 500", es)
	}
}
