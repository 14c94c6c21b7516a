package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := root()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestValidateCommand(t *testing.T) {
	t.Run("sample config is valid", func(t *testing.T) {
		out, _, err := runCLI(t, "", "validate", "--config", "../../../configs/shelterwatch.example.yaml")
		if err != nil || !strings.Contains(out, ": ok") {
			t.Fatalf("validate sample: %v, %q", err, out)
		}
	})
	t.Run("every problem at once", func(t *testing.T) {
		bad := `facility: {id: f, name: F, timezone: Mars/Olympus}
zones: [{id: z}]
devices:
  - {id: d, kind: smoke, zone: nowhere, format: zigbee2mqtt, topic: zigbee2mqtt/d}
store: {dir: /tmp/x, retention: forever}
`
		path := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := runCLI(t, "", "validate", "--config", path)
		if err == nil {
			t.Fatal("validate accepted a broken config")
		}
		for _, want := range []string{"bad.yaml:1: facility.timezone", "bad.yaml:4: devices[0].zone", "bad.yaml:5: store.retention"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("output lacks %q:\n%s", want, errOut)
			}
		}
	})
	t.Run("run refuses an invalid config", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		_ = os.WriteFile(path, []byte("facility: {id: f}\nunknown_key: 1\n"), 0o600)
		if _, _, err := runCLI(t, "", "run", "--config", path); err == nil {
			t.Fatal("run started with an invalid config")
		}
	})
}

func TestHashPasswordCommand(t *testing.T) {
	out, _, err := runCLI(t, "correct horse battery staple\n", "hash-password", "--cost", "4")
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(out)
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse battery staple")) != nil {
		t.Fatalf("printed hash %q does not verify the password", hash)
	}
	if _, _, err := runCLI(t, "short\n", "hash-password"); err == nil {
		t.Fatal("accepted a 5-character password")
	}
}
