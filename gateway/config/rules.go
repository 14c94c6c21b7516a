package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

// Alarms configures the rules engine and alarm handling.
type Alarms struct {
	// Dir holds the engine's state and the append-only audit log.
	// Default: the store directory with "-alarms" appended.
	Dir string `yaml:"dir"`
	// BuiltinRules adds the built-in rule set (README, "Rules"); a rule of
	// the same id in rules or rules_file replaces a built-in one.
	// Default true.
	BuiltinRules bool `yaml:"builtin_rules"`
	// Escalation lists when an unacknowledged alarm goes to the next
	// level (level 1 after the first duration, ...). Default [5m, 15m].
	Escalation []Duration `yaml:"escalation"`
	// Repeat tells the last level again at this interval until someone
	// acknowledges; 0s never. Default 10m.
	Repeat Duration `yaml:"repeat"`
	// Audit configures the audit log's rotation and retention.
	Audit Audit `yaml:"audit"`
}

// Audit configures the audit log (dir/audit.jsonl and its rotated
// segments): when it starts a new segment, and which old ones it deletes.
type Audit struct {
	// RotateBytes starts a new segment once the current file would grow
	// past it; 0 never by size. Default 64MiB.
	RotateBytes ByteSize `yaml:"rotate_bytes"`
	// RotateEvery starts a new segment once the current one's first entry
	// is this old; 0s never by time. Default 0s.
	RotateEvery Duration `yaml:"rotate_every"`
	// Keep is the number of rotated segments kept, newest first; 0 keeps
	// every one. Default 16.
	Keep int `yaml:"keep"`
	// MaxAge deletes a rotated segment whose newest entry is older; 0s
	// keeps them whatever their age. Default 0s.
	MaxAge Duration `yaml:"max_age"`
}

// AuditPath is the audit log's current file.
func (a Alarms) AuditPath() string { return filepath.Join(a.Dir, audit.FileName) }

// UsersPath is the console users file: http.users_file, or users.json in
// alarms.dir.
func (c *Config) UsersPath() string {
	if c.HTTP.UsersFile != "" {
		return c.HTTP.UsersFile
	}
	return filepath.Join(c.Alarms.Dir, "users.json")
}

// Defaults of the alarms section.
const (
	DefaultAlarmRepeat = 10 * time.Minute
	DefaultAuditRotate = audit.DefaultRotateBytes
	DefaultAuditKeep   = 16
	// minAuditRotate keeps rotation from turning the log into a file per
	// handful of entries.
	minAuditRotate = 1 << 20
)

// DefaultEscalation is the default alarms.escalation.
var DefaultEscalation = []time.Duration{5 * time.Minute, 15 * time.Minute}

func (c *Config) alarmDefaults() {
	a := &c.Alarms
	if a.Dir == "" && c.Store.Dir != "" {
		a.Dir = filepath.Clean(c.Store.Dir) + "-alarms"
	}
	if !c.src.isSet("alarms.builtin_rules") {
		a.BuiltinRules = true
	}
	if !c.src.isSet("alarms.escalation") {
		a.Escalation = nil
		for _, d := range DefaultEscalation {
			a.Escalation = append(a.Escalation, Duration(d))
		}
	}
	if !c.src.isSet("alarms.repeat") {
		a.Repeat = Duration(DefaultAlarmRepeat)
	}
	if !c.src.isSet("alarms.audit.rotate_bytes") {
		a.Audit.RotateBytes = DefaultAuditRotate
	}
	if !c.src.isSet("alarms.audit.keep") {
		a.Audit.Keep = DefaultAuditKeep
	}
}

// AllRules returns the rules the engine runs: the gateway's fault rules
// (always) and the built-in sensor rules (when on), replaced or extended by
// the config's rules and then those of extra (the rules file).
func (c *Config) AllRules(extra []engine.RuleConfig) []engine.RuleConfig {
	own := append(append([]engine.RuleConfig(nil), c.Rules...), extra...)
	builtin := engine.GatewayRules()
	if c.Alarms.BuiltinRules {
		builtin = append(engine.Builtin(), builtin...)
	}
	return engine.Merge(builtin, own)
}

