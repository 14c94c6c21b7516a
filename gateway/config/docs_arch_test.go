package config

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// The docs a newcomer reads first, relative to this package.
const (
	repoRoot     = "../.."
	readmePath   = repoRoot + "/README.md"
	apiDocPath   = repoRoot + "/docs/api.md"
	archDocPath  = repoRoot + "/docs/architecture.md"
	ruleRefTitle = "### Built-in rules"
)

// TestArchitectureDocsInStep keeps the architecture map, the README and the
// API reference true to the code: every `path/file.go: Name` they cite is
// declared there, every alarm id they show has the engine's shape, the
// README's rule reference lists exactly the rules the gateway runs by
// default, and the package tables list exactly the packages there are, each
// importing nothing above its layer.
func TestArchitectureDocsInStep(t *testing.T) {
	t.Run("code references name real code", func(t *testing.T) {
		decls := map[string]map[string]bool{} // file → declared names
		n := 0
		for _, doc := range []string{archDocPath, readmePath} {
			for _, ref := range codeRefs(t, doc) {
				n++
				names, ok := decls[ref.file]
				if !ok {
					var err error
					if names, err = declaredNames(filepath.Join(repoRoot, ref.file)); err != nil {
						t.Errorf("%s:%d: %q: %v", doc, ref.line, ref.text, err)
					}
					decls[ref.file] = names
				}
				if names != nil && !names[ref.name] {
					t.Errorf("%s:%d: %q: %s declares no function, method or type %s", doc, ref.line, ref.text, ref.file, ref.name)
				}
			}
		}
		if n < 50 {
			t.Errorf("found only %d references like `path/file.go: Type.Method` in %s and %s; has their form changed?", n, archDocPath, readmePath)
		}
	})

	t.Run("alarm ids have the engine's shape", func(t *testing.T) {
		for _, doc := range []string{readmePath, apiDocPath, archDocPath} {
			n := 0
			for i, line := range readLines(t, doc) {
				if strings.Contains(strings.ToLower(line), "self-alarm") {
					t.Errorf("%s:%d: %q: gateway faults are alarms like any other (/api/v1/alarms); there are no self-alarms", doc, i+1, strings.TrimSpace(line))
				}
				if m := oldFaultID.FindString(line); m != "" {
					t.Errorf("%s:%d: %q: %q is the old form; gateway fault alarms are <rule>@dev:gateway.<part>", doc, i+1, strings.TrimSpace(line), m)
				}
				for _, id := range alarmIDExamples(line) {
					// An id inside a URL path (…/alarms/<id>/ack) is the
					// path segment holding the '@'.
					if at := strings.Index(id, "@"); at >= 0 {
						if j := strings.Index(id[at:], "/"); j >= 0 {
							id = id[:at+j]
						}
						id = id[strings.LastIndex(id[:at], "/")+1:]
					}
					n++
					if !alarmIDShape.MatchString(id) {
						t.Errorf("%s:%d: alarm id example %q does not match %s (<rule>@dev:<device>, <rule>@zone:<zone> or <rule>@gateway)",
							doc, i+1, id, alarmIDShape)
					}
				}
			}
			if n == 0 {
				t.Errorf("%s: no alarm id examples (like camera-down@dev:gateway.camera.ward-cam) found; has it changed shape?", doc)
			}
		}
	})

	t.Run("README rule reference lists every rule the gateway runs", func(t *testing.T) {
		rows := ruleReference(t)
		want := map[string]engine.RuleConfig{}
		for _, r := range slices.Concat(engine.Builtin(), engine.GatewayRules()) {
			want[r.ID] = r
		}
		seen := map[string]bool{}
		for _, row := range rows {
			r, ok := want[row.id]
			switch {
			case seen[row.id]:
				t.Errorf("%s:%d: rule %q is listed twice", readmePath, row.line, row.id)
			case !ok:
				t.Errorf("%s:%d: rule %q is neither in engine.Builtin() nor in engine.GatewayRules()", readmePath, row.line, row.id)
			default:
				if row.severity != r.Severity {
					t.Errorf("%s:%d: rule %q: severity %q in the README, %q in the code", readmePath, row.line, row.id, row.severity, r.Severity)
				}
				if row.latched != r.Latched {
					t.Errorf("%s:%d: rule %q: the README says latched=%t, the code %t (write \"latched\" in its \"fires when\" exactly when it is)",
						readmePath, row.line, row.id, row.latched, r.Latched)
				}
			}
			seen[row.id] = true
		}
		for id := range want {
			if !seen[id] {
				t.Errorf("%s: the rule reference (%s) has no row for rule %q: add it with its threshold, severity and why", readmePath, ruleRefTitle, id)
			}
		}
	})

	t.Run("packages are in the layout and layer tables, imports go downwards", func(t *testing.T) {
		module, pkgs := modulePackages(t)
		if len(pkgs) < 30 {
			t.Fatalf("found only %d packages under %s; is the walk broken?", len(pkgs), repoRoot)
		}
		layout := readmeLayout(t)
		layers := layerTable(t)
		for p := range layout {
			if _, ok := pkgs[p]; !ok {
				t.Errorf("%s: the layout table lists %s, which is no package", readmePath, p)
			}
		}
		for p := range layers {
			if _, ok := pkgs[p]; !ok {
				t.Errorf("%s: the layer table lists %s, which is no package", archDocPath, p)
			}
		}
		for _, p := range slices.Sorted(maps.Keys(pkgs)) {
			if !layout[p] {
				t.Errorf("%s: the layout table (## Layout) does not list package %s: add it to its folder's row", readmePath, p)
			}
			rank, ok := layers[p]
			if !ok {
				t.Errorf("%s: the layer table does not list package %s: add it to the row of its layer (bottom, middle or top)", archDocPath, p)
				continue
			}
			for _, imp := range pkgs[p] {
				dep := strings.TrimPrefix(imp, module+"/")
				if r, ok := layers[dep]; ok && r > rank {
					t.Errorf("%s (%s) imports %s (%s): a package imports only its own layer or below (%s)",
						p, layerNames[rank], dep, layerNames[r], archDocPath)
				}
			}
		}
	})
}

