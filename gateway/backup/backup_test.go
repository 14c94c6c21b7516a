package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/audit"
)

const pass = "correct horse battery"

var t0 = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

func temp(dev string, i int) reading.Reading {
	return reading.Reading{Facility: "north", Zone: "z", Device: dev, Kind: reading.KindTemperature,
		Value: reading.Number(float64(i)), Format: "native", Time: t0.Add(time.Duration(i) * time.Second), Received: t0.Add(time.Duration(i) * time.Second)}
}

// gateway is a stopped gateway's files, as a Source sees them.
type gateway struct {
	dir    string
	src    Source
	store  *store.Store
	audit  *audit.Log
	secret string
}

func put(t testing.TB, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newGateway(t testing.TB, readings int) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{dir: dir, secret: filepath.Join(dir, "etc", "influx.token")}
	var err error
	if g.store, err = store.Open(store.Options{Dir: filepath.Join(dir, "store")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.store.Close() })
	rs := make([]reading.Reading, 0, readings)
	for i := range readings {
		rs = append(rs, temp("d1", i))
	}
	if err := g.store.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if err := g.store.SetCursor("influx:office", uint64(readings/2)); err != nil {
		t.Fatal(err)
	}
	alarms := filepath.Join(dir, "alarms")
	// A small rotation size: the log has segments as well as its current file.
	if g.audit, err = audit.Open(filepath.Join(alarms, audit.FileName), audit.Options{RotateBytes: 300}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.audit.Close() })
	for i := range 5 {
		if err := g.audit.Append(audit.Entry{Action: "acknowledged", By: "manager", Comment: fmt.Sprintf("checked %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	put(t, filepath.Join(alarms, "state.json"), `{"processed":7,"format":1}`)
	put(t, filepath.Join(alarms, "hazards.json"), `{"version":1,"items":[]}`)
	put(t, filepath.Join(alarms, "reports", "R1", "entry.json"), `{"id":"R1"}`)
	put(t, filepath.Join(alarms, "reports", "R1", "report.xlsx.tmp"), `half`)
	put(t, filepath.Join(alarms, "outbox", "queue"), `pending`)
	put(t, filepath.Join(alarms, "users.json"), `{"version":1,"users":[]}`)
	put(t, filepath.Join(dir, "etc", "gw.yaml"), "facility: {id: north}\n")
	put(t, filepath.Join(dir, "etc", "rules.yaml"), "rules: []\n")
	put(t, g.secret, "s3cret-token\n")
	g.src = Source{Facility: "north", FacilityName: "North Station", Version: "test",
		ConfigPath: filepath.Join(dir, "etc", "gw.yaml"), ConfigFiles: []string{filepath.Join(dir, "etc", "rules.yaml")},
		SecretFiles: []string{g.secret}, Store: g.store, Audit: g.audit,
		AlarmsDir: alarms, UsersFile: filepath.Join(alarms, "users.json"), Scratch: t.TempDir()}
	return g
}

func (g *gateway) backup(t *testing.T, opts Options) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Write(context.Background(), &buf, g.src, opts); err != nil {
		t.Fatalf("backup: %v", err)
	}
	p := filepath.Join(t.TempDir(), "north.swbk")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func target(dir string) Target {
	alarms := filepath.Join(dir, "alarms")
	return Target{StoreDir: filepath.Join(dir, "store"), AlarmsDir: alarms,
		AuditPath: filepath.Join(alarms, audit.FileName), UsersFile: filepath.Join(alarms, "users.json")}
}

func TestBackupAndRestore(t *testing.T) {
	g := newGateway(t, 500)
	file := g.backup(t, Options{Passphrase: pass, By: "cli:root"})

	m, err := Inspect(file)
	if err != nil {
		t.Fatal(err)
	}
	if m.Facility != "north" || m.Store.ReadingsThrough != 500 || m.Store.Cursors["influx:office"] != 250 || len(m.Secrets) != 1 || m.By != "cli:root" {
		t.Fatalf("manifest: %+v", m)
	}

	t.Run("the config and the secrets onto new hardware", func(t *testing.T) {
		// New hardware: neither the secret nor the rules file is there.
		rules := g.src.ConfigFiles[0]
		for _, f := range []string{g.secret, rules} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		// A config elsewhere: the files the backup names outside its
		// directory are not written (a backup from a share could name
		// any path), only listed.
		elsewhere := filepath.Join(t.TempDir(), "shelterwatch.yaml")
		wrote, skipped, err := RestoreConfig(file, elsewhere, pass, time.Now())
		if err != nil || len(wrote) != 1 || len(skipped) != 2 {
			t.Fatalf("restore the config elsewhere: wrote %v, skipped %v, %v", wrote, skipped, err)
		}
		if _, err := os.Stat(g.secret); err == nil {
			t.Fatal("a secret outside the config's directory was written")
		}

		cfg := filepath.Join(g.dir, "etc", "shelterwatch.yaml")
		put(t, cfg, "facility: {id: my-facility}\n")
		wrote, skipped, err = RestoreConfig(file, cfg, pass, time.Now())
		if err != nil || len(skipped) != 0 {
			t.Fatal(skipped, err)
		}
		if len(wrote) != 3 {
			t.Errorf("wrote %v, want the config, the rules file and the secret", wrote)
		}
		if b, _ := os.ReadFile(rules); string(b) != "rules: []\n" {
			t.Errorf("rules file: %q", b)
		}
		if b, _ := os.ReadFile(cfg); string(b) != "facility: {id: north}\n" {
			t.Errorf("config: %q", b)
		}
		if b, _ := os.ReadFile(g.secret); string(b) != "s3cret-token\n" {
			t.Errorf("secret: %q", b)
		}
		if aside, _ := filepath.Glob(cfg + ".before-restore-*"); len(aside) != 1 {
			t.Errorf("the config replaced was not kept: %v", aside)
		}
		if _, _, err := RestoreConfig(file, cfg, "wrong passphrase!!", time.Now()); err == nil || !strings.Contains(err.Error(), "do not open with this passphrase") {
			t.Errorf("a wrong passphrase: %v", err)
		}
	})

	t.Run("the data into fresh directories", func(t *testing.T) {
		dir := t.TempDir()
		res, err := Restore(context.Background(), file, target(dir), RestoreOptions{Facility: "north", By: "cli:installer"})
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstSeq != 1 || res.LastSeq != 500 || res.Cursors["influx:office"] != 250 {
			t.Errorf("restored store: %+v", res)
		}
		if res.Audit.Chained != 6 || res.Audit.Break != nil {
			t.Errorf("restored audit log: %+v", res.Audit)
		}
		st, err := store.Open(store.Options{Dir: filepath.Join(dir, "store")})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := st.ReadLog(0, 1000)
		st.Close()
		if err != nil || len(rs) != 500 || rs[499].Value.Float() != 499 {
			t.Fatalf("restored readings: %d, %v", len(rs), err)
		}
		for name, want := range map[string]string{
			"state.json": `{"processed":7,"format":1}`, "hazards.json": `{"version":1,"items":[]}`,
			"reports/R1/entry.json": `{"id":"R1"}`, "users.json": `{"version":1,"users":[]}`,
		} {
			if b, err := os.ReadFile(filepath.Join(dir, "alarms", name)); string(b) != want {
				t.Errorf("%s: %q %v", name, b, err)
			}
		}
		for _, absent := range []string{"reports/R1/report.xlsx.tmp", "outbox/queue"} {
			if _, err := os.Stat(filepath.Join(dir, "alarms", absent)); err == nil {
				t.Errorf("%s was restored", absent)
			}
		}
		entries, err := audit.Open(filepath.Join(dir, "alarms", audit.FileName), audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer entries.Close()
		last, err := entries.Read(audit.Filter{}, 1)
		if err != nil || len(last) != 1 || last[0].Action != audit.ActionBackupRestored || last[0].By != "cli:installer" {
			t.Errorf("the restore's audit entry: %+v %v", last, err)
		}
		fi, err := os.Stat(filepath.Join(dir, "store"))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("restored store directory: %v %v", fi.Mode(), err)
		}
	})
}

func TestRestoreRefuses(t *testing.T) {
	g := newGateway(t, 50)
	file := g.backup(t, Options{})
	ctx := context.Background()

	t.Run("another facility", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Restore(ctx, file, target(dir), RestoreOptions{Facility: "south"})
		if !errors.Is(err, ErrOtherFacility) || !strings.Contains(err.Error(), `facility "north"`) {
			t.Fatalf("got %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "store")); err == nil {
			t.Error("a refused restore wrote the store")
		}
		if _, err := Restore(ctx, file, target(dir), RestoreOptions{Facility: "south", OtherFacility: true}); err != nil {
			t.Fatalf("asked for: %v", err)
		}
	})
	t.Run("data already there, unless replaced, and then kept", func(t *testing.T) {
		dir := t.TempDir()
		put(t, filepath.Join(dir, "alarms", "state.json"), "newer state")
		if _, err := Restore(ctx, file, target(dir), RestoreOptions{Facility: "north"}); err == nil || !strings.Contains(err.Error(), "already holds data") {
			t.Fatalf("got %v", err)
		}
		res, err := Restore(ctx, file, target(dir), RestoreOptions{Facility: "north", Replace: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.MovedAside) != 1 {
			t.Fatalf("moved aside: %v", res.MovedAside)
		}
		if b, _ := os.ReadFile(filepath.Join(res.MovedAside[0], "state.json")); string(b) != "newer state" {
			t.Errorf("the replaced data was not kept: %q", b)
		}
	})
	t.Run("a damaged file", func(t *testing.T) {
		b, _ := os.ReadFile(file)
		for name, bad := range map[string][]byte{
			"cut short":  b[:len(b)*2/3],
			"bit flip":   flip(b, len(b)/2),
			"not a file": []byte("facility: north\n"),
		} {
			p := filepath.Join(t.TempDir(), "bad.swbk")
			if err := os.WriteFile(p, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, err := Restore(ctx, p, target(dir), RestoreOptions{Facility: "north"}); err == nil {
				t.Errorf("%s: restored", name)
			} else {
				t.Logf("%s: %v", name, err)
			}
			if des, _ := os.ReadDir(dir); len(des) != 0 {
				t.Errorf("%s: a refused restore left %v", name, des)
			}
		}
	})
	t.Run("a short passphrase", func(t *testing.T) {
		if _, err := Write(ctx, &bytes.Buffer{}, g.src, Options{Passphrase: "short"}); err == nil {
			t.Fatal("accepted")
		}
	})
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// TestBackupWhileAppending: readings keep arriving during the backup;
// everything acknowledged before it began is in it, and what it holds is
// whole.
func TestBackupWhileAppending(t *testing.T) {
	g := newGateway(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	var acked atomic.Int64
	acked.Store(10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 10; ctx.Err() == nil; i++ {
			if err := g.store.Append(ctx, []reading.Reading{temp("d1", i)}); err != nil {
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	for acked.Load() < 500 {
		time.Sleep(time.Millisecond)
	}
	before := acked.Load()
	file := g.backup(t, Options{})
	cancel()
	<-done
	res, err := Restore(context.Background(), file, target(t.TempDir()), RestoreOptions{Facility: "north"})
	if err != nil {
		t.Fatal(err)
	}
	if int64(res.LastSeq) < before {
		t.Fatalf("restored readings through %d; %d were acknowledged before the backup", res.LastSeq, before)
	}
	t.Logf("%d acknowledged before the backup, %d in it, %d at the end", before, res.LastSeq, acked.Load())
}

// TestRestoreRefusesAStoreInUse: a process holding the store open (a
// running gateway) keeps a restore out.
func TestRestoreRefusesAStoreInUse(t *testing.T) {
	if dir := os.Getenv("BACKUP_TEST_HOLD_STORE"); dir != "" {
		st, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		fmt.Println("holding")
		time.Sleep(time.Minute)
		st.Close()
		os.Exit(0)
	}
	g := newGateway(t, 5)
	file := g.backup(t, Options{})
	dir := t.TempDir()
	tg := target(dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreRefusesAStoreInUse$")
	cmd.Env = append(os.Environ(), "BACKUP_TEST_HOLD_STORE="+tg.StoreDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make([]byte, 8)
	if _, err := out.Read(line); err != nil || string(line[:7]) != "holding" {
		t.Fatalf("the holder: %q %v", line, err)
	}
	_, err = Restore(context.Background(), file, tg, RestoreOptions{Facility: "north", Replace: true})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("got %v", err)
	}
}
