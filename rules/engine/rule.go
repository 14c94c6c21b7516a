package engine

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Rule types.
const (
	// TypeState fires while `when` holds on a device's latest reading
	// (after `for`), and clears on `clear` (default: not `when`). Smoke,
	// thresholds with hysteresis, doors held open, low battery.
	TypeState = "state"
	// TypeRateOfRise fires when a device's value rose by at least `rise`
	// within `window`.
	TypeRateOfRise = "rate_of_rise"
	// TypeAbsence fires when a device sent nothing for `after` (default:
	// its offline_after) or reported itself offline; with scope gateway,
	// when no device at all sent anything for `after`.
	TypeAbsence = "absence"
	// TypeCoincidence fires for a zone when `when` held on readings of at
	// least `count` different devices of the zone within `window`.
	TypeCoincidence = "coincidence"
)

// Scopes: what one alarm of the rule is about.
const (
	ScopeDevice  = "device"
	ScopeZone    = "zone"
	ScopeGateway = "gateway"
)

// RuleConfig is one rule as written in the config or the rules file.
type RuleConfig struct {
	// ID is unique: lower-case letters, digits and '-'. Required.
	ID string `yaml:"id"`
	// Type is state (default), rate_of_rise, absence or coincidence.
	Type string `yaml:"type"`
	// Kinds limits the rule to readings of these kinds (smoke,
	// temperature…); with one kind, `value` in expressions has that
	// kind's type (bool or number) and type errors are found at load.
	Kinds []string `yaml:"kinds"`
	// Match is an expression over the device and zone (device, zone,
	// tags, device_kind) that selects where the rule applies, e.g.
	// '"secure-ward" in tags'. Default: everywhere.
	Match string `yaml:"match"`
	// When is the condition (an expression over the reading; see
	// the README's rule reference). Required except for absence.
	When string `yaml:"when"`
	// Clear ends the alarm (hysteresis); default: not When.
	Clear string `yaml:"clear"`
	// For is how long When must hold before firing.
	For facility.Duration `yaml:"for"`
	// KeepFiringFor keeps an alarm firing this long after Clear held.
	KeepFiringFor facility.Duration `yaml:"keep_firing_for"`
	// Window and Rise: rate_of_rise (rise in the value's unit within
	// window) and coincidence (window).
	Window facility.Duration `yaml:"window"`
	Rise   string            `yaml:"rise"`
	// Count is the number of distinct devices for coincidence (default 2).
	Count int `yaml:"count"`
	// After is the silence for absence (default: the device's
	// offline_after).
	After facility.Duration `yaml:"after"`
	// Active limits the rule to times of day and weekdays in the
	// facility's time zone ("22:00-06:00", days mon..sun).
	Active ActiveConfig `yaml:"active"`
	// Scope is device (default), zone or gateway.
	Scope string `yaml:"scope"`
	// Severity: info, trouble, warning, critical or fire. Required.
	Severity string `yaml:"severity"`
	// Latched alarms resolve only when a manager resets them.
	Latched bool `yaml:"latched"`
	// Inhibits lists rules whose alarms in the same zone (all zones for a
	// gateway-scope rule) are silenced while this one fires.
	Inhibits []string `yaml:"inhibits"`
	// Title and Body are templates ({{.Device}}, {{.Zone}}, {{.Value}},
	// {{.ZoneName}} …) in English and Chinese. Required: title.
	Title TextConfig `yaml:"title"`
	Body  TextConfig `yaml:"body"`
	// Labels are passed to channels (Alertmanager labels, routing).
	Labels []string `yaml:"labels"`
}

// ActiveConfig is a daily time window and weekdays.
type ActiveConfig struct {
	// Between is "HH:MM-HH:MM"; a window past midnight ("22:00-06:00")
	// belongs to the day it starts on.
	Between string `yaml:"between"`
	// Days are mon, tue, wed, thu, fri, sat, sun; default every day.
	Days []string `yaml:"days"`
}

// TextConfig is a template in both languages.
type TextConfig struct {
	EN string `yaml:"en"`
	ZH string `yaml:"zh"`
}

// env is what condition expressions see. Field tags are the names rule
// authors write.
type env struct {
	Kind        string   `expr:"kind"`
	Value       any      `expr:"value"`
	Num         float64  `expr:"num"`
	Device      string   `expr:"device"`
	DeviceKind  string   `expr:"device_kind"`
	Zone        string   `expr:"zone"`
	Tags        []string `expr:"tags"`
	Battery     float64  `expr:"battery"`
	HasBattery  bool     `expr:"has_battery"`
	LinkQuality float64  `expr:"link_quality"`
	Hour        int      `expr:"hour"`
	Weekday     string   `expr:"weekday"`
}

// Typed variants, so that `value > 30` on a smoke rule is a load error.
type envNumber struct {
	env
	Value float64 `expr:"value"`
}

type envBool struct {
	env
	Value bool `expr:"value"`
}

// matchEnv is what Match sees: the place, not the reading.
type matchEnv struct {
	Device     string   `expr:"device"`
	DeviceKind string   `expr:"device_kind"`
	Zone       string   `expr:"zone"`
	Tags       []string `expr:"tags"`
}

