package app

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/inspection/hazard"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/pebblelog"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// The upgrade fixture is the data directories a gateway of store format 1
// left behind: its Pebble store and its alarms directory (alarm state,
// audit log, hazard list, console users). A gateway of today must start
// over it and find everything there; a gateway that meets a newer format
// must refuse it and leave it as it was.
//
// The fixture is committed and only ever rewritten by hand, with
//
//	go test ./gateway/app/ -run TestUpgradeFromFormat1 -update-fixture
//
// which runs a real gateway over fixed readings, alarms, a hazard item and
// a user, stops it cleanly and records what the test must find in
// fixture.json. Once committed it stands for what format-1 gateways left
// and is not regenerated: when a format changes, add a fixture of the new
// format beside it (a new directory) and keep this one.
var updateFixture = flag.Bool("update-fixture", false, "rewrite testdata/format1 by running a gateway (TestUpgradeFromFormat1)")

const (
	fixtureDir = "testdata/format1"
	// fixtureInspector is an inspector's API token: only inspectors add
	// items to the hazard list.
	fixtureInspector = "fixture-inspector-token-0123456789"
	// fixtureUser and fixturePassword are the console user the fixture
	// holds.
	fixtureUser, fixturePassword = "li.manager", "Shelter-fixture-pass"
)

// fixtureT0 is the device time of the fixture's first reading. The devices
// send their own times, so the readings and their order are the same on
// every generation.
var fixtureT0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// upgradeFixture is fixture.json: what a gateway must find in the fixture.
type upgradeFixture struct {
	// StoreFormat is the store's recorded format (ingest/store
	// FormatVersion); StateVersion and HazardsVersion the "version" of
	// state.json and hazards.json.
	StoreFormat    uint32 `json:"store_format"`
	StateVersion   int    `json:"state_version"`
	HazardsVersion int    `json:"hazards_version"`
	// Series are the devices' readings, one per device and kind.
	Series []fixtureSeries `json:"series"`
	// Alarms are the alarms open when the gateway stopped.
	Alarms []fixtureAlarm `json:"alarms"`
	// Hazard is the inspector's item.
	Hazard fixtureHazard `json:"hazard"`
	// User is the console user (password fixturePassword).
	User fixtureUserRecord `json:"user"`
	// Audit is the audit log: its entries and the hash of its last line.
	Audit fixtureAudit `json:"audit"`
}

type fixtureSeries struct {
	Device string       `json:"device"`
	Kind   reading.Kind `json:"kind"`
	Count  int          `json:"count"`
	First  fixturePoint `json:"first"`
	Last   fixturePoint `json:"last"`
}

// fixturePoint is one reading: its device time and its value (a JSON
// number, boolean or string, as reading.Value.Any gives it).
type fixturePoint struct {
	Time  time.Time `json:"time"`
	Value any       `json:"value"`
}

type fixtureAlarm struct {
	ID      string      `json:"id"`
	Seq     uint64      `json:"seq"`
	State   alarm.State `json:"state"`
	AckedBy string      `json:"acked_by,omitempty"`
	Comment string      `json:"ack_comment,omitempty"`
}

type fixtureHazard struct {
	ID       string        `json:"id"`
	Zone     string        `json:"zone"`
	Title    string        `json:"title_en"`
	Status   hazard.Status `json:"status"`
	By       string        `json:"by"`
	Deadline time.Time     `json:"deadline"`
}

type fixtureUserRecord struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type fixtureAudit struct {
	Entries int    `json:"entries"`
	Head    string `json:"head"`
}

// fixtureConfig is the gateway's config over the data directories in dir
// (dir/store and dir/alarms), the same for the generator and the tests.
// Retention and the clock-skew allowance are a century, so that readings
// timed in 2026 are taken when generated and not deleted as old whenever
// the test runs. The ballast cannot be configured away (it must be > 0):
// one byte, which the generator leaves out of the fixture.
func fixtureConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-device"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	yaml := fmt.Sprintf(`facility: {id: fixture-shelter, name: Fixture Shelter, timezone: Asia/Shanghai}
zones:
  - {id: kitchen, name: Kitchen, name_zh: 厨房, tags: [kitchen]}
  - {id: secure-ward, name: Secure ward, name_zh: 安全病区, tags: [secure-ward]}
  - {id: dorm-1, name: Dorm 1, name_zh: 一号宿舍, tags: [dormitory]}
