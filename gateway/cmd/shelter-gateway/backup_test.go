package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

const moveToken = "move-test-token-0123456789"

// moveConfig writes the config of a facility's gateway whose data lives
// under dir: four temperature sensors d0..d3 (see connectDevice), a smoke
// detector, an InfluxDB target and an admin token.
func moveConfig(t *testing.T, dir, influxURL string, extra string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(moveToken))
	h, _ := bcrypt.GenerateFromPassword([]byte("pw-smoke"), bcrypt.MinCost)
	var cfg strings.Builder
	cfg.WriteString("facility: {id: north-station, name: North Station, timezone: UTC}\nzones: [{id: z}]\ndevices:\n")
	for i := range 4 {
		dh, _ := bcrypt.GenerateFromPassword(fmt.Appendf(nil, "pw-%d", i), bcrypt.MinCost)
		fmt.Fprintf(&cfg, "  - {id: d%d, kind: temperature, zone: z, format: native, topic: sw/d%d, password_hash: %q}\n", i, i, dh)
	}
	fmt.Fprintf(&cfg, "  - {id: smoke1, kind: smoke, zone: z, format: native, topic: sw/smoke1, password_hash: %q}\n", h)
	fmt.Fprintf(&cfg, `broker: {embedded: {listen: "127.0.0.1:0"}}
store: {dir: %q}
alarms: {dir: %q}
influxdb:
  - {id: office, url: %q, version: 1, database: shelter, batch_size: 200, linger: 10ms, timeout: 2s, backoff_max: 500ms}
http:
  listen: 127.0.0.1:0
  tokens:
    - {name: duty-manager, role: admin, sha256: %s}
log: {format: json}
%s`, filepath.Join(dir, "store"), filepath.Join(dir, "alarms"), influxURL, hex.EncodeToString(sum[:]), extra)
	path := filepath.Join(dir, "shelterwatch.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runBinary(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func apiCall(t *testing.T, g *gatewayProc, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.http+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+moveToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type apiAlarm struct {
	ID, State, AckedBy string
	Comment            string `json:"ack_comment"`
}

func alarmsOf(t *testing.T, g *gatewayProc) map[string]apiAlarm {
	t.Helper()
	code, b := apiCall(t, g, http.MethodGet, "/api/v1/alarms", "")
	var out struct {
		Alarms []struct {
			ID      string `json:"id"`
			State   string `json:"state"`
			AckedBy string `json:"acked_by"`
			Comment string `json:"ack_comment"`
		}
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET /api/v1/alarms: %d %s", code, b)
	}
	m := map[string]apiAlarm{}
	for _, a := range out.Alarms {
		m[a.ID] = apiAlarm{ID: a.ID, State: a.State, AckedBy: a.AckedBy, Comment: a.Comment}
	}
	return m
}

func stopGateway(t *testing.T, g *gatewayProc) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("graceful shutdown: %v\n%s", err, g.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not stop within 30s of SIGTERM")
	}
}

// influxCount is how many temperature readings InfluxDB holds, per device.
func influxCount(db *testpeer.InfluxDB) map[string]int {
	series, err := db.TryQuery("shelter", `SELECT count("value") FROM "temperature" GROUP BY "device"`)
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, s := range series {
		out[s.Tags["device"]] = int(s.Values[0][1].(float64))
	}
	return out
}

