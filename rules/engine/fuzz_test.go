package engine

import (
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// FuzzRule feeds arbitrary expressions and templates from a config: they
// are accepted or rejected with an error at load, and an accepted rule
// never panics when it evaluates readings or renders its messages.
func FuzzRule(f *testing.F) {
	for _, r := range append(Builtin(), GatewayRules()...) {
		f.Add(r.Match, r.When, r.Clear, r.Title.EN, r.Body.ZH, "temperature")
	}
	f.Add("", "value > 30 && hour < 6", "value < 25", "{{.Value}} in {{.ZoneName}}", "{{range .Devices}}{{.}}{{end}}", "")
	f.Add(`"a" in tags`, "num / 0 > 1", "", "{{printf \"%v\" .Since}}", "{{.Since.Year}}", "door")
	f.Add("", "device matches \"[\"", "", "{{template \"x\"}}", "{{define \"x\"}}{{template \"x\"}}{{end}}", "smoke")
	f.Fuzz(func(t *testing.T, match, when, clear, title, body, kind string) {
		rc := RuleConfig{ID: "fuzz", Match: match, When: when, Clear: clear, Severity: "warning",
			Title: TextConfig{EN: title, ZH: title}, Body: TextConfig{EN: body, ZH: body}}
		if kind != "" {
			rc.Kinds = []string{kind}
		}
		cfg := testConfig(rc)
		c, err := NewCore(cfg, t0)
		if err != nil {
			return // rejected at load: what we want for bad input
		}
		for i, v := range []reading.Value{reading.Number(15), reading.Bool(true), reading.Number(-1e300), reading.State("x")} {
			now := t0.Add(time.Duration(i) * time.Minute)
			for _, d := range cfg.Devices {
				c.Observe(reading.Reading{Device: d.ID, Kind: d.Kind, Value: v, Time: now, Battery: reading.Ptr(10)}, now)
			}
			c.Tick(now)
			c.Drain()
		}
	})
}
