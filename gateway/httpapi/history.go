package httpapi

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/availability"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// History endpoints: readings (raw or bucketed) and device availability.
// docs/api.md is the reference for their parameters and answers.

const (
	maxRawPoints     = 100000
	defaultMaxPoints = 1000
	maxMaxPoints     = 10000
	// bucketHeader carries the bucket width of a bucketed answer (JSON and CSV).
	bucketHeader = "X-Bucket-Width"
)

type pointJSON struct {
	Time  time.Time `json:"time"`
	Value any       `json:"value"`
}

// readings serves raw points, or buckets when "bucket" or "max_points" is
// given. Query: device, kind, zone, from, to (RFC 3339), bucket (Go duration
// or "auto"), max_points, format=json|csv.
func (a *api) readings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sq := store.Query{Device: q.Get("device"), Kind: reading.Kind(q.Get("kind")), Zone: q.Get("zone")}
	var err error
	if sq.From, sq.To, err = rangeParams(q.Get("from"), q.Get("to")); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	format, err := formatParam(q.Get("format"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	width, err := bucketParams(q.Get("bucket"), q.Has("max_points"), q.Get("max_points"), sq.From, sq.To)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if width > 0 {
		a.buckets(w, r, sq, width, format)
		return
	}

	type seriesJSON struct {
		store.Series
		Points []pointJSON `json:"points"`
	}
	out := []seriesJSON{}
	total := 0
	for _, sr := range a.opts.Store.Series(sq) {
		sj := seriesJSON{Series: sr, Points: []pointJSON{}}
		err := a.opts.Store.Points(r.Context(), sr, sq.From, sq.To, func(p store.Point) bool {
			total++
			sj.Points = append(sj.Points, pointJSON{Time: p.Time, Value: p.Value.Any()})
			return total <= maxRawPoints
		})
		if err != nil {
			httpError(w, http.StatusInternalServerError, "query failed")
			a.opts.Logger.Error("httpapi: points", "err", err)
			return
		}
		out = append(out, sj)
		if total > maxRawPoints {
			httpError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("more than %d points: narrow the range or use bucket= or max_points=", maxRawPoints))
			return
		}
	}
	if format == "csv" {
		cw := csvWriter(w)
		_ = cw.Write([]string{"device", "kind", "zone", "time", "value"})
		for _, s := range out {
			for _, p := range s.Points {
				_ = cw.Write([]string{s.Device, string(s.Kind), s.Zone, p.Time.UTC().Format(time.RFC3339Nano), fmt.Sprint(p.Value)})
			}
		}
		cw.Flush()
		return
	}
	writeJSON(w, map[string]any{"series": out})
}

type bucketsJSON struct {
	Bucket        string                `json:"bucket"`
	BucketSeconds float64               `json:"bucket_seconds"`
	Series        []store.SeriesBuckets `json:"series"`
}

func (a *api) buckets(w http.ResponseWriter, r *http.Request, sq store.Query, width time.Duration, format string) {
	series, err := a.opts.Store.Downsample(r.Context(), sq, width)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "query failed")
		a.opts.Logger.Error("httpapi: downsample", "err", err)
		return
	}
	// Empty results are empty lists, as for raw points: clients iterate.
	if series == nil {
		series = []store.SeriesBuckets{}
	}
	for i := range series {
		if series[i].Buckets == nil {
			series[i].Buckets = []store.Bucket{}
		}
	}
	w.Header().Set(bucketHeader, width.String())
	if format == "csv" {
		cw := csvWriter(w)
		_ = cw.Write([]string{"device", "kind", "zone", "start", "count", "min", "max", "mean", "last"})
		for _, s := range series {
			for _, b := range s.Buckets {
				_ = cw.Write([]string{s.Device, string(s.Kind), s.Zone, b.Start.UTC().Format(time.RFC3339),
					strconv.Itoa(b.Count), ff(b.Min), ff(b.Max), ff(b.Mean), ff(b.Last)})
			}
		}
		cw.Flush()
		return
	}
	writeJSON(w, bucketsJSON{Bucket: width.String(), BucketSeconds: width.Seconds(), Series: series})
}

