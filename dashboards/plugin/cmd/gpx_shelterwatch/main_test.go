package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestPluginJSON checks the fields Grafana requires of a backend data
// source, and that plugin.json names this program and its id.
func TestPluginJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Type       string `json:"type"`
		Name       string `json:"name"`
		ID         string `json:"id"`
		Backend    bool   `json:"backend"`
		Executable string `json:"executable"`
		Alerting   bool   `json:"alerting"`
		Metrics    bool   `json:"metrics"`
		Streaming  bool   `json:"streaming"`
		Info       struct {
			Keywords []string `json:"keywords"`
			Logos    struct {
				Small string `json:"small"`
				Large string `json:"large"`
			} `json:"logos"`
			Version string `json:"version"`
			Updated string `json:"updated"`
		} `json:"info"`
		Dependencies struct {
			GrafanaDependency string `json:"grafanaDependency"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("plugin.json: %v", err)
	}
	idPattern := regexp.MustCompile(`^[0-9a-z]+\-([0-9a-z]+\-)?(app|panel|datasource|secretsmanager|transformer)$`)
	checks := []struct {
		what string
		ok   bool
	}{
		{"id matches Grafana's pattern", idPattern.MatchString(p.ID)},
		{"id is the one main serves", p.ID == PluginID},
		{"type datasource", p.Type == "datasource"},
		{"name", p.Name != ""},
		{"backend", p.Backend},
		{"executable is this program", p.Executable == "gpx_shelterwatch"},
		{"alerting", p.Alerting},
		{"metrics", p.Metrics},
		{"streaming", p.Streaming},
		{"info.keywords", len(p.Info.Keywords) > 0},
		{"info.version", regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(p.Info.Version)},
		{"info.updated is a date", regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(p.Info.Updated)},
		{"grafanaDependency", p.Dependencies.GrafanaDependency == ">=11.0.0"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("plugin.json: %s: no", c.what)
		}
	}
	for _, logo := range []string{p.Info.Logos.Small, p.Info.Logos.Large} {
		if logo == "" {
			t.Error("plugin.json: info.logos: a logo is missing")
			continue
		}
		if _, err := os.Stat(filepath.Join("..", "..", logo)); err != nil {
			t.Errorf("plugin.json: logo %s: %v", logo, err)
		}
	}
}
