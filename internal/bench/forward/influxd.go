package forward

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/procstat"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// influxd is an InfluxDB 1.8 started for one scenario, with a database
// "shelter" and its data in a temporary directory.
type influxd struct {
	*proc.Program
	url string
	dir string
}

func startInfluxd(bin string) (db *influxd, err error) {
	dir, err := os.MkdirTemp("", "shelter-bench-influx-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	rpc, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(conf, []byte(testpeer.InfluxConfig(dir, port, rpc, testpeer.InfluxOptions{})), 0o600); err != nil {
		return nil, err
	}
	// Its log is discarded: forwarding it would cost the bench process,
	// whose CPU time is the forwarder's figure, some of its own.
	p, err := proc.StartProgram("influxd", exec.Command(bin, "-config", conf), nil)
	if err != nil {
		return nil, fmt.Errorf("start influxd: %w", err)
	}
	db = &influxd{Program: p, url: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(db.url + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				break
			}
		}
		if time.Now().After(deadline) {
			db.Kill()
			return nil, fmt.Errorf("influxd did not answer within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := db.query("CREATE DATABASE shelter"); err != nil {
		db.Kill()
		return nil, err
	}
	return db, nil
}

// stop kills influxd and removes its data.
func (db *influxd) stop() {
	db.Kill()
	_ = os.RemoveAll(db.dir)
}

// cpu is influxd's CPU time so far, 0 if it cannot be read.
func (db *influxd) cpu() time.Duration {
	d, err := procstat.CPU(db.Pid())
	if err != nil {
		return 0
	}
	return d
}

// query runs InfluxQL and returns the first value of every series' first row.
func (db *influxd) query(q string) ([]float64, error) {
	resp, err := http.PostForm(db.url+"/query", url.Values{"db": {"shelter"}, "q": {q}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("influxdb %q: %w", q, err)
	}
	var vals []float64
	for _, r := range out.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("influxdb %q: %s", q, r.Error)
		}
		for _, s := range r.Series {
			for _, v := range s.Values[0][1:] {
				if f, ok := v.(float64); ok {
					vals = append(vals, f)
				}
			}
		}
	}
	return vals, nil
}

// count is the number of points InfluxDB holds in the bench's measurements.
// (One statement per measurement: a regular expression FROM counts only the
// fields of one type when measurements differ.)
func (db *influxd) count() (int, error) {
	vals, err := db.query(`SELECT count("value") FROM "temperature"; SELECT count("value") FROM "smoke"`)
	total := 0
	for _, v := range vals {
		total += int(v)
	}
	return total, err
}
