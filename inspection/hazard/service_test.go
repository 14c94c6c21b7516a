package hazard

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// countingAlarms is the engine's list of open alarms as the Service reads
// it once per step: the count of reads is the count of steps.
type countingAlarms struct {
	steps atomic.Int64
	mu    sync.Mutex
	open  []alarm.Alarm
}

func (a *countingAlarms) Active(context.Context) ([]alarm.Alarm, error) {
	a.steps.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]alarm.Alarm(nil), a.open...), nil
}

// A storm of alarm events (a door contact bouncing at night) is judged and
// saved about once a second, not once per alarm, and every alarm counts.
func TestAlarmStormIsJudgedTogether(t *testing.T) {
	dir := t.TempDir()
	alarms := &countingAlarms{}
	s, err := New(Options{Config: testConfig(), Dir: dir, Alarms: alarms, TickEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// The first step (at start) is past once the Service answers.
	if _, err := s.Items(ctx); err != nil {
		t.Fatal(err)
	}
	before := alarms.steps.Load()
	door := alarmOf("ward-night-door", "ward-door", "ward")
	const storm = 40
	start := time.Now()
	for i := range storm {
		a := door
		a.Since = time.Now()
		s.AlarmEvent(alarm.Event{Kind: alarm.EventFiring, Alarm: a, At: a.Since})
		if i < storm-1 {
			time.Sleep(10 * time.Millisecond) // time for a step between events
		}
	}
	spread := time.Since(start)
	// The deferred events are judged, and the list saved, within stepGap.
	deadline := time.Now().Add(10 * time.Second)
	for {
		hits, raw := savedHits(t, dir)
		if hits == storm {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the saved list counts %d night exits, want %d: %s", hits, storm, raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	steps := alarms.steps.Load() - before
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// At most one step at the first event, then one per stepGap.
	if most := 2 + int64(spread/stepGap); steps > most {
		t.Fatalf("%d alarms over %v took %d steps, want at most %d", storm, spread.Round(time.Millisecond), steps, most)
	}
	if items := s.core.Items(); len(items) != 1 || items[0].Rule != RuleNightExits {
		t.Fatalf("items = %+v", items)
	}
}

// savedHits counts the alarm times of the count rules in the saved list.
func savedHits(t *testing.T, dir string) (int, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Conds map[string]struct {
			Hits []time.Time `json:"hits"`
		} `json:"conditions"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	hits := 0
	for _, c := range st.Conds {
		hits += len(c.Hits)
	}
	return hits, b
}
