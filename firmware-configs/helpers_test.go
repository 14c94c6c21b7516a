// Package firmwareconfigs holds the contract tests of the firmware configs
// in this folder: every config parses and sets what the gateway relies on,
// the gateway config of its devices loads, and the payloads each firmware
// publishes for its config decode, through the gateway's own pipeline, into
// the readings an installer expects.
package firmwareconfigs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shelterwatch/shelterwatch/gateway/config"
)

// sampleConfig is the gateway config of the devices of this folder.
const sampleConfig = "gateway-config.yaml"

var (
	sampleOnce sync.Once
	sample     *config.Config
	sampleErr  error
)

// loadSample loads gateway-config.yaml with the gateway's own loader and
// validation, once per test binary.
func loadSample(t testing.TB) *config.Config {
	t.Helper()
	sampleOnce.Do(func() { sample, sampleErr = config.Load(sampleConfig) })
	if sampleErr != nil {
		t.Fatalf("%s does not load: %v", sampleConfig, sampleErr)
	}
	return sample
}

// devicesOn returns the configured devices of format whose topic is topic.
func devicesOn(cfg *config.Config, format, topic string) []config.Device {
	var out []config.Device
	for _, d := range cfg.Devices {
		if d.Format == format && d.Topic == topic {
			out = append(out, d)
		}
	}
	return out
}

// readFile returns the contents of a file of this folder.
func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// yamlDoc parses a YAML file into its root node. Custom tags (ESPHome's
// !secret and !lambda) stay on the nodes, where checks can read them.
func yamlDoc(t testing.TB, path string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(readFile(t, path)), &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s: want a YAML mapping", path)
	}
	return doc.Content[0]
}

// get returns the value of key in mapping n, or nil.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// path follows keys through nested mappings.
func path(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = get(n, k)
	}
	return n
}

// items returns the elements of sequence n (none for anything else).
func items(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// str returns a scalar's value, "" for a missing node.
func str(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// isSecret reports whether n is an ESPHome `!secret key` and returns key.
func isSecret(n *yaml.Node) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!secret" || n.Value == "" {
		return "", false
	}
	return n.Value, true
}

var placeholderRE = regexp.MustCompile(`^<[^<>]+>$`)

// isPlaceholder reports whether s is a documentation placeholder such as
// "<device-password>", never a real value.
func isPlaceholder(s string) bool { return placeholderRE.MatchString(s) }

// topicMatch reports whether the MQTT topic filter f matches topic.
func topicMatch(f, topic string) bool {
	fl, tl := strings.Split(f, "/"), strings.Split(topic, "/")
	for i, l := range fl {
		if l == "#" {
			return true
		}
		if i >= len(tl) || (l != "+" && l != tl[i]) {
			return false
		}
	}
	return len(fl) == len(tl)
}

func anyMatch(filters []string, topic string) bool {
	for _, f := range filters {
		if topicMatch(f, topic) {
			return true
		}
	}
	return false
}

// checkAccount checks that username may log in to the gateway's broker and
// publish a board's topics: it is a device on base with a password hash, or
// a broker user whose filters allow publishing every topic of publish and
// keep retained messages on every topic of retain.
func checkAccount(t *testing.T, where, username, format, base string, publish, retain []string) {
	t.Helper()
	cfg := loadSample(t)
	if username == "" {
		t.Errorf("%s: no MQTT user name", where)
		return
	}
	for _, d := range devicesOn(cfg, format, base) {
		if d.ID == username {
			if d.PasswordHash == "" {
				t.Errorf("%s: MQTT user %q is device %s, which has no password_hash in %s: it cannot log in", where, username, d.ID, sampleConfig)
			}
			return
		}
	}
	for _, u := range cfg.Broker.Embedded.Users {
		if u.Username != username {
			continue
		}
		for _, topic := range publish {
			if !anyMatch(u.Publish, topic) {
				t.Errorf("%s: broker user %q may not publish %s (publish: %v)", where, username, topic, u.Publish)
			}
		}
		for _, topic := range retain {
			if !anyMatch(u.Retain, topic) {
				t.Errorf("%s: broker user %q may not retain %s (retain: %v): its availability would be lost on reconnect", where, username, topic, u.Retain)
			}
		}
		return
	}
	t.Errorf("%s: MQTT user %q is neither a %s device on %q nor a broker user in %s", where, username, format, base, sampleConfig)
}

// facilityOffset is the facility's UTC offset in whole hours at t.
func facilityOffset(cfg *config.Config, t time.Time) int {
	_, off := t.In(cfg.Facility.Location).Zone()
	return off / 3600
}

// files returns the files of this folder matching a glob, sorted.
func files(t testing.TB, glob string) []string {
	t.Helper()
	m, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatalf("no file matches %s", glob)
	}
	return m
}

// codeBlocks returns the fenced code blocks of a markdown file.
func codeBlocks(md string) []string {
	var out []string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if in {
				out = append(out, strings.Join(cur, "\n"))
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	return out
}
