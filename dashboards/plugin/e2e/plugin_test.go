package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

const pluginID = "shelterwatch-gateway-datasource"

// binPath is the plugin binary TestMain builds once.
var binPath string

func TestMain(m *testing.M) {
	dir, cleanup, err := binDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, fmt.Sprintf("gpx_shelterwatch_%s_%s", runtime.GOOS, runtime.GOARCH))
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", binPath, "../cmd/gpx_shelterwatch").CombinedOutput()
	if err != nil {
		cleanup()
		fmt.Fprintf(os.Stderr, "e2e: build the plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "e2e: built the plugin in %v\n", time.Since(start).Round(time.Millisecond))
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// binDir is a directory binaries may run from: a new one under TMPDIR
// when that is set, else under the module's .tools/tmp (the system
// temporary directory may forbid running programs).
func binDir() (string, func(), error) {
	parent := ""
	if os.Getenv("TMPDIR") == "" {
		root, err := filepath.Abs("../../..")
		if err != nil {
			return "", nil, err
		}
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			return "", nil, fmt.Errorf("module root not found at %s: %w", root, err)
		}
		parent = filepath.Join(root, ".tools", "tmp")
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "", nil, err
		}
	}
	dir, err := os.MkdirTemp(parent, "plugin-e2e-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// plugin is a running plugin process and its gRPC clients.
type plugin struct {
	diag   grpcplugin.DiagnosticsClient
	data   grpcplugin.DataClient
	res    grpcplugin.ResourceClient
	stream grpcplugin.StreamClient
}

// startPlugin starts the binary as Grafana does; t.Cleanup kills it.
func startPlugin(t *testing.T) *plugin {
	t.Helper()
	cmd := exec.Command(binPath)
	cmd.Env = append(os.Environ(), "GF_VERSION=11.6.0", "GF_PLUGIN_APP_CLIENT_SECRET=")
	c := goplugin.NewClient(&goplugin.ClientConfig{
		Cmd: cmd,
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{grpcplugin.ProtocolVersion: {
			"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{}, "resource": &grpcplugin.ResourceGRPCPlugin{},
			"data": &grpcplugin.DataGRPCPlugin{}, "stream": &grpcplugin.StreamGRPCPlugin{},
		}},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: os.Stderr}),
		StartTimeout:     30 * time.Second,
	})
	t.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		t.Fatalf("start the plugin: %v", err)
	}
	if v := c.NegotiatedVersion(); v != grpcplugin.ProtocolVersion {
		t.Fatalf("negotiated protocol %d, want %d", v, grpcplugin.ProtocolVersion)
	}
	p := &plugin{}
	for name, dst := range map[string]any{"diagnostics": &p.diag, "data": &p.data, "resource": &p.res, "stream": &p.stream} {
		raw, err := rpc.Dispense(name)
		if err != nil {
			t.Fatalf("dispense %s: %v", name, err)
		}
		switch d := dst.(type) {
		case *grpcplugin.DiagnosticsClient:
			*d = raw.(grpcplugin.DiagnosticsClient)
		case *grpcplugin.DataClient:
			*d = raw.(grpcplugin.DataClient)
		case *grpcplugin.ResourceClient:
			*d = raw.(grpcplugin.ResourceClient)
		case *grpcplugin.StreamClient:
			*d = raw.(grpcplugin.StreamClient)
		}
	}
	return p
}

type gw struct{ name, url, token string }

// pluginContext is a data source of these gateways; uid keys the
// plugin's instance.
func pluginContext(uid string, gws ...gw) backend.PluginContext {
	var list []map[string]string
	sec := map[string]string{}
	for _, g := range gws {
		list = append(list, map[string]string{"name": g.name, "url": g.url})
		sec["token_"+g.name] = g.token
	}
	js, _ := json.Marshal(map[string]any{"gateways": list})
	return backend.PluginContext{
		PluginID: pluginID,
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			UID: uid, Name: uid, JSONData: js, DecryptedSecureJSONData: sec, Updated: time.Now(),
		},
	}
}

