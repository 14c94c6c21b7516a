// Package gen builds ShelterWatch's Grafana dashboards as code with the
// Grafana foundation SDK and writes them as the JSON files Grafana's file
// provisioning reads (dashboards/json/<folder>/<name>.json, one folder per
// audience).
//
// The JSON is committed: Grafana reads files, not Go. After changing a
// dashboard here, regenerate with
//
//	go run ./dashboards/gen/cmd/dashgen -out dashboards/json
//
// and the golden test in this package fails until the files match.
//
// Queries: InfluxQL (data source shelterwatch-influxql) is the default,
// because it runs on InfluxDB 1.8 and, through the DBRP mapping, on 2.x.
// Panels InfluxQL cannot express (hours of the day, time-weighted shares)
// use Flux (shelterwatch-flux). Alarms, cameras and remote-video sessions
// are not in InfluxDB; they come from the gateway through the ShelterWatch
// data source plugin. The gateway-operations dashboard reads the gateway's
// Prometheus metrics.
package gen

//lint:file-ignore SA1019 the classic dashboard model is what Grafana's file provisioning reads; the SDK marks it deprecated in favour of the v2 schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// File is one generated dashboard.
type File struct {
	Folder string // fire-safety, civil-affairs or gateway-ops
	Name   string // file name without .json
	JSON   []byte
}

// Path is where the file goes below the output directory.
func (f File) Path() string { return filepath.Join(f.Folder, f.Name+".json") }

// All builds every dashboard.
func All() ([]File, error) {
	var out []File
	for _, d := range []struct {
		folder, name string
		build        func() *dashboard.DashboardBuilder
	}{
		{"fire-safety", "fire-safety-inspection", fireSafety},
		{"civil-affairs", "civil-affairs-supervision", supervision},
		{"gateway-ops", "gateway-operations", gatewayOps},
	} {
		dash, err := d.build().Build()
		if err != nil {
			return nil, fmt.Errorf("dashboards: build %s: %w", d.name, err)
		}
		raw, err := json.MarshalIndent(dash, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("dashboards: encode %s: %w", d.name, err)
		}
		out = append(out, File{Folder: d.folder, Name: d.name, JSON: append(raw, '\n')})
	}
	return out, nil
}

// Write builds every dashboard into dir.
func Write(dir string) error {
	files, err := All()
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Path())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("dashboards: %w", err)
		}
		if err := os.WriteFile(p, f.JSON, 0o644); err != nil {
			return fmt.Errorf("dashboards: %w", err)
		}
	}
	return nil
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// layout places panels left to right on Grafana's 24-column grid and
// starts a new line when a panel does not fit.
type layout struct {
	x, y, lineH uint32
	id          uint32
}

func (l *layout) next(w, h uint32) (uint32, dashboard.GridPos) {
	if l.x+w > 24 {
		l.x, l.y, l.lineH = 0, l.y+l.lineH, 0
	}
	pos := dashboard.GridPos{X: l.x, Y: l.y, W: w, H: h}
	l.x += w
	l.lineH = max(l.lineH, h)
	l.id++
	return l.id, pos
}

// target shortcuts.

func influxQL(ref, query string, table bool) cog.Builder[variants.Dataquery] {
	ds := Ref(InfluxType, InfluxQLUID)
	q := InfluxQuery{RefId: ref, Datasource: &ds, Query: query, RawQuery: true, ResultFormat: "time_series"}
	if table {
		q.ResultFormat = "table"
	}
	return built{q}
}

func flux(ref, query string) cog.Builder[variants.Dataquery] {
	ds := Ref(InfluxType, FluxUID)
	return built{InfluxQuery{RefId: ref, Datasource: &ds, Query: query}}
}

func gateway(ref, queryType string) cog.Builder[variants.Dataquery] {
	ds := Ref(GatewayType, GatewayUID)
	return built{GatewayQuery{RefId: ref, Datasource: &ds, QueryType: queryType}}
}
