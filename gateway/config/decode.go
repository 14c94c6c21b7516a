package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // facility time zones must resolve on boxes without /usr/share/zoneinfo
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the configuration file at path (see Parse). Relative
// file paths in it are made relative to the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c, err := parse(data, path, dir)
	if err != nil {
		return nil, err
	}
	c.src.path = filepath.Join(dir, filepath.Base(path))
	return c, nil
}

// Path is the file the config was loaded from, absolute ("" when it was
// parsed from bytes).
func (c *Config) Path() string {
	if c.src == nil {
		return ""
	}
	return c.src.path
}

// Parse decodes and validates a configuration file; name is the file name
// used in error messages. Relative file paths stay relative to the working
// directory.
//
// The error, when not nil, is Errors: every problem in the file in line
// order (a YAML syntax error stops parsing and is reported alone). On error
// the Config is nil.
func Parse(data []byte, name string) (*Config, error) {
	return parse(data, name, "")
}

func parse(data []byte, name, baseDir string) (*Config, error) {
	root, serr := parseYAML(data, name)
	if serr != nil {
		return nil, Errors{serr}
	}
	if root != nil && root.Kind != yaml.MappingNode && !isNull(root) {
		return nil, Errors{{File: name, Line: root.Line,
			Msg: "want a mapping of sections (facility, zones, devices...), got " + describeNode(root)}}
	}
	c := &Config{src: &source{file: name, lines: map[string]int{}, set: map[string]bool{}}}
	d := &decoder{src: c.src, expanding: map[*yaml.Node]bool{}}
	if root != nil {
		d.decode(root, reflect.ValueOf(c).Elem(), "", root.Line)
	}
	if d.overBudget {
		return nil, finish(d.errs, name)
	}
	c.applyDefaults()
	c.resolvePaths(baseDir)
	if loc, err := loadLocation(c.Facility.Timezone); err == nil {
		c.Facility.Location = loc
	}

	errs := d.errs
	for _, e := range c.validate() {
		if !d.reported(e.Key) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, finish(errs, name)
	}
	// Which keys were set served the defaults, all applied now, and the
	// file has been validated: at 10,000 devices the two maps hold
	// 150,000 key paths (about 5 MB) the gateway would carry for its
	// whole life. A later Validate (tests, tools that change a loaded
	// config) finds its lines again from the file's bytes.
	c.src.set, c.src.lines, c.src.data = nil, nil, slices.Clone(data)
	return c, nil
}

// finish sorts errs and cuts them to maxErrors.
func finish(errs Errors, name string) Errors {
	sortErrors(errs)
	if len(errs) > maxErrors {
		more := len(errs) - maxErrors
		errs = append(errs[:maxErrors:maxErrors], &Error{File: name, Msg: fmt.Sprintf("%d more problems not shown", more)})
	}
	return errs
}

// source remembers where keys were in the file.
type source struct {
	file string
	path string // absolute, when loaded from a file
	// lines maps a key path ("devices[2].zone", "zones[1]") to the line
	// of the key or list item. Dropped once the file is loaded, and made
	// again from data when a line is asked for.
	lines map[string]int
	data  []byte
	// set holds the key paths present with a non-null value.
	set map[string]bool
}