func (p *plugin) checkHealth(t *testing.T, pc backend.PluginContext) *backend.CheckHealthResult {
	t.Helper()
	r, err := p.diag.CheckHealth(context.Background(), &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
	if err != nil {
		t.Fatal(err)
	}
	return backend.FromProto().CheckHealthResponse(r)
}

func (p *plugin) query(t *testing.T, pc backend.PluginContext, qs ...backend.DataQuery) *backend.QueryDataResponse {
	t.Helper()
	r, err := p.data.QueryData(context.Background(), backend.ToProto().QueryDataRequest(&backend.QueryDataRequest{PluginContext: pc, Queries: qs}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := backend.FromProto().QueryDataResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (p *plugin) resource(t *testing.T, pc backend.PluginContext, path string) (int, []byte) {
	t.Helper()
	s, err := p.res.CallResource(context.Background(), backend.ToProto().CallResourceRequest(&backend.CallResourceRequest{
		PluginContext: pc, Method: http.MethodGet, Path: path, URL: path,
	}))
	if err != nil {
		t.Fatal(err)
	}
	var status int
	var body []byte
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return status, body
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != 0 {
			status = int(r.Code)
		}
		body = append(body, r.Body...)
	}
}

func q(refID, model string, since time.Duration) backend.DataQuery {
	now := time.Now()
	return backend.DataQuery{RefID: refID, JSON: json.RawMessage(model), MaxDataPoints: 100, Interval: time.Second,
		TimeRange: backend.TimeRange{From: now.Add(-since), To: now.Add(time.Minute)}}
}

// column answers a frame's column by name as strings.
func column(t *testing.T, f *data.Frame, name string) []string {
	t.Helper()
	field, i := f.FieldByName(name)
	if i < 0 {
		t.Fatalf("frame %q has no field %q", f.Name, name)
	}
	out := make([]string, field.Len())
	for j := range out {
		v, _ := field.ConcreteAt(j)
		out[j] = fmt.Sprint(v)
	}
	return out
}

func TestGoPlugin(t *testing.T) {
	north, south := startGateway(t, "north-station"), startGateway(t, "south-station")
	p := startPlugin(t)
	both := pluginContext("both", gw{"north", north.URL, north.Viewer}, gw{"south", south.URL, south.Viewer})

	t.Run("CheckHealth", func(t *testing.T) {
		html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!doctype html><title>router</title>")
		}))
		t.Cleanup(html.Close)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + l.Addr().String()
		l.Close()
		for _, tc := range []struct {
			name    string
			pc      backend.PluginContext
			status  backend.HealthStatus
			message string
		}{
			{"both ok", both, backend.HealthStatusOk,
				"2 gateways OK: north (north-station, version dev); south (south-station, version dev)"},
			{"bad token", pluginContext("badtoken", gw{"north", north.URL, north.Viewer}, gw{"south", south.URL, "not-a-token"}),
				backend.HealthStatusError, "1 of 2 gateways failing: south: the token was refused (401 Unauthorized)"},
			{"no alarm access", pluginContext("metrics", gw{"north", north.URL, north.Admin}, gw{"south", south.URL, south.Metrics}),
				backend.HealthStatusError, "1 of 2 gateways failing: south: the token's role may not GET /api/v1/alarms (403 Forbidden)"},
			{"unreachable", pluginContext("unreachable", gw{"north", north.URL, north.Viewer}, gw{"east", closed, "x"}),
				backend.HealthStatusError, "1 of 2 gateways failing: east: unreachable: connection refused"},
			{"not a gateway", pluginContext("html", gw{"router", html.URL, "x"}),
				backend.HealthStatusError, "1 of 1 gateways failing: router: not a ShelterWatch gateway: GET /api/v1/facility answered 200 with text/html, not JSON"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := p.checkHealth(t, tc.pc)
				if r.Status != tc.status || r.Message != tc.message {
					t.Fatalf("CheckHealth = %v %q\nwant %v %q", r.Status, r.Message, tc.status, tc.message)
				}
			})
		}
	})

	t.Run("QueryData", func(t *testing.T) {
		north.publish(t, "kitchen-smoke", "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":80,"linkquality":90}`)
		var resp *backend.QueryDataResponse
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp = p.query(t, both,
				q("alarms", `{"queryType":"alarms"}`, time.Hour),
				q("readings", `{"queryType":"readings","zone":"kitchen","kind":"temperature"}`, 10*time.Minute),
				q("cameras", `{"queryType":"cameras"}`, time.Hour),
				q("live", `{"queryType":"alarms","live":true}`, time.Hour),
				q("bad", `{"queryType":"alarms","gateways":["nowhere"]}`, time.Hour),
			)
			a, r := resp.Responses["alarms"], resp.Responses["readings"]
			if a.Error == nil && len(a.Frames) == 1 && strings.Contains(strings.Join(column(t, a.Frames[0], "rule"), ","), "smoke") &&
				r.Error == nil && len(r.Frames) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("within 10s: alarms %v %v; readings %v (%d frames)", a.Error, a.Frames, r.Error, len(r.Frames))
			}
			time.Sleep(200 * time.Millisecond) // data arrives every 300 ms: poll
		}
		alarms := resp.Responses["alarms"].Frames[0]
		gws, facs, zones := column(t, alarms, "gateway"), column(t, alarms, "facility"), column(t, alarms, "zone")
		found := false
		for i, r := range column(t, alarms, "rule") {
			if r == "smoke" {
				found = gws[i] == "north" && facs[i] == "north-station" && zones[i] == "kitchen"
			}
		}
		if !found {
			table, _ := alarms.StringTable(-1, -1)
			t.Errorf("no smoke alarm row of north-station/kitchen:\n%s", table)
		}
		seen := map[string]bool{}
		for _, f := range resp.Responses["readings"].Frames {
			v := f.Fields[1]
			seen[v.Labels["gateway"]+"/"+v.Labels["facility"]] = true
			if v.Labels["kind"] != "temperature" || v.Labels["zone"] != "kitchen" || f.Rows() == 0 || f.Rows() > 100 {
				t.Errorf("readings frame labels %v with %d points", v.Labels, f.Rows())
			}
		}
		if !seen["north/north-station"] || !seen["south/south-station"] {
			t.Errorf("readings series of %v, want both gateways", seen)
		}
		cams := resp.Responses["cameras"]
		if cams.Error != nil || len(cams.Frames) != 1 || cams.Frames[0].Rows() != 4 {
			t.Errorf("cameras: %v %v", cams.Error, cams.Frames)
		} else if got := strings.Join(column(t, cams.Frames[0], "gateway"), ","); got != "north,north,south,south" {
			t.Errorf("cameras of gateways %s", got)
		}
		if ch := resp.Responses["live"].Frames[0].Meta.Channel; ch != "ds/both/alarms" {
			t.Errorf("live channel %q", ch)
		}
		if b := resp.Responses["bad"]; b.Error == nil || b.Status != backend.StatusBadRequest ||
			b.Error.Error() != `no gateway named "nowhere"; configured: north, south` {
			t.Errorf("bad gateway: %v %v", b.Status, b.Error)
		}
	})

	t.Run("CallResource", func(t *testing.T) {
		for path, want := range map[string]int{"facilities": 2, "zones": 14, "cameras": 4} {
			status, body := p.resource(t, both, path)
			var out struct {
				Items  []map[string]any `json:"items"`
				Errors []any            `json:"errors"`
			}
			if err := json.Unmarshal(body, &out); err != nil || status != 200 || len(out.Items) != want || len(out.Errors) != 0 {
				t.Errorf("%s: %d %s (want %d items)", path, status, body, want)
			}
		}
		status, body := p.resource(t, both, "devices")
		if status != 200 || !strings.Contains(string(body), `"device":"kitchen-smoke"`) {
			t.Errorf("devices: %d %.300s", status, body)
		}
		status, body = p.resource(t, both, "rules")
		// bridge-down has no alarm open: it comes from the rule list.
		if status != 200 || !strings.Contains(string(body), `{"gateway":"north","facility":"north-station","rule":"smoke"}`) ||
			!strings.Contains(string(body), `{"gateway":"south","facility":"south-station","rule":"bridge-down"}`) {
			t.Errorf("rules: %d %s", status, body)
		}
	})

	t.Run("Stream", func(t *testing.T) {
		// South's token may not read alarms: nothing of south may show.
		pc := pluginContext("stream", gw{"north", north.URL, north.Viewer}, gw{"south", south.URL, south.Metrics})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for path, want := range map[string]pluginv2.SubscribeStreamResponse_Status{
			"alarms": pluginv2.SubscribeStreamResponse_OK, "readings": pluginv2.SubscribeStreamResponse_NOT_FOUND,
		} {
			r, err := p.stream.SubscribeStream(ctx, &pluginv2.SubscribeStreamRequest{PluginContext: backend.ToProto().PluginContext(pc), Path: path})
			if err != nil || r.Status != want {
				t.Fatalf("SubscribeStream(%s) = %v, %v; want %v", path, r, err, want)
			}
		}
		rs, err := p.stream.RunStream(ctx, &pluginv2.RunStreamRequest{PluginContext: backend.ToProto().PluginContext(pc), Path: "alarms"})
		if err != nil {
			t.Fatal(err)
		}
		type packet struct {
			frame *data.Frame
			at    time.Time
			err   error
		}
		packets := make(chan packet, 64)
		go func() {
			for {
				pk, err := rs.Recv()
				if err != nil {
					packets <- packet{err: err}
					return
				}
				var f data.Frame
				err = json.Unmarshal(pk.Data, &f)
				packets <- packet{frame: &f, at: time.Now(), err: err}
			}
		}()

		// South's smoke first: it must never reach this stream.
		south.publish(t, "dorm-1-smoke", "zigbee2mqtt/dorm-1/smoke", `{"smoke":true,"battery":90,"linkquality":120}`)
		// Then north's: it must arrive within 1 s.
		published := time.Now()
		north.publish(t, "dorm-1-smoke", "zigbee2mqtt/dorm-1/smoke", `{"smoke":true,"battery":90,"linkquality":120}`)
		acked := time.Now()
		deadline := time.After(5 * time.Second)
		var latency time.Duration
	wait:
		for {
			select {
			case pk := <-packets:
				if pk.err != nil {
					t.Fatalf("stream: %v", pk.err)
				}
				f := pk.frame
				gwCol, zone, rule := column(t, f, "gateway"), column(t, f, "zone"), column(t, f, "rule")
				for i := range gwCol {
					if gwCol[i] != "north" {
						t.Fatalf("a frame of gateway %s reached a stream whose token for it has no alarm access: %v", gwCol[i], f.Fields)
					}
					if zone[i] == "dorm-1" && rule[i] == "smoke" {
						latency = pk.at.Sub(published)
						break wait
					}
				}
			case <-deadline:
				t.Fatal("north's smoke alarm did not arrive on the stream within 5s")
			}
		}
		t.Logf("live alarm latency: %v from publishing (%v after the broker's acknowledgement)", latency.Round(time.Millisecond), (latency - acked.Sub(published)).Round(time.Millisecond))
		if latency > time.Second {
			t.Errorf("live alarm took %v, want at most 1s", latency)
		}
		// Make sure south's alarm is open, then give it the same chance
		// to (wrongly) arrive.
		waitAlarm(t, south, "dorm-1", "smoke")
		quiet := time.After(1500 * time.Millisecond)
		for {
			select {
			case pk := <-packets:
				if pk.err != nil {
					t.Fatalf("stream: %v", pk.err)
				}
				for _, g := range column(t, pk.frame, "gateway") {
					if g != "north" {
						t.Fatalf("a frame of gateway %s reached the stream: %v", g, pk.frame.Fields)
					}
				}
			case <-quiet:
				// QueryData with the same tokens: north's alarms only, and
				// a notice naming south.
				resp := p.query(t, pc, q("A", `{"queryType":"alarms"}`, time.Hour))
				a := resp.Responses["A"]
				if a.Error != nil || len(a.Frames) != 1 {
					t.Fatalf("alarms: %v %v", a.Error, a.Frames)
				}
				for _, g := range column(t, a.Frames[0], "gateway") {
					if g != "north" {
						t.Fatalf("QueryData returned a row of %s", g)
					}
				}
				ns := a.Frames[0].Meta.Notices
				if len(ns) != 1 || ns[0].Text != "gateway south: the token's role may not GET /api/v1/alarms (403 Forbidden)" {
					t.Errorf("notices %+v", ns)
				}
				cancel()
				return
			}
		}
	})
}

// waitAlarm waits until the gateway has an open alarm of rule in zone.
func waitAlarm(t *testing.T, g *testGateway, zone, rule string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v1/alarms", nil)
		req.Header.Set("Authorization", "Bearer "+g.Admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Alarms []struct{ Zone, Rule string } `json:"alarms"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out.Alarms {
			if a.Zone == zone && a.Rule == rule {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s alarm in %s on %s within 10s: %+v", rule, zone, g.Facility, out.Alarms)
		}
		time.Sleep(100 * time.Millisecond) // the rules engine has no hook here: poll
	}
}

// TestBinaryWithoutCookie: started by hand, the plugin refuses and says
// why.
func TestBinaryWithoutCookie(t *testing.T) {
	cmd := exec.Command(binPath)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "This binary is a plugin. These are not meant to be executed directly.") {
		t.Fatalf("output without the plugin message:\n%s", out)
	}
}