// EscalationLevels returns alarms.escalation as durations.
func (a Alarms) EscalationLevels() []time.Duration {
	out := make([]time.Duration, len(a.Escalation))
	for i, d := range a.Escalation {
		out[i] = d.Std()
	}
	return out
}

func (v *validator) notify() {
	for _, fe := range v.c.Notify.Validate() {
		v.errorf("notify."+fe.Key, "%s", fe.Msg)
	}
}

func (v *validator) alarms() {
	a := &v.c.Alarms
	prev := time.Duration(0)
	for i, d := range a.Escalation {
		if d.Std() <= prev {
			v.errorf(idx("alarms.escalation", i), "must be longer than the level before, got %s", d)
		}
		prev = d.Std()
	}
	if r := a.Audit.RotateBytes; r != 0 && r < minAuditRotate {
		v.errorf("alarms.audit.rotate_bytes", "must be 0 (never by size) or at least %s, got %s", ByteSize(minAuditRotate), r)
	}
	if a.Audit.Keep < 0 {
		v.errorf("alarms.audit.keep", "must be 0 (keep every segment) or more, got %d", a.Audit.Keep)
	}
	if e := a.Audit.RotateEvery.Std(); e != 0 && e < time.Hour {
		v.errorf("alarms.audit.rotate_every", "must be 0s (never by time) or at least 1h, got %s", a.Audit.RotateEvery)
	}
	// Rules are checked together (inhibits may name built-in rules), and
	// each problem is reported at the key of the rule it is in.
	var extra []engine.RuleConfig
	if v.c.RulesFile != "" {
		rs, err := LoadRulesFile(v.c.RulesFile)
		if err != nil {
			v.errorf("rules_file", "%s", err)
			return
		}
		extra = rs
	}
	all := v.c.AllRules(extra)
	origin := func(i int) string {
		id := all[i].ID
		for j := range v.c.Rules {
			if v.c.Rules[j].ID == id {
				return idx("rules", j)
			}
		}
		for _, r := range extra {
			if r.ID == id {
				return "rules_file"
			}
		}
		return "alarms.builtin_rules"
	}
	for _, p := range engine.CheckRules(all) {
		i, rest, _ := cfgerr.Item(p.Key)
		key, msg := origin(i), p.Msg
		if strings.HasPrefix(key, "rules[") {
			key += "." + rest
		} else {
			msg = fmt.Sprintf("rule %q: %s: %s", all[i].ID, rest, msg)
		}
		v.errorf(key, "%s", msg)
	}
}

// rulesFile is the shape of a rules file.
type rulesFile struct {
	Rules []engine.RuleConfig `yaml:"rules"`
}

// LoadRulesFile reads a rules file (a YAML document with one key, rules,
// a list like the config's rules), decoded as strictly as the config. The
// rules are not checked here: together with the config's rules they are
// (Config.Validate, or the engine on reload).
func LoadRulesFile(path string) ([]engine.RuleConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	var rf rulesFile
	if errs := decodeStrict(data, path, &rf); len(errs) > 0 {
		return nil, finish(errs, path)
	}
	return rf.Rules, nil
}

// decodeStrict decodes a YAML document into v with the config's strict
// rules (unknown and duplicate keys, wrong types).
func decodeStrict(data []byte, name string, v any) Errors {
	root, serr := parseYAML(data, name)
	if serr != nil {
		return Errors{serr}
	}
	if root == nil {
		return nil
	}
	src := &source{file: name, lines: map[string]int{}, set: map[string]bool{}}
	d := &decoder{src: src, expanding: map[*yaml.Node]bool{}}
	d.decode(root, reflect.ValueOf(v).Elem(), "", root.Line)
	return d.errs
}
