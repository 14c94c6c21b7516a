package forward

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// gzipTransport compresses request bodies for InfluxDB, in place of the
// client library's own: that one made a new gzip writer at the default
// level for every write (about a megabyte of compressor state) and fed it
// through a pipe and a goroutine, and was an eighth of the gateway's CPU
// while a backlog drained. Here one pooled writer at BestSpeed does it in
// one pass: 2.5 times faster on line protocol for a ratio of about 12
// instead of 20 (a 5,000-point write of 590 kB goes out as about 50 kB
// rather than 30), which a 4G link still carries easily.
type gzipTransport struct {
	base http.RoundTripper
	pool sync.Pool // *gzipBuf
}

type gzipBuf struct {
	w   *gzip.Writer
	out bytes.Buffer
}

func newGzipTransport(base http.RoundTripper) *gzipTransport {
	return &gzipTransport{base: base}
}

// RoundTrip sends req with its body compressed (a request without a body
// goes as it is).
func (g *gzipTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return g.base.RoundTrip(req)
	}
	gb, _ := g.pool.Get().(*gzipBuf)
	if gb == nil {
		gb = &gzipBuf{}
		gb.w, _ = gzip.NewWriterLevel(&gb.out, gzip.BestSpeed) // a valid level: no error
	}
	gb.out.Reset()
	gb.w.Reset(&gb.out)
	_, err := io.Copy(gb.w, req.Body)
	_ = req.Body.Close()
	if err == nil {
		err = gb.w.Close()
	}
	if err != nil {
		g.pool.Put(gb)
		return nil, fmt.Errorf("forward: compress the request body: %w", err)
	}
	// The transport may read the body after RoundTrip returns (and again
	// on a retry through GetBody): it gets a copy, and the buffer goes
	// back to the pool.
	body := bytes.Clone(gb.out.Bytes())
	g.pool.Put(gb)
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Encoding", "gzip")
	return g.base.RoundTrip(r)
}

// CloseIdleConnections passes http.Client's call on to the base transport.
func (g *gzipTransport) CloseIdleConnections() {
	if ci, ok := g.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
