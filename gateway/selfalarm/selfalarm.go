// Package selfalarm holds the gateway's alarms about itself: data it had
// to delete before forwarding it, a forwarder that has not delivered for
// too long. They are raised by the components that notice the problem and
// are listed by the API, exported as metrics and logged; the rules engine
// turns them into notified alarms like any sensor alarm.
//
// An alarm is identified by its ID ("store-data-loss",
// "forward-stalled:province"). Raising an active alarm updates its message
// and count; Clear ends it unless it is latched (data loss stays raised
// until someone has seen it: Acknowledge).
package selfalarm

import (
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Severity orders alarms.
type Severity string

// Severities.
const (
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Alarm is one self-alarm.
type Alarm struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Message and MessageZH say what happened and what to do, in English
	// and Chinese.
	Message   string    `json:"message"`
	MessageZH string    `json:"message_zh"`
	Since     time.Time `json:"since"`
	Updated   time.Time `json:"updated"`
	// Count is how many times it was raised while active.
	Count   int  `json:"count"`
	Latched bool `json:"latched"`
	// Cleared is set when the condition is gone but the alarm is latched.
	Cleared bool `json:"cleared"`
}

// Change is a self-alarm being raised (Raised true, the first time only)
// or ending (Raised false: cleared or acknowledged).
type Change struct {
	Alarm  Alarm
	Raised bool
}

// Registry is the set of self-alarms. Safe for concurrent use.
type Registry struct {
	// OnChange, when set before use, is called (outside the lock) when an
	// alarm is first raised and when it ends, so the gateway can notify
	// people about its own faults like about any other alarm.
	OnChange func(Change)

	log    *slog.Logger
	now    func() time.Time
	mu     sync.Mutex
	active map[string]*Alarm
	gauge  *prometheus.GaugeVec
	raised *prometheus.CounterVec
}

// New returns an empty registry.
func New(log *slog.Logger, now func() time.Time) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Registry{
		log:    log,
		now:    now,
		active: map[string]*Alarm{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shelterwatch_self_alarm_active", Help: "1 while a self-alarm is raised.",
		}, []string{"alarm", "severity"}),
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_self_alarm_raised_total", Help: "Self-alarms raised (including repeats while active).",
		}, []string{"alarm"}),
	}
}

// Register adds the registry's metrics to reg.
func (r *Registry) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{r.gauge, r.raised} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Raise raises (or updates) alarm id. latched alarms stay until
// Acknowledge even when Clear is called.
func (r *Registry) Raise(id string, sev Severity, latched bool, msg, msgZH string) {
	now := r.now()
	r.mu.Lock()
	a, ok := r.active[id]
	if !ok {
		a = &Alarm{ID: id, Since: now}
		r.active[id] = a
	}
	a.Severity, a.Message, a.MessageZH, a.Updated, a.Latched, a.Cleared = sev, msg, msgZH, now, latched, false
	a.Count++
	snap := *a
	r.mu.Unlock()
	r.gauge.WithLabelValues(id, string(sev)).Set(1)
	r.raised.WithLabelValues(id).Inc()
	if !ok {
		r.log.Error("self-alarm raised", "alarm", id, "severity", sev, "message", msg)
		if r.OnChange != nil {
			r.OnChange(Change{Alarm: snap, Raised: true})
		}
	}
}

// Clear ends alarm id when its condition is gone; a latched alarm is only
// marked cleared.
func (r *Registry) Clear(id string) {
	r.mu.Lock()
	a, ok := r.active[id]
	if ok && a.Latched {
		a.Cleared = true
		ok = false
	} else if ok {
		delete(r.active, id)
	}
	var snap Alarm
	if ok {
		snap = *a
	}
	r.mu.Unlock()
	if ok {
		r.gauge.DeleteLabelValues(id, string(a.Severity))
		r.log.Info("self-alarm cleared", "alarm", id)
		if r.OnChange != nil {
			r.OnChange(Change{Alarm: snap})
		}
	}
}

// Acknowledge removes alarm id whether latched or not, and reports
// whether it was active.
func (r *Registry) Acknowledge(id string) bool {
	r.mu.Lock()
	a, ok := r.active[id]
	delete(r.active, id)
	var snap Alarm
	if ok {
		snap = *a
	}
	r.mu.Unlock()
	if ok {
		r.gauge.DeleteLabelValues(id, string(a.Severity))
		if r.OnChange != nil {
			r.OnChange(Change{Alarm: snap})
		}
	}
	return ok
}

// Active returns the raised alarms, most severe then oldest first.
func (r *Registry) Active() []Alarm {
	r.mu.Lock()
	out := make([]Alarm, 0, len(r.active))
	for _, a := range r.active {
		out = append(out, *a)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity == Critical
		}
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
