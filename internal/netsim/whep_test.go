package netsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const offerSDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n"

// TestWHEPProxy posts an offer through the proxy to a stand-in gateway:
// the offer arrives unchanged after the delay, the answer comes back with
// its candidates rewritten and a matching Content-Length, the Location is
// a path, and the DELETE it names reaches the gateway.
func TestWHEPProxy(t *testing.T) {
	var mu sync.Mutex
	var seen []string // method, path, body
	var gwURL string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(body))
		mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/cameras/hall/whep":
			if r.Header.Get("Content-Type") != "application/sdp" || r.Header.Get("Authorization") != "Bearer t0ken" {
				http.Error(w, "headers not forwarded", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/sdp; charset=utf-8")
			w.Header().Set("Location", gwURL+"/api/v1/cameras/hall/whep/s1")
			w.Header().Set("ETag", `"e1"`)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, answerSDP)
		case r.Method == http.MethodDelete && r.URL.Path == "/api/v1/cameras/hall/whep/s1":
			io.WriteString(w, "bye 127.0.0.1 8189")
		default:
			http.NotFound(w, r)
		}
	}))
	defer gw.Close()
	gwURL = gw.URL
	target, _ := url.Parse(gw.URL)
	gwICE, relayICE := netip.MustParseAddrPort("127.0.0.1:8189"), netip.MustParseAddrPort("127.0.0.1:40001")
	const delay = 50 * time.Millisecond
	proxy := httptest.NewServer(NewWHEPProxy(target, func(sdp string) string {
		return RewriteCandidates(sdp, gwICE, relayICE)
	}, delay))
	defer proxy.Close()

	req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/api/v1/cameras/hall/whep", strings.NewReader(offerSDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer t0ken")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("answer after %v, before the %v signalling delay", elapsed, delay)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if want := RewriteCandidates(answerSDP, gwICE, relayICE); string(body) != want || want == answerSDP {
		t.Fatalf("answer not rewritten:\n%s", body)
	}
	if resp.ContentLength != int64(len(body)) || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %d (%q), body %d bytes", resp.ContentLength, resp.Header.Get("Content-Length"), len(body))
	}
	loc := resp.Header.Get("Location")
	if loc != "/api/v1/cameras/hall/whep/s1" || resp.Header.Get("ETag") != `"e1"` {
		t.Fatalf("Location %q, ETag %q", loc, resp.Header.Get("ETag"))
	}

	// The session URL, resolved as a player does, is on the proxy.
	session, _ := resp.Request.URL.Parse(loc)
	req, _ = http.NewRequest(http.MethodDelete, session.String(), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "bye 127.0.0.1 8189" {
		t.Fatalf("DELETE: %d %q, want the gateway's own answer untouched", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "POST /api/v1/cameras/hall/whep "+offerSDP || seen[1] != "DELETE /api/v1/cameras/hall/whep/s1 " {
		t.Fatalf("gateway saw %q", seen)
	}
}

func TestRelativeLocation(t *testing.T) {
	for _, c := range []struct{ target, loc, want string }{
		{"http://127.0.0.1:8080", "/api/v1/cameras/hall/whep/s1", "/api/v1/cameras/hall/whep/s1"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v1/cameras/hall/whep/s1?x=1", "/api/v1/cameras/hall/whep/s1?x=1"},
		{"http://127.0.0.1:8080", "//127.0.0.1:8080/a%2Fb", "/a%2Fb"},
		{"http://127.0.0.1:8080", "whep/s1", "whep/s1"},
		{"http://127.0.0.1:8080", "https://cdn.example/s1", "https://cdn.example/s1"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:9999/s1", "http://127.0.0.1:9999/s1"},
		// A target with a base path: the proxy adds it back.
		{"http://127.0.0.1:8080/gw/", "/gw/api/s1", "/api/s1"},
		{"http://127.0.0.1:8080/gw", "http://127.0.0.1:8080/gw", "/"},
		{"http://127.0.0.1:8080/gw", "/other/s1", "/other/s1"},
	} {
		target, _ := url.Parse(c.target)
		h := http.Header{"Location": {c.loc}}
		relativeLocation(h, target)
		if got := h.Get("Location"); got != c.want {
			t.Errorf("target %s, Location %q → %q, want %q", c.target, c.loc, got, c.want)
		}
	}
}
