package config

import (
	"encoding"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shelterwatch/shelterwatch/rules/notify"
)

const notifyREADME = "../../rules/notify/README.md"

// TestNotifyDocsInStep keeps the notification docs in step with the code:
// the sample config names every key the notify section accepts, the
// README's alarm ids have the shape the rules engine gives them, and the
// notify settings the sample writes out are the real defaults.
func TestNotifyDocsInStep(t *testing.T) {
	t.Run("sample documents every notify key", func(t *testing.T) {
		data, err := os.ReadFile(samplePath)
		if err != nil {
			t.Fatal(err)
		}
		section, err := notifySection(string(data))
		if err != nil {
			t.Fatalf("%s: %v", samplePath, err)
		}
		keys, paths := yamlKeys(reflect.TypeFor[notify.Config](), "notify", nil)
		if len(keys) < 10 {
			t.Fatalf("found only %d yaml keys in notify.Config: %v", len(keys), keys)
		}
		for _, k := range keys {
			if !documentsKey(section, k) {
				t.Errorf("%s: the notify section does not show the key %q (%s); add it, commented out with '#' if it needs a real endpoint or file",
					samplePath, k, strings.Join(paths[k], ", "))
			}
		}
	})

	t.Run("README alarm ids have the engine's shape", func(t *testing.T) {
		data, err := os.ReadFile(notifyREADME)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i, line := range strings.Split(string(data), "\n") {
			if lower := strings.ToLower(line); strings.Contains(lower, "/dev:") || strings.Contains(lower, "%2fdev:") {
				t.Errorf("%s:%d: %q: alarm ids are <rule>@dev:<device>, not <rule>/dev:<device>", notifyREADME, i+1, strings.TrimSpace(line))
			}
			for _, id := range alarmIDExamples(line) {
				n++
				if !alarmIDShape.MatchString(id) {
					t.Errorf("%s:%d: alarm id example %q does not match %s (<rule>@dev:<device>, <rule>@zone:<zone> or <rule>@gateway)",
						notifyREADME, i+1, id, alarmIDShape)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no alarm id examples (like smoke@dev:kitchen-smoke-1) found; has the README changed shape?", notifyREADME)
		}
	})

	t.Run("sample writes out the real notify defaults", func(t *testing.T) {
		got := loadSample(t).Notify
		var want notify.Config
		want.Defaults()
		for _, tc := range []struct {
			key       string
			got, want any
		}{
			{"notify.external_url", got.ExternalURL, want.ExternalURL},
			{"notify.languages", got.Languages, want.Languages},
			{"notify.retry.min", got.Retry.Min, want.Retry.Min},
			{"notify.retry.max", got.Retry.Max, want.Retry.Max},
			{"notify.max_age", got.MaxAge, want.MaxAge},
			{"notify.max_attempts", got.MaxAttempts, want.MaxAttempts},
			{"notify.concurrency", got.Concurrency, want.Concurrency},
			{"notify.keep_finished", got.KeepFinished, want.KeepFinished},
		} {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("%s: %s = %v in the sample, but the default is %v", samplePath, tc.key, tc.got, tc.want)
			}
		}
	})
}

// yamlKeyPaths lists the key paths the config decoder accepts in a value
// of type t ("notify.channels[].email.port"), following struct fields by
// their yaml tags through slices and nested structs. Types that decode
// from text (durations, severities) are leaves.
// yamlKeys returns the distinct yaml key names of t (those whose path
// skip does not refuse), in order, and the paths each is the last part of.
func yamlKeys(t reflect.Type, prefix string, skip func(path string) bool) (keys []string, paths map[string][]string) {
	paths = map[string][]string{}
	for _, p := range yamlKeyPaths(t, prefix, nil) {
		if skip != nil && skip(p) {
			continue
		}
		k := p[strings.LastIndexAny(p, ".]")+1:]
		if paths[k] == nil {
			keys = append(keys, k)
		}
		paths[k] = append(paths[k], strings.TrimPrefix(p, "."))
	}
	return keys, paths
}

func yamlKeyPaths(t reflect.Type, prefix string, seen []reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) ||
		slices.Contains(seen, t) {
		return nil
	}
	seen = append(seen, t)
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		p := prefix + "." + name
		out = append(out, p)
		out = append(out, yamlKeyPaths(f.Type, p, seen)...)
	}
	return out
}

// notifySection returns the lines of the sample from "notify:" (commented
// out or not) up to the next top-level key.
func notifySection(sample string) (string, error) {
	lines := strings.Split(sample, "\n")
	start := slices.IndexFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "notify:") || strings.HasPrefix(l, "# notify:")
	})
	if start < 0 {
		return "", fmt.Errorf("no notify: section")
	}
	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		if topLevelKey.MatchString(lines[i]) {
			end = i
			break
		}
	}
	return strings.Join(lines[start:end], "\n"), nil
}

var topLevelKey = regexp.MustCompile(`^[a-z_]+:`)

// documentsKey reports whether section shows key as a YAML key: at the
// start of a line (after indentation, '#' and a list dash) or in a flow
// mapping ({zh: ..., en: ...}).
func documentsKey(section, key string) bool {
	q := regexp.QuoteMeta(key)
	re := regexp.MustCompile(`(?m)(^[ \t]*(#[ \t]*)*(-[ \t]+)?|[{,][ \t]*)` + q + `:([ \t]|$)`)
	return re.MatchString(section)
}

// alarmIDShape is the shape of the alarm ids the rules engine gives
// (rules/engine subjectKey): rule, then device, zone or the gateway.
var alarmIDShape = regexp.MustCompile(`^[a-z0-9-]+@(dev:[a-z0-9_.-]+|zone:[a-z0-9-]+|gateway)$`)

var idToken = regexp.MustCompile(`[A-Za-z0-9_.:<>@%/-]*@(dev:|zone:|gateway)[A-Za-z0-9_.:<>@%/-]*`)

// alarmIDExamples returns the alarm-id-looking words of a README line
// (something@dev:..., @zone:..., @gateway), leaving out placeholders such
// as <rule>@dev:<device>. An id at the end of a URL path is taken alone.
func alarmIDExamples(line string) []string {
	var out []string
	for _, tok := range idToken.FindAllString(line, -1) {
		if strings.ContainsAny(tok, "<>") {
			continue
		}
		if i := strings.LastIndex(tok, "/"); i >= 0 && i < strings.Index(tok, "@") {
			tok = tok[i+1:]
		}
		out = append(out, strings.TrimRight(tok, ".:"))
	}
	return out
}