// bucketParams returns the bucket width a readings query asks for, or 0 for
// raw points. An explicit width wins over max_points; "auto" or max_points
// alone derive the width from the range.
func bucketParams(bucket string, hasMaxPoints bool, maxPoints string, from, to time.Time) (time.Duration, error) {
	n := defaultMaxPoints
	if hasMaxPoints {
		var err error
		if n, err = strconv.Atoi(maxPoints); err != nil || n < 1 || n > maxMaxPoints {
			return 0, fmt.Errorf("max_points must be an integer from 1 to %d", maxMaxPoints)
		}
	}
	switch {
	case bucket != "" && bucket != "auto":
		width, err := time.ParseDuration(bucket)
		if err != nil || width < time.Second {
			return 0, errors.New(`bucket must be a duration of at least 1s, like 1m or 1h, or "auto"`)
		}
		return width, nil
	case bucket == "auto" || hasMaxPoints:
		if from.IsZero() || to.IsZero() {
			return 0, errors.New("max_points (and bucket=auto) need both from and to")
		}
		return store.BucketWidth(from, to, n), nil
	}
	return 0, nil
}

// availabilityJSON is one device's availability over the period.
type availabilityJSON struct {
	Device         string     `json:"device"`
	Zone           string     `json:"zone"`
	Silence        string     `json:"silence"`
	SilenceSeconds float64    `json:"silence_seconds"`
	OnlineSeconds  float64    `json:"online_seconds"`
	OfflineSeconds float64    `json:"offline_seconds"`
	UnknownSeconds float64    `json:"unknown_seconds"`
	OnlinePercent  float64    `json:"online_percent"`
	OfflinePercent float64    `json:"offline_percent"`
	UnknownPercent float64    `json:"unknown_percent"`
	Outages        []spanJSON `json:"outages"`
	Unknown        []spanJSON `json:"unknown"`
}

type spanJSON struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"`
	Cause   string    `json:"cause,omitempty"`
	// Ongoing: the device was still offline at the end of the period.
	Ongoing bool `json:"ongoing,omitempty"`
}

const defaultAvailabilityPeriod = 24 * time.Hour

// availability serves, per device, the share of [from, to) it was online,
// offline and of unknown state, and its outages. Query: device, zone, from
// (default to-24h), to (default now; later times are cut to now), silence
// (Go duration; default the device's offline_after), format=json|csv.
func (a *api) availability(w http.ResponseWriter, r *http.Request) {
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
	var silence time.Duration
	if s := q.Get("silence"); s != "" {
		if silence, err = time.ParseDuration(s); err != nil || silence < time.Second {
			httpError(w, http.StatusBadRequest, "silence must be a duration of at least 1s, like 10m or 25h")
			return
		}
	}
	now := a.opts.Clock()
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-defaultAvailabilityPeriod)
	}
	if !from.Before(to) {
		httpError(w, http.StatusBadRequest, "from must be before to (to defaults to now)")
		return
	}
	end := to
	if now.Before(end) {
		end = now
	}
	if end.Before(from) {
		end = from // a period wholly in the future has no time to count yet
	}

	out := []availabilityJSON{}
	var timelines [][]facility.Segment
	for _, dev := range a.availDevices(q.Get("device"), q.Get("zone")) {
		d := silence
		if d == 0 {
			d = a.offlineAfter(dev)
		}
		segs, err := a.deviceTimeline(r, dev, from, end, d)
		if err != nil {
			httpError(w, http.StatusInternalServerError, "query failed")
			a.opts.Logger.Error("httpapi: availability", "device", dev.id, "err", err)
			return
		}
		out = append(out, summarise(dev, d, from, end, segs))
		timelines = append(timelines, segs)
	}
	if format == "csv" {
		cw := csvWriter(w)
		_ = cw.Write([]string{"device", "zone", "state", "cause", "start", "end", "seconds"})
		for i, segs := range timelines {
			for _, s := range segs {
				_ = cw.Write([]string{out[i].Device, out[i].Zone, s.State.String(), outageCause(s),
					s.Start.UTC().Format(time.RFC3339Nano), s.End.UTC().Format(time.RFC3339Nano), ff(s.End.Sub(s.Start).Seconds())})
			}
		}
		cw.Flush()
		return
	}
	writeJSON(w, map[string]any{"from": from.UTC(), "to": end.UTC(), "devices": out})
}

// availDevice is a device availability reports on: configured (from the
// device state tracker) or known only from stored series.
type availDevice struct {
	id, zone string
	kind     reading.Kind // primary kind; "" when not configured
	series   []store.Series
}

// availDevices lists the devices matching the device and zone filters, sorted.
func (a *api) availDevices(device, zone string) []availDevice {
	byID := map[string]*availDevice{}
	if a.opts.State != nil {
		for _, s := range a.opts.State.Snapshot() {
			byID[s.Device] = &availDevice{id: s.Device, zone: s.Zone, kind: s.Kind}
		}
	}
	for _, sr := range a.opts.Store.Series(store.Query{Device: device}) {
		if sr.Kind == reading.KindFault {
			// The gateway's own fault series say how the gateway is, not
			// whether a sensor is online: they are alarms, not outages.
			continue
		}
		d := byID[sr.Device]
		if d == nil {
			d = &availDevice{id: sr.Device, zone: sr.Zone}
			byID[sr.Device] = d
		}
		d.series = append(d.series, sr)
	}
	var out []availDevice
	for _, d := range byID {
		if (device == "" || d.id == device) && (zone == "" || d.zone == zone) {
			out = append(out, *d)
		}
	}
	slices.SortFunc(out, func(x, y availDevice) int {
		switch {
		case x.id < y.id:
			return -1
		case x.id > y.id:
			return 1
		}
		return 0
	})
	return out
}

