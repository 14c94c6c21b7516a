// Package gatewayapi is a client of one ShelterWatch gateway's HTTP API, as
// the Grafana data source plugin needs it: the facility, open alarms, the
// alarm report, readings, availability, devices, cameras, viewing sessions
// and the live event stream.
//
// Each Client holds one gateway's URL and bearer token; the gateway decides
// by the token's role what it answers. Every failure is an *Error whose
// Kind says what an operator has to fix (the address, the certificate, the
// token, the role, the gateway's version) and whose Detail says it in a
// sentence. A Client is safe for concurrent use.
package gatewayapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SupportedMajor is the major version of the gateway API this client
// speaks. A gateway reports its version in GET /api/v1/facility; a release
// of another major version is refused (KindVersion). Development builds
// ("dev") are accepted.
const SupportedMajor = 1

// DefaultTimeout bounds one request (not the event stream).
const DefaultTimeout = 10 * time.Second

// maxBody bounds an answer read into memory.
const maxBody = 64 << 20

// Options configure a Client.
type Options struct {
	// URL is the gateway's base URL (http or https), e.g.
	// http://127.0.0.1:8080.
	URL string
	// Token is the bearer token.
	Token string
	// Timeout bounds each request but the event stream (default
	// DefaultTimeout); connecting is bounded by it too.
	Timeout time.Duration
	// Transport for tests and TLS settings (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
}

// Client talks to one gateway.
type Client struct {
	base    *url.URL
	token   string
	timeout time.Duration
	http    *http.Client // requests, bounded by timeout
	stream  *http.Client // the event stream: no overall timeout
}

// New checks o and returns a Client.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("gatewayapi: url %q: %w", o.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("gatewayapi: url %q: scheme must be http or https", o.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("gatewayapi: url %q: no host", o.URL)
	}
	if o.Token == "" {
		return nil, errors.New("gatewayapi: no token")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	tr := o.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = o.Timeout
		t.ResponseHeaderTimeout = o.Timeout
		tr = t
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{
		base: u, token: o.Token, timeout: o.Timeout,
		http:   &http.Client{Transport: tr, Timeout: o.Timeout},
		stream: &http.Client{Transport: tr},
	}, nil
}

// URL is the gateway's base URL.
func (c *Client) URL() string { return c.base.String() }

// get GETs path with query q and decodes the JSON answer into v.
func (c *Client) get(ctx context.Context, path string, q url.Values, v any) error {
	op := "GET " + path
	resp, err := c.do(ctx, c.http, path, q, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return transportError(op, err)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return &Error{Kind: KindNotGateway, Op: op, Status: resp.StatusCode,
			Detail: fmt.Sprintf("not a ShelterWatch gateway: %s answered %d with %s, not JSON", op, resp.StatusCode, contentType(resp))}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Kind: KindNotGateway, Op: op, Status: resp.StatusCode, Err: err,
			Detail: fmt.Sprintf("not a ShelterWatch gateway: %s answered JSON of another shape", op)}
	}
	return nil
}

// do sends a GET and turns error statuses into *Error.
func (c *Client) do(ctx context.Context, hc *http.Client, path string, q url.Values, accept string) (*http.Response, error) {
	op := "GET " + path
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("gatewayapi: %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", accept)
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("gatewayapi: %s: %w", op, ctx.Err())
		}
		return nil, transportError(op, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var msg struct {
		Error string `json:"error"`
	}
	jsonErr := json.Unmarshal(body, &msg)
	e := &Error{Op: op, Status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		e.Kind, e.Detail = KindUnauthorized, "the token was refused (401 Unauthorized)"
	case resp.StatusCode == http.StatusForbidden:
		e.Kind, e.Detail = KindForbidden, fmt.Sprintf("the token's role may not %s (403 Forbidden)", op)
	case !isJSON(resp.Header.Get("Content-Type")) || jsonErr != nil || msg.Error == "":
		e.Kind = KindNotGateway
		e.Detail = fmt.Sprintf("not a ShelterWatch gateway: %s answered %d with %s", op, resp.StatusCode, contentType(resp))
	default:
		e.Kind, e.Detail = KindStatus, fmt.Sprintf("%s answered %d: %s", op, resp.StatusCode, msg.Error)
	}
	return nil, e
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

func contentType(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		return "no content type"
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return strconv.Quote(ct)
}

// Facility is GET /api/v1/facility.
type Facility struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	NameZH   string `json:"name_zh"`
	Timezone string `json:"timezone"`
	Zones    []Zone `json:"zones"`
	Version  string `json:"version"`
}

// Zone is one of a facility's zones.
type Zone struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	NameZH string   `json:"name_zh"`
	Tags   []string `json:"tags"`
}