// rule is a compiled rule.
type rule struct {
	cfg           RuleConfig
	typ           string
	scope         string
	kinds         map[reading.Kind]bool
	valueType     reading.ValueType // 0: any
	match         *vm.Program
	when, clear   *vm.Program
	forD, keep    time.Duration
	window, after time.Duration
	rise          float64
	count         int
	active        *window
	severity      alarm.Severity
	inhibits      []string
	title, body   [2]*template.Template // en, zh
	labels        map[string]string
}

var ruleIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

const maxExprNodes = 2000

// compileRules checks and compiles every rule, returning all problems.
func compileRules(cfgs []RuleConfig) ([]*rule, []cfgerr.Problem) {
	var errs []cfgerr.Problem
	seen := map[string]int{}
	out := make([]*rule, 0, len(cfgs))
	var index []int // index[k] is the position in cfgs of out[k]
	for i, c := range cfgs {
		r, es := compileRule(i, c)
		errs = append(errs, es...)
		if c.ID != "" {
			if first, dup := seen[c.ID]; dup {
				errs = append(errs, cfgerr.At(i, "id", fmt.Sprintf("duplicate rule id %q (first is rules[%d])", c.ID, first)))
			}
			seen[c.ID] = i
		}
		if r != nil {
			out = append(out, r)
			index = append(index, i)
		}
	}
	for k, r := range out {
		for _, id := range r.inhibits {
			if _, ok := seen[id]; !ok {
				errs = append(errs, cfgerr.At(index[k], "inhibits", fmt.Sprintf("unknown rule %q", id)))
			}
		}
	}
	item := func(p cfgerr.Problem) int { i, _, _ := cfgerr.Item(p.Key); return i }
	sort.SliceStable(errs, func(a, b int) bool { return item(errs[a]) < item(errs[b]) })
	return out, errs
}

// compileRule checks and compiles one rule. It reports every problem of
// the rule rather than stopping at the first, so that an author fixes a
// rules file in one pass; a rule with any problem compiles to nil.
func compileRule(i int, c RuleConfig) (*rule, []cfgerr.Problem) {
	rc := &ruleCompiler{i: i, c: c, r: &rule{cfg: c, typ: c.Type, scope: c.Scope, forD: time.Duration(c.For), keep: time.Duration(c.KeepFiringFor),
		window: time.Duration(c.Window), after: time.Duration(c.After), count: c.Count, inhibits: c.Inhibits,
		severity: alarm.Severity(c.Severity), labels: map[string]string{}}}
	// The order of the phases is the order of the errors within a rule:
	// later phases depend on the type, scope and value type settled first.
	rc.checkShape()
	rc.compileKinds()
	rc.compileExpressions()
	rc.checkTypeParams()
	rc.parseActive()
	rc.parseLabels()
	rc.parseTexts()
	if len(rc.errs) > 0 {
		return nil, rc.errs
	}
	return rc.r, nil
}

// ruleCompiler is the state of compiling one rule: its position in the
// rule list (for error keys), its config, the rule being filled in and the
// problems found so far.
type ruleCompiler struct {
	i    int
	c    RuleConfig
	r    *rule
	errs []cfgerr.Problem
}

// bad records a problem with the rule's key and goes on.
func (rc *ruleCompiler) bad(key, format string, args ...any) {
	rc.errs = append(rc.errs, cfgerr.At(rc.i, key, fmt.Sprintf(format, args...)))
}

// checkShape checks the id and severity and settles the type and scope,
// filling in their defaults (a coincidence is about a zone, everything
// else about a device), and rejects combinations the engine cannot run.
func (rc *ruleCompiler) checkShape() {
	c, r := &rc.c, rc.r
	if !ruleIDRE.MatchString(c.ID) || len(c.ID) > 64 {
		rc.bad("id", "invalid rule id %q: use lower-case letters, digits and '-'", c.ID)
	}
	if r.typ == "" {
		r.typ = TypeState
	}
	switch r.typ {
	case TypeState, TypeRateOfRise, TypeAbsence, TypeCoincidence:
	default:
		rc.bad("type", "unknown rule type %q (want state, rate_of_rise, absence or coincidence)", c.Type)
	}
	if r.scope == "" {
		r.scope = ScopeDevice
		if r.typ == TypeCoincidence {
			r.scope = ScopeZone
		}
	}
	switch r.scope {
	case ScopeDevice, ScopeZone, ScopeGateway:
	default:
		rc.bad("scope", "unknown scope %q (want device, zone or gateway)", c.Scope)
	}
	if r.typ == TypeCoincidence && r.scope != ScopeZone {
		rc.bad("scope", "a coincidence rule is about a zone")
	}
	if r.scope == ScopeGateway && r.typ != TypeAbsence {
		rc.bad("scope", "only absence rules may have scope gateway")
	}
	if !r.severity.Valid() {
		rc.bad("severity", "want info, trouble, warning, critical or fire, got %q", c.Severity)
	}
}

