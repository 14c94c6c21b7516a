package hazard

import (
	"errors"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Status is where an item is in its lifecycle.
type Status string

// Statuses.
const (
	StatusOpen      Status = "open"
	StatusRectified Status = "rectified"
	StatusVerified  Status = "verified"
)

// Subject kinds: what an item is about.
const (
	SubjectDevice = "device"
	SubjectCamera = "camera"
	SubjectZone   = "zone"
)

// Item is one entry of the hazard list.
type Item struct {
	// ID is "HZ-0001", …: short enough to say on the phone.
	ID string `json:"id"`
	// Rule raised it; RuleManual for an inspector's own.
	Rule string `json:"rule"`
	// Zone, and the device, camera or zone the item is about.
	Zone        string `json:"zone,omitempty"`
	SubjectKind string `json:"subject_kind"`
	Subject     string `json:"subject,omitempty"`
	// Title says what is wrong, Standard what must hold once it is fixed.
	Title    alarm.Text `json:"title"`
	Standard alarm.Text `json:"standard"`
	// Responsible is who must rectify it.
	Responsible string `json:"responsible,omitempty"`
	// Since is when the problem began (the condition first held; for an
	// inspector's item, when it was found).
	Since time.Time `json:"since"`
	// Opened is when the item was raised, By by whom ("gateway" for a
	// rule).
	Opened   time.Time `json:"opened"`
	By       string    `json:"by"`
	Deadline time.Time `json:"deadline"`
	Status   Status    `json:"status"`
	// Overdue: open and past its deadline (notified).
	Overdue bool `json:"overdue"`
	// Evidence of the last rectification: the condition cleared, or a
	// manager's note.
	Evidence    string    `json:"evidence,omitempty"`
	RectifiedAt time.Time `json:"rectified_at,omitzero"`
	RectifiedBy string    `json:"rectified_by,omitempty"`
	VerifiedAt  time.Time `json:"verified_at,omitzero"`
	VerifiedBy  string    `json:"verified_by,omitempty"`
	// Reopened counts returns to open.
	Reopened int `json:"reopened"`
	// History is every change, oldest first.
	History []Change `json:"history"`
}

// Change is one step of an item's history.
type Change struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"` // an audit.ActionHazard… action
	By     string    `json:"by"`
	Note   string    `json:"note,omitempty"`
	Status Status    `json:"status"`
}

// Manual is an item an inspector raises.
type Manual struct {
	Zone string
	// Device or Camera, when the item is about one (optional).
	Device, Camera string
	Title          alarm.Text
	Standard       alarm.Text
	Responsible    string
	Deadline       time.Time
	Note           string
}

// Update changes an item's responsible person or deadline (zero values
// keep them).
type Update struct {
	Responsible string
	Deadline    time.Time
	Note        string
}

// Errors the API maps to its status codes.
var (
	ErrNotFound = errors.New("no such hazard item")
	// ErrStatus: the action does not apply to the item's status.
	ErrStatus = errors.New("the item's status does not allow this")
	// ErrConditionHolds: a rule's condition still holds, so the item
	// cannot be counted rectified or verified.
	ErrConditionHolds = errors.New("the condition that raised the item still holds")
	// ErrInvalid: a manual item or update is missing something or names
	// what does not exist.
	ErrInvalid = errors.New("invalid hazard item")
)

// By is who the gateway's own changes are attributed to.
const By = "gateway"

func (it *Item) clone() Item {
	c := *it
	c.History = append([]Change(nil), it.History...)
	return c
}
