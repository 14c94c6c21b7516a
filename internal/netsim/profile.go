package netsim

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultQueue is the bottleneck buffer of a Profile that sets none: a
// quarter of a second, about what a mobile operator's base station
// buffers per subscriber.
const DefaultQueue = 250 * time.Millisecond

// Profile describes the network between a client and the gateway.
type Profile struct {
	Name string
	// RTT is the round-trip time, half of it added in each direction.
	RTT time.Duration
	// Jitter is added to each direction's delay, uniform in
	// [-Jitter, +Jitter].
	Jitter time.Duration
	// Loss is the probability (0..1) a packet is lost, each direction
	// independently. Not applied to TCP.
	Loss float64
	// Rate is the link's capacity in bits per second, 0 for unlimited; it
	// applies to both directions unless UpRate is set.
	Rate int
	// UpRate is the client→server capacity in bits per second, 0 for the
	// same as Rate.
	UpRate int
	// Queue is the bottleneck buffer, in time at the rate: a packet that
	// would wait longer for the link is tail-dropped. 0 means
	// DefaultQueue.
	Queue time.Duration
}

// profiles are the built-in networks, in the order Names lists them.
var profiles = []Profile{
	{Name: "lan"},
	{Name: "office", RTT: 20 * time.Millisecond, Loss: 0.001, Rate: 20_000_000},
	{Name: "4g", RTT: 60 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.01, Rate: 4_000_000},
	{Name: "poor4g", RTT: 150 * time.Millisecond, Loss: 0.03, Rate: 1_000_000},
}

// Names lists the built-in profiles from the best network to the worst.
func Names() []string {
	out := make([]string, len(profiles))
	for i, p := range profiles {
		out[i] = p.Name
	}
	return out
}

// Lookup returns the built-in profile called name (case does not matter).
func Lookup(name string) (Profile, error) {
	for _, p := range profiles {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("netsim: unknown network profile %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Validate reports a profile no relay can apply.
func (p Profile) Validate() error {
	var errs []error
	if p.RTT < 0 || p.Jitter < 0 || p.Queue < 0 {
		errs = append(errs, errors.New("negative duration"))
	}
	// NaN fails both comparisons, so it is refused too.
	if !(p.Loss >= 0 && p.Loss <= 1) {
		errs = append(errs, fmt.Errorf("loss %v outside [0, 1]", p.Loss))
	}
	if p.Rate < 0 || p.UpRate < 0 {
		errs = append(errs, errors.New("negative rate"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netsim: profile %q: %w", p.Name, err)
	}
	return nil
}

// direction is what one pipeline applies.
type direction struct {
	delay  time.Duration // RTT/2
	jitter time.Duration
	loss   float64
	rate   int // bits per second, 0 unlimited
	queue  time.Duration
}

// direction returns the impairment of the client→server direction (up)
// or of the server→client one.
func (p Profile) direction(up bool) direction {
	d := direction{delay: p.RTT / 2, jitter: p.Jitter, loss: p.Loss, rate: p.Rate, queue: p.Queue}
	if up && p.UpRate > 0 {
		d.rate = p.UpRate
	}
	if d.queue <= 0 {
		d.queue = DefaultQueue
	}
	return d
}

// Options configure a relay.
type Options struct {
	// Seed seeds the random source of loss and jitter; the same seed and
	// the same traffic lose the same packets (0 is a seed like any other).
	Seed uint64
	// Logf, if set, receives the relay's complaints (a client the relay
	// could not open a socket for, a write that failed).
	Logf func(format string, args ...any)
	// SharedLink makes a UDPRelay's clients share one link: a single
	// pipeline per direction whose rate cap, buffer, loss and delay apply
	// to the sum of every client's traffic, as several WebRTC sessions
	// of one phone share its 4G link. Without it each client has a link
	// of its own. The TCPRelay ignores it.
	SharedLink bool
}

func (o Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}
