package testpeer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// InfluxDB is a running influxd 1.8 (built from its Go module into the
// repository's .tools/bin by make test-deps) with its 2.x-compatible write
// API and Flux enabled.
type InfluxDB struct {
	Addr string // 127.0.0.1:port of the HTTP API
	opts InfluxOptions
	dir  string
	bin  string
	conf string
	cmd  *exec.Cmd
	log  *SyncBuffer
}

// InfluxdBinary returns the influxd to test against: .tools/bin/influxd
// in the repository, else one in PATH. Missing, it skips the test (fails
// it under CI).
func InfluxdBinary(t testing.TB) string {
	t.Helper()
	p, err := InfluxdPath()
	if err == nil {
		return p
	}
	if CI() {
		t.Fatal(err)
	}
	t.Skip(err)
	return ""
}

// InfluxdPath finds influxd without a test (for the bench command).
func InfluxdPath() (string, error) {
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", "influxd")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("influxd"); err == nil {
		return p, nil
	}
	return "", errors.New("influxd not found: run `make test-deps` (it builds github.com/influxdata/influxdb/cmd/influxd@v1.8.10 into .tools/bin)")
}

// RepoRoot finds the directory holding go.mod above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// InfluxOptions change the server's configuration.
type InfluxOptions struct {
	// AdminUser and AdminPassword turn authentication on with one admin.
	AdminUser, AdminPassword string
	// MaxBodySize limits write bodies in bytes (0: unlimited), so that
	// large batches get 413.
	MaxBodySize int
}

// StartInfluxDB runs influxd on free loopback ports with a temporary data
// directory and creates the given databases.
func StartInfluxDB(t testing.TB, databases ...string) *InfluxDB {
	t.Helper()
	return StartInfluxDBWith(t, InfluxOptions{}, databases...)
}

// StartInfluxDBWith is StartInfluxDB with options.
func StartInfluxDBWith(t testing.TB, opts InfluxOptions, databases ...string) *InfluxDB {
	t.Helper()
	bin := InfluxdBinary(t)
	dir := t.TempDir()
	port, rpc := FreePort(t), FreePort(t)
	conf := InfluxConfig(dir, port, rpc, opts)
	path := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	db := &InfluxDB{Addr: fmt.Sprintf("127.0.0.1:%d", port), opts: opts, dir: dir, bin: bin, conf: path, log: &SyncBuffer{}}
	db.start(t)
	t.Cleanup(db.stop)
	if opts.AdminUser != "" {
		// With authentication on and no users yet, influxd accepts exactly
		// this statement without credentials.
		db.Exec(t, fmt.Sprintf("CREATE USER %s WITH PASSWORD '%s' WITH ALL PRIVILEGES", quoteIdent(opts.AdminUser), strings.ReplaceAll(opts.AdminPassword, "'", `\'`)))
	}
	for _, name := range databases {
		db.Exec(t, "CREATE DATABASE "+quoteIdent(name))
	}
	return db
}

// InfluxConfig is an influxd configuration for a throw-away server: data
// under dir, HTTP on 127.0.0.1:httpPort, its RPC service on rpcPort, no
// reporting, Flux on, quiet logs.
func InfluxConfig(dir string, httpPort, rpcPort int, opts InfluxOptions) string {
	return fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
  wal-fsync-delay = "0s"
[http]
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false
  max-body-size = %d
  auth-enabled = %t
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort, opts.MaxBodySize, opts.AdminUser != "")
}

// URL is the base URL of the HTTP API.
func (db *InfluxDB) URL() string { return "http://" + db.Addr }

// Log returns what influxd printed so far.
func (db *InfluxDB) Log() string { return db.log.String() }

func (db *InfluxDB) start(t testing.TB) {
	t.Helper()
	db.cmd = exec.Command(db.bin, "-config", db.conf)
	db.cmd.Stdout = db.log
	db.cmd.Stderr = db.log
	if err := db.cmd.Start(); err != nil {
		t.Fatalf("start influxd: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(db.URL() + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("influxd did not answer /ping within 30s: %v\n%s", err, db.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (db *InfluxDB) stop() {
	if db.cmd == nil || db.cmd.Process == nil {
		return
	}
	_ = db.cmd.Process.Signal(syscall.SIGCONT) // a frozen process cannot die of SIGKILL's cleanup otherwise
	_ = db.cmd.Process.Kill()
	_ = db.cmd.Wait()
	db.cmd = nil
}

// Freeze stops the process (SIGSTOP): connections are accepted by the
// kernel but requests hang, like a server that stopped answering.
func (db *InfluxDB) Freeze(t testing.TB) {
	t.Helper()
	if err := db.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze influxd: %v", err)
	}
}

// Thaw resumes a frozen influxd (SIGCONT).
func (db *InfluxDB) Thaw(t testing.TB) {
	t.Helper()
	if err := db.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("thaw influxd: %v", err)
	}
}

// Kill kills influxd with SIGKILL; its data directory stays.
func (db *InfluxDB) Kill(t testing.TB) {
	t.Helper()
	db.stop()
}

// Start starts a killed influxd again on the same port and data.
func (db *InfluxDB) Start(t testing.TB) {
	t.Helper()
	db.start(t)
}

// Series is one series of an InfluxQL result.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Query runs an InfluxQL query against database and returns its series.
func (db *InfluxDB) Query(t testing.TB, database, q string) []Series {
	t.Helper()
	series, err := db.TryQuery(database, q)
	if err != nil {
		t.Fatal(err)
	}
	return series
}

// TryQuery is Query returning its error, for polling.
func (db *InfluxDB) TryQuery(database, q string) ([]Series, error) {
	return InfluxQuery(&http.Client{Timeout: 30 * time.Second}, db.URL(), db.opts.AdminUser, db.opts.AdminPassword, database, q)
}

// InfluxQuery runs InfluxQL (one or more statements) on the InfluxDB 1.8
// at baseURL, as user when one is given, and returns the series of every
// statement's answer, times in nanoseconds.
func InfluxQuery(c *http.Client, baseURL, user, password, database, q string) ([]Series, error) {
	form := url.Values{"db": {database}, "q": {q}, "epoch": {"ns"}}
	req, err := http.NewRequest(http.MethodPost, baseURL+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxdb query %q: %w", q, err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Series []Series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("influxdb query %q: %s: decode: %w", q, resp.Status, err)
	}
	if out.Error != "" {
		return nil, fmt.Errorf("influxdb query %q: %s", q, out.Error)
	}
	var series []Series
	for _, r := range out.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("influxdb query %q: %s", q, r.Error)
		}
		series = append(series, r.Series...)
	}
	return series, nil
}

func (db *InfluxDB) Exec(t testing.TB, q string) {
	t.Helper()
	if _, err := db.TryQuery("", q); err != nil {
		t.Fatal(err)
	}
}

// Write posts line protocol to the 1.x write endpoint, bypassing the
// gateway (to set up conflicts).
func (db *InfluxDB) Write(t testing.TB, database, lines string) {
	t.Helper()
	q := url.Values{"db": {database}}
	if db.opts.AdminUser != "" {
		q.Set("u", db.opts.AdminUser)
		q.Set("p", db.opts.AdminPassword)
	}
	resp, err := http.Post(db.URL()+"/write?"+q.Encode(), "text/plain", strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("influxdb write: status %d", resp.StatusCode)
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
