package engine

import (
	"context"
	"slices"
	"strings"
)

// RuleInfo is what the API tells of a rule the engine runs: enough to
// pick it from a list and to know what its alarms mean.
type RuleInfo struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	Scope    string   `json:"scope"`
	Severity string   `json:"severity"`
	Kinds    []string `json:"kinds"`
	Latched  bool     `json:"latched"`
	// Title is the alarm title's template in both languages, as written
	// ("Smoke detected: {{.ZoneName}} ({{.Device}})").
	Title TextConfig `json:"title"`
}

// RuleInfos returns the rules running now, sorted by id.
func (c *Core) RuleInfos() []RuleInfo {
	out := make([]RuleInfo, 0, len(c.rules))
	for _, r := range c.rules {
		kinds := make([]string, 0, len(r.kinds))
		for k := range r.kinds {
			kinds = append(kinds, string(k))
		}
		slices.Sort(kinds)
		out = append(out, RuleInfo{ID: r.cfg.ID, Type: r.typ, Scope: r.scope, Severity: string(r.severity),
			Kinds: kinds, Latched: r.cfg.Latched, Title: r.cfg.Title})
	}
	slices.SortFunc(out, func(a, b RuleInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Rules returns the rules running now (RuleInfos).
func (e *Engine) Rules(ctx context.Context) ([]RuleInfo, error) {
	var out []RuleInfo
	if err := e.send(ctx, request{fn: func() { out = e.core.RuleInfos() }, done: make(chan error, 1)}); err != nil {
		return nil, err // the request may still run later: out is not read
	}
	return out, nil
}
