package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shelterwatch/shelterwatch/internal/audit"
)

// writeAuditLog writes n alarm entries through the real log, rotating
// every few kilobytes, and returns the files oldest first.
func writeAuditLog(t *testing.T, dir string, n int, keep int) []string {
	t.Helper()
	path := filepath.Join(dir, audit.FileName)
	l, err := audit.Open(path, audit.Options{RotateBytes: 4096, Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := l.Append(audit.Entry{Action: "acknowledged", By: "shift-lead", Comment: "checked the kitchen",
			Alarm: &audit.Alarm{AlarmID: "smoke@dev:kitchen-smoke", Seq: uint64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "audit.*.jsonl"))
	return append(files, path)
}

func TestAuditVerifyCommand(t *testing.T) {
	t.Run("an intact log", func(t *testing.T) {
		dir := t.TempDir()
		files := writeAuditLog(t, dir, 100, 0)
		out, _, err := runCLI(t, "", "audit", "verify", "--dir", dir)
		if err != nil {
			t.Fatalf("verify of an intact log: %v\n%s", err, out)
		}
		for _, want := range []string{fmt.Sprintf("files: %d", len(files)), "entries checked: 100", "the log's first entry", "head: ", "ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("a flipped byte", func(t *testing.T) {
		dir := t.TempDir()
		files := writeAuditLog(t, dir, 100, 0)
		// A manager's comment changed after the fact, in line 5 of the
		// second file: same length, still valid JSON.
		victim := files[1]
		b, err := os.ReadFile(victim)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(b, []byte("\n"))
		i := bytes.Index(lines[4], []byte("kitchen"))
		lines[4][i] = 'b'
		if err := os.WriteFile(victim, bytes.Join(lines, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCLI(t, "", "audit", "verify", "--dir", dir)
		if err == nil {
			t.Fatalf("verify passed a changed log:\n%s", out)
		}
		want := fmt.Sprintf("BROKEN at %s:6: ", victim)
		if !strings.Contains(out, want) || !strings.Contains(out, "of line 5: that line was changed") {
			t.Fatalf("output lacks %q and the changed line 5:\n%s", want, out)
		}
	})
	t.Run("old segments deleted by retention", func(t *testing.T) {
		dir := t.TempDir()
		files := writeAuditLog(t, dir, 200, 3)
		out, _, err := runCLI(t, "", "audit", "verify", "--dir", dir)
		if err != nil {
			t.Fatalf("verify after retention: %v\n%s", err, out)
		}
		if !strings.Contains(out, "deleted by retention") || !strings.Contains(out, files[0]) {
			t.Fatalf("output does not name the oldest segment left as the anchor:\n%s", out)
		}
	})
	t.Run("from the config's alarms.dir", func(t *testing.T) {
		dir := t.TempDir()
		sample, err := os.ReadFile("../../../configs/shelterwatch.example.yaml")
		if err != nil {
			t.Fatal(err)
		}
		alarms := filepath.Join(dir, "alarms")
		writeAuditLog(t, alarms, 10, 0)
		cfg := strings.Replace(string(sample), "alarms:\n", "alarms:\n  dir: "+alarms+"\n", 1)
		path := filepath.Join(dir, "gw.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := runCLI(t, "", "audit", "verify", "--config", path)
		if err != nil || !strings.Contains(out, "entries checked: 10") {
			t.Fatalf("verify --config: %v\n%s%s", err, out, errOut)
		}
	})
	t.Run("neither or both flags", func(t *testing.T) {
		if _, _, err := runCLI(t, "", "audit", "verify"); err == nil {
			t.Fatal("verify ran without --config or --dir")
		}
		if _, _, err := runCLI(t, "", "audit", "verify", "--dir", "a", "--config", "b"); err == nil {
			t.Fatal("verify ran with both --config and --dir")
		}
	})
}
