package notify

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Lang is a message language.
type Lang string

// Languages.
const (
	LangZH Lang = "zh" // zh-CN, simplified Chinese
	LangEN Lang = "en"
)

func parseLang(s string) (Lang, bool) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "-")) {
	case "zh", "zh-cn", "zh-hans":
		return LangZH, true
	case "en", "en-us", "en-gb":
		return LangEN, true
	}
	return "", false
}

func parseLangs(ss []string) []Lang {
	out := make([]Lang, 0, len(ss))
	for _, s := range ss {
		if l, ok := parseLang(s); ok {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = []Lang{LangZH, LangEN}
	}
	return out
}

// Message is a notification rendered in one language.
type Message struct {
	Lang  Lang
	Title string
	Body  string
}

// TemplateData is what a message template sees: the event (.Kind, .At,
// .Level, .Alarm with its fields), the language, and helper methods.
//
//	{{.T .Alarm.Title}}      the text in the template's language
//	{{.Time .Alarm.Since}}   a time in the facility's time zone
//	{{.SeverityText}}        the alarm's severity, translated
//	{{.KindText}}            the event kind, translated
//	{{.Elapsed}}             time from the alarm's start to the event
//	{{.URL}}                 link to the alarm ("" without external_url)
//	{{index .Alarm.Labels "team"}}, {{range $k, $v := .Alarm.Labels}}
type TemplateData struct {
	alarm.Event
	Lang    Lang
	EventID string
	URL     string
	loc     *time.Location
}

// T returns t in the template's language, or in the other one when that
// is empty.
func (d TemplateData) T(t alarm.Text) string {
	if d.Lang == LangZH {
		if t.ZH != "" {
			return t.ZH
		}
		return t.EN
	}
	if t.EN != "" {
		return t.EN
	}
	return t.ZH
}

// Time formats t in the facility's time zone ("2006-01-02 15:04:05").
func (d TemplateData) Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	loc := d.loc
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(time.DateTime)
}

// SeverityText is the alarm's severity in the template's language.
func (d TemplateData) SeverityText() string { return severityText(d.Alarm.Severity, d.Lang) }

// KindText is the event kind in the template's language.
func (d TemplateData) KindText() string { return kindText(d.Kind, d.Lang) }

// Elapsed is the time from the alarm's start to the event, to the second.
func (d TemplateData) Elapsed() string {
	if d.Alarm.Since.IsZero() || d.At.Before(d.Alarm.Since) {
		return formatElapsed(0, d.Lang)
	}
	return formatElapsed(d.At.Sub(d.Alarm.Since), d.Lang)
}

// Translations, read-only.
var (
	severityTexts = map[Lang]map[alarm.Severity]string{
		LangZH: {alarm.SeverityInfo: "信息", alarm.SeverityTrouble: "故障", alarm.SeverityWarning: "警告",
			alarm.SeverityCritical: "紧急", alarm.SeverityFire: "火警"},
		LangEN: {alarm.SeverityInfo: "Info", alarm.SeverityTrouble: "Trouble", alarm.SeverityWarning: "Warning",
			alarm.SeverityCritical: "Critical", alarm.SeverityFire: "FIRE"},
	}
	kindTexts = map[Lang]map[alarm.EventKind]string{
		LangZH: {alarm.EventFiring: "报警", alarm.EventAcknowledged: "已确认", alarm.EventResolved: "已恢复",
			alarm.EventEscalated: "已升级", alarm.EventRepeat: "再次提醒"},
		LangEN: {alarm.EventFiring: "Firing", alarm.EventAcknowledged: "Acknowledged", alarm.EventResolved: "Resolved",
			alarm.EventEscalated: "Escalated", alarm.EventRepeat: "Reminder"},
	}
)

func severityText(s alarm.Severity, l Lang) string {
	if t, ok := severityTexts[l][s]; ok {
		return t
	}
	return string(s)
}

func kindText(k alarm.EventKind, l Lang) string {
	if t, ok := kindTexts[l][k]; ok {
		return t
	}
	return string(k)
}

func formatElapsed(d time.Duration, l Lang) string {
	d = d.Round(time.Second)
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	var b strings.Builder
	units := [3]string{"h ", "m ", "s"}
	if l == LangZH {
		units = [3]string{"小时", "分", "秒"}
	}
	if h > 0 {
		b.WriteString(strconv.FormatInt(h, 10) + units[0])
	}
	if h > 0 || m > 0 {
		b.WriteString(strconv.FormatInt(m, 10) + units[1])
	}
	b.WriteString(strconv.FormatInt(s, 10) + units[2])
	return b.String()
}

// Template parts.
const (
	partTitle = iota
	partBody
)

var partNames = [2]string{"title", "body"}

type tmplKey struct {
	kind alarm.EventKind // "" in overrides: every kind
	part int
	lang Lang
}

