// Package datasource is the ShelterWatch Grafana data source: one instance
// per configured data source, reading from one or more gateways (one per
// facility) through gatewayapi.
//
// What it serves:
//   - QueryData: alarms, alarm_report, readings, availability, cameras and
//     video_sessions, each across the selected gateways, every row or
//     series naming its gateway and facility; {"queryType":"alarms",
//     "live":true} answers an empty frame whose channel is ds/<uid>/alarms.
//   - CheckHealth: every gateway's facility, version and alarm access, with
//     a message naming each failing gateway and the cause.
//   - CallResource: pick lists for the query editor (/facilities, /zones,
//     /devices, /rules, /cameras).
//   - Streams: path "alarms" only; RunStream follows every gateway's event
//     stream and sends a frame per alarm change.
//
// Access is the gateways' business: each gateway is called with its own
// token and answers what that token's role may see. A gateway that refuses
// its token contributes nothing (a query says so in a notice); nothing of
// one gateway is ever fetched with another's token.
//
// Backpressure: the live stream never drops an alarm. Each gateway's
// reader hands frames to the one sender through a small channel and waits
// when Grafana is slow, which holds the gateway's event stream back (the
// gateway keeps the last 1,024 events for a reader that falls behind and
// reconnects).
package datasource

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"

	"github.com/shelterwatch/shelterwatch/dashboards/plugin/gatewayapi"
)

// Datasource is one configured data source.
type Datasource struct {
	uid       string
	gateways  []*gateway
	resources backend.CallResourceHandler
	log       log.Logger
	now       func() time.Time
	backoff   backoff
}

// gateway is one configured gateway and what is known of its facility.
type gateway struct {
	name   string
	client *gatewayapi.Client

	mu       sync.Mutex
	facility *gatewayapi.Facility // cached after the first success
}

// facilityInfo answers the gateway's facility, asking the gateway only
// until it once answered.
func (g *gateway) facilityInfo(ctx context.Context) (gatewayapi.Facility, error) {
	g.mu.Lock()
	f := g.facility
	g.mu.Unlock()
	if f != nil {
		return *f, nil
	}
	got, err := g.client.Facility(ctx)
	if err != nil {
		return got, err
	}
	g.mu.Lock()
	g.facility = &got
	g.mu.Unlock()
	return got, nil
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ backend.StreamHandler         = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the instance factory datasource.Manage calls.
func NewDatasource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	return New(s, Options{})
}

// Options tune a Datasource (tests shorten the reconnect backoff).
type Options struct {
	// Logger (default: the SDK's logger).
	Logger log.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ReconnectMin and ReconnectMax bound the wait before the live stream
	// reconnects to a gateway (default 500 ms and 30 s).
	ReconnectMin, ReconnectMax time.Duration
	// Transport for the gateway clients (default: net/http's).
	Transport http.RoundTripper
}

// New builds a Datasource from its instance settings.
func New(s backend.DataSourceInstanceSettings, o Options) (*Datasource, error) {
	set, err := ParseSettings(s.JSONData, s.DecryptedSecureJSONData)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = backend.Logger
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 500 * time.Millisecond
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = max(30*time.Second, o.ReconnectMin)
	}
	d := &Datasource{uid: s.UID, log: o.Logger, now: o.Now, backoff: backoff{min: o.ReconnectMin, max: o.ReconnectMax}}
	for _, g := range set.Gateways {
		c, err := gatewayapi.New(gatewayapi.Options{URL: g.URL, Token: g.Token, Timeout: set.Timeout(), Transport: o.Transport})
		if err != nil {
			return nil, fmt.Errorf("settings: gateway %q: %w", g.Name, err)
		}
		d.gateways = append(d.gateways, &gateway{name: g.Name, client: c})
	}
	d.resources = httpadapter.New(d.resourceMux())
	return d, nil
}

// Dispose is called when the settings change; the clients hold nothing
// that needs closing beyond idle connections.
func (d *Datasource) Dispose() {}

// gatewayResult is one gateway's part of a fan-out.
type gatewayResult[T any] struct {
	gw  *gateway
	val T
	err error
}

// fanOut calls fn for every gateway in gws at once and answers in gws'
// order.
func fanOut[T any](ctx context.Context, gws []*gateway, fn func(context.Context, *gateway) (T, error)) []gatewayResult[T] {
	out := make([]gatewayResult[T], len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := fn(ctx, g)
			out[i] = gatewayResult[T]{gw: g, val: v, err: err}
		}()
	}
	wg.Wait()
	return out
}

// selectGateways picks the named gateways (all when names is empty).
func (d *Datasource) selectGateways(names []string) ([]*gateway, error) {
	if len(names) == 0 {
		return d.gateways, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []*gateway
	for _, g := range d.gateways {
		if want[g.name] {
			out = append(out, g)
			delete(want, g.name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for _, n := range names {
			if want[n] {
				unknown = append(unknown, fmt.Sprintf("%q", n))
			}
		}
		return nil, fmt.Errorf("no gateway named %s; configured: %s", strings.Join(unknown, ", "), strings.Join(d.names(), ", "))
	}
	return out, nil
}

func (d *Datasource) names() []string {
	out := make([]string, len(d.gateways))
	for i, g := range d.gateways {
		out[i] = g.name
	}
	return out
}

// CheckHealth checks every gateway: it answers as a ShelterWatch gateway
// of a supported version, and the token may read its alarms. The message
// names each failing gateway and why.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	type health struct {
		facility gatewayapi.Facility
	}
	res := fanOut(ctx, d.gateways, func(ctx context.Context, g *gateway) (health, error) {
		f, err := g.client.Facility(ctx)
		if err != nil {
			return health{}, err
		}
		g.mu.Lock()
		g.facility = &f
		g.mu.Unlock()
		if _, err := g.client.Alarms(ctx); err != nil {
			return health{facility: f}, err
		}
		return health{facility: f}, nil
	})
	var ok, failing []string
	type detail struct {
		Gateway  string `json:"gateway"`
		OK       bool   `json:"ok"`
		Problem  string `json:"problem,omitempty"`
		Kind     string `json:"kind,omitempty"`
		Facility string `json:"facility,omitempty"`
		Version  string `json:"version,omitempty"`
	}
	var details []detail
	for _, r := range res {
		dt := detail{Gateway: r.gw.name, OK: r.err == nil, Facility: r.val.facility.ID, Version: r.val.facility.Version}
		if r.err != nil {
			dt.Problem = gatewayapi.Detail(r.err)
			if k := gatewayapi.KindOf(r.err); k != 0 {
				dt.Kind = k.String()
			}
			failing = append(failing, r.gw.name+": "+dt.Problem)
		} else {
			ok = append(ok, fmt.Sprintf("%s (%s, version %s)", r.gw.name, r.val.facility.ID, r.val.facility.Version))
		}
		details = append(details, dt)
	}
	js, _ := jsonMarshal(map[string]any{"gateways": details})
	if len(failing) > 0 {
		return &backend.CheckHealthResult{
			Status:      backend.HealthStatusError,
			Message:     fmt.Sprintf("%d of %d gateways failing: %s", len(failing), len(res), strings.Join(failing, "; ")),
			JSONDetails: js,
		}, nil
	}
	return &backend.CheckHealthResult{
		Status:      backend.HealthStatusOk,
		Message:     fmt.Sprintf("%d %s OK: %s", len(ok), plural(len(ok), "gateway", "gateways"), strings.Join(ok, "; ")),
		JSONDetails: js,
	}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// CallResource serves the pick lists (resources.go).
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return d.resources.CallResource(ctx, req, sender)
}
