package selfalarm

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLifecycle(t *testing.T) {
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	r := New(nil, func() time.Time { return now })
	var changes []string
	r.OnChange = func(c Change) { changes = append(changes, fmt.Sprintf("%s:%t", c.Alarm.ID, c.Raised)) }
	reg := prometheus.NewPedanticRegistry()
	if err := r.Register(reg); err != nil {
		t.Fatal(err)
	}
	r.Raise("forward-stalled:province", Warning, false, "stalled", "停滞")
	now = now.Add(time.Minute)
	r.Raise("store-data-loss", Critical, true, "lost 10", "丢失 10")
	now = now.Add(time.Minute)
	r.Raise("store-data-loss", Critical, true, "lost 25", "丢失 25")

	got := r.Active()
	if len(got) != 2 || got[0].ID != "store-data-loss" || got[0].Count != 2 || got[0].Message != "lost 25" ||
		!got[0].Since.Equal(now.Add(-time.Minute)) || got[1].ID != "forward-stalled:province" {
		t.Fatalf("active: %+v", got)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP shelterwatch_self_alarm_active 1 while a self-alarm is raised.
# TYPE shelterwatch_self_alarm_active gauge
shelterwatch_self_alarm_active{alarm="forward-stalled:province",severity="warning"} 1
shelterwatch_self_alarm_active{alarm="store-data-loss",severity="critical"} 1
`), "shelterwatch_self_alarm_active"); err != nil {
		t.Fatal(err)
	}

	// Clearing ends an unlatched alarm, but a latched one stays (marked
	// cleared) until acknowledged.
	r.Clear("forward-stalled:province")
	r.Clear("store-data-loss")
	got = r.Active()
	if len(got) != 1 || got[0].ID != "store-data-loss" || !got[0].Cleared {
		t.Fatalf("after clear: %+v", got)
	}
	if !r.Acknowledge("store-data-loss") || len(r.Active()) != 0 || r.Acknowledge("store-data-loss") {
		t.Fatalf("acknowledge did not remove the latched alarm exactly once")
	}
	if n, err := testutil.GatherAndCount(reg, "shelterwatch_self_alarm_active"); err != nil || n != 0 {
		t.Fatalf("active gauge series left: %d %v", n, err)
	}
	// People hear of each alarm once when it starts and once when it ends,
	// not on every repeat.
	if got := strings.Join(changes, " "); got != "forward-stalled:province:true store-data-loss:true forward-stalled:province:false store-data-loss:false" {
		t.Fatalf("changes: %s", got)
	}
}
