package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

func TestDefaultTemplatesCoverEveryKind(t *testing.T) {
	prefix := map[alarm.EventKind][2]string{ // zh, en, for a fire alarm
		alarm.EventFiring:       {"【火警】", "[FIRE]"},
		alarm.EventAcknowledged: {"【已确认】", "[Acknowledged]"},
		alarm.EventResolved:     {"【已恢复】", "[Resolved]"},
		alarm.EventEscalated:    {"【升级至第1级】【火警】", "[Escalated to level 1] [FIRE]"},
		alarm.EventRepeat:       {"【再次提醒】【火警】", "[Reminder] [FIRE]"},
	}
	for _, ev := range sampleEvents() {
		for i, lang := range []Lang{LangZH, LangEN} {
			t.Run(string(ev.Kind)+"/"+string(ev.Alarm.Severity)+"/"+string(lang), func(t *testing.T) {
				m, err := (*templateSet)(nil).render(ev, lang, renderEnv{loc: time.UTC})
				if err != nil {
					t.Fatal(err)
				}
				if m.Title == "" || m.Body == "" || strings.Contains(m.Title+m.Body, "<no value>") {
					t.Fatalf("message %+v", m)
				}
				if ev.Alarm.Severity == alarm.SeverityFire && !strings.HasPrefix(m.Title, prefix[ev.Kind][i]) {
					t.Fatalf("title %q, want prefix %q", m.Title, prefix[ev.Kind][i])
				}
				if want := (TemplateData{Event: ev, Lang: lang}).T(ev.Alarm.Title); !strings.Contains(m.Title, want) {
					t.Fatalf("title %q lacks the alarm's title %q", m.Title, want)
				}
			})
		}
	}
}

func TestTemplateOverrides(t *testing.T) {
	ev := event("kitchen-smoke/1", alarm.SeverityFire, alarm.EventFiring)
	for _, tc := range []struct {
		name      string
		cfgs      []TemplateConfig
		ev        alarm.Event
		lang      Lang
		wantErr   string // at load: "key: message part"
		wantTitle string
		wantBody  string
		renderErr bool
	}{
		{name: "kind title override", cfgs: []TemplateConfig{{Kind: alarm.EventFiring,
			Title: LangText{ZH: "{{.SeverityText}}：{{.T .Alarm.Title}}"}}},
			ev: ev, lang: LangZH, wantTitle: "火警：报警 kitchen-smoke/1", wantBody: "kitchen-smoke/1 发生异常"},
		{name: "kind override does not touch other kinds", cfgs: []TemplateConfig{{Kind: alarm.EventResolved,
			Title: LangText{EN: "ok"}}}, ev: ev, lang: LangEN, wantTitle: "[FIRE] Alarm kitchen-smoke/1"},
		{name: "all-kind body with labels", cfgs: []TemplateConfig{{
			Body: LangText{EN: "{{range $k, $v := .Alarm.Labels}}{{$k}}={{$v}} {{end}}{{index .Alarm.Labels \"missing\"}}|{{.KindText}}"}}},
			ev: ev, lang: LangEN, wantBody: "team=night |Firing"},
		{name: "kind override wins over all-kind", cfgs: []TemplateConfig{
			{Title: LangText{EN: "generic"}}, {Kind: alarm.EventFiring, Title: LangText{EN: "specific"}}},
			ev: ev, lang: LangEN, wantTitle: "specific"},
		{name: "blank title falls back to the default", cfgs: []TemplateConfig{{Title: LangText{EN: "{{if .Alarm.Silenced}}x{{end}}"}}},
			ev: ev, lang: LangEN, wantTitle: "[FIRE] Alarm kitchen-smoke/1"},
		{name: "fails on this alarm only: default used", cfgs: []TemplateConfig{{Title: LangText{EN: "{{slice .Alarm.ID 0 12}}"}}},
			ev: event("a/1", alarm.SeverityFire, alarm.EventFiring), lang: LangEN, wantTitle: "[FIRE] Alarm a/1", renderErr: true},
		{name: "parse error", cfgs: []TemplateConfig{{Title: LangText{ZH: "{{.Alarm.Title"}}},
			wantErr: "templates[0].title.zh: parse"},
		{name: "unknown field", cfgs: []TemplateConfig{{Kind: alarm.EventResolved, Body: LangText{EN: "{{.Alarm.Room}}"}}},
			wantErr: `templates[0].body.en: on a sample resolved event`},
		{name: "unknown function", cfgs: []TemplateConfig{{Body: LangText{EN: "{{upper .Alarm.ID}}"}}},
			wantErr: `templates[0].body.en: parse`},
		{name: "range over a number", cfgs: []TemplateConfig{{Body: LangText{EN: "{{range .At.Unix}}.{{end}}"}}},
			wantErr: "range works only over .Alarm.Labels"},
		{name: "ranges nested too deep", cfgs: []TemplateConfig{{Body: LangText{EN: strings.Repeat("{{range .Alarm.Labels}}", 3) + strings.Repeat("{{end}}", 3)}}},
			wantErr: "nested more than 2 deep"},
		{name: "define", cfgs: []TemplateConfig{{Body: LangText{EN: `{{define "x"}}a{{end}}b`}}},
			wantErr: "not supported"},
		{name: "template call", cfgs: []TemplateConfig{{Body: LangText{EN: `{{template "y"}}`}}},
			wantErr: "not supported"},
		{name: "runaway output", cfgs: []TemplateConfig{{Body: LangText{EN: `{{range .Alarm.Labels}}{{printf "%0900000d" 1}}{{end}}`}}},
			wantErr: "output longer than"},
		{name: "two templates for one kind", cfgs: []TemplateConfig{{Kind: alarm.EventRepeat}, {Kind: alarm.EventRepeat}},
			wantErr: "templates[1].kind: kind repeat already has templates at templates[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, errs := compileTemplates(tc.cfgs)
			if tc.wantErr != "" {
				for _, e := range errs {
					if strings.Contains(e.Error(), tc.wantErr) {
						return
					}
				}
				t.Fatalf("errors %v, want one with %q", errs, tc.wantErr)
			}
			if len(errs) > 0 {
				t.Fatalf("load: %v", errs)
			}
			m, err := ts.render(tc.ev, tc.lang, renderEnv{loc: time.UTC})
			if (err != nil) != tc.renderErr {
				t.Fatalf("render error %v, want error %v", err, tc.renderErr)
			}
			if tc.wantTitle != "" && m.Title != tc.wantTitle {
				t.Errorf("title %q, want %q", m.Title, tc.wantTitle)
			}
			if tc.wantBody != "" && !strings.Contains(m.Body, tc.wantBody) {
				t.Errorf("body %q, want it to contain %q", m.Body, tc.wantBody)
			}
		})
	}
}

