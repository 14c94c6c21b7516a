// Package influxd runs a real InfluxDB 1.8 for a bench scenario — the
// influxd that make test-deps builds into .tools/bin — on kernel-chosen
// loopback ports with its data in a temporary directory, and asks it how
// many points it holds.
//
// A Server is started and stopped by one goroutine; its queries may be
// made from any. Its log is discarded: relaying it would cost the bench
// process CPU time, which for the forwarder bench is the figure measured.
package influxd

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/procstat"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// Database is the database every Server is started with.
const Database = "shelter"

// Server is a running influxd.
type Server struct {
	prog *proc.Program
	// URL is the base URL of the HTTP API, http://127.0.0.1:port.
	URL  string
	dir  string
	http *http.Client
}

// Start runs influxd (bin) and creates Database. It waits up to 30 s for
// the server to answer, trying other ports if the first ones were taken
// meanwhile.
func Start(ctx context.Context, bin string) (s *Server, err error) {
	dir, err := os.MkdirTemp("", "shelter-bench-influx-")
	if err != nil {
		return nil, fmt.Errorf("influxd: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	s = &Server{dir: dir, http: &http.Client{Timeout: time.Minute}}
	s.prog, err = proc.StartRetrying(ctx, func() (*proc.Program, error) {
		port, err := proc.FreePort()
		if err != nil {
			return nil, fmt.Errorf("influxd: pick a port: %w", err)
		}
		rpc, err := proc.FreePort()
		if err != nil {
			return nil, fmt.Errorf("influxd: pick a port: %w", err)
		}
		conf := filepath.Join(dir, "influxdb.conf")
		if err := os.WriteFile(conf, []byte(testpeer.InfluxConfig(dir, port, rpc, testpeer.InfluxOptions{})), 0o600); err != nil {
			return nil, fmt.Errorf("influxd: write config: %w", err)
		}
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
		p, err := proc.StartProgram("influxd", exec.Command(bin, "-config", conf), nil)
		if err != nil {
			return nil, fmt.Errorf("influxd: start %s: %w", bin, err)
		}
		return p, nil
	}, func(p *proc.Program) error {
		return p.WaitReady(ctx, 30*time.Second, 50*time.Millisecond, "not answering "+s.URL+"/ping", s.ping)
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.Query("CREATE DATABASE " + Database); err != nil {
		s.prog.Kill()
		return nil, err
	}
	return s, nil
}

func (s *Server) ping() error {
	resp, err := s.http.Get(s.URL + "/ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("/ping: %s", resp.Status)
	}
	return nil
}

// Stop kills influxd and removes its data.
func (s *Server) Stop() {
	s.prog.Kill()
	_ = os.RemoveAll(s.dir)
}

// Pid is influxd's process id.
func (s *Server) Pid() int { return s.prog.Pid() }

// CPU is influxd's CPU time so far, 0 if it cannot be read.
func (s *Server) CPU() time.Duration {
	d, err := procstat.CPU(s.Pid())
	if err != nil {
		return 0
	}
	return d
}

// Series is one series of a query's answer.
type Series = testpeer.Series

// Rows runs InfluxQL (one or more statements) in Database and returns
// the series of every statement's answer.
func (s *Server) Rows(q string) ([]Series, error) {
	return testpeer.InfluxQuery(s.http, s.URL, "", "", Database, q)
}

// Query runs InfluxQL and returns the numbers of every series' first row
// (after its time column).
func (s *Server) Query(q string) ([]float64, error) {
	series, err := s.Rows(q)
	if err != nil {
		return nil, err
	}
	var vals []float64
	for _, sr := range series {
		if len(sr.Values) == 0 {
			continue
		}
		for _, v := range sr.Values[0][1:] {
			if f, ok := v.(float64); ok {
				vals = append(vals, f)
			}
		}
	}
	return vals, nil
}

// Measurements lists the measurements in Database.
func (s *Server) Measurements() ([]string, error) {
	series, err := s.Rows("SHOW MEASUREMENTS")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, sr := range series {
		for _, row := range sr.Values {
			if len(row) > 0 {
				if n, ok := row[0].(string); ok {
					names = append(names, n)
				}
			}
		}
	}
	return names, nil
}

// Count is the number of points in the given measurements: the sum of
// count("value"), the field every reading has. (One statement per
// measurement: with a regular expression in FROM, InfluxDB counts only the
// fields of one type when the measurements' types differ.)
func (s *Server) Count(measurements ...string) (int, error) {
	if len(measurements) == 0 {
		return 0, nil
	}
	stmts := make([]string, len(measurements))
	for i, m := range measurements {
		stmts[i] = `SELECT count("value") FROM ` + quoteIdent(m)
	}
	vals, err := s.Query(strings.Join(stmts, "; "))
	total := 0
	for _, v := range vals {
		total += int(v)
	}
	return total, err
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
