package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that no file makes Parse panic, that every failure is a
// non-empty list of located problems, and that a Config Parse accepts also
// passes Validate.
func FuzzParse(f *testing.F) {
	sample, err := os.ReadFile(samplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte(minimal))
	for _, tc := range strictCases {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %q is not a non-empty Errors", err, err)
			}
			for _, e := range errs {
				if e.Msg == "" || e.File != "fuzz.yaml" {
					t.Fatalf("malformed error %+v", e)
				}
			}
			if c != nil {
				t.Fatal("Config returned with an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects:\n%v\ninput:\n%s", err, data)
		}
		_ = c.LogValue().Resolve().String()
	})
}
