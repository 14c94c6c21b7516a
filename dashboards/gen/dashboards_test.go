//lint:file-ignore SA1019 the classic dashboard model is what Grafana's file provisioning reads; the SDK marks it deprecated in favour of the v2 schema

package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"go.yaml.in/yaml/v3"
)

const (
	jsonDir         = "../json"
	datasourcesYAML = "../provisioning/datasources/shelterwatch.yaml"
	providersYAML   = "../provisioning/dashboards/shelterwatch.yaml"
)

// committed returns the dashboards in jsonDir by their path below it.
func committed(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(jsonDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(jsonDir, p)
		out[filepath.ToSlash(rel)] = raw
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no dashboards in %s", jsonDir)
	}
	return out
}

func TestCommittedJSONIsGenerated(t *testing.T) {
	files, err := All()
	if err != nil {
		t.Fatal(err)
	}
	have := committed(t)
	for _, f := range files {
		p := filepath.ToSlash(f.Path())
		if !bytes.Equal(have[p], f.JSON) {
			t.Errorf("%s differs from what the generator produces: run go run ./dashboards/gen/cmd/dashgen -out dashboards/json", p)
		}
		delete(have, p)
	}
	for p := range have {
		t.Errorf("%s is not produced by the generator: delete it or add it to gen.All", p)
	}
}

// roundTrip decodes raw into the SDK's dashboard model with plain
// json.Unmarshal and encodes it again; a field the model does not know is
// lost and shows up as a difference.
func roundTrip(raw []byte) error {
	Register()
	var d dashboard.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	again, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	var want, got map[string]any
	if err := json.Unmarshal(raw, &want); err != nil {
		return err
	}
	if err := json.Unmarshal(again, &got); err != nil {
		return err
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("the dashboard model does not hold the JSON: %s", firstDiff("", want, got))
	}
	return nil
}

// firstDiff names the first path where a and b differ.
func firstDiff(path string, a, b any) string {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return path + ": type differs"
		}
		for k := range a {
			if _, ok := bm[k]; !ok {
				return path + "." + k + ": dropped"
			}
			if d := firstDiff(path+"."+k, a[k], bm[k]); d != "" {
				return d
			}
		}
		for k := range bm {
			if _, ok := a[k]; !ok {
				return path + "." + k + ": added"
			}
		}
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return path + ": length differs"
		}
		for i := range a {
			if d := firstDiff(fmt.Sprintf("%s[%d]", path, i), a[i], bs[i]); d != "" {
				return d
			}
		}
	default:
		if !reflect.DeepEqual(a, b) {
			return fmt.Sprintf("%s: %v != %v", path, a, b)
		}
	}
	return ""
}