func perDevice(acked map[string]bool) map[string]int {
	out := map[string]int{}
	for k := range acked {
		dev, _, _ := strings.Cut(k, "/")
		out[dev]++
	}
	return out
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestBackupUnderLoadRestoresOntoNewHardware moves a facility to new
// hardware the way an installer would: a backup of the running gateway
// while its sensors publish, the old gateway stopped, the backup restored
// (config included) into fresh directories, the new gateway started and
// published to. Every reading acknowledged before the backup is in the new
// store, the acknowledged alarm is still acknowledged by the same person,
// the audit chain verifies with the backup and the restore in it, and
// InfluxDB holds each reading of both gateways exactly once: the new one
// goes on from the forwarder's position in the backup, so nothing is
// skipped, and what it sends again is the identical point, which InfluxDB
// keeps once.
func TestBackupUnderLoadRestoresOntoNewHardware(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	db := testpeer.StartInfluxDB(t, "shelter")
	bin := buildGateway(t)
	oldDir, newDir, media := t.TempDir(), t.TempDir(), t.TempDir()
	oldCfg := moveConfig(t, oldDir, db.URL(), "")

	g := startGateway(t, bin, oldCfg)
	smoke, ok := connectAs(t, g.broker, "smoke1", "pw-smoke")
	if !ok {
		t.FailNow()
	}
	if tok := smoke.Publish("sw/smoke1", 1, false, `{"values":{"smoke":true}}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("smoke publish: %v", tok.Error())
	}
	smoke.Disconnect(0)
	const smokeAlarm = "smoke@dev:smoke1"
	testpeer.WaitFor(t, "the smoke alarm", 10*time.Second, func() bool { return alarmsOf(t, g)[smokeAlarm].State != "" })
	if code, b := apiCall(t, g, http.MethodPost, "/api/v1/alarms/"+smokeAlarm+"/ack", `{"comment":"burnt toast, checked on site"}`); code != http.StatusOK {
		t.Fatalf("acknowledge: %d %s", code, b)
	}

	l := startLoad(t, g.broker, 4)
	l.waitAcked(3000, 20*time.Second)
	before := l.snapshot()
	file := filepath.Join(media, "north-station.swbk")
	out, err := runBinary(t, bin, "backup", "--config", oldCfg, "--to", file)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	t.Logf("backup:\n%s", out)
	// The sensors went on during the backup and after it.
	l.waitAcked(len(l.snapshot())+2000, 20*time.Second)
	ackedOld := l.stop()
	if len(ackedOld) <= len(before) {
		t.Fatalf("no reading acknowledged after the backup began (%d before, %d in all): the backup was not under load", len(before), len(ackedOld))
	}
	// The old gateway forwards what it has, then is switched off.
	want := perDevice(ackedOld)
	testpeer.WaitFor(t, "the old gateway's readings in InfluxDB", 60*time.Second, func() bool { return sameCounts(influxCount(db), want) })
	stopGateway(t, g)

	// New hardware: an installed package's starting config, replaced by
	// the backup's; the data directories are the new machine's.
	newCfg := filepath.Join(newDir, "shelterwatch.yaml")
	if err := os.WriteFile(newCfg, []byte("facility: {id: my-facility}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := runBinary(t, bin, "restore", "--config", newCfg, "--from", file, "--with-config"); err == nil ||
		!strings.Contains(out, "already holds data") {
		// The backup's config names the old machine's directories, which
		// still hold the old gateway's data: refused, nothing replaced.
		t.Fatalf("restore over the old gateway's data was not refused: %v\n%s", err, out)
	}
	// The installer edits the restored config for the new machine's disks.
	b, err := os.ReadFile(newCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newCfg, []byte(strings.ReplaceAll(string(b), oldDir, newDir)), 0o640); err != nil {
		t.Fatal(err)
	}
	out, err = runBinary(t, bin, "restore", "--config", newCfg, "--from", file)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Logf("restore:\n%s", out)
	if matches, _ := filepath.Glob(newCfg + ".before-restore-*"); len(matches) != 1 {
		t.Errorf("the starting config was not kept aside: %v", matches)
	}

	g2 := startGateway(t, bin, newCfg)
	if a := alarmsOf(t, g2)[smokeAlarm]; a.AckedBy != "duty-manager" || a.Comment != "burnt toast, checked on site" {
		t.Errorf("the acknowledged smoke alarm after the restore: %+v", a)
	}
	l2 := startLoadAt(t, g2.broker, 4, time.Now().Add(-30*time.Minute).Truncate(time.Second))
	l2.waitAcked(2000, 20*time.Second)
	ackedNew := l2.stop()
	all := map[string]bool{}
	for k := range ackedOld {
		all[k] = true
	}
	for k := range ackedNew {
		if all[k] {
			t.Fatalf("reading %s published to both gateways: the test's times overlap", k)
		}
		all[k] = true
	}
	want = perDevice(all)
	deadline := time.Now().Add(60 * time.Second)
	for got := influxCount(db); !sameCounts(got, want); got = influxCount(db) {
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB holds %v readings per device, want %v (acknowledged by the old gateway and the new one)\nnew gateway log:\n%s", got, want, g2.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopGateway(t, g2)

	// Every reading acknowledged before the backup began is in the new store.
	checkStored(t, filepath.Join(newDir, "store"), before)
	out, err = runBinary(t, bin, "audit", "verify", "--config", newCfg)
	if err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("audit verify on the new gateway: %v\n%s", err, out)
	}
	// The new gateway's log carries the acknowledgement and the restore;
	// the old one's the backup (made after the copy of its log was taken).
	for dir, want := range map[string][]string{newDir: {"acknowledged", audit.ActionBackupRestored}, oldDir: {audit.ActionBackupMade}} {
		actions := map[string]int{}
		f, err := os.ReadFile(filepath.Join(dir, "alarms", audit.FileName))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(f)) {
			var e audit.Entry
			if json.Unmarshal([]byte(line), &e) == nil {
				actions[e.Action]++
			}
		}
		for _, a := range want {
			if actions[a] == 0 {
				t.Errorf("%s: the audit log has no %s entry: %v", dir, a, actions)
			}
		}
	}
	t.Logf("%d readings acknowledged before the backup, %d by the old gateway in all, %d by the new one; InfluxDB holds %d, each once",
		len(before), len(ackedOld), len(ackedNew), len(all))
}
