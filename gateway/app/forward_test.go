package app

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/selfalarm"
	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/store"
)

func TestForwarderSelfAlarms(t *testing.T) {
	a := &App{Alarms: selfalarm.New(nil, nil)}
	ids := func() []string {
		var out []string
		for _, al := range a.Alarms.Active() {
			out = append(out, al.ID)
		}
		return out
	}
	// A short outage is normal on a 4G link: no alarm.
	a.checkForwarder(forward.Status{Target: "province", BacklogAge: 3 * time.Minute, BacklogPoints: 9000}, ForwardStalledAfter)
	if got := ids(); len(got) != 0 {
		t.Fatalf("alarms after 3 minutes behind: %v", got)
	}
	a.checkForwarder(forward.Status{Target: "province", BacklogAge: 20 * time.Minute, BacklogPoints: 600000,
		LastError: "network: connection refused", AuthFailing: true}, ForwardStalledAfter)
	got := a.Alarms.Active()
	if len(got) != 2 || got[0].ID != "forward-auth:province" || got[1].ID != "forward-stalled:province" {
		t.Fatalf("alarms: %+v", got)
	}
	if !strings.Contains(got[1].Message, "600000 readings") || !strings.Contains(got[1].MessageZH, "600000 条") {
		t.Errorf("stalled message does not say how much waits: %q / %q", got[1].Message, got[1].MessageZH)
	}
	// Caught up again: both clear.
	a.checkForwarder(forward.Status{Target: "province"}, ForwardStalledAfter)
	if got := ids(); len(got) != 0 {
		t.Fatalf("alarms after catching up: %v", got)
	}
}

func TestRemovedTargetCursorIsForgotten(t *testing.T) {
	cfg := testConfig(t, "broker: {embedded: {listen: \"127.0.0.1:0\"}}\n")
	st, err := store.Open(store.Options{Dir: cfg.Store.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetCursor(forward.CursorName("old-province"), 0); err != nil {
		t.Fatal(err)
	}
	if err := st.SetCursor("rules", 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.closePartial()
	cur := a.Store.Cursors()
	if _, ok := cur[forward.CursorName("old-province")]; ok {
		t.Fatalf("cursor of a removed target kept: %v", cur)
	}
	if _, ok := cur["rules"]; !ok {
		t.Fatalf("another consumer's cursor removed: %v", cur)
	}
}