// templateSet renders messages: a channel's overrides first, then the
// built-in defaults. A nil set renders the defaults.
type templateSet struct {
	over map[tmplKey]*template.Template
}

// Limits on configured templates.
const (
	maxTemplateText   = 16 << 10
	maxTemplateOutput = 64 << 10
)

var (
	errOutputTooLarge = fmt.Errorf("output longer than %d bytes", maxTemplateOutput)
	allKinds          = []alarm.EventKind{alarm.EventFiring, alarm.EventAcknowledged, alarm.EventResolved, alarm.EventEscalated, alarm.EventRepeat}
	defaultTemplates  = mustDefaultTemplates()
)

// compileTemplates parses the overrides and executes each against sample
// events of every kind it applies to, in its language. Errors are keyed
// "templates[i].title.zh".
func compileTemplates(cfgs []TemplateConfig) (*templateSet, []cfgerr.Problem) {
	ts := &templateSet{over: map[tmplKey]*template.Template{}}
	var errs []cfgerr.Problem
	kinds := map[alarm.EventKind]int{}
	for i, c := range cfgs {
		key := fmt.Sprintf("templates[%d]", i)
		if j, dup := kinds[c.Kind]; dup {
			what := "every kind"
			if c.Kind != "" {
				what = "kind " + string(c.Kind)
			}
			errs = append(errs, cfgerr.Problem{Key: key + ".kind", Msg: fmt.Sprintf("%s already has templates at templates[%d]", what, j)})
			continue
		}
		kinds[c.Kind] = i
		for part, lt := range [2]LangText{c.Title, c.Body} {
			for _, l := range []struct {
				lang Lang
				text string
			}{{LangZH, lt.ZH}, {LangEN, lt.EN}} {
				if l.text == "" {
					continue
				}
				name := fmt.Sprintf("%s.%s.%s", key, partNames[part], l.lang)
				t, err := parseTemplate(name, l.text)
				if err == nil {
					err = trialTemplate(t, c.Kind, l.lang)
				}
				if err != nil {
					errs = append(errs, cfgerr.Problem{Key: name, Msg: err.Error()})
					continue
				}
				ts.over[tmplKey{c.Kind, part, l.lang}] = t
			}
		}
	}
	return ts, errs
}

// parseTemplate parses text and refuses what could make rendering run
// away: {{define}}, {{block}} and {{template}} (recursion), and {{range}}
// over anything but the alarm's labels (a range over a number such as
// .At.Unix would loop for minutes).
func parseTemplate(name, text string) (*template.Template, error) {
	if len(text) > maxTemplateText {
		return nil, fmt.Errorf("template longer than %d bytes", maxTemplateText)
	}
	t, err := template.New(name).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse: %s", strings.TrimPrefix(err.Error(), "template: "))
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("{{define}} and {{block}} are not supported: write the text out")
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return nil, errors.New("empty template")
	}
	if err := checkNodes(t.Tree.Root); err != nil {
		return nil, err
	}
	return t, nil
}

// maxRangeDepth bounds nested {{range}}s: each multiplies the work by the
// number of labels, and a template of nested ranges with empty bodies
// would otherwise loop for ever without writing a byte.
const maxRangeDepth = 2

func checkNodes(n parse.Node) error { return checkNode(n, 0) }

func checkNode(n parse.Node, ranges int) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNode(c, ranges); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return errors.New("{{template}} is not supported: write the text out")
	case *parse.RangeNode:
		if !rangeOverLabels(n.Pipe) {
			return fmt.Errorf("{{range %s}}: range works only over .Alarm.Labels", n.Pipe)
		}
		if ranges+1 > maxRangeDepth {
			return fmt.Errorf("{{range}} nested more than %d deep", maxRangeDepth)
		}
		return checkBranch(&n.BranchNode, ranges+1)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, ranges)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, ranges)
	}
	return nil
}

func checkBranch(b *parse.BranchNode, ranges int) error {
	if err := checkNode(b.List, ranges); err != nil {
		return err
	}
	if b.ElseList != nil {
		return checkNode(b.ElseList, ranges)
	}
	return nil
}

func rangeOverLabels(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	var idents []string
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		idents = a.Ident
	case *parse.VariableNode:
		idents = a.Ident
	case *parse.ChainNode:
		idents = a.Field
	}
	return len(idents) > 0 && idents[len(idents)-1] == "Labels"
}

// trialTemplate executes t against the sample events of kind (every kind
// when empty), so that a template that cannot render fails at load.
func trialTemplate(t *template.Template, kind alarm.EventKind, lang Lang) error {
	for _, ev := range sampleEvents() {
		if kind != "" && ev.Kind != kind {
			continue
		}
		if _, err := execTemplate(t, templateData(ev, lang, renderEnv{url: "https://gw.example.org/alarms/x"})); err != nil {
			return fmt.Errorf("on a sample %s event of a %s alarm: %w", ev.Kind, ev.Alarm.Severity, err)
		}
	}
	return nil
}

