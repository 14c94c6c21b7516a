package hazard

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shelterwatch/shelterwatch/internal/atomicfile"
	"github.com/shelterwatch/shelterwatch/internal/audit"
)

// Limits on what people type, so one request cannot bloat the list.
const (
	maxText = 500
	maxNote = 2000
	// maxDeadline bounds how far away a deadline may be set.
	maxDeadline = 366 * day
)

func checkText(field, s string, limit int, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	case utf8.RuneCountInString(s) > limit:
		return fmt.Errorf("%w: %s is longer than %d characters", ErrInvalid, field, limit)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	return nil
}

func checkDeadline(dl, now time.Time) error {
	switch {
	case dl.IsZero():
		return fmt.Errorf("%w: deadline is required", ErrInvalid)
	case !dl.After(now):
		return fmt.Errorf("%w: deadline must be in the future", ErrInvalid)
	case dl.Sub(now) > maxDeadline:
		return fmt.Errorf("%w: deadline must be within a year", ErrInvalid)
	}
	return nil
}

// Create adds an inspector's own item.
func (c *Core) Create(m Manual, by string, now time.Time) (Item, error) {
	if c.zones[m.Zone] == nil {
		return Item{}, fmt.Errorf("%w: zone: no zone %q in this facility", ErrInvalid, m.Zone)
	}
	kind, subject := SubjectZone, m.Zone
	switch {
	case m.Device != "" && m.Camera != "":
		return Item{}, fmt.Errorf("%w: name a device or a camera, not both", ErrInvalid)
	case m.Device != "":
		if c.devices[m.Device] == nil {
			return Item{}, fmt.Errorf("%w: device: no device %q in this facility", ErrInvalid, m.Device)
		}
		kind, subject = SubjectDevice, m.Device
	case m.Camera != "":
		if c.cameras[m.Camera] == nil {
			return Item{}, fmt.Errorf("%w: camera: no camera %q in this facility", ErrInvalid, m.Camera)
		}
		kind, subject = SubjectCamera, m.Camera
	}
	for _, f := range []struct {
		name, v  string
		limit    int
		required bool
	}{
		{"title", m.Title.EN + m.Title.ZH, maxText, true}, {"title.en", m.Title.EN, maxText, false}, {"title.zh", m.Title.ZH, maxText, false},
		{"standard", m.Standard.EN + m.Standard.ZH, maxText, true}, {"standard.en", m.Standard.EN, maxText, false}, {"standard.zh", m.Standard.ZH, maxText, false},
		{"responsible", m.Responsible, maxText, true}, {"note", m.Note, maxNote, false},
	} {
		if err := checkText(f.name, f.v, f.limit, f.required); err != nil {
			return Item{}, err
		}
	}
	if err := checkDeadline(m.Deadline, now); err != nil {
		return Item{}, err
	}
	it := &Item{ID: fmt.Sprintf("HZ-%04d", c.nextID), Rule: RuleManual, Zone: m.Zone, SubjectKind: kind, Subject: subject,
		Title: m.Title, Standard: m.Standard, Responsible: m.Responsible, Since: now, Opened: now, By: by,
		Deadline: m.Deadline, Status: StatusOpen}
	c.nextID++
	c.items = append(c.items, it)
	c.byID[it.ID] = it
	c.change(it, audit.ActionHazardOpened, by, m.Note, now)
	return it.clone(), nil
}

// Rectify records a manager's rectification of an open item: note says
// what was done.
func (c *Core) Rectify(id, by, note string, now time.Time) (Item, error) {
	it := c.byID[id]
	if it == nil {
		return Item{}, ErrNotFound
	}
	if err := checkText("note", note, maxNote, true); err != nil {
		return Item{}, err
	}
	if it.Status != StatusOpen {
		return Item{}, fmt.Errorf("%w: %s is %s, only an open item can be rectified", ErrStatus, id, it.Status)
	}
	if err := c.conditionHolds(it); err != nil {
		return Item{}, err
	}
	c.rectify(it, by, note, now)
	return it.clone(), nil
}

// Verify records an inspector's check of a rectified item: it closes.
func (c *Core) Verify(id, by, note string, now time.Time) (Item, error) {
	it := c.byID[id]
	if it == nil {
		return Item{}, ErrNotFound
	}
	if err := checkText("note", note, maxNote, false); err != nil {
		return Item{}, err
	}
	if it.Status != StatusRectified {
		return Item{}, fmt.Errorf("%w: %s is %s, only a rectified item can be verified", ErrStatus, id, it.Status)
	}
	if err := c.conditionHolds(it); err != nil {
		return Item{}, err
	}
	it.Status, it.VerifiedAt, it.VerifiedBy = StatusVerified, now, by
	if k := itemKey(it); k != "" && c.active[k] == it {
		delete(c.active, k) // a return of the condition raises a new item
	}
	c.change(it, audit.ActionHazardVerified, by, note, now)
	return it.clone(), nil
}

