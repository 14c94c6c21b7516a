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

// ProxyOptions configure NewWHEPProxyWith.
type ProxyOptions struct {
	// Answer, if set, rewrites the body of every response with
	// Content-Type application/sdp (the gateway's answers), e.g. with
	// RewriteCandidates.
	Answer func(sdp string) string
	// Offer, if set, rewrites the body of every request with Content-Type
	// application/sdp (the player's offers), e.g. with StripCandidates.
	// Other bodies, such as the trickle-ICE fragments a PATCH carries
	// (application/trickle-ice-sdpfrag), pass unchanged.
	Offer func(sdp string) string
	// Delay is what each request waits before it is forwarded: the
	// profile's RTT, as signalling is one round trip the player waits
	// for.
	Delay time.Duration
}

// NewWHEPProxy is NewWHEPProxyWith rewriting answers only: rewrite is
// ProxyOptions.Answer, delay ProxyOptions.Delay.
func NewWHEPProxy(target *url.URL, rewrite func(answerSDP string) string, delay time.Duration) http.Handler {
	return NewWHEPProxyWith(target, ProxyOptions{Answer: rewrite, Delay: delay})
}

// NewWHEPProxyWith returns a reverse proxy to target (the gateway's base
// URL, e.g. http://127.0.0.1:8080: the player uses the proxy's URL with
// the gateway's paths) for a player on an emulated network. Requests are
// forwarded unchanged except that each waits o.Delay first, an SDP body
// is passed through o.Offer, and the player's Accept-Encoding is not
// passed on (so answers arrive plain and can be rewritten). Responses are
// unchanged except that an SDP body is passed through o.Answer. A
// rewritten body, either way, gets a Content-Length to match. A Location
// that is an absolute URL on target becomes a path, so the player's next
// request (PATCH, DELETE) comes through the proxy too.
func NewWHEPProxyWith(target *url.URL, o ProxyOptions) http.Handler {
	base := *target
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&base)
			pr.Out.Header.Del("Accept-Encoding")
		},
		ModifyResponse: func(resp *http.Response) error {
			relativeLocation(resp.Header, &base)
			if o.Answer == nil || !responseIsSDP(resp) {
				return nil
			}
			return rewriteResponse(resp, o.Answer)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Delay > 0 {
			t := time.NewTimer(o.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return // the player gave up; nobody reads an answer
			}
		}
		if o.Offer != nil && isSDP(r.Header) && r.Body != nil && r.Body != http.NoBody {
			out, status, err := rewriteRequest(r, o.Offer)
			if err != nil {
				http.Error(w, err.Error(), status)
				return
			}
			r = out
		}
		rp.ServeHTTP(w, r)
	})
}

// isSDP reports whether h declares an SDP body.
func isSDP(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/sdp"
}

// responseIsSDP reports whether resp carries an SDP body to rewrite.
func responseIsSDP(resp *http.Response) bool {
	if resp.Request != nil && resp.Request.Method == http.MethodHead {
		return false
	}
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return false
	}
	return isSDP(resp.Header)
}

// rewriteResponse replaces resp's body with rewrite's result.
func rewriteResponse(resp *http.Response, rewrite func(string) string) error {
	// The transport undoes an encoding it asked for itself; one the
	// server chose anyway cannot be rewritten as text.
	if err := plain(resp.Header); err != nil {
		return err
	}
	out, err := rewriteSDP(resp.Body, rewrite)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(strings.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.TransferEncoding = nil
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
	return nil
}

// rewriteRequest returns a copy of r whose body is rewrite's result, with
// the Content-Length to match (the player's may have been chunked), or
// the status to refuse r with.
func rewriteRequest(r *http.Request, rewrite func(string) string) (*http.Request, int, error) {
	if err := plain(r.Header); err != nil {
		return nil, http.StatusUnsupportedMediaType, err
	}
	out, err := rewriteSDP(r.Body, rewrite)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, http.StatusRequestEntityTooLarge, err
		}
		return nil, http.StatusBadRequest, err
	}
	// A handler must not modify the request it was given, the body
	// aside: the proxy forwards a copy.
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(strings.NewReader(out))
	r.ContentLength = int64(len(out))
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.Itoa(len(out)))
	r.Header.Del("Content-Encoding")
	return r, 0, nil
}

// plain refuses a body with a Content-Encoding: it cannot be rewritten as
// text.
func plain(h http.Header) error {
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fmt.Errorf("netsim: SDP with Content-Encoding %q cannot be rewritten", ce)
	}
	return nil
}

var errTooLarge = errors.New("netsim: SDP larger than 1 MiB")

// rewriteSDP reads an SDP body (up to maxSDP) and returns rewrite's
// result.
func rewriteSDP(body io.Reader, rewrite func(string) string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxSDP+1))
	if err != nil {
		return "", fmt.Errorf("netsim: read SDP: %w", err)
	}
	if len(b) > maxSDP {
		return "", errTooLarge
	}
	return rewrite(string(b)), nil
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