devices:
  - {id: kitchen-smoke, kind: smoke, zone: kitchen, format: native, topic: shelter/kitchen-smoke, password_hash: %[1]q}
  - {id: ward-panic, kind: panic, zone: secure-ward, format: native, topic: shelter/ward-panic, password_hash: %[1]q}
  - {id: dorm-1-climate, kind: temperature, zone: dorm-1, format: native, topic: shelter/dorm-1-climate, password_hash: %[1]q}
broker: {embedded: {listen: "127.0.0.1:0"}}
ingest: {max_clock_skew: 36500d}
store: {dir: %[2]q, retention: 36500d, ballast_bytes: 1}
alarms: {dir: %[3]q}
http:
  listen: 127.0.0.1:0
  tokens:
    - {name: t, role: admin, sha256: %[4]s}
    - {name: wang.inspector, role: inspector, sha256: %[5]s}
`, hash, filepath.Join(dir, "store"), filepath.Join(dir, "alarms"), sum(testToken), sum(fixtureInspector))
	cfg, err := config.Parse([]byte(yaml), "fixture.yaml")
	if err != nil {
		t.Fatalf("fixture config: %v", err)
	}
	return cfg
}

// fixtureMessage is one device message of the fixture.
type fixtureMessage struct {
	device string
	at     time.Time
	values string // the native payload's "values" object
}

// fixtureMessages are the readings the generator publishes, device by
// device: the climate sensor's temperature and humidity (no alarm), then
// the smoke detector (quiet, then smoke: the alarm to acknowledge), then
// the panic button (idle, then pressed: the alarm left open).
func fixtureMessages() (climate, smoke, button []fixtureMessage) {
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	for i := range 120 {
		temp, hum := float64(200+i%25)/10, float64(800+i%13*5)/20
		climate = append(climate, fixtureMessage{"dorm-1-climate", fixtureT0.Add(time.Duration(i) * 30 * time.Second),
			`{"temperature":` + num(temp) + `,"humidity":` + num(hum) + `}`})
	}
	for i := range 40 {
		smoke = append(smoke, fixtureMessage{"kitchen-smoke", fixtureT0.Add(time.Duration(i) * time.Minute),
			fmt.Sprintf(`{"smoke":%t}`, i == 39)})
	}
	for i := range 20 {
		button = append(button, fixtureMessage{"ward-panic", fixtureT0.Add(time.Duration(i) * 3 * time.Minute),
			fmt.Sprintf(`{"panic":%t}`, i == 19)})
	}
	return climate, smoke, button
}

const (
	fixtureSmokeAlarm = "smoke@dev:kitchen-smoke"
	fixturePanicAlarm = "panic-button@dev:ward-panic"
	fixtureAckComment = "checked: burnt toast"
)

// generateFixture runs a gateway over empty data directories, gives it
// the fixture's readings, alarms, hazard item and user, stops it and
// writes what it left, with fixture.json, to testdata/format1.
func generateFixture(t *testing.T) {
	work := t.TempDir()
	cfg := fixtureConfig(t, work)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, stop := runApp(t, cfg, log)

	climate, smoke, button := fixtureMessages()
	send := func(msgs []fixtureMessage) {
		t.Helper()
		c, err := connect(t, "tcp://"+a.BrokerAddr(), msgs[0].device, msgs[0].device, "pw-device")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			payload := fmt.Sprintf(`{"time":%q,"values":%s}`, m.at.Format(time.RFC3339), m.values)
			if err := publish(t, c, "shelter/"+m.device, payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	alarmIn := func(id string, state alarm.State) func() bool {
		return func() bool {
			for _, al := range activeAlarms(t, a) {
				if al.ID == id && al.State == state {
					return true
				}
			}
			return false
		}
	}
	send(climate)
	send(smoke)
	testpeer.WaitFor(t, "the smoke alarm firing", 10*time.Second, alarmIn(fixtureSmokeAlarm, alarm.StateFiring))
	if code, b := api(t, a, http.MethodPost, "/api/v1/alarms/"+fixtureSmokeAlarm+"/ack", `{"comment":"`+fixtureAckComment+`"}`); code != http.StatusOK {
		t.Fatalf("ack the smoke alarm: %d %s", code, b)
	}
	send(button)
	testpeer.WaitFor(t, "the panic alarm firing", 10*time.Second, alarmIn(fixturePanicAlarm, alarm.StateFiring))

	// A deadline must be within a year: once the test runs later than
	// that, the item is overdue at start, which changes nothing the test
	// checks.
	deadline := time.Now().Add(300 * 24 * time.Hour).UTC().Truncate(24 * time.Hour)
	item := fmt.Sprintf(`{"zone":"kitchen","title":{"zh":"厨房灭火器过期","en":"Kitchen extinguisher out of date"},
		"standard":{"zh":"灭火器在检验期内","en":"Extinguishers within their service date"},
		"responsible":"Li (kitchen)","deadline":%q}`, deadline.Format(time.RFC3339))
	code, b := apiAs(t, a, fixtureInspector, http.MethodPost, "/api/v1/hazards", item)
	var it hazard.Item
	if code != http.StatusCreated || json.Unmarshal(b, &it) != nil {
		t.Fatalf("add the hazard item: %d %s", code, b)
	}
	user := fmt.Sprintf(`{"name":%q,"display":"李经理","role":"manager","password":%q}`, fixtureUser, fixturePassword)
	if code, b := api(t, a, http.MethodPost, "/api/v1/users", user); code != http.StatusCreated {
		t.Fatalf("add the user: %d %s", code, b)
	}
	// The gateway audits account changes at its next look at the users
	// file: the fixture's audit log must hold it.
	testpeer.WaitFor(t, "the new user in the audit log", 10*time.Second, func() bool {
		found := false
		err := a.Audit.Each(audit.Filter{}, func(e *audit.Entry) bool {
			found = e.Account != nil && e.Account.User == fixtureUser && e.Action == audit.ActionUserAdded
			return !found
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	})

	var fx upgradeFixture
	fx.Series = deviceSeries(t, a.Store)
	act, err := a.Rules.Active(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range act {
		fx.Alarms = append(fx.Alarms, fixtureAlarm{ID: al.ID, Seq: al.Seq, State: al.State, AckedBy: al.AckedBy, Comment: al.AckComment})
	}
	fx.Hazard = fixtureHazard{ID: it.ID, Zone: it.Zone, Title: it.Title.EN, Status: it.Status, By: it.By, Deadline: it.Deadline}
	fx.User = fixtureUserRecord{Name: fixtureUser, Role: "manager"}
	if err := stop(); err != nil {
		t.Fatalf("stop the gateway: %v", err)
	}

	storeDir, alarmsDir := filepath.Join(work, "store"), filepath.Join(work, "alarms")
	var ok bool
	if fx.StoreFormat, ok = storeFormat(t, storeDir); !ok {
		t.Fatal("the gateway recorded no store format")
	}
	fx.StateVersion = jsonVersion(t, filepath.Join(alarmsDir, engine.StateFile))
	fx.HazardsVersion = jsonVersion(t, filepath.Join(alarmsDir, "hazards.json"))
	rep, err := audit.Verify(filepath.Join(alarmsDir, audit.FileName))
	if err != nil || rep.Break != nil {
		t.Fatalf("the fixture's audit log: %v %v", err, rep.Break)
	}
	fx.Audit = fixtureAudit{Entries: rep.Chained + rep.Unchained, Head: rep.Head}

	if err := os.RemoveAll(fixtureDir); err != nil {
		t.Fatal(err)
	}
	// What a gateway leaves but the fixture must not hold: Pebble's and
	// the users file's locks (held only while running) and the ballast.
	skip := map[string]bool{"LOCK": true, store.BallastName: true, "users.json.lock": true}
	copyTree(t, work, fixtureDir, func(rel string) bool { return !skip[filepath.Base(rel)] })
	out, err := json.MarshalIndent(fx, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fixtureDir, "fixture.json"), append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d series, %d alarms, hazard %s, %d audit entries", fixtureDir, len(fx.Series), len(fx.Alarms), fx.Hazard.ID, fx.Audit.Entries)
}

// TestUpgradeFromFormat1: a gateway of today starts over the data a
// format-1 gateway left (a copy of it) and finds every reading, the open
// alarms with who acknowledged them, the hazard item, the console user
// and the audit log with its chain intact.
func TestUpgradeFromFormat1(t *testing.T) {
	if *updateFixture {
		generateFixture(t)
	}
	fx := readFixture(t)
	dir := t.TempDir()
	copyTree(t, fixtureDir, dir, func(rel string) bool { return rel != "fixture.json" })
	storeDir, alarmsDir := filepath.Join(dir, "store"), filepath.Join(dir, "alarms")
	if v, ok := storeFormat(t, storeDir); !ok || v != fx.StoreFormat {
		t.Fatalf("the fixture's store records format %d (recorded: %v), fixture.json says %d", v, ok, fx.StoreFormat)
	}
	fixtureAuditLog, err := os.ReadFile(filepath.Join(alarmsDir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}

	a, stop := runApp(t, fixtureConfig(t, dir), slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))

	t.Run("readings", func(t *testing.T) {
		got := map[string]fixtureSeries{}
		for _, s := range deviceSeries(t, a.Store) {
			got[s.Device+"/"+string(s.Kind)] = s
		}
		for _, want := range fx.Series {
			key := want.Device + "/" + string(want.Kind)
			if g := got[key]; g.Count != want.Count || !g.First.equal(want.First) || !g.Last.equal(want.Last) {
				t.Errorf("series %s after the upgrade: %d readings, first %+v, last %+v; want %d, %+v, %+v",
					key, g.Count, g.First, g.Last, want.Count, want.First, want.Last)
			}
		}
		// The log the InfluxDB forwarders read from holds them too.
		n, err := deviceLogReadings(a.Store)
		if want := fixtureReadings(fx); err != nil || n != want {
			t.Errorf("the store's log holds %d device readings (%v), want %d", n, err, want)
		}
	})
	t.Run("alarms", func(t *testing.T) {
		act, err := a.Rules.Active(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]alarm.Alarm{}
		for _, al := range act {
			byID[al.ID] = al
		}
		for _, want := range fx.Alarms {
			al, ok := byID[want.ID]
			if !ok || al.Seq != want.Seq || al.State != want.State || al.AckedBy != want.AckedBy || al.AckComment != want.Comment {
				t.Errorf("alarm %s after the upgrade: %+v (open: %v); want %+v", want.ID, al, ok, want)
			}
		}
		// The fixture is what this test is about: the acknowledged smoke
		// alarm and the unacknowledged panic alarm.
		if s := byID[fixtureSmokeAlarm]; s.State != alarm.StateAcknowledged || s.AckedBy != "t" {
			t.Errorf("the smoke alarm: %+v, want acknowledged by t", s)
		}
		if p := byID[fixturePanicAlarm]; p.State != alarm.StateFiring || p.AckedBy != "" {
			t.Errorf("the panic alarm: %+v, want firing, not acknowledged", p)
		}
	})
	t.Run("hazard item", func(t *testing.T) {
		code, b := api(t, a, http.MethodGet, "/api/v1/hazards/"+fx.Hazard.ID, "")
		var it hazard.Item
		if code != http.StatusOK || json.Unmarshal(b, &it) != nil {
			t.Fatalf("GET the hazard item %s: %d %s", fx.Hazard.ID, code, b)
		}
		if it.Zone != fx.Hazard.Zone || it.Title.EN != fx.Hazard.Title || it.Status != fx.Hazard.Status || it.By != fx.Hazard.By ||
			!it.Deadline.Equal(fx.Hazard.Deadline) {
			t.Errorf("hazard item after the upgrade: %+v, want %+v", it, fx.Hazard)
		}
	})
	t.Run("console user logs in", func(t *testing.T) {
		body, _ := json.Marshal(map[string]string{"name": fx.User.Name, "password": fixturePassword})
		resp, err := http.Post("http://"+a.HTTPAddr()+"/api/v1/session", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var who struct{ Role string }
		if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || resp.StatusCode != http.StatusOK || who.Role != fx.User.Role {
			t.Fatalf("login as %s: %d as %q (%v), want 200 as %s", fx.User.Name, resp.StatusCode, who.Role, err, fx.User.Role)
		}
	})

	if err := stop(); err != nil {
		t.Fatalf("stop the gateway: %v", err)
	}
	t.Run("store format", func(t *testing.T) {
		if v, ok := storeFormat(t, storeDir); !ok || v != store.FormatVersion {
			t.Errorf("after the upgrade the store records format %d (recorded: %v), want %d", v, ok, store.FormatVersion)
		}
		for name, v := range map[string]int{engine.StateFile: fx.StateVersion, "hazards.json": fx.HazardsVersion} {
			if got := jsonVersion(t, filepath.Join(alarmsDir, name)); got != v {
				t.Errorf("%s has version %d after the upgrade, want %d", name, got, v)
			}
		}
	})
	t.Run("audit log", func(t *testing.T) {
		path := filepath.Join(alarmsDir, audit.FileName)
		rep, err := audit.Verify(path)
		if err != nil || rep.Break != nil {
			t.Fatalf("audit log after the upgrade: %v, break %v", err, rep.Break)
		}
		if n := rep.Chained + rep.Unchained; n < fx.Audit.Entries {
			t.Fatalf("audit log after the upgrade: %d entries, the fixture had %d", n, fx.Audit.Entries)
		}
		// Entries are only ever added: the fixture's log is still there,
		// byte for byte, and its last line still has the head hash noted.
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, fixtureAuditLog) {
			t.Fatal("the fixture's audit entries were changed: the log no longer begins with them")
		}
		if h := lineHash(t, b, fx.Audit.Entries); h != fx.Audit.Head {
			t.Errorf("audit line %d hashes to %s, the fixture's head was %s", fx.Audit.Entries, h, fx.Audit.Head)
		}
	})
}

// TestRefusesNewerFormat: a gateway given data a newer gateway wrote
// refuses to start, says why and what to do, and leaves the data as it
// was: the files it refused byte for byte, and the store's readings and
// format record. A newer store is read without writing before it is
// opened, so none of its files changes; the alarm state's and the hazard
// list's formats are looked at before the store opens, which would
// upgrade the fixture's older store.
func TestRefusesNewerFormat(t *testing.T) {
	alarmsFiles := []string{filepath.Join("alarms", engine.StateFile), filepath.Join("alarms", "hazards.json"),
		filepath.Join("alarms", audit.FileName), filepath.Join("alarms", "users.json")}
	for _, tc := range []struct {
		name string
		// newer makes the copy in dir look written by a newer gateway.
		newer func(t *testing.T, dir string)
		want  []string
		// unchanged are the files and directories of the copy that must
		// stay byte for byte as they were.
		unchanged []string
	}{
		{
			name:  "store",
			newer: func(t *testing.T, dir string) { setStoreFormat(t, filepath.Join(dir, "store"), store.FormatVersion+1) },
			want: []string{"written by a newer gateway",
				fmt.Sprintf("store format %d; this build reads formats up to %d", store.FormatVersion+1, store.FormatVersion),
				"run that gateway version or a newer one"},
			// The store is looked at read-only before it is opened for
			// writing: not one of its files changes.
			unchanged: []string{"alarms", "store"},
		},
		{
			name:      "alarm state",
			newer:     func(t *testing.T, dir string) { setJSONVersion(t, filepath.Join(dir, "alarms", engine.StateFile), 2) },
			want:      []string{"the saved alarm state was written by a newer gateway", "state version 2; this build reads up to 1", "not overwritten"},
			unchanged: alarmsFiles,
		},
		{
			name:      "hazard list",
			newer:     func(t *testing.T, dir string) { setJSONVersion(t, filepath.Join(dir, "alarms", "hazards.json"), 2) },
			want:      []string{"the hazard list was written by a newer gateway", "format 2; this build reads up to 1", "not overwritten"},
			unchanged: alarmsFiles,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, fixtureDir, dir, func(rel string) bool { return rel != "fixture.json" })
			tc.newer(t, dir)
			storeDir := filepath.Join(dir, "store")
			before := treeSums(t, dir)
			format, _ := storeFormat(t, storeDir)
			indexed := seriesIndexed(t, storeDir)
			if want := fixtureReadings(readFixture(t)); indexed != want {
				t.Fatalf("the fixture's store indexes %d readings of the devices, fixture.json says %d", indexed, want)
			}

			a, err := New(fixtureConfig(t, dir), slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err == nil {
				a.closePartial()
				t.Fatal("a gateway started over data of a newer format")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.name == "store" && !errors.Is(err, store.ErrNewerFormat) {
				t.Errorf("error %v is not store.ErrNewerFormat", err)
			}

			after := treeSums(t, dir)
			under := func(path, part string) bool {
				return path == part || strings.HasPrefix(path, part+string(filepath.Separator))
			}
			for _, part := range tc.unchanged {
				for path, sum := range before {
					if under(path, part) && after[path] != sum {
						t.Errorf("%s changed", path)
					}
				}
				for path := range after {
					// Pebble's lock file is created by any open, even a
					// read-only one; it holds nothing.
					if _, ok := before[path]; !ok && under(path, part) && filepath.Base(path) != "LOCK" {
						t.Errorf("%s appeared", path)
					}
				}
			}
			if v, _ := storeFormat(t, storeDir); v != format {
				t.Errorf("the store's format record became %d, was %d", v, format)
			}
			if n := seriesIndexed(t, storeDir); n != indexed {
				t.Errorf("after the refusal the store indexes %d readings of the devices, before %d", n, indexed)
			}
		})
	}
}

func readFixture(t *testing.T) upgradeFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "fixture.json"))
	if err != nil {
		t.Fatalf("the upgrade fixture (make it with -update-fixture): %v", err)
	}
	var fx upgradeFixture
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fx); err != nil {
		t.Fatalf("fixture.json: %v", err)
	}
	if len(fx.Series) == 0 || len(fx.Alarms) == 0 || fx.Hazard.ID == "" || fx.Audit.Entries == 0 {
		t.Fatalf("fixture.json records too little: %+v", fx)
	}
	return fx
}

// fixtureReadings is the number of the devices' readings in the fixture.
func fixtureReadings(fx upgradeFixture) int {
	n := 0
	for _, s := range fx.Series {
		n += s.Count
	}
	return n
}

// fixtureDevices are the fixture's devices: their readings are compared.
// (The gateway's own devices write fault readings at every start.)
var fixtureDevices = map[string]bool{"kitchen-smoke": true, "ward-panic": true, "dorm-1-climate": true}

// deviceSeries summarises the stored readings of the fixture's devices.
func deviceSeries(t *testing.T, s *store.Store) []fixtureSeries {
	t.Helper()
	var out []fixtureSeries
	for _, sr := range s.Series(store.Query{}) {
		if !fixtureDevices[sr.Device] {
			continue
		}
		fs := fixtureSeries{Device: sr.Device, Kind: sr.Kind}
		err := s.Points(t.Context(), sr, time.Time{}, time.Time{}, func(p store.Point) bool {
			pt := fixturePoint{Time: p.Time.UTC(), Value: p.Value.Any()}
			if fs.Count == 0 {
				fs.First = pt
			}
			fs.Last = pt
			fs.Count++
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fs)
	}
	return out
}

func (p fixturePoint) equal(q fixturePoint) bool { return p.Time.Equal(q.Time) && p.Value == q.Value }

// deviceLogReadings counts the fixture devices' readings in the store's log.
func deviceLogReadings(s *store.Store) (int, error) {
	n := 0
	for seq := uint64(0); ; {
		rs, err := s.ReadLog(seq, 1000)
		if err != nil {
			return n, err
		}
		if len(rs) == 0 {
			return n, nil
		}
		for _, r := range rs {
			if fixtureDevices[r.Device] {
				n++
			}
		}
		seq = rs[len(rs)-1].Seq
	}
}

// storeFormatKey is the store's format record: its meta prefix 'M' and
// the name "format" (ingest/store keys.go and format.go).
var storeFormatKey = []byte("Mformat")

// openStoreDB opens a closed store's Pebble database directly, logging
// Pebble's chatter to the test.
func openStoreDB(t *testing.T, dir string, readOnly bool) *pebble.DB {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: readOnly, Logger: pebblelog.New("test store", log)})
	if err != nil {
		t.Fatalf("open the store %s (read-only %v): %v", dir, readOnly, err)
	}
	return db
}

// storeFormat reads the format a closed store records, read-only.
func storeFormat(t *testing.T, dir string) (uint32, bool) {
	t.Helper()
	db := openStoreDB(t, dir, true)
	defer db.Close()
	v, closer, err := db.Get(storeFormatKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if len(v) != 4 {
		t.Fatalf("store format record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint32(v), true
}

// seriesIndexed counts, read-only, the entries of the fixture devices in
// a closed store's series index ('S' device 0x00 kind 0x00 time seq,
// ingest/store keys.go).
func seriesIndexed(t *testing.T, dir string) int {
	t.Helper()
	db := openStoreDB(t, dir, true)
	defer db.Close()
	n := 0
	for dev := range fixtureDevices {
		lo := append([]byte{'S'}, dev+"\x00"...)
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: append([]byte{'S'}, dev+"\x01"...)})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// setStoreFormat records format in a closed store, as a newer gateway
// would have. Pebble opened without the store's merger flushes the WAL
// with the default one, which concatenates the hourly rollups' merge
// operands: a store so changed is fit only to be refused.
func setStoreFormat(t *testing.T, dir string, format uint32) {
	t.Helper()
	db := openStoreDB(t, dir, false)
	if err := db.Set(storeFormatKey, binary.BigEndian.AppendUint32(nil, format), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// jsonVersion is the "version" of a JSON state file.
func jsonVersion(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Version == nil {
		t.Fatalf("%s: no version (%v)", path, err)
	}
	return *v.Version
}

// setJSONVersion rewrites a JSON state file's "version", as a newer
// gateway would have written it.
func setJSONVersion(t *testing.T, path string, version int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["version"]; !ok {
		t.Fatalf("%s has no version", path)
	}
	m["version"] = json.RawMessage(strconv.Itoa(version))
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// lineHash is the audit chain's hash of line n (1-based) of an audit file.
func lineHash(t *testing.T, b []byte, n int) string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for i := 1; sc.Scan(); i++ {
		if i == n {
			h := sha256.Sum256(sc.Bytes())
			return hex.EncodeToString(h[:])
		}
	}
	t.Fatalf("the audit log has fewer than %d lines", n)
	return ""
}

// copyTree copies the regular files under src that keep accepts (by path
// relative to src) to the same paths under dst.
func copyTree(t *testing.T, src, dst string, keep func(rel string) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if !d.Type().IsRegular() || !keep(rel) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// treeSums maps every file under dir but Pebble's LOCK, by path relative
// to dir, to the SHA-256 of its content.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "LOCK" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h := sha256.Sum256(b)
		sums[rel] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}