// compileKinds builds the set of kinds the rule applies to. With exactly
// one kind, the type of `value` is known, so that the expressions compiled
// next are type-checked against it at load rather than failing on the
// first reading.
func (rc *ruleCompiler) compileKinds() {
	c, r := &rc.c, rc.r
	if len(c.Kinds) == 0 {
		return
	}
	r.kinds = map[reading.Kind]bool{}
	for _, k := range c.Kinds {
		vt, ok := reading.Kind(k).Known()
		if !ok {
			rc.bad("kinds", "unknown kind %q", k)
			continue
		}
		r.kinds[reading.Kind(k)] = true
		if len(c.Kinds) == 1 {
			r.valueType = vt
		}
	}
}

// compileExpressions compiles match, when and clear. Match sees only the
// place; when and clear see the reading, typed by the rule's kind.
func (rc *ruleCompiler) compileExpressions() {
	c, r := &rc.c, rc.r
	conditionEnv := rc.conditionEnv()
	if c.Match != "" {
		r.match = rc.compileExpr("match", c.Match, matchEnv{})
	}
	switch {
	case c.When != "":
		r.when = rc.compileExpr("when", c.When, conditionEnv)
	case r.typ != TypeAbsence:
		rc.bad("when", "required")
	}
	if c.Clear != "" {
		if r.typ != TypeState && r.typ != TypeRateOfRise {
			rc.bad("clear", "only for state and rate_of_rise rules")
		}
		r.clear = rc.compileExpr("clear", c.Clear, conditionEnv)
	}
}

// conditionEnv is the environment when and clear are compiled against:
// with a known value type, `value` has that type, so that a type error
// such as `value > 30` on a smoke rule is a load error.
func (rc *ruleCompiler) conditionEnv() any {
	switch rc.r.valueType {
	case reading.TypeNumber:
		return envNumber{}
	case reading.TypeBool:
		return envBool{}
	}
	return env{}
}

// compileExpr compiles a boolean expression against envv. The node limit
// keeps a hostile or runaway rules file from costing unbounded time on
// every reading; a compile error is reported on one line under key.
func (rc *ruleCompiler) compileExpr(key, src string, envv any) *vm.Program {
	p, err := expr.Compile(src, expr.Env(envv), expr.MaxNodes(maxExprNodes), expr.AsBool())
	if err != nil {
		rc.bad(key, "%s", oneLine(err.Error()))
		return nil
	}
	return p
}

// checkTypeParams checks the settings only some types use: rise and window
// for rate_of_rise, window and count (default 2) for coincidence, and after
// for a gateway-wide absence, which has no device offline_after to fall
// back on.
func (rc *ruleCompiler) checkTypeParams() {
	c, r := &rc.c, rc.r
	switch r.typ {
	case TypeRateOfRise:
		f, err := strconv.ParseFloat(c.Rise, 64)
		if err != nil || f <= 0 {
			rc.bad("rise", "want a positive number (in the value's unit), got %q", c.Rise)
		}
		r.rise = f
		if r.window <= 0 {
			rc.bad("window", "required for rate_of_rise")
		}
	case TypeCoincidence:
		if r.window <= 0 {
			rc.bad("window", "required for coincidence")
		}
		if r.count == 0 {
			r.count = 2
		}
		if r.count < 2 {
			rc.bad("count", "must be at least 2, got %d", c.Count)
		}
	case TypeAbsence:
		if r.scope == ScopeGateway && r.after <= 0 {
			rc.bad("after", "required for a gateway-wide absence rule")
		}
	}
}

// parseActive parses the time window the rule is active in; without one,
// the rule is always active.
func (rc *ruleCompiler) parseActive() {
	c := &rc.c
	if c.Active.Between == "" && len(c.Active.Days) == 0 {
		return
	}
	w, err := parseWindow(&c.Active)
	if err != nil {
		rc.bad("active", "%s", err)
	}
	rc.r.active = w
}

// parseLabels splits the key=value labels passed on to channels.
func (rc *ruleCompiler) parseLabels() {
	for _, l := range rc.c.Labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			rc.bad("labels", "want key=value, got %q", l)
			continue
		}
		rc.r.labels[k] = v
	}
}

// parseTexts parses the title and body templates in both languages. A
// title is required in at least one language; a missing language is
// filled in from the other, so that every alarm has a text in each.
func (rc *ruleCompiler) parseTexts() {
	c, r := &rc.c, rc.r
	if c.Title.EN == "" && c.Title.ZH == "" {
		rc.bad("title", "required (en and/or zh)")
	}
	for li, t := range []struct {
		key      string
		src, alt string
	}{{"title.en", c.Title.EN, c.Title.ZH}, {"title.zh", c.Title.ZH, c.Title.EN}, {"body.en", c.Body.EN, c.Body.ZH}, {"body.zh", c.Body.ZH, c.Body.EN}} {
		src := t.src
		if src == "" {
			src = t.alt // one language stands in for the other
		}
		tpl, err := parseTemplate(t.key, src)
		if err != nil {
			if t.src != "" { // a stand-in's error is reported in its own language
				rc.bad(t.key, "%s", err)
			}
			continue
		}
		if li < 2 {
			r.title[li] = tpl
		} else {
			r.body[li-2] = tpl
		}
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