// limitedBuffer fails writes past maxTemplateOutput, which stops the
// template.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxTemplateOutput {
		return 0, errOutputTooLarge
	}
	return b.Buffer.Write(p)
}

func execTemplate(t *template.Template, data TemplateData) (string, error) {
	var b limitedBuffer
	if err := t.Execute(&b, data); err != nil {
		msg := strings.TrimPrefix(err.Error(), "template: ")
		if errors.Is(err, errOutputTooLarge) {
			msg = errOutputTooLarge.Error()
		}
		return "", errors.New(msg)
	}
	return strings.TrimSpace(b.String()), nil
}

// renderEnv is what rendering needs besides the event.
type renderEnv struct {
	eventID string
	url     string
	loc     *time.Location
}

func templateData(ev alarm.Event, lang Lang, env renderEnv) TemplateData {
	return TemplateData{Event: ev, Lang: lang, EventID: env.eventID, URL: env.url, loc: env.loc}
}

// render renders ev in lang. A configured template that fails on this
// event (it passed the sample events at load) is replaced by the default,
// and the failure is returned alongside a usable message.
func (ts *templateSet) render(ev alarm.Event, lang Lang, env renderEnv) (Message, error) {
	data := templateData(ev, lang, env)
	msg := Message{Lang: lang}
	var errs []error
	for part, out := range [2]*string{&msg.Title, &msg.Body} {
		var t *template.Template
		if ts != nil {
			if t = ts.over[tmplKey{ev.Kind, part, lang}]; t == nil {
				t = ts.over[tmplKey{"", part, lang}]
			}
		}
		if t != nil {
			s, err := execTemplate(t, data)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", t.Name(), err))
			} else if s != "" || part == partBody {
				*out = s
				continue
			}
		}
		d := defaultTemplates[tmplKey{ev.Kind, part, lang}]
		if d == nil {
			// An event kind this version does not know: say what it is.
			d = defaultTemplates[tmplKey{alarm.EventFiring, part, lang}]
		}
		s, err := execTemplate(d, data)
		if err != nil {
			errs = append(errs, fmt.Errorf("default %s template: %w", partNames[part], err))
		}
		*out = s
	}
	return msg, errors.Join(errs...)
}

// renderAll renders ev in each language of langs.
func (ts *templateSet) renderAll(ev alarm.Event, langs []Lang, env renderEnv) ([]Message, error) {
	msgs := make([]Message, 0, len(langs))
	var errs []error
	for _, l := range langs {
		m, err := ts.render(ev, l, env)
		if err != nil {
			errs = append(errs, err)
		}
		msgs = append(msgs, m)
	}
	return msgs, errors.Join(errs...)
}

// Default templates, per kind and language.
var defaultTexts = map[alarm.EventKind]map[Lang][2]string{
	alarm.EventFiring: {
		LangZH: {`【{{.SeverityText}}】{{.T .Alarm.Title}}`, `{{.T .Alarm.Body}}` + footerZH},
		LangEN: {`[{{.SeverityText}}] {{.T .Alarm.Title}}`, `{{.T .Alarm.Body}}` + footerEN},
	},
	alarm.EventAcknowledged: {
		LangZH: {`【已确认】{{.T .Alarm.Title}}`,
			`已由 {{or .Alarm.AckedBy "-"}} 于 {{if .Alarm.AckedAt.IsZero}}{{.Time .At}}{{else}}{{.Time .Alarm.AckedAt}}{{end}} 确认。{{with .Alarm.AckComment}}备注：{{.}}{{end}}
{{.T .Alarm.Body}}` + footerZH},
		LangEN: {`[Acknowledged] {{.T .Alarm.Title}}`,
			`Acknowledged by {{or .Alarm.AckedBy "-"}} at {{if .Alarm.AckedAt.IsZero}}{{.Time .At}}{{else}}{{.Time .Alarm.AckedAt}}{{end}}.{{with .Alarm.AckComment}} Comment: {{.}}{{end}}
{{.T .Alarm.Body}}` + footerEN},
	},
	alarm.EventResolved: {
		LangZH: {`【已恢复】{{.T .Alarm.Title}}`,
			`已于 {{.Time .At}} 恢复，持续 {{.Elapsed}}。
{{.T .Alarm.Body}}` + footerZH},
		LangEN: {`[Resolved] {{.T .Alarm.Title}}`,
			`Resolved at {{.Time .At}}, {{.Elapsed}} after it started.
{{.T .Alarm.Body}}` + footerEN},
	},
	alarm.EventEscalated: {
		LangZH: {`【升级至第{{.Level}}级】【{{.SeverityText}}】{{.T .Alarm.Title}}`,
			`该报警 {{.Elapsed}} 无人确认，已升级通知第{{.Level}}级人员。
{{.T .Alarm.Body}}` + footerZH},
		LangEN: {`[Escalated to level {{.Level}}] [{{.SeverityText}}] {{.T .Alarm.Title}}`,
			`Nobody acknowledged this alarm in {{.Elapsed}}: it is escalated to level {{.Level}}.
{{.T .Alarm.Body}}` + footerEN},
	},
	alarm.EventRepeat: {
		LangZH: {`【再次提醒】【{{.SeverityText}}】{{.T .Alarm.Title}}`,
			`该报警仍未确认（已持续 {{.Elapsed}}）。
{{.T .Alarm.Body}}` + footerZH},
		LangEN: {`[Reminder] [{{.SeverityText}}] {{.T .Alarm.Title}}`,
			`Still not acknowledged, {{.Elapsed}} after it started.
{{.T .Alarm.Body}}` + footerEN},
	},
}

