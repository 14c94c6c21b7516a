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
// # Segments, rotation and retention
//
// The log is the current file (audit.jsonl) and the rotated segments
// beside it (audit.00000001.jsonl, audit.00000002.jsonl, …; a higher
// number is newer). Once the current file would grow past
// Options.RotateBytes, or its first entry is older than
// Options.RotateEvery, it is renamed to the next segment and a new one
// begins. After a rotation (and at Open) segments beyond Options.Keep or
// older than Options.MaxAge are deleted, oldest first; the current file
// never is.
//
// # Hash chain
//
// Every entry carries "prev": the SHA-256 (hex) of the exact bytes of the
// line before it, without its newline. The first entry of a log carries
// Genesis; the first entry of a new segment carries the hash of the last
// line of the segment before, so the chain spans rotation; Open resumes it
// from the last line on disk. Entries written before the chain existed
// have no "prev": the chain begins at the first entry that has one, which
// carries the hash of the line before it. Verify walks every segment and
// reports the first broken link. When retention has deleted old segments,
// the first entry of the oldest one left is accepted as the anchor. The
// chain shows that lines were changed, removed or inserted; it cannot show
// that the newest entries were cut off the end (Verify prints the head
// hash, which an operator can note elsewhere to check later).
//
// # Concurrency and durability
//
// A Log is safe for concurrent use. Append writes its entries in one
// write(2) and fsyncs before it returns: an action reported as done is on
// disk, and an Append that fails leaves nothing behind (the file is cut
// back). Readers never take the append lock: Read scans the files
// backwards from the end in blocks, and stops as soon as it has its
// answer, so reading the newest entries costs the same in a log of any
// length. A line still being appended (no newline yet) is skipped. Nothing
// in the gateway rewrites the log; Open cuts off a torn last line that a
// crash left mid-write (it was never acknowledged).
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileName is the current file's name in the gateway's alarms directory.
const FileName = "audit.jsonl"

