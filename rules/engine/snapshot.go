package engine

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/atomicfile"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// snapshot is the Core's persistent state: open alarms, pending timers
// (`for`, keep-firing, coincidence hits), silences and when each device was
// last heard. Rate-of-rise samples are not kept: after a restart a new
// window starts.
type snapshot struct {
	Version  int                   `json:"version"`
	Seq      uint64                `json:"seq"`
	Subjects map[string]*subjState `json:"subjects"`
	Open     map[string]*openAlarm `json:"open"`
	LastSeen map[string]time.Time  `json:"last_seen"`
	Offline  map[string]bool       `json:"offline"`
	LastAny  time.Time             `json:"last_any"`
	Silences []Silence             `json:"silences"`
	// Walk is the running walk test, Walks the finished ones.
	Walk  *WalkTest  `json:"walk,omitempty"`
	Walks []WalkTest `json:"walks,omitempty"`
}

const snapshotVersion = 1

// Snapshot encodes the persistent state.
func (c *Core) Snapshot() ([]byte, error) {
	subj := make(map[string]*subjState, len(c.subj))
	for k, s := range c.subj {
		if !s.PendingSince.IsZero() || !s.ClearSince.IsZero() || len(s.Hits) > 0 || c.open[k] != nil {
			subj[k] = s
		}
	}
	seen := make(map[string]time.Time, len(c.avail))
	offline := map[string]bool{}
	for id, st := range c.avail {
		seen[id] = st.LastSeen
		if st.ReportedOffline {
			offline[id] = true
		}
	}
	return json.Marshal(snapshot{Version: snapshotVersion, Seq: c.seq, Subjects: subj, Open: c.open,
		LastSeen: seen, Offline: offline, LastAny: c.lastAny, Silences: c.silences, Walk: c.walk, Walks: c.walks})
}

func refuseNewerState(version int) error {
	if version > snapshotVersion {
		return fmt.Errorf("engine: the saved alarm state was written by a newer gateway (state version %d; this build reads up to %d): "+
			"refusing to start so that it is not overwritten; run that gateway version or a newer one", version, snapshotVersion)
	}
	return nil
}

// CheckStateVersion refuses the saved alarm state in dir (StateFile) if a
// newer gateway wrote it, without loading it: the gateway looks at every
// part's format before it opens (and so upgrades) any of them. A missing
// or unreadable file passes; loading it says what is wrong.
func CheckStateVersion(dir string) error {
	if v, ok := atomicfile.Version(filepath.Join(dir, StateFile)); ok {
		return refuseNewerState(v)
	}
	return nil
}

// Restore loads a snapshot taken by Snapshot. State of rules that no
// longer exist is dropped (their alarms resolve silently, audited).
func (c *Core) Restore(b []byte, now time.Time) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("engine: decode saved state: %w", err)
	}
	if err := refuseNewerState(s.Version); err != nil {
		return err
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("engine: saved state has version %d, want %d", s.Version, snapshotVersion)
	}
	c.seq = s.Seq
	for k, st := range s.Subjects {
		c.subj[k] = st
	}
	for k, a := range s.Open {
		if c.byID[a.Rule] == nil {
			c.auditf(audit.Entry{Time: now, Action: "dropped", Detail: "its rule no longer exists", Alarm: &audit.Alarm{AlarmID: a.ID, Seq: a.Seq, Rule: a.Rule}})
			continue
		}
		c.open[k] = a
	}
	for k, v := range s.LastSeen {
		c.avail[k] = facility.Status{LastSeen: v, ReportedOffline: s.Offline[k]}
	}
	c.lastAny, c.silences = s.LastAny, s.Silences
	c.walks = s.Walks
	c.setWalk(s.Walk)
	return nil
}
