// Package audit is the gateway's append-only record of what people and the
// gateway did that someone may later have to answer for: alarm actions
// (fired, acknowledged, reset, silenced, escalated), video views (who
// watched which camera, from where, for how long), configuration changes
// (rules reloaded), and, later, people's logins.
//
// An entry is typed by its domain: the common fields (time, action, who,
// comment, detail) plus at most one domain part (Alarm or Video). On disk
// it is one JSON object per line; the domain parts' fields sit beside the
// common ones, so the file stays a flat, greppable JSON Lines log.
//
// # Concurrency and durability
//
// A Log is safe for concurrent use. Append writes its entries in one
// write(2) and fsyncs before it returns: an action reported as done is on
// disk. Readers never take the append lock. Nothing in the gateway
// rewrites or deletes the file.
package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Entry is one line of the audit log.
type Entry struct {
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	By      string    `json:"by,omitempty"`
	Comment string    `json:"comment,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	// At most one domain part is set.
	*Alarm
	*Video
}

// Alarm is the part of an entry about one alarm (Action: fired,
// acknowledged, reset, resolved, escalated, repeated, silenced, …).
type Alarm struct {
	AlarmID  string `json:"alarm_id,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Level    int    `json:"level,omitempty"`
	State    string `json:"state,omitempty"`
	Severity string `json:"severity,omitempty"`
}

// Video is the part of an entry about one viewing session (Action:
// video_view_started, video_view_ended).
type Video struct {
	Camera  string    `json:"camera,omitempty"`
	Session string    `json:"session,omitempty"`
	Remote  string    `json:"remote,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Bytes   uint64    `json:"bytes,omitempty"`
}

// Actions written by the gateway outside the alarm lifecycle.
const (
	ActionVideoViewStarted = "video_view_started"
	ActionVideoViewEnded   = "video_view_ended"
	ActionRulesReloaded    = "rules_reloaded"
)

// AlarmID is the entry's alarm ("" when it is not about an alarm).
func (e *Entry) AlarmID() string {
	if e.Alarm == nil {
		return ""
	}
	return e.Alarm.AlarmID
}

// Camera is the entry's camera ("" when it is not about a video view).
func (e *Entry) Camera() string {
	if e.Video == nil {
		return ""
	}
	return e.Video.Camera
}

// Filter selects entries when reading; zero fields match everything.
type Filter struct {
	AlarmID string
	Camera  string
	Action  string
}

func (f Filter) match(e *Entry) bool {
	return (f.AlarmID == "" || e.AlarmID() == f.AlarmID) &&
		(f.Camera == "" || e.Camera() == f.Camera) &&
		(f.Action == "" || e.Action == f.Action)
}

// Options configure a Log.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnWrite, when set, is told the outcome of every Append (nil on
	// success), so the gateway can raise a fault while writes fail and
	// clear it once they work again.
	OnWrite func(err error)
}

// Log is an open audit log.
type Log struct {
	path string
	opts Options
	mu   sync.Mutex // serialises appends (and Close)
	f    *os.File
}

// Open opens (creating) the log at path.
func Open(path string, opts Options) (*Log, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("audit: create directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return &Log{path: path, opts: opts, f: f}, nil
}

// Append writes entries and syncs them to disk. An entry without a time
// gets the current time (UTC).
func (l *Log) Append(entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	err := l.append(entries)
	if l.opts.OnWrite != nil {
		l.opts.OnWrite(err)
	}
	return err
}

func (l *Log) append(entries []Entry) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range entries {
		if e.Time.IsZero() {
			e.Time = l.opts.Now().UTC()
		}
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("audit: encode %s entry: %w", e.Action, err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("audit: append %s: log closed", entries[0].Action)
	}
	if _, err := l.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("audit: append to %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: sync %s: %w", l.path, err)
	}
	return nil
}

// Read returns the newest entries matching f (up to limit), newest first.
// It does not take the append lock: a slow read of a long log never holds
// up the rules engine's appends. Each append is one write of whole lines,
// so a read sees whole entries and at most a torn last line, skipped.
func (l *Log) Read(f Filter, limit int) ([]Entry, error) {
	file, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", l.path, err)
	}
	defer file.Close()
	// A ring of the newest limit matches: the log grows for years, the
	// answer stays small.
	ring := make([]Entry, 0, min(limit, 1024))
	next := 0
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Entry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue // a torn last line after a crash
		}
		if !f.match(&e) || limit <= 0 {
			continue
		}
		if len(ring) < limit {
			ring = append(ring, e)
			continue
		}
		ring[next] = e
		next = (next + 1) % limit
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", l.path, err)
	}
	out := make([]Entry, 0, len(ring))
	for i := len(ring) - 1; i >= 0; i-- {
		out = append(out, ring[(next+i)%len(ring)])
	}
	return out, nil
}

// Close closes the log; later appends fail.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
