package cfgerr

import (
	"errors"
	"testing"
)

func TestListReadsOneProblemALine(t *testing.T) {
	err := Err("rules", []Problem{At(3, "when", "unknown name tmep"), At(0, "", "empty rule"), {Key: "x", Msg: "y"}})
	want := "rules[3].when: unknown name tmep\nrules[0]: empty rule\nrules.x: y"
	if err == nil || err.Error() != want {
		t.Fatalf("Err = %v, want\n%s", err, want)
	}
	var l List
	if !errors.As(err, &l) || len(l.Problems) != 3 {
		t.Fatalf("errors.As: %+v", l)
	}
	if Err("notify", nil) != nil {
		t.Fatal("no problems must be no error")
	}
}

func TestItem(t *testing.T) {
	for _, tc := range []struct {
		key  string
		i    int
		rest string
		ok   bool
	}{
		{"[3].when", 3, "when", true},
		{"[12]", 12, "", true},
		{"channels[2].url", 0, "channels[2].url", false},
		{"[x].when", 0, "[x].when", false},
		{"[3", 0, "[3", false},
	} {
		i, rest, ok := Item(tc.key)
		if i != tc.i || rest != tc.rest || ok != tc.ok {
			t.Errorf("Item(%q) = %d, %q, %v; want %d, %q, %v", tc.key, i, rest, ok, tc.i, tc.rest, tc.ok)
		}
	}
}