const footerZH = `
级别：{{.SeverityText}}
位置：{{.Alarm.Facility}}{{with .Alarm.Zone}} / {{.}}{{end}}{{with .Alarm.Device}} / {{.}}{{end}}
开始时间：{{.Time .Alarm.Since}}
{{with .URL}}详情：{{.}}
{{end}}报警编号：{{.Alarm.ID}}`

const footerEN = `
Severity: {{.SeverityText}}
Where: {{.Alarm.Facility}}{{with .Alarm.Zone}} / {{.}}{{end}}{{with .Alarm.Device}} / {{.}}{{end}}
Since: {{.Time .Alarm.Since}}
{{with .URL}}Details: {{.}}
{{end}}Alarm: {{.Alarm.ID}}`

func mustDefaultTemplates() map[tmplKey]*template.Template {
	m := map[tmplKey]*template.Template{}
	for kind, langs := range defaultTexts {
		for lang, parts := range langs {
			for part, text := range parts {
				name := fmt.Sprintf("default.%s.%s.%s", kind, partNames[part], lang)
				t, err := parseTemplate(name, text)
				if err != nil {
					panic(fmt.Sprintf("notify: built-in template %s: %v", name, err))
				}
				m[tmplKey{kind, part, lang}] = t
			}
		}
	}
	return m
}

// sampleEvents are the events configured templates are tried on at load:
// every kind, with and without a device, zone, acknowledgement and labels.
func sampleEvents() []alarm.Event {
	t0 := time.Date(2025, 1, 15, 2, 4, 5, 0, time.UTC)
	base := []alarm.Alarm{
		{ID: "kitchen-smoke/dev:kitchen-smoke-1", Seq: 3, Rule: "kitchen-smoke", Severity: alarm.SeverityFire,
			Facility: "shelter-7", Zone: "kitchen", Device: "kitchen-smoke-1",
			Title:  alarm.Text{EN: "Smoke in the kitchen", ZH: "厨房烟雾报警"},
			Body:   alarm.Text{EN: "Smoke detector kitchen-smoke-1 reports smoke.", ZH: "厨房烟感 kitchen-smoke-1 检测到烟雾。"},
			Labels: map[string]string{"team": "night-shift", "building": "A"}, Latched: true},
		{ID: "dorm-cold/zone:dorm-3", Seq: 1, Rule: "dorm-cold", Severity: alarm.SeverityWarning,
			Facility: "shelter-7", Zone: "dorm-3",
			Title: alarm.Text{EN: "Dormitory 3 is cold", ZH: "3号宿舍温度过低"},
			Body:  alarm.Text{EN: "12.5 °C for 30 minutes.", ZH: "持续30分钟 12.5 °C。"}},
		{ID: "gateway-disk/gateway", Seq: 9, Rule: "gateway-disk", Severity: alarm.SeverityTrouble,
			Facility: "shelter-7", Title: alarm.Text{EN: "Disk almost full"}},
	}
	var evs []alarm.Event
	for _, a := range base {
		a.Since = t0
		a.Updated = t0
		for _, k := range allKinds {
			ev := alarm.Event{Kind: k, At: t0.Add(7 * time.Minute), Alarm: a}
			ev.Alarm.State = alarm.StateFiring
			switch k {
			case alarm.EventAcknowledged:
				ev.Alarm.State = alarm.StateAcknowledged
				ev.Alarm.AckedBy, ev.Alarm.AckedAt, ev.Alarm.AckComment = "wang.li", ev.At, "checked, cooking smoke"
			case alarm.EventResolved:
				ev.Alarm.State = alarm.StateResolved
				ev.Alarm.ResolvedAt = ev.At
			case alarm.EventEscalated, alarm.EventRepeat:
				ev.Level, ev.Alarm.Level = 1, 1
			}
			evs = append(evs, ev)
		}
	}
	return evs
}
