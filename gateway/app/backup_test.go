package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/backup"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// TestControlSocketBackup: `shelter-gateway backup` asks the running
// gateway through the control socket (0600); the backup checks out and
// the audit log names who asked, as the kernel tells it.
func TestControlSocketBackup(t *testing.T) {
	a := startApp(t, testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n"))
	sock := a.cfg.ControlSocket()
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %s: %v %v", sock, fi.Mode(), err)
	}
	ctx := context.Background()
	st, err := Status(ctx, sock)
	if err != nil || st.Facility != "test-shelter" || !st.Ready || st.PID != os.Getpid() {
		t.Fatalf("status: %+v %v", st, err)
	}
	var buf bytes.Buffer
	if err := RequestBackup(ctx, sock, &buf, ""); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "b.swbk")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := backup.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Facility != "test-shelter" || !strings.HasPrefix(m.By, "cli:") || !strings.Contains(m.By, "(uid ") {
		t.Errorf("manifest: %+v", m)
	}
	es, err := a.Audit.Read(audit.Filter{Action: audit.ActionBackupMade}, 1)
	if err != nil || len(es) != 1 || es[0].By != m.By {
		t.Errorf("audit entry of the backup: %+v %v", es, err)
	}
	if err := RequestBackup(ctx, sock, &buf, "short"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("a short passphrase: %v", err)
	}
	if _, err := Status(ctx, filepath.Join(t.TempDir(), "none.sock")); err != ErrNotRunning {
		t.Errorf("no gateway: %v", err)
	}
}

// TestNightlyBackups: backups land in backup.dir under the facility's
// name, the newest backup.keep are kept, the passphrase file adds the
// secrets, and a backup that cannot be written raises backup-failed until
// one succeeds.
func TestNightlyBackups(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "usb")
	pass := filepath.Join(dir, "passphrase")
	token := filepath.Join(dir, "influx.token")
	for p, s := range map[string]string{pass: "a long enough passphrase\n", token: "secret\n"} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\nbackup: {dir: "+target+", keep: 2, passphrase_file: "+pass+"}\n"+
		"influxdb:\n  - {id: office, url: \"http://127.0.0.1:9\", version: 2, org: o, bucket: b, token_file: "+token+"}\n")
	a := startApp(t, cfg)
	ctx := context.Background()
	var files []string
	for range 3 {
		p, err := a.NightlyBackup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
		time.Sleep(1100 * time.Millisecond) // names carry the second
	}
	left, _ := filepath.Glob(filepath.Join(target, "test-shelter-*.swbk"))
	if len(left) != 2 || left[0] != files[1] || left[1] != files[2] {
		t.Fatalf("kept %v of %v", left, files)
	}
	m, err := backup.Inspect(files[2])
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Secrets) != 1 || m.Secrets[0] != token || m.By != "gateway (nightly backup)" {
		t.Errorf("manifest: %+v", m)
	}

	// The backup medium is gone (a file where the directory was).
	if err := os.RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a.nightlyOnce(ctx)
	const id = "backup-failed@dev:gateway.backup"
	testpeer.WaitFor(t, id, 10*time.Second, func() bool {
		for _, al := range activeAlarms(t, a) {
			if al.ID == id {
				return true
			}
		}
		return false
	})
}

func TestNextDaily(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := 3*time.Hour + 30*time.Minute
	for _, c := range []struct{ now, want time.Time }{
		{time.Date(2026, 12, 7, 1, 0, 0, 0, sh), time.Date(2026, 12, 7, 3, 30, 0, 0, sh)},
		{time.Date(2026, 12, 7, 3, 30, 0, 0, sh), time.Date(2026, 12, 8, 3, 30, 0, 0, sh)},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, sh), time.Date(2027, 1, 1, 3, 30, 0, 0, sh)},
	} {
		if got := nextDaily(c.now, at); !got.Equal(c.want) {
			t.Errorf("after %v: %v, want %v", c.now, got, c.want)
		}
	}
}

// TestStaleBackupScratchRemoved: a backup cut short by a crash leaves
// its checkpoint (hard links to the store's tables) beside the store; the
// next start removes it, so its tables' space comes back.
func TestStaleBackupScratchRemoved(t *testing.T) {
	cfg := testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n")
	stale := filepath.Join(filepath.Dir(cfg.Store.Dir), ".backup-123456")
	if err := os.MkdirAll(filepath.Join(stale, "checkpoint"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "checkpoint", "000005.sst"), []byte("table"), 0o600); err != nil {
		t.Fatal(err)
	}
	startApp(t, cfg)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the scratch directory of an interrupted backup is still there: %v", err)
	}
}