// Reopen records an inspector's rejection of a rectification: note says
// why.
func (c *Core) Reopen(id, by, note string, now time.Time) (Item, error) {
	it := c.byID[id]
	if it == nil {
		return Item{}, ErrNotFound
	}
	if err := checkText("note", note, maxNote, true); err != nil {
		return Item{}, err
	}
	if it.Status != StatusRectified {
		return Item{}, fmt.Errorf("%w: %s is %s, only a rectified item can be reopened", ErrStatus, id, it.Status)
	}
	c.reopen(it, by, note, now)
	return it.clone(), nil
}

// Change sets an item's responsible person or deadline. A new deadline
// of an overdue item that lies ahead ends its overdue state.
func (c *Core) Change(id, by string, u Update, now time.Time) (Item, error) {
	it := c.byID[id]
	if it == nil {
		return Item{}, ErrNotFound
	}
	if it.Status == StatusVerified {
		return Item{}, fmt.Errorf("%w: %s is verified and closed", ErrStatus, id)
	}
	if u.Responsible == "" && u.Deadline.IsZero() {
		return Item{}, fmt.Errorf("%w: nothing to change: give responsible or deadline", ErrInvalid)
	}
	if err := checkText("responsible", u.Responsible, maxText, false); err != nil {
		return Item{}, err
	}
	if err := checkText("note", u.Note, maxNote, false); err != nil {
		return Item{}, err
	}
	var what []string
	if !u.Deadline.IsZero() {
		if err := checkDeadline(u.Deadline, now); err != nil {
			return Item{}, err
		}
		what = append(what, fmt.Sprintf("deadline %s → %s", it.Deadline.In(c.cfg.Location).Format("2006-01-02 15:04"),
			u.Deadline.In(c.cfg.Location).Format("2006-01-02 15:04")))
		it.Deadline, it.Overdue = u.Deadline, false
	}
	if u.Responsible != "" {
		what = append(what, fmt.Sprintf("responsible %q → %q", it.Responsible, u.Responsible))
		it.Responsible = u.Responsible
	}
	note := strings.Join(what, "; ")
	if u.Note != "" {
		note += ": " + u.Note
	}
	c.change(it, audit.ActionHazardUpdated, by, note, now)
	return it.clone(), nil
}

// conditionHolds refuses to count an item fixed while the gateway still
// sees its condition.
func (c *Core) conditionHolds(it *Item) error {
	k := itemKey(it)
	if k == "" {
		return nil
	}
	if cd := c.conds[k]; cd != nil && cd.Active {
		return fmt.Errorf("%w since %s", ErrConditionHolds, cd.Since.In(c.cfg.Location).Format("2006-01-02 15:04"))
	}
	return nil
}

// snapshotVersion is the format of Snapshot.
const snapshotVersion = 1

type snapshot struct {
	Version  int                  `json:"version"`
	NextID   int                  `json:"next_id"`
	Items    []*Item              `json:"items"`
	Conds    map[string]*cond     `json:"conditions"`
	LastTest map[string]time.Time `json:"last_test"`
}

// Snapshot encodes the state for Restore.
func (c *Core) Snapshot() ([]byte, error) {
	b, err := json.Marshal(snapshot{Version: snapshotVersion, NextID: c.nextID, Items: c.items, Conds: c.conds, LastTest: c.lastTest})
	if err != nil {
		return nil, fmt.Errorf("hazard: encode state: %w", err)
	}
	return b, nil
}

func refuseNewerState(version int) error {
	if version > snapshotVersion {
		return fmt.Errorf("hazard: the hazard list was written by a newer gateway (format %d; this build reads up to %d): "+
			"refusing to start so that it is not overwritten; run that gateway version or a newer one", version, snapshotVersion)
	}
	return nil
}

// CheckStateVersion refuses the hazard list in dir (StateFile) if a newer
// gateway wrote it, without loading it: the gateway looks at every part's
// format before it opens (and so upgrades) any of them. A missing or
// unreadable file passes; loading it says what is wrong.
func CheckStateVersion(dir string) error {
	if v, ok := atomicfile.Version(filepath.Join(dir, StateFile)); ok {
		return refuseNewerState(v)
	}
	return nil
}

// Restore replaces the state with a snapshot's, then applies the current
// configuration at now.
func (c *Core) Restore(b []byte, now time.Time) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("hazard: decode state: %w", err)
	}
	if err := refuseNewerState(s.Version); err != nil {
		return err
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("hazard: state format %d, this build reads %d", s.Version, snapshotVersion)
	}
	c.nextID, c.items = max(s.NextID, 1), s.Items
	c.conds, c.lastTest = s.Conds, s.LastTest
	if c.conds == nil {
		c.conds = map[string]*cond{}
	}
	if c.lastTest == nil {
		c.lastTest = map[string]time.Time{}
	}
	c.byID, c.active = map[string]*Item{}, map[string]*Item{}
	for _, it := range c.items {
		c.byID[it.ID] = it
		if k := itemKey(it); k != "" && it.Status != StatusVerified {
			c.active[k] = it
		}
	}
	return c.Configure(c.cfg, now)
}