// Genesis is the "prev" of the first entry of a log.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// DefaultRotateBytes is the size at which the gateway rotates the log
// (config alarms.audit.rotate_bytes).
const DefaultRotateBytes = 64 << 20

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
	*Login
	*Account
	*Hazard
	// Prev is the hash of the line before (see the package doc). Append
	// sets it; a value given to Append is ignored.
	Prev string `json:"prev,omitempty"`
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
	Camera  string `json:"camera,omitempty"`
	Session string `json:"session,omitempty"`
	// Remote is the viewer's network address: personal data, shown only
	// to those who may see it.
	Remote  string    `json:"remote,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Bytes   uint64    `json:"bytes,omitempty"`
}

// Login is the part of an entry about a console login (Action: login,
// login_failed, logout, sessions_ended); By is the user ("" for a name
// that is no user's: what was typed is not kept, it may be a password),
// Detail the reason of a refusal.
type Login struct {
	// Remote is the client's network address: personal data, shown only
	// to those who may see it. (Not "remote": the parts' fields share one
	// JSON object.)
	Remote string `json:"login_remote,omitempty"`
}

// Account is the part of an entry about a change to a console account
// (Action: user_added, user_removed, user_changed, user_disabled,
// user_enabled, password_changed, sessions_ended); Detail says what
// changed.
type Account struct {
	User string `json:"account"`
}

// Hazard is the part of an entry about one item of the hazard list
// (inspection/hazard; Action: one of the ActionHazard… actions). Its
// fields' names are their own: the parts share one JSON object.
type Hazard struct {
	HazardID string `json:"hazard_id"`
	// Rule is the hazard rule that raised the item, "manual" for an
	// inspector's own.
	Rule string `json:"hazard_rule,omitempty"`
	// Zone and Subject (a device, camera or zone id) say where.
	Zone    string `json:"hazard_zone,omitempty"`
	Subject string `json:"hazard_subject,omitempty"`
	// Status is the item's status after the change: open, rectified or
	// verified.
	Status   string    `json:"hazard_status,omitempty"`
	Deadline time.Time `json:"hazard_deadline,omitzero"`
}

// Hazard list actions: an item opened (by a rule or an inspector), its
// condition cleared or a manager's note rectified it, an inspector
// verified or reopened it (or its condition returned), it passed its
// deadline, or its responsible person, deadline or text changed.
const (
	ActionHazardOpened    = "hazard_opened"
	ActionHazardRectified = "hazard_rectified"
	ActionHazardVerified  = "hazard_verified"
	ActionHazardReopened  = "hazard_reopened"
	ActionHazardOverdue   = "hazard_overdue"
	ActionHazardUpdated   = "hazard_updated"
)

// Actions written by the gateway outside the alarm lifecycle.
const (
	ActionVideoViewStarted = "video_view_started"
	ActionVideoViewEnded   = "video_view_ended"
	ActionRulesReloaded    = "rules_reloaded"
	ActionLogin            = "login"
	ActionLoginFailed      = "login_failed"
	ActionLogout           = "logout"
	ActionSessionsEnded    = "sessions_ended"
	ActionUserAdded        = "user_added"
	ActionUserRemoved      = "user_removed"
	ActionUserChanged      = "user_changed"
	ActionUserDisabled     = "user_disabled"
	ActionUserEnabled      = "user_enabled"
	ActionPasswordChanged  = "password_changed"
	ActionBackupMade       = "backup_made"
	ActionBackupRestored   = "backup_restored"
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

// Options configure a Log.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnWrite, when set, is told the outcome of every Append (nil on
	// success), so the gateway can raise a fault while writes fail and
	// clear it once they work again.
	OnWrite func(err error)
	// RotateBytes starts a new segment once the current file would grow
	// past it; 0 never rotates by size.
	RotateBytes int64
	// RotateEvery starts a new segment once the current file's first
	// entry is this old; 0 never rotates by time.
	RotateEvery time.Duration
	// Keep is how many rotated segments are kept, newest first; 0 keeps
	// every one.
	Keep int
	// MaxAge deletes a rotated segment once its newest entry (its
	// modification time) is older; 0 keeps them whatever their age.
	MaxAge time.Duration
	// Logger reports rotation, retention and repairs (default: discard).
	Logger *slog.Logger
}

// Log is an open audit log.
type Log struct {
	path string
	opts Options

	mu      sync.Mutex // serialises appends, rotation and Close
	f       *os.File   // nil while closed or after a rotation could not open a new file
	closed  bool
	size    int64     // bytes of whole entries in the current file
	prev    string    // hash of the last line written: the next entry's prev
	started time.Time // time of the current file's first entry (zero: empty)
	dirty   bool      // a failed append left bytes past size that could not be cut off yet
}

// Open opens (creating) the log whose current file is path, resumes the
// hash chain from the last entry on disk and applies retention.
func Open(path string, opts Options) (*Log, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory: %w", err)
	}
	l := &Log{path: path, opts: opts}
	if err := l.openCurrent(); err != nil {
		return nil, err
	}
	if l.prev == "" {
		// A new current file (first start, or a rotation that a crash
		// interrupted): the chain goes on from the newest segment.
		prev, err := l.lastSegmentHash()
		if err != nil {
			l.f.Close()
			return nil, err
		}
		l.prev = prev
	}
	if err := l.retain(); err != nil {
		opts.Logger.Warn("audit: retention", "err", err)
	}
	return l, nil
}

// openCurrent opens the current file, cuts off a torn last line and reads
// the chain's position from what is left.
func (l *Log) openCurrent() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	size := st.Size()
	last, end, err := lastLine(f, size)
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	if end < size {
		// A crash in the middle of an append: those bytes were never
		// acknowledged, and the next entry must start on a line of its own.
		if err := f.Truncate(end); err != nil {
			f.Close()
			return fmt.Errorf("audit: cut the torn last line of %s: %w", l.path, err)
		}
		l.opts.Logger.Warn("audit: cut off a torn last line left by a crash", "file", l.path, "bytes", size-end)
	}
	l.f, l.size, l.prev, l.started = f, end, "", time.Time{}
	if last != nil {
		l.prev = lineHash(last)
		l.started = firstTime(f, end)
		if l.started.IsZero() {
			l.started = l.opts.Now() // rotation by time then waits a whole period
		}
	}
	return nil
}

// lastSegmentHash is the hash of the last line of the newest rotated
// segment, or Genesis when there is none.
func (l *Log) lastSegmentHash() (string, error) {
	segs, err := segments(l.path)
	if err != nil {
		return "", err
	}
	if len(segs) == 0 {
		return Genesis, nil
	}
	newest := segs[len(segs)-1].path
	f, err := os.Open(newest)
	if err != nil {
		return "", fmt.Errorf("audit: resume the chain from %s: %w", newest, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("audit: resume the chain from %s: %w", newest, err)
	}
	last, _, err := lastLine(f, st.Size())
	if err != nil {
		return "", fmt.Errorf("audit: resume the chain from %s: %w", newest, err)
	}
	if last == nil {
		return Genesis, nil
	}
	return lineHash(last), nil
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
	// Encoded before taking the lock; only the chain's link is added under
	// it. Prev is the last field, so it is spliced in before the closing
	// brace.
	objs := make([][]byte, len(entries))
	n := 0
	for i, e := range entries {
		if e.Time.IsZero() {
			e.Time = l.opts.Now().UTC()
		}
		e.Prev = ""
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("audit: encode %s entry: %w", e.Action, err)
		}
		objs[i] = b
		n += len(b) + len(`,"prev":""`) + 2*sha256.Size + 1
	}
	first := entries[0].Action
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ready(first); err != nil {
		return err
	}
	if l.shouldRotate(int64(n)) {
		if err := l.rotate(); err != nil {
			// Keep writing to the current file: a lost entry is worse
			// than a segment that grows past its size.
			l.opts.Logger.Error("audit: rotation failed; appending to the current file", "err", err)
			if err := l.ready(first); err != nil {
				return err
			}
		}
	}
	buf := make([]byte, 0, n)
	prev := l.prev
	for _, b := range objs {
		start := len(buf)
		buf = append(buf, b[:len(b)-1]...)
		buf = append(buf, `,"prev":"`...)
		buf = append(buf, prev...)
		buf = append(buf, `"}`...)
		prev = lineHash(buf[start:])
		buf = append(buf, '\n')
	}
	if _, err := l.f.Write(buf); err != nil {
		l.undo()
		return fmt.Errorf("audit: append %s to %s: %w", first, l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		// Not known to be on disk: cut it off so that the file holds only
		// entries whose Append succeeded.
		l.undo()
		return fmt.Errorf("audit: sync %s: %w", l.path, err)
	}
	if l.size == 0 {
		l.started = entries[0].Time
		if l.started.IsZero() {
			l.started = l.opts.Now()
		}
	}
	l.size += int64(len(buf))
	l.prev = prev
	return nil
}

