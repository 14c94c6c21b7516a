package datasource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/shelterwatch/shelterwatch/dashboards/plugin/gatewayapi"
)

// Query types.
const (
	QueryAlarms        = "alarms"
	QueryAlarmReport   = "alarm_report"
	QueryReadings      = "readings"
	QueryAvailability  = "availability"
	QueryCameras       = "cameras"
	QueryVideoSessions = "video_sessions"
)

// StreamAlarms is the only stream path.
const StreamAlarms = "alarms"

// QueryModel is a query's JSON. Grafana adds its own keys (refId,
// datasource, intervalMs …), so unknown keys are ignored.
type QueryModel struct {
	QueryType string `json:"queryType"`
	// Gateways limits the query to these gateways (default: all).
	Gateways []string `json:"gateways"`
	// Device, Kind and Zone filter readings.
	Device string `json:"device"`
	Kind   string `json:"kind"`
	Zone   string `json:"zone"`
	// Live asks for the live alarm stream (alarms only).
	Live bool `json:"live"`
}

// QueryData answers each query on its own; a failing query never fails
// the others.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = d.query(ctx, q)
	}
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, q backend.DataQuery) (res backend.DataResponse) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("query panicked", "refId", q.RefID, "panic", fmt.Sprint(p))
			res = backend.ErrDataResponse(backend.StatusInternal, fmt.Sprintf("internal error answering query %s", q.RefID))
		}
	}()
	var m QueryModel
	if err := json.Unmarshal(q.JSON, &m); err != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, "invalid query JSON: "+err.Error())
	}
	if m.QueryType == "" {
		m.QueryType = q.QueryType
	}
	gws, err := d.selectGateways(m.Gateways)
	if err != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
	}
	if m.Live && m.QueryType != QueryAlarms {
		return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("live is only for queryType %q", QueryAlarms))
	}
	switch m.QueryType {
	case QueryAlarms:
		if m.Live {
			f := newAlarmEventFrame()
			f.SetMeta(&data.FrameMeta{Channel: path.Join("ds", d.uid, StreamAlarms)})
			return backend.DataResponse{Frames: data.Frames{f}}
		}
		return collect(ctx, gws, d.alarmsFrames)
	case QueryAlarmReport:
		return collect(ctx, gws, func(ctx context.Context, g *gateway) (data.Frames, error) {
			return d.alarmReportFrames(ctx, g, q.TimeRange)
		})
	case QueryReadings:
		return collect(ctx, gws, func(ctx context.Context, g *gateway) (data.Frames, error) {
			return d.readingsFrames(ctx, g, m, q)
		})
	case QueryAvailability:
		return collect(ctx, gws, func(ctx context.Context, g *gateway) (data.Frames, error) {
			return d.availabilityFrames(ctx, g, q.TimeRange)
		})
	case QueryCameras:
		return collect(ctx, gws, d.cameraFrames)
	case QueryVideoSessions:
		return collect(ctx, gws, d.videoSessionFrames)
	case "":
		return backend.ErrDataResponse(backend.StatusBadRequest, "queryType is missing")
	default:
		return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("unknown queryType %q; known: %s", m.QueryType,
			strings.Join([]string{QueryAlarms, QueryAlarmReport, QueryReadings, QueryAvailability, QueryCameras, QueryVideoSessions}, ", ")))
	}
}

// collect runs fn on every gateway and merges the table frames of one
// shape into one frame (time series stay one frame each). A gateway that
// fails contributes nothing and a notice naming it and the cause; when all
// fail, the query fails with their causes.
func collect(ctx context.Context, gws []*gateway, fn func(context.Context, *gateway) (data.Frames, error)) backend.DataResponse {
	res := fanOut(ctx, gws, fn)
	var frames data.Frames
	var notices []data.Notice
	var failed []string
	status := backend.StatusBadGateway
	for _, r := range res {
		if r.err != nil {
			msg := fmt.Sprintf("gateway %s: %s", r.gw.name, gatewayapi.Detail(r.err))
			failed = append(failed, msg)
			notices = append(notices, data.Notice{Severity: data.NoticeSeverityWarning, Text: msg})
			switch gatewayapi.KindOf(r.err) {
			case gatewayapi.KindUnauthorized:
				status = backend.StatusUnauthorized
			case gatewayapi.KindForbidden:
				status = backend.StatusForbidden
			}
			continue
		}
		frames = mergeFrames(frames, r.val)
	}
	if len(failed) == len(res) && len(res) > 0 {
		return backend.ErrDataResponseWithSource(status, backend.ErrorSourceDownstream, strings.Join(failed, "; "))
	}
	if len(notices) > 0 {
		if len(frames) == 0 {
			frames = data.Frames{data.NewFrame("")}
		}
		frames[0].AppendNotices(notices...)
	}
	return backend.DataResponse{Frames: frames}
}