// Facility describes the gateway's facility. It fails with KindNotGateway
// when the answer lacks a facility id or version, and with KindVersion
// when the gateway's API is not SupportedMajor.
func (c *Client) Facility(ctx context.Context) (Facility, error) {
	const path = "/api/v1/facility"
	var raw struct {
		Facility
		Version *string `json:"version"`
	}
	if err := c.get(ctx, path, nil, &raw); err != nil {
		return Facility{}, err
	}
	if raw.ID == "" || raw.Version == nil || raw.Timezone == "" {
		return Facility{}, &Error{Kind: KindNotGateway, Op: "GET " + path, Status: http.StatusOK,
			Detail: "not a ShelterWatch gateway: GET " + path + " answered JSON without a facility id, time zone and version"}
	}
	f := raw.Facility
	f.Version = *raw.Version
	if err := CheckVersion(f.Version); err != nil {
		return f, &Error{Kind: KindVersion, Op: "GET " + path, Status: http.StatusOK, Detail: err.Error()}
	}
	return f, nil
}

// CheckVersion applies the version rule: "dev" or a version whose major
// number is SupportedMajor ("1.4.0", "v1.2", "1.5.0-rc1").
func CheckVersion(v string) error {
	if v == "dev" {
		return nil
	}
	s := strings.TrimPrefix(v, "v")
	major, _, _ := strings.Cut(s, ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < 0 {
		return fmt.Errorf("the gateway reports version %q, which is not a release version; this plugin needs a %d.x gateway", v, SupportedMajor)
	}
	if n != SupportedMajor {
		return fmt.Errorf("the gateway's version %s is not supported; this plugin needs a %d.x gateway", v, SupportedMajor)
	}
	return nil
}

// Alarm is an open alarm as GET /api/v1/alarms and the event stream give
// it.
type Alarm struct {
	ID       string            `json:"id"`
	Seq      uint64            `json:"seq"`
	Rule     string            `json:"rule"`
	Severity string            `json:"severity"`
	Facility string            `json:"facility"`
	Zone     string            `json:"zone"`
	Device   string            `json:"device"`
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	Since    time.Time         `json:"since"`
	Updated  time.Time         `json:"updated"`
	Level    int               `json:"level"`
	Silenced bool              `json:"silenced"`
	AckedBy  string            `json:"acked_by"`
	AckedAt  time.Time         `json:"acked_at"`
	Latched  bool              `json:"latched"`
}

// SecondsToAck is how long the alarm waited for its acknowledgement, and
// false while it is not acknowledged.
func (a Alarm) SecondsToAck() (float64, bool) {
	if a.AckedAt.IsZero() || a.Since.IsZero() {
		return 0, false
	}
	return a.AckedAt.Sub(a.Since).Seconds(), true
}

// Alarms lists the open alarms, most severe first.
func (c *Client) Alarms(ctx context.Context) ([]Alarm, error) {
	var out struct {
		Alarms []Alarm `json:"alarms"`
	}
	err := c.get(ctx, "/api/v1/alarms", nil, &out)
	return out.Alarms, err
}

// AlarmReport is GET /api/v1/reports/alarms.
type AlarmReport struct {
	From   time.Time          `json:"from"`
	To     time.Time          `json:"to"`
	Groups []AlarmReportGroup `json:"groups"`
}

// AlarmReportGroup counts the alarms of one rule, zone and severity.
type AlarmReportGroup struct {
	Rule               string      `json:"rule"`
	Zone               string      `json:"zone"`
	Severity           string      `json:"severity"`
	Raised             int         `json:"raised"`
	Acknowledged       int         `json:"acknowledged"`
	NeverAcknowledged  int         `json:"never_acknowledged"`
	OpenUnacknowledged int         `json:"open_unacknowledged"`
	AckSeconds         *AckSeconds `json:"ack_seconds"`
}

// AckSeconds are times to acknowledge.
type AckSeconds struct {
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
}

// AlarmReport counts the alarms that fired in [from, to); zero times take
// the gateway's defaults.
func (c *Client) AlarmReport(ctx context.Context, from, to time.Time) (AlarmReport, error) {
	var out AlarmReport
	err := c.get(ctx, "/api/v1/reports/alarms", timeRange(from, to), &out)
	return out, err
}

// ReadingsQuery selects readings; MaxPoints > 0 asks for buckets.
type ReadingsQuery struct {
	Device, Kind, Zone string
	From, To           time.Time
	MaxPoints          int
}

// Readings is GET /api/v1/readings.
type Readings struct {
	Bucket        string   `json:"bucket"`
	BucketSeconds float64  `json:"bucket_seconds"`
	Series        []Series `json:"series"`
}

// Series is one device's readings of one kind.
type Series struct {
	Device  string   `json:"device"`
	Kind    string   `json:"kind"`
	Zone    string   `json:"zone"`
	Points  []Point  `json:"points"`
	Buckets []Bucket `json:"buckets"`
}

// Point is a raw reading; Value is a number, a bool or a string.
type Point struct {
	Time  time.Time `json:"time"`
	Value any       `json:"value"`
}

// Bucket summarises the readings in [Start, Start+width).
type Bucket struct {
	Start time.Time `json:"start"`
	Count int       `json:"count"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	Mean  float64   `json:"mean"`
	Last  float64   `json:"last"`
}

// MaxPointsLimit is the gateway's limit on max_points.
const MaxPointsLimit = 10000

// Readings queries stored readings.
func (c *Client) Readings(ctx context.Context, rq ReadingsQuery) (Readings, error) {
	q := timeRange(rq.From, rq.To)
	for k, v := range map[string]string{"device": rq.Device, "kind": rq.Kind, "zone": rq.Zone} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if rq.MaxPoints > 0 {
		q.Set("max_points", strconv.Itoa(min(rq.MaxPoints, MaxPointsLimit)))
	}
	var out Readings
	err := c.get(ctx, "/api/v1/readings", q, &out)
	return out, err
}

// Availability is GET /api/v1/availability.
type Availability struct {
	From    time.Time            `json:"from"`
	To      time.Time            `json:"to"`
	Devices []DeviceAvailability `json:"devices"`
}

// DeviceAvailability is one device's share of the period online.
type DeviceAvailability struct {
	Device         string   `json:"device"`
	Zone           string   `json:"zone"`
	OnlineSeconds  float64  `json:"online_seconds"`
	OfflineSeconds float64  `json:"offline_seconds"`
	UnknownSeconds float64  `json:"unknown_seconds"`
	OnlinePercent  float64  `json:"online_percent"`
	OfflinePercent float64  `json:"offline_percent"`
	UnknownPercent float64  `json:"unknown_percent"`
	Outages        []Outage `json:"outages"`
}

// Outage is a span offline.
type Outage struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"`
	Cause   string    `json:"cause"`
	Ongoing bool      `json:"ongoing"`
}

// Availability reports every device's availability in [from, to).
func (c *Client) Availability(ctx context.Context, from, to time.Time) (Availability, error) {
	var out Availability
	err := c.get(ctx, "/api/v1/availability", timeRange(from, to), &out)
	return out, err
}

// Device is a device's live state in GET /api/v1/devices.
type Device struct {
	Device   string    `json:"device"`
	Zone     string    `json:"zone"`
	Kind     string    `json:"kind"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen"`
}

// Devices lists the devices and their live state.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out struct {
		Devices []Device `json:"devices"`
	}
	err := c.get(ctx, "/api/v1/devices", nil, &out)
	return out.Devices, err
}

