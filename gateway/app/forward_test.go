package app

import (
	"log/slog"
	"testing"

	"github.com/shelterwatch/shelterwatch/ingest/forward"
	"github.com/shelterwatch/shelterwatch/ingest/store"
)

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
