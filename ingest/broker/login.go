package broker

import (
	"time"

	"github.com/shelterwatch/shelterwatch/internal/throttle"
)

// LoginLimits bound what guessing passwords can cost. A bcrypt check takes
// tens of milliseconds of a small board's CPU, so failed logins are
// throttled per remote address and per username, and only a few checks run
// at once.
type LoginLimits struct {
	// FreeFailures is how many failed logins an address or a username may
	// have before the penalty starts: after that many, logins are refused
	// without a check for Penalty (0: DefaultFreeFailures).
	FreeFailures int
	// Penalty is the first penalty; it doubles with every further failure
	// up to MaxPenalty (0: DefaultPenalty, DefaultMaxPenalty).
	Penalty, MaxPenalty time.Duration
	// MaxConcurrentChecks caps the bcrypt checks running at once
	// (0: DefaultMaxConcurrentChecks). A login that finds every slot taken
	// waits for one for at most CheckWait, MaxQueuedChecks of them at a
	// time; the others are refused at once, without a check
	// (0: DefaultMaxQueuedChecks, DefaultCheckWait).
	MaxConcurrentChecks int
	MaxQueuedChecks     int
	CheckWait           time.Duration
}

// Login limit defaults.
const (
	DefaultFreeFailures        = 5
	DefaultPenalty             = time.Second
	DefaultMaxPenalty          = time.Minute
	DefaultMaxConcurrentChecks = 2
	DefaultMaxQueuedChecks     = 64
	DefaultCheckWait           = 5 * time.Second
)

func (l LoginLimits) withDefaults() LoginLimits {
	if l.FreeFailures <= 0 {
		l.FreeFailures = DefaultFreeFailures
	}
	if l.Penalty <= 0 {
		l.Penalty = DefaultPenalty
	}
	if l.MaxPenalty <= 0 {
		l.MaxPenalty = DefaultMaxPenalty
	}
	if l.MaxPenalty < l.Penalty {
		l.MaxPenalty = l.Penalty
	}
	if l.MaxConcurrentChecks <= 0 {
		l.MaxConcurrentChecks = DefaultMaxConcurrentChecks
	}
	if l.MaxQueuedChecks <= 0 {
		l.MaxQueuedChecks = DefaultMaxQueuedChecks
	}
	if l.CheckWait <= 0 {
		l.CheckWait = DefaultCheckWait
	}
	return l
}

// throttle is the failed-login throttle the limits describe.
func (l LoginLimits) throttle() *throttle.Throttle {
	return throttle.New(throttle.Limits{FreeFailures: l.FreeFailures, Penalty: l.Penalty, MaxPenalty: l.MaxPenalty})
}
