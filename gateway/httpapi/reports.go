package httpapi

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
)

// The alarm report: over a period, per rule, zone and severity, how many
// alarms were raised and how fast people acknowledged them, from the
// audit log's alarm lifecycle entries. docs/api.md is the reference.

const (
	defaultReportPeriod = 30 * 24 * time.Hour
	maxReportPeriod     = 366 * 24 * time.Hour
)

// The alarm lifecycle actions the rules engine writes to the audit log
// (rules/engine, alarms.go).
const (
	actionFired        = "fired"
	actionAcknowledged = "acknowledged"
	actionReset        = "reset"
	actionResolved     = "resolved"
	actionDropped      = "dropped" // its rule no longer exists
)

// episode is one alarm from firing to its end, as far as the period
// shows it.
type episode struct {
	fired          time.Time // zero: fired before the period
	rule, severity string
	acked          time.Time // the first acknowledgement, zero: none
	ended          bool      // resolved, reset or dropped
}

type episodeKey struct {
	id  string
	seq uint64
}

// alarmCounts are the figures of a group of alarms.
type alarmCounts struct {
	// Raised alarms fired in the period; each is then one of acknowledged,
	// never acknowledged (closed without) and open unacknowledged.
	Raised             int `json:"raised"`
	Acknowledged       int `json:"acknowledged"`
	NeverAcknowledged  int `json:"never_acknowledged"`
	OpenUnacknowledged int `json:"open_unacknowledged"`
	// AckSeconds is the time from firing to acknowledgement (nil when
	// none was acknowledged).
	AckSeconds *ackStats `json:"ack_seconds"`

	acks []float64
}

type ackStats struct {
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
}

type alarmGroup struct {
	Rule     string `json:"rule"`
	Zone     string `json:"zone"`
	Severity string `json:"severity"`
	alarmCounts
}

func (c *alarmCounts) add(e *episode) {
	c.Raised++
	switch {
	case !e.acked.IsZero():
		c.Acknowledged++
		c.acks = append(c.acks, e.acked.Sub(e.fired).Seconds())
	case e.ended:
		c.NeverAcknowledged++
	default:
		c.OpenUnacknowledged++
	}
}

// finish computes the acknowledgement times' median, 90th percentile and
// maximum by nearest rank: each is a time that occurred.
func (c *alarmCounts) finish() {
	if len(c.acks) == 0 {
		return
	}
	slices.Sort(c.acks)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(c.acks)))) - 1
		return math.Round(c.acks[max(i, 0)]*1000) / 1000
	}
	c.AckSeconds = &ackStats{Median: rank(0.5), P90: rank(0.9), Max: rank(1)}
}

type alarmReportJSON struct {
	From   time.Time    `json:"from"`
	To     time.Time    `json:"to"`
	Zone   string       `json:"zone,omitempty"`
	Groups []alarmGroup `json:"groups"`
	Totals alarmCounts  `json:"totals"`
}

// alarmReport serves GET /api/v1/reports/alarms: from, to (RFC 3339; to
// defaults to now, from to 30 days before to), zone, format=json|csv.
func (a *api) alarmReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := rangeParams(q.Get("from"), q.Get("to"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	format, err := formatParam(q.Get("format"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	zone := q.Get("zone")
	if zone != "" && a.opts.Facility.zone(zone) == nil {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("zone: no zone %q in this facility", zone))
		return
	}
	now := a.opts.Clock()
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-defaultReportPeriod)
	}
	switch {
	case !from.Before(to):
		httpError(w, http.StatusBadRequest, "from must be before to (to defaults to now)")
		return
	case to.Sub(from) > maxReportPeriod:
		httpError(w, http.StatusBadRequest, "from and to may be at most 366 days apart")
		return
	}
	// Nothing after now has happened yet: an alarm still open is open now.
	end := to
	if now.Before(end) {
		end = now
	}
	if end.Before(from) {
		end = from // a period wholly in the future has nothing yet
	}

	episodes := map[episodeKey]*episode{}
	if a.opts.Audit != nil {
		// Newest first: an alarm's acknowledgement and end come before
		// its firing; episodes that fired before the period are dropped
		// below.
		err := a.opts.Audit.Each(audit.Filter{From: from, To: end}, func(e *audit.Entry) bool {
			if e.Alarm == nil || e.Alarm.AlarmID == "" {
				return true
			}
			k := episodeKey{e.Alarm.AlarmID, e.Alarm.Seq}
			ep := episodes[k]
			if ep == nil {
				ep = &episode{}
				episodes[k] = ep
			}
			switch e.Action {
			case actionFired:
				ep.fired, ep.rule, ep.severity = e.Time, e.Alarm.Rule, e.Alarm.Severity
			case actionAcknowledged:
				ep.acked = e.Time // newest first: the last one seen is the first made
			case actionReset, actionResolved, actionDropped:
				ep.ended = true
			}
			return true
		})
		if err != nil {
			httpError(w, http.StatusInternalServerError, "could not read the audit log")
			a.opts.Logger.Error("httpapi: alarm report", "err", err)
			return
		}
	}

	groups := map[[3]string]*alarmGroup{}
	out := alarmReportJSON{From: from.UTC(), To: end.UTC(), Zone: zone, Groups: []alarmGroup{}}
	for k, ep := range episodes {
		if ep.fired.IsZero() {
			continue
		}
		z := a.opts.Facility.alarmZone(k.id)
		if zone != "" && z != zone {
			continue
		}
		gk := [3]string{ep.rule, z, ep.severity}
		g := groups[gk]
		if g == nil {
			g = &alarmGroup{Rule: ep.rule, Zone: z, Severity: ep.severity}
			groups[gk] = g
		}
		g.add(ep)
		out.Totals.add(ep)
	}
	for _, g := range groups {
		g.finish()
		out.Groups = append(out.Groups, *g)
	}
	out.Totals.finish()
	slices.SortFunc(out.Groups, func(x, y alarmGroup) int {
		return cmp.Or(cmp.Compare(x.Rule, y.Rule), cmp.Compare(x.Zone, y.Zone), cmp.Compare(x.Severity, y.Severity))
	})

	if format == "csv" {
		cw := csvWriter(w)
		_ = cw.Write([]string{"rule", "zone", "severity", "raised", "acknowledged", "never_acknowledged", "open_unacknowledged",
			"ack_median_seconds", "ack_p90_seconds", "ack_max_seconds"})
		row := func(rule, zone, severity string, c alarmCounts) {
			rec := []string{rule, zone, severity, strconv.Itoa(c.Raised), strconv.Itoa(c.Acknowledged),
				strconv.Itoa(c.NeverAcknowledged), strconv.Itoa(c.OpenUnacknowledged), "", "", ""}
			if s := c.AckSeconds; s != nil {
				rec[7], rec[8], rec[9] = ff(s.Median), ff(s.P90), ff(s.Max)
			}
			_ = cw.Write(rec)
		}
		for _, g := range out.Groups {
			row(g.Rule, g.Zone, g.Severity, g.alarmCounts)
		}
		row("*", "*", "*", out.Totals)
		cw.Flush()
		return
	}
	writeJSON(w, out)
}
