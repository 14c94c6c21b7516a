package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestSampleDocumentsEveryKey keeps the sample config a complete reference:
// every key the config accepts (the rules' keys aside: rules are
// documented in the README's rule reference and the rules file example)
// appears in it, set or commented out.
func TestSampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	sample := string(data)
	// Rules are documented in the README's rule reference instead.
	keys, paths := yamlKeys(reflect.TypeFor[Config](), "", func(p string) bool { return strings.HasPrefix(p, ".rules[].") })
	if len(keys) < 50 {
		t.Fatalf("found only %d yaml keys in Config: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !documentsKey(sample, k) {
			t.Errorf("%s does not show the key %q (%s); add it with its meaning and default, commented out with '#' if it needs a real endpoint or file",
				samplePath, k, strings.Join(paths[k], ", "))
		}
	}
}