// Camera is a camera's state in GET /api/v1/cameras.
type Camera struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Zone       string    `json:"zone"`
	OnDemand   bool      `json:"on_demand"`
	Viewers    int       `json:"viewers"`
	State      string    `json:"state"`
	Reason     string    `json:"reason"`
	Since      time.Time `json:"since"`
	Reconnects uint64    `json:"reconnects"`
	FPS        float64   `json:"fps"`
	Bitrate    float64   `json:"bitrate_bps"`
}

// Cameras lists the cameras the token may view.
func (c *Client) Cameras(ctx context.Context) ([]Camera, error) {
	var out []Camera
	err := c.get(ctx, "/api/v1/cameras", nil, &out)
	return out, err
}

// Rule is one rule the gateway runs, in GET /api/v1/rules.
type Rule struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	Scope    string   `json:"scope"`
	Severity string   `json:"severity"`
	Kinds    []string `json:"kinds"`
	Latched  bool     `json:"latched"`
	Title    struct {
		EN string `json:"en"`
		ZH string `json:"zh"`
	} `json:"title"`
}

// Rules returns the rules the gateway runs. A gateway older than the
// rules list answers 404 (an *Error of KindStatus with Status 404).
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	var out []Rule
	err := c.get(ctx, "/api/v1/rules", nil, &out)
	return out, err
}

// VideoSession is one viewer in GET /api/v1/video/sessions.
type VideoSession struct {
	ID       string    `json:"id"`
	Camera   string    `json:"camera"`
	Who      string    `json:"who"`
	Start    time.Time `json:"start"`
	Bytes    uint64    `json:"bytes"`
	Stream   string    `json:"stream"`
	Estimate float64   `json:"estimate_bps"`
	RTT      float64   `json:"rtt_ms"`
	Loss     float64   `json:"loss"`
}

// VideoSessions lists who is watching now.
func (c *Client) VideoSessions(ctx context.Context) ([]VideoSession, error) {
	var out []VideoSession
	err := c.get(ctx, "/api/v1/video/sessions", nil, &out)
	return out, err
}

func timeRange(from, to time.Time) url.Values {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339Nano))
	}
	return q
}