// codeRef is one `path/file.go: Name` or `path/file.go: Type.Method` in a doc.
type codeRef struct {
	line             int
	text, file, name string
}

var codeRefPattern = regexp.MustCompile(`([A-Za-z0-9_][A-Za-z0-9_./-]*\.go): ([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)`)

// codeRefs returns the code references of the doc at path.
func codeRefs(t *testing.T, path string) []codeRef {
	t.Helper()
	var out []codeRef
	for i, line := range readLines(t, path) {
		for _, m := range codeRefPattern.FindAllStringSubmatch(line, -1) {
			out = append(out, codeRef{line: i + 1, text: m[0], file: m[1], name: m[2]})
		}
	}
	return out
}

// declaredNames parses a Go file and returns the names it declares at the
// top level: functions ("New"), types ("Store"), methods ("Store.Append")
// and the methods of its interface types ("Decoder.Decode").
func declaredNames(path string) (map[string]bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("no such file")
		}
		return nil, err
	}
	names := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				names[d.Name.Name] = true
				continue
			}
			if recv := receiverType(d.Recv.List[0].Type); recv != "" {
				names[recv+"."+d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				ts, ok := s.(*ast.TypeSpec)
				if !ok {
					continue
				}
				names[ts.Name.Name] = true
				if it, ok := ts.Type.(*ast.InterfaceType); ok {
					for _, m := range it.Methods.List {
						for _, n := range m.Names {
							names[ts.Name.Name+"."+n.Name] = true
						}
					}
				}
			}
		}
	}
	return names, nil
}

// receiverType returns the type name of a method receiver (T, *T, T[P]).
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// oldFaultID matches the gateway fault ids from before faults were alarms
// (camera-down:<id>, forward-stalled:<target>).
var oldFaultID = regexp.MustCompile(`\b(camera-down|forward-stalled|forward-auth):`)

// ruleRow is one row of the README's rule reference.
type ruleRow struct {
	line     int
	id       string
	severity string
	latched  bool
}