// mergeFrames appends add to frames, row-appending a table frame to the
// frame of the same name (the same query builds the same fields).
func mergeFrames(frames, add data.Frames) data.Frames {
next:
	for _, f := range add {
		if f.Meta == nil || f.Meta.Type != data.FrameTypeTimeSeriesMulti {
			for _, have := range frames {
				if have.Name == f.Name && len(have.Fields) == len(f.Fields) {
					for i := range f.Rows() {
						have.AppendRow(f.RowCopy(i)...)
					}
					continue next
				}
			}
		}
		frames = append(frames, f)
	}
	return frames
}

// alarmColumns are the live stream's and the alarm table's first columns.
func newAlarmEventFrame() *data.Frame {
	return data.NewFrame("alarms",
		data.NewField("time", nil, []time.Time{}),
		data.NewField("gateway", nil, []string{}),
		data.NewField("facility", nil, []string{}),
		data.NewField("zone", nil, []string{}),
		data.NewField("rule", nil, []string{}),
		data.NewField("severity", nil, []string{}),
		data.NewField("state", nil, []string{}),
		data.NewField("id", nil, []string{}),
	)
}

// alarmsFrames is the open alarms table: since, where, what, and who
// acknowledged how fast.
func (d *Datasource) alarmsFrames(ctx context.Context, g *gateway) (data.Frames, error) {
	alarms, err := g.client.Alarms(ctx)
	if err != nil {
		return nil, err
	}
	f := data.NewFrame("alarms",
		data.NewField("time", nil, []time.Time{}),
		data.NewField("gateway", nil, []string{}),
		data.NewField("facility", nil, []string{}),
		data.NewField("zone", nil, []string{}),
		data.NewField("device", nil, []string{}),
		data.NewField("rule", nil, []string{}),
		data.NewField("severity", nil, []string{}),
		data.NewField("state", nil, []string{}),
		data.NewField("acknowledged_by", nil, []string{}),
		data.NewField("seconds_to_ack", nil, []*float64{}),
		data.NewField("id", nil, []string{}),
	)
	f.Fields[9].Config = &data.FieldConfig{Unit: "s"}
	for _, a := range alarms {
		var ack *float64
		if s, ok := a.SecondsToAck(); ok {
			ack = &s
		}
		f.AppendRow(a.Since, g.name, a.Facility, a.Zone, a.Device, a.Rule, a.Severity, a.State, a.AckedBy, ack, a.ID)
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, ExecutedQueryString: "GET /api/v1/alarms"})
	return data.Frames{f}, nil
}

// alarmReportFrames is the gateway's alarm report over the time range: per
// rule, zone and severity how many fired and how fast they were
// acknowledged (the report API gives groups, not single alarms).
func (d *Datasource) alarmReportFrames(ctx context.Context, g *gateway, tr backend.TimeRange) (data.Frames, error) {
	fac, err := g.facilityInfo(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := g.client.AlarmReport(ctx, tr.From, tr.To)
	if err != nil {
		return nil, err
	}
	f := data.NewFrame("alarm_report",
		data.NewField("gateway", nil, []string{}),
		data.NewField("facility", nil, []string{}),
		data.NewField("zone", nil, []string{}),
		data.NewField("rule", nil, []string{}),
		data.NewField("severity", nil, []string{}),
		data.NewField("raised", nil, []int64{}),
		data.NewField("acknowledged", nil, []int64{}),
		data.NewField("never_acknowledged", nil, []int64{}),
		data.NewField("open_unacknowledged", nil, []int64{}),
		data.NewField("ack_median_seconds", nil, []*float64{}),
		data.NewField("ack_p90_seconds", nil, []*float64{}),
		data.NewField("ack_max_seconds", nil, []*float64{}),
	)
	for _, gr := range rep.Groups {
		var med, p90, mx *float64
		if a := gr.AckSeconds; a != nil {
			med, p90, mx = &a.Median, &a.P90, &a.Max
		}
		f.AppendRow(g.name, fac.ID, gr.Zone, gr.Rule, gr.Severity, int64(gr.Raised), int64(gr.Acknowledged),
			int64(gr.NeverAcknowledged), int64(gr.OpenUnacknowledged), med, p90, mx)
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, ExecutedQueryString: "GET /api/v1/reports/alarms"})
	return data.Frames{f}, nil
}

// readingsFrames is one time series per device and kind: the bucket means
// over the query's range, at most MaxDataPoints buckets per series.
func (d *Datasource) readingsFrames(ctx context.Context, g *gateway, m QueryModel, q backend.DataQuery) (data.Frames, error) {
	fac, err := g.facilityInfo(ctx)
	if err != nil {
		return nil, err
	}
	maxPoints := int(q.MaxDataPoints)
	if maxPoints <= 0 {
		maxPoints = 1000
	}
	if q.TimeRange.From.IsZero() || q.TimeRange.To.IsZero() || !q.TimeRange.To.After(q.TimeRange.From) {
		return nil, &gatewayapi.Error{Kind: gatewayapi.KindStatus, Op: "readings", Detail: "readings need a time range"}
	}
	rq := gatewayapi.ReadingsQuery{Device: m.Device, Kind: m.Kind, Zone: m.Zone, From: q.TimeRange.From, To: q.TimeRange.To, MaxPoints: maxPoints}
	rd, err := g.client.Readings(ctx, rq)
	if err != nil {
		return nil, err
	}
	var frames data.Frames
	for _, s := range rd.Series {
		times := make([]time.Time, len(s.Buckets))
		values := make([]float64, len(s.Buckets))
		for i, b := range s.Buckets {
			times[i], values[i] = b.Start, b.Mean
		}
		labels := data.Labels{"gateway": g.name, "facility": fac.ID, "device": s.Device, "kind": s.Kind, "zone": s.Zone}
		f := data.NewFrame(s.Kind,
			data.NewField("time", nil, times),
			data.NewField("value", labels, values),
		)
		f.SetMeta(&data.FrameMeta{
			Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1},
			ExecutedQueryString: fmt.Sprintf("GET /api/v1/readings device=%q kind=%q zone=%q max_points=%d (bucket %s)",
				m.Device, m.Kind, m.Zone, min(maxPoints, gatewayapi.MaxPointsLimit), rd.Bucket),
		})
		frames = append(frames, f)
	}
	return frames, nil
}

