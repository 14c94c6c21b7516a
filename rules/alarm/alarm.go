// Package alarm defines what the rules engine hands to the notification
// channels: alarms, their lifecycle transitions, and the texts people read.
// It holds types only, so that the engine (rules/engine) and the channels
// (rules/notify) depend on it and not on each other.
package alarm

import (
	"time"
)

// Severity orders alarms; notification outboxes send higher ones first.
type Severity string

// Severities, lowest first.
const (
	// SeverityInfo is a record that pages nobody (a device under test).
	SeverityInfo Severity = "info"
	// SeverityTrouble is a fault of the safety system itself (sensor
	// offline, low battery): someone must fix it today.
	SeverityTrouble Severity = "trouble"
	// SeverityWarning needs attention soon (cold dormitory, door held open).
	SeverityWarning Severity = "warning"
	// SeverityCritical needs someone now (a resident leaving the secure
	// ward at night, smoke from one detector).
	SeverityCritical Severity = "critical"
	// SeverityFire is a confirmed fire: ahead of everything else.
	SeverityFire Severity = "fire"
)

// Rank orders severities: higher is more urgent. Unknown severities rank
// lowest.
func (s Severity) Rank() int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityTrouble:
		return 2
	case SeverityWarning:
		return 3
	case SeverityCritical:
		return 4
	case SeverityFire:
		return 5
	}
	return 0
}

// Valid reports whether s is one of the severities above.
func (s Severity) Valid() bool { return s.Rank() > 0 }

// State is where an alarm is in its lifecycle.
type State string

// Alarm states.
const (
	StateFiring       State = "firing"
	StateAcknowledged State = "acknowledged"
	StateResolved     State = "resolved"
)

// Text is a message in the two languages the product speaks.
type Text struct {
	EN string `json:"en"`
	ZH string `json:"zh"`
}

// Alarm is one alarm: one rule firing for one subject (a device or a zone).
// There is at most one open alarm per ID.
type Alarm struct {
	// ID is stable for a rule and subject ("smoke@dev:kitchen-smoke-1")
	// and unique per episode with Seq.
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
	// Rule is the id of the rule that raised it.
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Facility, Zone and Device name the subject; Device is empty for
	// zone-wide and gateway-wide alarms.
	Facility string `json:"facility"`
	Zone     string `json:"zone,omitempty"`
	Device   string `json:"device,omitempty"`
	// Title and Body are rendered from the rule's templates.
	Title Text `json:"title"`
	Body  Text `json:"body"`
	// Labels are free key/values from the rule (for routing and
	// Alertmanager-compatible receivers).
	Labels map[string]string `json:"labels,omitempty"`

	State   State     `json:"state"`
	Since   time.Time `json:"since"`
	Updated time.Time `json:"updated"`
	// Level is the escalation level reached (0: first recipients).
	Level int `json:"level"`
	// Silenced alarms are recorded but page nobody (maintenance window,
	// silence, inhibition).
	Silenced bool   `json:"silenced"`
	Reason   string `json:"silenced_reason,omitempty"`

	AckedBy    string    `json:"acked_by,omitempty"`
	AckedAt    time.Time `json:"acked_at,omitzero"`
	AckComment string    `json:"ack_comment,omitempty"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Latched alarms (smoke) resolve only when a manager resets them,
	// after their condition has cleared.
	Latched bool `json:"latched"`
	// ConditionCleared: a latched alarm whose condition is gone, waiting
	// for a manager's reset.
	ConditionCleared bool `json:"condition_cleared,omitempty"`
}

// EventKind is a transition that may notify someone.
type EventKind string

// Event kinds.
const (
	EventFiring       EventKind = "firing"
	EventAcknowledged EventKind = "acknowledged"
	EventResolved     EventKind = "resolved"
	// EventEscalated: unacknowledged for too long, the next level is told.
	EventEscalated EventKind = "escalated"
	// EventRepeat: still unacknowledged, the current level is told again.
	EventRepeat EventKind = "repeat"
)

// Event is one transition of one alarm, as the channels receive it.
type Event struct {
	Kind  EventKind `json:"kind"`
	At    time.Time `json:"at"`
	Alarm Alarm     `json:"alarm"`
	// Level is the escalation level whose recipients get this event.
	Level int `json:"level"`
}
