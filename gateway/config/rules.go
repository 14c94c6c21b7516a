package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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
}

// Defaults of the alarms section.
const (
	DefaultAlarmRepeat = 10 * time.Minute
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