// availabilityFrames is a table of every device's availability over the
// time range.
func (d *Datasource) availabilityFrames(ctx context.Context, g *gateway, tr backend.TimeRange) (data.Frames, error) {
	fac, err := g.facilityInfo(ctx)
	if err != nil {
		return nil, err
	}
	av, err := g.client.Availability(ctx, tr.From, tr.To)
	if err != nil {
		return nil, err
	}
	f := data.NewFrame("availability",
		data.NewField("gateway", nil, []string{}),
		data.NewField("facility", nil, []string{}),
		data.NewField("device", nil, []string{}),
		data.NewField("zone", nil, []string{}),
		data.NewField("online_percent", nil, []float64{}),
		data.NewField("offline_percent", nil, []float64{}),
		data.NewField("unknown_percent", nil, []float64{}),
		data.NewField("online_seconds", nil, []float64{}),
		data.NewField("offline_seconds", nil, []float64{}),
		data.NewField("unknown_seconds", nil, []float64{}),
		data.NewField("outages", nil, []int64{}),
	)
	for _, dv := range av.Devices {
		f.AppendRow(g.name, fac.ID, dv.Device, dv.Zone, dv.OnlinePercent, dv.OfflinePercent, dv.UnknownPercent,
			dv.OnlineSeconds, dv.OfflineSeconds, dv.UnknownSeconds, int64(len(dv.Outages)))
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, ExecutedQueryString: "GET /api/v1/availability"})
	return data.Frames{f}, nil
}

// cameraFrames is a table of the cameras the token may view.
func (d *Datasource) cameraFrames(ctx context.Context, g *gateway) (data.Frames, error) {
	fac, err := g.facilityInfo(ctx)
	if err != nil {
		return nil, err
	}
	cams, err := g.client.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	f := data.NewFrame("cameras",
		data.NewField("gateway", nil, []string{}),
		data.NewField("facility", nil, []string{}),
		data.NewField("camera", nil, []string{}),
		data.NewField("name", nil, []string{}),
		data.NewField("zone", nil, []string{}),
		data.NewField("state", nil, []string{}),
		data.NewField("reason", nil, []string{}),
		data.NewField("since", nil, []time.Time{}),
		data.NewField("viewers", nil, []int64{}),
		data.NewField("fps", nil, []float64{}),
		data.NewField("bitrate_bps", nil, []float64{}),
		data.NewField("reconnects", nil, []int64{}),
	)
	for _, c := range cams {
		f.AppendRow(g.name, fac.ID, c.ID, c.Name, c.Zone, c.State, c.Reason, c.Since, int64(c.Viewers), c.FPS, c.Bitrate, int64(c.Reconnects))
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, ExecutedQueryString: "GET /api/v1/cameras"})
	return data.Frames{f}, nil
}

// videoSessionFrames is a table of who is watching now.
func (d *Datasource) videoSessionFrames(ctx context.Context, g *gateway) (data.Frames, error) {
	fac, err := g.facilityInfo(ctx)
	if err != nil {
		return nil, err
	}
	ss, err := g.client.VideoSessions(ctx)
	if err != nil {
		return nil, err
	}
	f := data.NewFrame("video_sessions",
		data.NewField("gateway", nil, []string{}),
		data.NewField("facility", nil, []string{}),
		data.NewField("session", nil, []string{}),
		data.NewField("camera", nil, []string{}),
		data.NewField("who", nil, []string{}),
		data.NewField("start", nil, []time.Time{}),
		data.NewField("bytes", nil, []float64{}),
		data.NewField("stream", nil, []string{}),
		data.NewField("estimate_bps", nil, []float64{}),
		data.NewField("rtt_ms", nil, []float64{}),
		data.NewField("loss", nil, []float64{}),
	)
	for _, s := range ss {
		f.AppendRow(g.name, fac.ID, s.ID, s.Camera, s.Who, s.Start, float64(s.Bytes), s.Stream, s.Estimate, s.RTT, s.Loss)
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, ExecutedQueryString: "GET /api/v1/video/sessions"})
	return data.Frames{f}, nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

var errNotStream = errors.New("no such stream")