// line returns the line of path or, when path is not in the file, of its
// nearest ancestor that is; 0 when none is.
func (s *source) line(path string) int {
	if s == nil {
		return 0
	}
	if s.lines == nil && s.data != nil {
		s.lines = linesOf(s.data, s.file)
	}
	for path != "" {
		if l, ok := s.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

func (s *source) isSet(path string) bool { return s != nil && s.set[path] }

// linesOf decodes data again for the lines of its keys.
func linesOf(data []byte, file string) map[string]int {
	src := &source{file: file, lines: map[string]int{}, set: map[string]bool{}}
	root, serr := parseYAML(data, file)
	if serr != nil || root == nil {
		return src.lines
	}
	d := &decoder{src: src, expanding: map[*yaml.Node]bool{}}
	d.decode(root, reflect.ValueOf(&Config{}).Elem(), "", root.Line)
	return src.lines
}

// parentPath strips the last element of a key path: "devices[2].zone" →
// "devices[2]" → "devices" → "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

var syntaxLineRE = regexp.MustCompile(`(?s)^yaml: line ([0-9]+): (.*)$`)

// parseYAML parses data into a node tree; nil for an empty file.
func parseYAML(data []byte, file string) (root *yaml.Node, serr *Error) {
	doc, err := parseDocument(data)
	if err != nil {
		line, msg := syntaxLine(data, err)
		return nil, &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
	}
	if doc == nil {
		return nil, nil
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return doc, nil
}

// errSecondDocument is returned by parseDocument for a stream of several
// documents.
type errSecondDocument struct{ line int }

func (e errSecondDocument) Error() string { return "" }

// parseDocument parses the one YAML document in data; nil for none.
func parseDocument(data []byte) (doc *yaml.Node, err error) {
	defer func() {
		// The YAML parser reports errors by panicking internally and
		// recovering; should one ever escape, bad input must still be
		// only an error.
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, errSecondDocument{extra.Line}
	}
	return &n, nil
}

// maxSyntaxScan bounds the search for a syntax error's line, which parses
// every prefix of the file: lines × bytes. A 500-line config is well within.
const maxSyntaxScan = 64 << 20

// syntaxLine returns the line and message of a YAML syntax error.
//
// The parser's own line numbers are those of a "context" mark, sometimes
// 0-based and sometimes not, and missing on the first line. So the line is
// found instead as the first line at which a prefix of the file fails with
// the same message; the parser's number is the fallback.
func syntaxLine(data []byte, err error) (int, string) {
	var second errSecondDocument
	if errors.As(err, &second) {
		return second.line, "a second YAML document: the file must hold exactly one"
	}
	line, msg := splitSyntaxError(err)
	if (bytes.Count(data, []byte("\n"))+1)*len(data) > maxSyntaxScan {
		return line, msg
	}
	end := 0
	for k := 1; end < len(data); k++ {
		if i := bytes.IndexByte(data[end:], '\n'); i >= 0 {
			end += i + 1
		} else {
			end = len(data)
		}
		if _, perr := parseDocument(data[:end]); perr != nil {
			if _, pmsg := splitSyntaxError(perr); pmsg == msg {
				return k, msg
			}
		}
	}
	return line, msg
}

func splitSyntaxError(err error) (int, string) {
	msg := err.Error()
	if m := syntaxLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// maxNodes bounds the work of decoding: a config has a few thousand nodes,
// but aliases can make a small file expand exponentially.
const maxNodes = 200_000

// maxErrors bounds the problems reported for one file.
const maxErrors = 100

// decoder decodes a node tree into a struct strictly, by reflection over the
// yaml field tags, recording every problem with its key path and line.
type decoder struct {
	src  *source
	errs Errors
	// errKeys are the key paths that had an error, so that validation does
	// not report them a second time (a value of the wrong type is also
	// missing).
	errKeys    map[string]bool
	nodes      int
	overBudget bool
	// expanding holds the anchors being decoded, to catch an alias inside
	// its own anchor.
	expanding map[*yaml.Node]bool
}

func (d *decoder) errorf(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.src.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	if d.errKeys == nil {
		d.errKeys = map[string]bool{}
	}
	d.errKeys[key] = true
}

// reported reports whether key, or a key it is part of, had a decoding
// error.
func (d *decoder) reported(key string) bool {
	for ; key != ""; key = parentPath(key) {
		if d.errKeys[key] {
			return true
		}
	}
	return false
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// decode decodes n into v; path and line name the key n is the value of.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, line int) {
	if d.overBudget {
		return
	}
	if d.nodes++; d.nodes > maxNodes {
		d.overBudget = true
		d.errorf(line, path, "document too large: more than %d values once aliases are expanded", maxNodes)
		return
	}
	if n.Kind == yaml.AliasNode {
		if d.expanding[n.Alias] || n.Alias == nil {
			d.errorf(line, path, "alias *%s is used inside its own anchor", n.Value)
			return
		}
		d.expanding[n.Alias] = true
		d.decode(n.Alias, v, path, line)
		delete(d.expanding, n.Alias)
		return
	}
	if isNull(n) {
		return // absent: the zero value, defaults apply
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.wrongType(n, v.Type(), path, line)
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(line, path, "%s", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path, line)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.wrongType(n, v.Type(), path, line)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, el := range n.Content {
			ep := path + "[" + strconv.Itoa(i) + "]"
			d.src.lines[ep] = el.Line
			d.decode(el, s.Index(i), ep, el.Line)
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.wrongType(n, v.Type(), path, line)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		switch strings.ToLower(n.Value) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.wrongType(n, v.Type(), path, line)
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			d.wrongType(n, v.Type(), path, line)
			return
		}
		i, err := strconv.ParseInt(n.Value, 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange) || (err == nil && v.OverflowInt(i)):
			d.errorf(line, path, "integer %s out of range", n.Value)
		case err != nil:
			d.wrongType(n, v.Type(), path, line)
		default:
			v.SetInt(i)
		}
	default:
		// The Config types are fixed; a field of another type is a bug
		// that the tests catch, not something input can cause.
		panic(fmt.Sprintf("config: no decoding for %s at %s", v.Type(), path))
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, v.Type(), path, line)
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "a key must be a word, got %s", describeNode(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k.Line, joinKey(path, k.Value), "merge keys (<<) are not supported; write the keys out")
			continue
		}
		kp := joinKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, kp, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			d.errorf(k.Line, kp, "unknown key%s", suggest(k.Value, fields))
			continue
		}
		d.src.lines[kp] = k.Line
		if !isNull(val) {
			d.src.set[kp] = true
		}
		d.decode(val, v.Field(fi), kp, k.Line)
	}
}

