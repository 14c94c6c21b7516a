package video

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/gateway"
	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
)

// videoGateway is a gateway child process with cameras.
type videoGateway struct {
	p    *gateway.Process
	http string // listen address of the API
	// metrics is the listen address of /metrics (loopback, no token).
	metrics string
	token   string
	// manager reads the viewing sessions (their stream and estimate).
	manager string
	// ice is the WebRTC UDP address.
	ice *net.UDPAddr
}

// iceAddr is the gateway's WebRTC UDP address.
func (g *videoGateway) iceAddr(context.Context) (*net.UDPAddr, error) { return g.ice, nil }

// freeUDP picks a free loopback UDP port.
func freeUDP() (*net.UDPAddr, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pick a UDP port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr), nil
}

func (g *videoGateway) pid() int { return g.p.Pid() }

func (g *videoGateway) whepURL(camera string) string {
	return "http://" + g.http + "/api/v1/cameras/" + camera + "/whep"
}

func (g *videoGateway) stop() { _ = g.p.Stop() }

// startVideoGateway starts the gateway with the given cameras (pulled
// always, over RTSP/TCP) and a viewer token for all of them.
func startVideoGateway(o Options, dir string, cams []string, urls map[string]string, perCamera int) (*videoGateway, error) {
	return startGatewayWith(o.Exe, o.Log, dir, cams, urls, nil, perCamera)
}

// startGatewayWith starts the gateway with cameras whose sub streams, if
// any, are in subs (pulled always, so that a new viewer finds their GOP
// cached).
func startGatewayWith(exe string, log io.Writer, dir string, cams []string, urls, subs map[string]string, perCamera int) (*videoGateway, error) {
	gdir, err := os.MkdirTemp(dir, "gateway-")
	if err != nil {
		return nil, err
	}
	httpAddr, err := proc.FreeLoopback()
	if err != nil {
		return nil, err
	}
	// Scraped without a token, as Prometheus on the gateway itself would.
	metricsAddr, err := proc.FreeLoopback()
	if err != nil {
		return nil, err
	}
	ice, err := freeUDP()
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	_, _ = rand.Read(raw)
	manager := hex.EncodeToString(raw)
	msum := sha256.Sum256([]byte(manager))
	var b strings.Builder
	fmt.Fprintf(&b, `facility: {id: bench, name: Bench facility, timezone: UTC}
zones: [{id: hall, tags: [corridor]}]
broker: {mode: embedded, embedded: {listen: "127.0.0.1:0"}}
store: {dir: %q}
http:
  listen: %q
  metrics_listen: %q
  metrics_auth: none
  tokens:
    - {name: bench-viewer, role: viewer, sha256: %s, cameras: ["*"]}
    - {name: bench-manager, role: manager, sha256: %s, cameras: ["*"]}
video: {webrtc_udp: %q, max_viewers: %d, max_viewers_per_camera: %d, max_viewers_per_token: %d}
log: {level: warn}
cameras:
`, filepath.Join(gdir, "store"), httpAddr, metricsAddr, hex.EncodeToString(sum[:]), hex.EncodeToString(msum[:]), ice.String(),
		max(64, 2*len(cams)*perCamera), max(64, 2*perCamera), max(64, 2*len(cams)*perCamera))
	for _, id := range cams {
		if sub, ok := subs[id]; ok {
			fmt.Fprintf(&b, "  - {id: %s, zone: hall, url: %q, sub_url: %q, sub_always_on: true, transport: tcp}\n", id, urls[id], sub)
			continue
		}
		fmt.Fprintf(&b, "  - {id: %s, zone: hall, url: %q, transport: tcp}\n", id, urls[id])
	}
	cfgPath := filepath.Join(gdir, "shelterwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	p, err := gateway.Start(exe, cfgPath, log)
	if err != nil {
		return nil, err
	}
	return &videoGateway{p: p, http: httpAddr, metrics: metricsAddr, token: token, manager: manager, ice: ice}, nil
}

// cameraStatus is the part of GET /api/v1/cameras the bench reads.
type cameraStatus struct {
	ID           string    `json:"id"`
	State        string    `json:"state"`
	Reason       string    `json:"reason"`
	LastKeyframe time.Time `json:"last_keyframe"`
	FPS          float64   `json:"fps"`
	Reconnects   uint64    `json:"reconnects"`
}

func (g *videoGateway) cameras(ctx context.Context) ([]cameraStatus, error) {
	var sts []cameraStatus
	err := getJSON(ctx, "http://"+g.http+"/api/v1/cameras", g.token, &sts)
	return sts, err
}

// waitLive waits until every camera is live with a keyframe in its GOP
// cache, as GET /api/v1/cameras reports.
func (g *videoGateway) waitLive(ctx context.Context, cams []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for {
		sts, err := g.cameras(ctx)
		if err == nil {
			live := map[string]bool{}
			var waiting []string
			for _, s := range sts {
				if s.State == "live" && !s.LastKeyframe.IsZero() {
					live[s.ID] = true
				} else {
					waiting = append(waiting, fmt.Sprintf("%s %s %s", s.ID, s.State, s.Reason))
				}
			}
			n := 0
			for _, id := range cams {
				if live[id] {
					n++
				}
			}
			if n == len(cams) {
				return nil
			}
			last = strings.Join(waiting, "; ")
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cameras not live with a keyframe within %s: %s", limit, last)
		}
		if err := proc.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// sessionSample is one viewing session as GET /api/v1/video/sessions
// shows it.
type sessionSample struct {
	ID       string  `json:"id"`
	Stream   string  `json:"stream"`
	Estimate float64 `json:"estimate_bps"`
	RTT      float64 `json:"rtt_ms"`
	Loss     float64 `json:"loss"`
}

// sampleSession reads session id's stream and estimate every 500 ms
// until stop closes.
func (g *videoGateway) sampleSession(ctx context.Context, id string, stop <-chan struct{}) []sessionSample {
	var out []sessionSample
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return out
		case <-ctx.Done():
			return out
		case <-t.C:
			var all []sessionSample
			if getJSON(ctx, "http://"+g.http+"/api/v1/video/sessions", g.manager, &all) != nil {
				continue
			}
			for _, s := range all {
				if s.ID == id {
					out = append(out, s)
				}
			}
		}
	}
}

func getJSON(ctx context.Context, url, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// scrapeMetrics reads the gauges and counters without labels from a
// Prometheus text page (labelled series are summed).
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			// The value follows the closing brace.
			j := strings.LastIndexByte(line, '}')
			name, rest = line[:i], strings.TrimSpace(line[j+1:])
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if x, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] += x
		}
	}
	return out, sc.Err()
}
