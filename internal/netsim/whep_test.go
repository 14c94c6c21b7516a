package netsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
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

// TestWHEPProxyOffer: with ProxyOptions.Offer the gateway gets the
// player's offer rewritten, with a Content-Length to match even when the
// player sent it chunked, while a PATCH's trickle-ICE fragment passes
// unchanged; answers are rewritten by ProxyOptions.Answer.
func TestWHEPProxyOffer(t *testing.T) {
	type request struct {
		method, contentType, body, contentLength string
		length                                   int64
		chunked                                  bool
	}
	var mu sync.Mutex
	var seen []request
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, request{method: r.Method, contentType: r.Header.Get("Content-Type"), body: string(body),
			contentLength: r.Header.Get("Content-Length"), length: r.ContentLength, chunked: slices.Contains(r.TransferEncoding, "chunked")})
		mu.Unlock()
		if r.Method == http.MethodPost {
			w.Header().Set("Content-Type", "application/sdp")
			w.Header().Set("Location", "/whep/s1")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, answerSDP)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer gw.Close()
	target, _ := url.Parse(gw.URL)
	gwICE, relayICE := netip.MustParseAddrPort("127.0.0.1:8189"), netip.MustParseAddrPort("127.0.0.1:40001")
	proxy := httptest.NewServer(NewWHEPProxyWith(target, ProxyOptions{
		Answer: func(sdp string) string { return RewriteCandidates(sdp, gwICE, relayICE) },
		Offer:  StripCandidates,
	}))
	defer proxy.Close()

	const candidates = "a=candidate:1 1 udp 2130706431 127.0.0.1 51000 typ host\r\na=end-of-candidates\r\n"
	offer := offerSDP + candidates
	fragment := "a=ice-ufrag:abcd\r\na=ice-pwd:efgh\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" + candidates
	do := func(method, path, contentType string, body io.Reader) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, proxy.URL+path, body)
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	// Not a strings.Reader: the client cannot tell its length and sends
	// it chunked.
	status, answer := do(http.MethodPost, "/whep", "application/sdp", io.MultiReader(strings.NewReader(offer)))
	if status != http.StatusCreated || answer != RewriteCandidates(answerSDP, gwICE, relayICE) {
		t.Fatalf("POST: %d, answer not rewritten:\n%s", status, answer)
	}
	// Sized this time, with parameters on the media type.
	if status, _ := do(http.MethodPost, "/whep", "application/sdp; charset=utf-8", strings.NewReader(offer)); status != http.StatusCreated {
		t.Fatalf("second POST: %d", status)
	}
	if status, _ := do(http.MethodPatch, "/whep/s1", "application/trickle-ice-sdpfrag", strings.NewReader(fragment)); status != http.StatusNoContent {
		t.Fatalf("PATCH: %d", status)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("gateway saw %+v", seen)
	}
	stripped := StripCandidates(offer)
	if stripped != offerSDP {
		t.Fatalf("StripCandidates left %q", stripped)
	}
	for i, r := range seen[:2] {
		if r.body != stripped || r.length != int64(len(stripped)) || r.contentLength != strconv.Itoa(len(stripped)) || r.chunked {
			t.Errorf("offer %d reached the gateway as %+v, want %q with its length", i, r, stripped)
		}
	}
	if r := seen[2]; r.method != http.MethodPatch || r.contentType != "application/trickle-ice-sdpfrag" || r.body != fragment || r.length != int64(len(fragment)) {
		t.Errorf("PATCH reached the gateway as %+v, want the fragment unchanged", r)
	}
}