// FuzzTemplate: a configured template is either refused at load with an
// error, or renders every event (falling back to the default where it
// fails) without a panic, a hang or unbounded output.
func FuzzTemplate(f *testing.F) {
	for _, seed := range []struct{ title, body string }{
		{"{{.SeverityText}}：{{.T .Alarm.Title}}", "{{.T .Alarm.Body}}"},
		{"{{range $k, $v := .Alarm.Labels}}{{$k}}{{end}}", "{{.Time .Alarm.Since}} {{.Elapsed}} {{.URL}}"},
		{"{{.Alarm.Title", "{{.Alarm.Nope}}"},
		{"{{range .At.Unix}}x{{end}}", `{{define "a"}}{{template "a"}}{{end}}`},
		{"{{slice .Alarm.ID 0 12}}", `{{printf "%0900000d" 1}}`},
		{"{{with .Alarm.Labels}}{{range .}}{{.}}{{end}}{{end}}", "{{if eq .Kind \"firing\"}}!{{else}}.{{end}}"},
		{"{{$x := 99999999999}}{{range $x}}{{end}}", "{{range $.Alarm.Labels}}{{range $.Alarm.Labels}}{{end}}{{end}}"},
		{strings.Repeat("{{range .Alarm.Labels}}", 40) + strings.Repeat("{{end}}", 40), "{{break}}"},
	} {
		f.Add(seed.title, seed.body, "kitchen-smoke/1")
	}
	f.Fuzz(func(t *testing.T, title, body, alarmID string) {
		ts, errs := compileTemplates([]TemplateConfig{{Title: LangText{ZH: title, EN: title}, Body: LangText{ZH: body, EN: body}}})
		if len(errs) > 0 {
			for _, e := range errs {
				if e.Key == "" || e.Msg == "" {
					t.Fatalf("error without key or message: %+v", e)
				}
			}
			return
		}
		evs := sampleEvents()
		ev := event(alarmID, alarm.SeverityCritical, alarm.EventRepeat)
		ev.Alarm.Labels = map[string]string{alarmID: title}
		evs = append(evs, ev)
		for _, ev := range evs {
			for _, lang := range []Lang{LangZH, LangEN} {
				m, _ := ts.render(ev, lang, renderEnv{})
				if m.Title == "" && ev.Alarm.Title != (alarm.Text{}) {
					t.Fatalf("empty title for %+v", ev)
				}
				if len(m.Title) > maxTemplateOutput || len(m.Body) > maxTemplateOutput {
					t.Fatalf("output of %d/%d bytes", len(m.Title), len(m.Body))
				}
			}
		}
	})
}