func TestRoundTripThroughSDKModel(t *testing.T) {
	for p, raw := range committed(t) {
		t.Run(p, func(t *testing.T) {
			if err := roundTrip(raw); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("a typo is caught", func(t *testing.T) {
		raw := committed(t)["fire-safety/fire-safety-inspection.json"]
		bad := bytes.Replace(raw, []byte(`"refresh"`), []byte(`"refesh"`), 1)
		if err := roundTrip(bad); err == nil || !strings.Contains(err.Error(), "refesh") {
			t.Fatalf("round trip of a dashboard with refesh: %v, want the dropped field named", err)
		}
	})
}

// The parts of a dashboard the invariants look at.
type dashJSON struct {
	ID        *int        `json:"id"`
	UID       string      `json:"uid"`
	Title     string      `json:"title"`
	Panels    []panelJSON `json:"panels"`
	Templates struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

type panelJSON struct {
	ID         *int    `json:"id"`
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Datasource *dsJSON `json:"datasource"`
	GridPos    struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []targetJSON `json:"targets"`
}

type dsJSON struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type targetJSON struct {
	RefID      string  `json:"refId"`
	Datasource *dsJSON `json:"datasource"`
	Query      string  `json:"query"`
	Expr       string  `json:"expr"`
	QueryType  string  `json:"queryType"`
	RawQuery   bool    `json:"rawQuery"`
}

func dashboards(t *testing.T) map[string]dashJSON {
	t.Helper()
	out := map[string]dashJSON{}
	for p, raw := range committed(t) {
		var d dashJSON
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[p] = d
	}
	return out
}

func TestDashboardInvariants(t *testing.T) {
	uids := map[string]string{}
	for p, d := range dashboards(t) {
		t.Run(p, func(t *testing.T) {
			if d.ID != nil {
				t.Errorf("has an id (%d): Grafana assigns ids, provisioned dashboards are found by uid", *d.ID)
			}
			if d.UID == "" || len(d.UID) > 40 {
				t.Errorf("uid %q: needs 1 to 40 characters", d.UID)
			}
			if prev, dup := uids[d.UID]; dup {
				t.Errorf("uid %q is also the uid of %s", d.UID, prev)
			}
			uids[d.UID] = p
			ids := map[int]bool{}
			for i, pa := range d.Panels {
				switch {
				case pa.ID == nil:
					t.Errorf("panel %q has no id", pa.Title)
				case ids[*pa.ID]:
					t.Errorf("panel %q: id %d is used twice", pa.Title, *pa.ID)
				default:
					ids[*pa.ID] = true
				}
				g := pa.GridPos
				if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
					t.Errorf("panel %q: gridPos %+v is off the 24-column grid", pa.Title, g)
				}
				for _, o := range d.Panels[:i] {
					h := o.GridPos
					if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
						t.Errorf("panels %q and %q overlap", pa.Title, o.Title)
					}
				}
				refs := map[string]bool{}
				for _, tg := range pa.Targets {
					if tg.RefID == "" || refs[tg.RefID] {
						t.Errorf("panel %q: refId %q empty or used twice", pa.Title, tg.RefID)
					}
					refs[tg.RefID] = true
				}
			}
		})
	}
}

// provisioned returns the data sources of the provisioning file by uid.
func provisioned(t *testing.T) map[string]datasourceConf {
	t.Helper()
	var f datasourcesFile
	decodeYAML(t, datasourcesYAML, &f)
	out := map[string]datasourceConf{}
	for _, ds := range f.Datasources {
		out[ds.UID] = ds
	}
	return out
}

var (
	variableRef  = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
	builtinMacro = map[string]bool{"timeFilter": true, "__interval": true, "__rate_interval": true, "__range": true}
)

func TestQueriesUseProvisionedSourcesAndDefinedVariables(t *testing.T) {
	sources := provisioned(t)
	for p, d := range dashboards(t) {
		t.Run(p, func(t *testing.T) {
			defined := map[string]bool{}
			for _, v := range d.Templates.List {
				defined[v.Name] = true
			}
			check := func(where string, ds *dsJSON) {
				if ds == nil {
					if where != "text" {
						t.Errorf("%s: no datasource", where)
					}
					return
				}
				conf, ok := sources[ds.UID]
				if !ok {
					t.Errorf("%s: datasource uid %q is not provisioned in %s", where, ds.UID, datasourcesYAML)
				} else if conf.Type != ds.Type {
					t.Errorf("%s: datasource %q has type %q, provisioned as %q", where, ds.UID, ds.Type, conf.Type)
				}
			}
			for _, pa := range d.Panels {
				if pa.Type == "text" {
					continue
				}
				check(fmt.Sprintf("panel %q", pa.Title), pa.Datasource)
				for _, tg := range pa.Targets {
					where := fmt.Sprintf("panel %q target %s", pa.Title, tg.RefID)
					check(where, tg.Datasource)
					if tg.Datasource != nil && pa.Datasource != nil && tg.Datasource.UID != pa.Datasource.UID {
						t.Errorf("%s: datasource %q, the panel's is %q", where, tg.Datasource.UID, pa.Datasource.UID)
					}
					for _, m := range variableRef.FindAllStringSubmatch(tg.Query+" "+tg.Expr, -1) {
						name := m[1] + m[2]
						if !defined[name] && !builtinMacro[name] {
							t.Errorf("%s: uses $%s, which the dashboard does not define", where, name)
						}
					}
					switch {
					case tg.Datasource == nil:
					case tg.Datasource.UID == GatewayUID:
						if err := (GatewayQuery{QueryType: tg.QueryType}).Validate(); err != nil {
							t.Errorf("%s: %v", where, err)
						}
					case tg.Datasource.UID == InfluxQLUID:
						if !tg.RawQuery || !strings.Contains(tg.Query, "$timeFilter") {
							t.Errorf("%s: an InfluxQL target must be raw and filtered by $timeFilter: %q", where, tg.Query)
						}
					case tg.Datasource.UID == FluxUID:
						if !strings.Contains(tg.Query, "v.timeRangeStart") {
							t.Errorf("%s: a Flux target must use the dashboard's range: %q", where, tg.Query)
						}
					case tg.Datasource.UID == PrometheusUID:
						if tg.Expr == "" {
							t.Errorf("%s: no expr", where)
						}
					}
				}
			}
		})
	}
}

// exportedMetrics returns the metric names the gateway's code declares.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	literal := regexp.MustCompile(`"(shelterwatch_[a-z_]+)"`)
	prefixed := regexp.MustCompile(`"(shelterwatch_[a-z]+_)"\+name`)
	short := regexp.MustCompile(`d\("([a-z_]+)",`)
	err := filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "dashboards") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllSubmatch(raw, -1) {
			names[string(m[1])] = true
		}
		if pre := prefixed.FindSubmatch(raw); pre != nil {
			for _, m := range short.FindAllSubmatch(raw, -1) {
				names[string(pre[1])+string(m[1])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestPrometheusPanelsUseExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	if !exported["shelterwatch_forward_backlog_points"] || !exported["shelterwatch_ingest_readings_total"] {
		t.Fatalf("the metric scan found %d names and misses known ones; has the code's form changed?", len(exported))
	}
	metric := regexp.MustCompile(`shelterwatch_[a-z_]+`)
	n := 0
	for p, d := range dashboards(t) {
		for _, pa := range d.Panels {
			for _, tg := range pa.Targets {
				for _, name := range metric.FindAllString(tg.Expr, -1) {
					n++
					base := name
					for _, suf := range []string{"_bucket", "_sum", "_count"} {
						if b, ok := strings.CutSuffix(name, suf); ok && exported[b] {
							base = b
						}
					}
					if !exported[base] {
						t.Errorf("%s: panel %q: the gateway exports no metric %s", p, pa.Title, name)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no Prometheus targets found")
	}
}

// Grafana's provisioning config, as far as these files use it.
type datasourcesFile struct {
	APIVersion  int              `yaml:"apiVersion"`
	Prune       bool             `yaml:"prune"`
	Datasources []datasourceConf `yaml:"datasources"`
}

type datasourceConf struct {
	Name           string            `yaml:"name"`
	UID            string            `yaml:"uid"`
	Type           string            `yaml:"type"`
	Access         string            `yaml:"access"`
	URL            string            `yaml:"url"`
	User           string            `yaml:"user"`
	Database       string            `yaml:"database"`
	IsDefault      bool              `yaml:"isDefault"`
	JSONData       map[string]any    `yaml:"jsonData"`
	SecureJSONData map[string]string `yaml:"secureJsonData"`
	Editable       bool              `yaml:"editable"`
}

type providersFile struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		OrgID                 int    `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		FolderUID             string `yaml:"folderUid"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var envRef = regexp.MustCompile(`^\$(\{[A-Z][A-Z0-9_]*\}|[A-Z][A-Z0-9_]*)$`)

func TestProvisioningFiles(t *testing.T) {
	t.Run("datasources", func(t *testing.T) {
		var f datasourcesFile
		decodeYAML(t, datasourcesYAML, &f)
		if f.APIVersion != 1 {
			t.Errorf("apiVersion %d, want 1", f.APIVersion)
		}
		want := map[string]string{InfluxQLUID: InfluxType, FluxUID: InfluxType, GatewayUID: GatewayType, PrometheusUID: PrometheusType}
		got := map[string]string{}
		for _, ds := range f.Datasources {
			got[ds.UID] = ds.Type
			for k, v := range ds.SecureJSONData {
				if !envRef.MatchString(v) {
					t.Errorf("%s: secureJsonData.%s is not an $ENV reference", ds.UID, k)
				}
			}
			if ds.URL != "" && !envRef.MatchString(ds.URL) {
				t.Errorf("%s: url %q is not an $ENV reference", ds.UID, ds.URL)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("provisioned data sources %v, want %v", got, want)
		}
		if v, _ := provisioned(t)[FluxUID].JSONData["version"].(string); v != "Flux" {
			t.Errorf("%s: jsonData.version %q, want Flux", FluxUID, v)
		}
		gw := provisioned(t)[GatewayUID]
		var plugin struct {
			Gateways []struct {
				Name string `json:"name"`
				URL  string `json:"url"`
			} `json:"gateways"`
		}
		raw, _ := json.Marshal(gw.JSONData)
		if err := strictJSON(raw, &plugin); err != nil || len(plugin.Gateways) == 0 {
			t.Fatalf("%s: jsonData %s: want {gateways: [{name, url}]} (%v)", GatewayUID, raw, err)
		}
		for _, g := range plugin.Gateways {
			if g.Name == "" || !envRef.MatchString(g.URL) {
				t.Errorf("%s: gateway %+v needs a name and an $ENV url", GatewayUID, g)
			}
			if _, ok := gw.SecureJSONData["token_"+g.Name]; !ok {
				t.Errorf("%s: gateway %q has no secureJsonData.token_%s", GatewayUID, g.Name, g.Name)
			}
		}
	})
	t.Run("dashboards", func(t *testing.T) {
		var f providersFile
		decodeYAML(t, providersYAML, &f)
		if f.APIVersion != 1 || len(f.Providers) != 1 {
			t.Fatalf("want apiVersion 1 and one provider: %+v", f)
		}
		p := f.Providers[0]
		if p.Type != "file" || p.Options.Path == "" || !p.Options.FoldersFromFilesStructure || !p.DisableDeletion || p.AllowUIUpdates {
			t.Errorf("provider %+v: want type file with a path, foldersFromFilesStructure, disableDeletion, no UI updates", p)
		}
		if p.Folder != "" || p.FolderUID != "" {
			t.Errorf("folder and folderUid must be empty with foldersFromFilesStructure")
		}
	})
	t.Run("unknown keys are refused", func(t *testing.T) {
		var f providersFile
		dec := yaml.NewDecoder(strings.NewReader("apiVersion: 1\nproviders:\n  - name: x\n    typo: file\n"))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err == nil {
			t.Fatal("a provider with an unknown key decoded")
		}
	})
	t.Run("folders", func(t *testing.T) {
		var folders []string
		for p := range committed(t) {
			folders = append(folders, strings.Split(p, "/")[0])
		}
		slices.Sort(folders)
		if got := slices.Compact(folders); !slices.Equal(got, []string{"civil-affairs", "fire-safety", "gateway-ops"}) {
			t.Errorf("folders %v", got)
		}
	})
}