// ruleReference returns the rows of the tables in the README section
// ruleRefTitle (up to the next heading of level 2 or 3): id, the "fires
// when" cell (latched or not), severity.
func ruleReference(t *testing.T) []ruleRow {
	t.Helper()
	lines := readLines(t, readmePath)
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, ruleRefTitle) })
	if start < 0 {
		t.Fatalf("%s: no section %q", readmePath, ruleRefTitle)
	}
	var rows []ruleRow
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "## ") || strings.HasPrefix(l, "### ") {
			break
		}
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if len(cells) < 4 {
			t.Errorf("%s:%d: a rule row needs id, fires when, severity and why: %q", readmePath, i+1, l)
			continue
		}
		rows = append(rows, ruleRow{
			line:     i + 1,
			id:       strings.Trim(strings.TrimSpace(cells[0]), "`"),
			latched:  strings.Contains(strings.ToLower(cells[1]), "latched"),
			severity: strings.Trim(strings.TrimSpace(cells[2]), "`"),
		})
	}
	if len(rows) < 10 {
		t.Fatalf("%s: only %d rule rows under %q; has the table changed shape?", readmePath, len(rows), ruleRefTitle)
	}
	return rows
}

// modulePackages returns the module path and, for every package of the
// module (by its path inside the repository), the packages its non-test
// files import. Folders with a go.mod of their own (third_party),
// testdata and the folders go.mod ignores (node_modules) are not part of
// the module.
func modulePackages(t *testing.T) (string, map[string][]string) {
	t.Helper()
	gomod := readLines(t, repoRoot+"/go.mod")
	module := ""
	for _, l := range gomod {
		if m, ok := strings.CutPrefix(l, "module "); ok {
			module = strings.TrimSpace(m)
			break
		}
	}
	if module == "" {
		t.Fatalf("%s/go.mod: no module line", repoRoot)
	}
	pkgs := map[string][]string{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != repoRoot && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			if path != repoRoot {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repoRoot, filepath.Dir(path))
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		imports := pkgs[rel]
		for _, s := range f.Imports {
			p, err := strconv.Unquote(s.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: import %s: %w", path, s.Path.Value, err)
			}
			if strings.HasPrefix(p, module+"/") && !slices.Contains(imports, p) {
				imports = append(imports, p)
			}
		}
		pkgs[rel] = imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return module, pkgs
}

// readmeLayout returns the packages the README's layout table names: in
// each row of a Go folder, every `name` in the second cell, inside that
// folder.
func readmeLayout(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	inLayout := false
	for _, l := range readLines(t, readmePath) {
		if strings.HasPrefix(l, "## ") {
			inLayout = strings.HasPrefix(l, "## Layout")
			continue
		}
		if !inLayout || !strings.HasPrefix(l, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if len(cells) < 2 {
			continue
		}
		folder := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if !slices.Contains([]string{"gateway/", "ingest/", "rules/", "inspection/", "video/", "internal/", "dashboards/", "packaging/"}, folder) {
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			if pkgName.MatchString(m[1]) {
				out[folder+m[1]] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no packages in the ## Layout table", readmePath)
	}
	return out
}

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	pkgName    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$`)
)

// layerNames are the layers of docs/architecture.md, lowest first.
var layerNames = []string{"bottom", "middle", "top"}

// layerTable returns each package's layer (an index in layerNames) from
// the rows "| bottom | `pkg`, ... |" of docs/architecture.md.
func layerTable(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for i, l := range readLines(t, archDocPath) {
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if !strings.HasPrefix(l, "| ") || len(cells) < 2 {
			continue
		}
		rank := slices.Index(layerNames, strings.TrimSpace(cells[0]))
		if rank < 0 {
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			if prev, dup := out[m[1]]; dup {
				t.Errorf("%s:%d: package %s is in the layer table twice (%s and %s)", archDocPath, i+1, m[1], layerNames[prev], layerNames[rank])
			}
			out[m[1]] = rank
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no layer table (rows | bottom |, | middle |, | top |)", archDocPath)
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}
