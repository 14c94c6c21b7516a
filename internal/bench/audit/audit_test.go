package audit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/audit"
)

// A short run fills every figure of the table; the figures themselves are
// for `make bench`, not for a test.
func TestShortRun(t *testing.T) {
	o := audit.Options{Entries: 3000, Readers: 2, Limit: 100, Duration: 200 * time.Millisecond, Pace: 20 * time.Millisecond, Dir: t.TempDir()}
	var out bytes.Buffer
	if err := audit.Run(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"newest 100 entries of 3,000", "| 2, back to back | newest 100 |", "| newest 100 of one camera |", "| none |", "one read each per", "Goal: p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