// offlineAfter is the silence after which a device counts as offline: its
// configured offline_after, else the default for its kind (for a device
// that is not configured, the shortest default of the kinds it reported).
func (a *api) offlineAfter(d availDevice) time.Duration {
	if a.opts.OfflineAfter != nil {
		if v := a.opts.OfflineAfter(d.id); v > 0 {
			return v
		}
	}
	if d.kind != "" {
		return facility.DefaultOfflineAfter(d.kind)
	}
	best := time.Duration(0)
	for _, sr := range d.series {
		if sr.Kind == reading.KindAvailability {
			continue
		}
		if v := facility.DefaultOfflineAfter(sr.Kind); best == 0 || v < best {
			best = v
		}
	}
	if best == 0 {
		best = facility.DefaultOfflineAfter(reading.KindAvailability)
	}
	return best
}

// deviceTimeline replays what the store knows about a device's signs of
// life over [from, end) (ingest/availability).
func (a *api) deviceTimeline(r *http.Request, d availDevice, from, end time.Time, silence time.Duration) ([]facility.Segment, error) {
	return availability.Timeline(r.Context(), a.opts.Store, d.series, from, end, silence)
}

// outageCause is the cause a timeline segment carries in the API: that of
// an outage, none for online and unknown time.
func outageCause(s facility.Segment) string {
	if s.State != facility.Offline {
		return ""
	}
	return s.Cause.String()
}

func summarise(d availDevice, silence time.Duration, from, end time.Time, segs []facility.Segment) availabilityJSON {
	out := availabilityJSON{Device: d.id, Zone: d.zone, Silence: silence.String(), SilenceSeconds: silence.Seconds(),
		Outages: []spanJSON{}, Unknown: []spanJSON{}}
	for i, s := range segs {
		secs := s.End.Sub(s.Start).Seconds()
		span := spanJSON{Start: s.Start.UTC(), End: s.End.UTC(), Seconds: secs}
		switch s.State {
		case facility.Online:
			out.OnlineSeconds += secs
		case facility.Offline:
			out.OfflineSeconds += secs
			span.Cause = outageCause(s)
			span.Ongoing = i == len(segs)-1 && s.End.Equal(end)
			out.Outages = append(out.Outages, span)
		default:
			out.UnknownSeconds += secs
			if s.Cause != facility.CauseNoData {
				span.Cause = s.Cause.String() // bridge_offline, removed
			}
			out.Unknown = append(out.Unknown, span)
		}
	}
	if period := end.Sub(from).Seconds(); period > 0 {
		pct := func(x float64) float64 { return math.Round(x/period*100*1000) / 1000 }
		out.OnlinePercent, out.OfflinePercent, out.UnknownPercent = pct(out.OnlineSeconds), pct(out.OfflineSeconds), pct(out.UnknownSeconds)
	}
	return out
}

// rangeParams parses from and to (RFC 3339, optional) and checks from < to.
func rangeParams(fromS, toS string) (from, to time.Time, err error) {
	if from, err = timeParam(fromS); err != nil {
		return from, to, fmt.Errorf("from: %w", err)
	}
	if to, err = timeParam(toS); err != nil {
		return from, to, fmt.Errorf("to: %w", err)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return from, to, errors.New("from must be before to")
	}
	return from, to, nil
}

// Times the store can hold (Unix nanoseconds in an int64).
var (
	earliestTime = time.Unix(0, math.MinInt64).Add(time.Hour)
	latestTime   = time.Unix(0, math.MaxInt64).Add(-time.Hour)
)

func timeParam(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("want an RFC 3339 time like 2026-11-30T03:00:00Z")
	}
	if t.Before(earliestTime) || t.After(latestTime) {
		return time.Time{}, errors.New("out of range: want a time between the years 1678 and 2262")
	}
	return t, nil
}

func formatParam(s string) (string, error) {
	switch s {
	case "", "json":
		return "json", nil
	case "csv":
		return "csv", nil
	}
	return "", errors.New("format must be json or csv")
}

func csvWriter(w http.ResponseWriter) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	return csv.NewWriter(w)
}

func ff(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
