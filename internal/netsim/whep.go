package netsim

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxSDP bounds an SDP body the proxy reads to rewrite; a real answer is a
// few kilobytes.
const maxSDP = 1 << 20

// NewWHEPProxy returns a reverse proxy to target (the gateway's base URL,
// e.g. http://127.0.0.1:8080: the player uses the proxy's URL with the
// gateway's paths) for a player on an emulated network. Requests are
// forwarded unchanged except that each waits delay first (the profile's
// RTT: signalling is one round trip the player waits for) and the
// player's Accept-Encoding is not passed on (so answers arrive plain and
// can be rewritten). A response with Content-Type application/sdp has its
// body passed through rewrite (nil: unchanged) and its Content-Length set
// to match. A Location that is an absolute URL on target becomes a path,
// so the player's next request (PATCH, DELETE) comes through the proxy
// too.
func NewWHEPProxy(target *url.URL, rewrite func(answerSDP string) string, delay time.Duration) http.Handler {
	base := *target
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&base)
			pr.Out.Header.Del("Accept-Encoding")
		},
		ModifyResponse: func(resp *http.Response) error {
			relativeLocation(resp.Header, &base)
			if rewrite == nil || !isSDP(resp) {
				return nil
			}
			return rewriteBody(resp, rewrite)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return // the player gave up; nobody reads an answer
			}
		}
		rp.ServeHTTP(w, r)
	})
}

// isSDP reports whether resp carries an SDP body to rewrite.
func isSDP(resp *http.Response) bool {
	if resp.Request != nil && resp.Request.Method == http.MethodHead {
		return false
	}
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return false
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return err == nil && mt == "application/sdp"
}

// rewriteBody replaces resp's body with rewrite's result.
func rewriteBody(resp *http.Response, rewrite func(string) string) error {
	// The transport undoes an encoding it asked for itself; one the
	// server chose anyway cannot be rewritten as text.
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fmt.Errorf("netsim: SDP with Content-Encoding %q cannot be rewritten", ce)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSDP+1))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("netsim: read SDP: %w", err)
	}
	if len(body) > maxSDP {
		return errors.New("netsim: SDP larger than 1 MiB")
	}
	out := rewrite(string(body))
	resp.Body = io.NopCloser(strings.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.TransferEncoding = nil
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
	return nil
}

// relativeLocation turns a Location on target into a path the player
// resolves against the proxy. The gateway sends paths already; a relative
// reference or a URL elsewhere is left alone.
func relativeLocation(h http.Header, target *url.URL) {
	loc := h.Get("Location")
	if loc == "" {
		return
	}
	u, err := url.Parse(loc)
	if err != nil {
		return
	}
	if u.Host != "" {
		if (u.Scheme != "" && !strings.EqualFold(u.Scheme, target.Scheme)) || !strings.EqualFold(u.Host, target.Host) {
			return
		}
	} else if !strings.HasPrefix(u.Path, "/") {
		return
	}
	// The proxy adds target's base path to every request, so the player
	// must not repeat it.
	path := u.EscapedPath()
	if prefix := strings.TrimSuffix(target.EscapedPath(), "/"); prefix != "" && (path == prefix || strings.HasPrefix(path, prefix+"/")) {
		path = strings.TrimPrefix(path, prefix)
	} else if u.Host == "" {
		return // a path on the gateway is the same path on the proxy
	}
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		path += "#" + u.EscapedFragment()
	}
	h.Set("Location", path)
}