func (d *decoder) wrongType(n *yaml.Node, t reflect.Type, path string, line int) {
	d.errorf(line, path, "want %s, got %s", describeType(t), describeNode(n))
}

// isNull reports whether n is an empty value (`key:`, `key: ~`,
// `key: null`), following aliases.
func isNull(n *yaml.Node) bool {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// yamlFields maps the YAML keys of struct type t to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		m[name] = i
	}
	return m
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey appends key to path: "devices[2]" + "zone" → "devices[2].zone";
// keys that are not plain words are quoted: `zones[0]["a b"]`.
func joinKey(path, key string) string {
	if !plainKeyRE.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return "a duration"
	case reflect.TypeFor[ByteSize]():
		return "a byte size"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64:
		return "an integer"
	}
	return "a string"
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return quote(n.Value)
}

// maxQuoted bounds the characters of a value quoted in a message.
const maxQuoted = 60

// quote quotes a value from the file for a message, cut to maxQuoted
// characters.
func quote(s string) string {
	if utf8.RuneCountInString(s) > maxQuoted {
		s = string([]rune(s)[:maxQuoted]) + "…"
	}
	return strconv.Quote(s)
}

// suggest returns " (did you mean X?)" for the known key closest to key, when
// it is close enough to be a typo.
func suggest(key string, fields map[string]int) string {
	if len(key) > 64 {
		return ""
	}
	best, bestDist := "", min(len(key)/3, 2)+1
	for name := range fields {
		if dist := editDistance(key, name); dist < bestDist || (dist == bestDist && best != "" && name < best) {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the optimal string alignment distance between a and b, in
// bytes: insertions, deletions, substitutions and swaps of neighbours.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// applyDefaults fills in the keys the file leaves out (see the field
// comments). A key present with a zero value keeps it, for Validate to
// reject, except strings, where "" means the default (and
// broker.embedded.listen, where an explicit "" disables the listener).
func (c *Config) applyDefaults() {
	def := func(path string, p *int, v int) {
		if !c.src.isSet(path) {
			*p = v
		}
	}
	defDur := func(path string, p *Duration, v time.Duration) {
		if !c.src.isSet(path) {
			*p = Duration(v)
		}
	}
	defSize := func(path string, p *ByteSize, v int64) {
		if !c.src.isSet(path) {
			*p = ByteSize(v)
		}
	}
	defStr := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}

	c.videoDefaults()
	for i := range c.Devices {
		dev := &c.Devices[i]
		defDur("devices["+strconv.Itoa(i)+"].offline_after", &dev.OfflineAfter, DefaultOfflineAfter(dev.Kind))
	}

	b := &c.Broker
	if b.Mode == "" {
		b.Mode = ModeEmbedded
	}
	if !c.src.isSet("broker.embedded.listen") {
		b.Embedded.Listen = DefaultEmbeddedListen
	}
	defSize("broker.embedded.max_packet_bytes", &b.Embedded.MaxPacketBytes, DefaultMaxPacketBytes)
	defDur("broker.embedded.connect_timeout", &b.Embedded.ConnectTimeout, DefaultConnectTimeout)
	def("broker.embedded.max_clients", &b.Embedded.MaxClients, DefaultMaxClients)
	def("broker.embedded.max_clients_per_address", &b.Embedded.MaxClientsPerAddress, DefaultMaxClientsPerIP)
	defDur("broker.embedded.max_session_expiry", &b.Embedded.MaxSessionExpiry, DefaultSessionExpiry)
	def("broker.embedded.max_sessions_per_user", &b.Embedded.MaxSessionsPerUser, DefaultSessionsPerUser)
	def("broker.embedded.max_password_checks", &b.Embedded.MaxPasswordChecks, DefaultPasswordChecks)
	defStr(&b.External.ClientID, DefaultClientIDPrefix+c.Facility.ID)
	def("broker.external.max_in_flight", &b.External.MaxInFlight, DefaultMaxInFlight)
	defDur("broker.external.reconnect_max", &b.External.ReconnectMax, DefaultReconnectMax)
	defDur("broker.external.keep_alive", &b.External.KeepAlive, DefaultKeepAlive)

	defDur("store.retention", &c.Store.Retention, DefaultRetention)
	defSize("store.disk_budget", &c.Store.DiskBudget, DefaultDiskBudget)
	def("store.commit_max_batch", &c.Store.CommitMaxBatch, DefaultCommitMaxBatch)
	defSize("store.disk_reserve", &c.Store.DiskReserve, DefaultDiskReserve)
	defSize("store.ballast_bytes", &c.Store.BallastBytes, DefaultBallastBytes)

	defSize("ingest.max_payload_bytes", &c.Ingest.MaxPayloadBytes, DefaultMaxPayloadBytes)
	def("ingest.dead_letter_max", &c.Ingest.DeadLetterMax, DefaultDeadLetterMax)
	defDur("ingest.max_clock_skew", &c.Ingest.MaxClockSkew, DefaultMaxClockSkew)

	c.influxDefaults()
	c.alarmDefaults()
	c.hazardDefaults()
	c.reportDefaults()
	c.backupDefaults()
	c.Notify.Defaults()

	defStr(&c.HTTP.Listen, DefaultHTTPListen)
	defDur("http.read_timeout", &c.HTTP.ReadTimeout, DefaultHTTPReadTimeout)
	defDur("http.idle_timeout", &c.HTTP.IdleTimeout, DefaultHTTPIdleTimeout)
	defDur("http.write_timeout", &c.HTTP.WriteTimeout, DefaultHTTPWriteTimeout)
	defDur("http.session_idle", &c.HTTP.SessionIdle, DefaultSessionIdle)
	defDur("http.session_max", &c.HTTP.SessionMax, DefaultSessionMax)
	def("http.max_connections", &c.HTTP.MaxConnections, DefaultHTTPMaxConns)
	if c.HTTP.MetricsAuth == "" {
		c.HTTP.MetricsAuth = MetricsToken
	}
	defStr(&c.Log.Level, DefaultLogLevel)
	defSize("memory_limit", &c.MemoryLimit, DefaultMemoryLimit)
	defStr(&c.Log.Format, DefaultLogFormat)
}

// resolvePaths makes the relative file paths in c relative to dir.
func (c *Config) resolvePaths(dir string) {
	if dir == "" {
		return
	}
	paths := []*string{
		&c.Store.Dir,
		&c.Broker.Embedded.TLSCertFile, &c.Broker.Embedded.TLSKeyFile,
		&c.Broker.External.PasswordFile, &c.Broker.External.CAFile,
		&c.Broker.External.CertFile, &c.Broker.External.KeyFile,
		&c.HTTP.TLSCertFile, &c.HTTP.TLSKeyFile, &c.HTTP.UsersFile,
	}
	for i := range c.Influx {
		t := &c.Influx[i]
		paths = append(paths, &t.PasswordFile, &t.TokenFile, &t.CAFile)
	}
	paths = append(paths, &c.RulesFile, &c.Alarms.Dir, &c.Backup.Socket, &c.Backup.Dir, &c.Backup.PassphraseFile)
	c.Notify.ResolvePaths(dir)
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// Password reads the external broker's password from PasswordFile (without
// a trailing newline). It returns "" when no file is configured.
func (e External) Password() (Secret, error) {
	if e.PasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(e.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("config: read broker password: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("config: broker password file %s is empty", e.PasswordFile)
	}
	return Secret(pw), nil
}