// ready checks, under mu, that the log can take an append: open, with a
// current file, and nothing left over from a failed one.
func (l *Log) ready(action string) error {
	if l.closed {
		return fmt.Errorf("audit: append %s: log closed", action)
	}
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("audit: append %s: open %s: %w", action, l.path, err)
		}
		l.f, l.size, l.started = f, 0, time.Time{}
	}
	if l.dirty {
		if err := l.f.Truncate(l.size); err != nil {
			return fmt.Errorf("audit: append %s: cut a failed append off %s: %w", action, l.path, err)
		}
		l.dirty = false
	}
	return nil
}

// undo cuts a failed append off the current file; when that fails too,
// the next append tries again first.
func (l *Log) undo() {
	if err := l.f.Truncate(l.size); err != nil {
		l.dirty = true
	}
}

// Close closes the log; later appends fail.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// lineHash is the chain's hash of one line (without its newline).
func lineHash(line []byte) string {
	h := sha256.Sum256(line)
	return hex.EncodeToString(h[:])
}

// lastLine returns the last whole line of the first size bytes of f
// (without its newline; nil when there is none) and the offset just after
// the last newline: the end of the whole lines, where a torn line starts.
func lastLine(f *os.File, size int64) ([]byte, int64, error) {
	var last []byte
	err := eachLineBack(f, size, func(line []byte, _ int64) bool {
		last = bytes.Clone(line)
		return false
	})
	if err != nil {
		return nil, 0, err
	}
	end := size
	for end > 0 {
		start := max(0, end-readBlock)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return last, start + int64(i) + 1, nil
		}
		end = start
	}
	return last, 0, nil
}

// firstTime is the time of the first entry of f (zero when it cannot be
// read).
func firstTime(f *os.File, size int64) time.Time {
	buf := make([]byte, min(size, 64<<10))
	n, _ := f.ReadAt(buf, 0)
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	var e struct {
		Time time.Time `json:"time"`
	}
	_ = json.Unmarshal(line, &e)
	return e.Time
}
