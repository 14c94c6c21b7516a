package forward

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The server gets each body whole and compressed, however many requests
// share the pooled writer.
func TestGzipTransportCompressesEveryBody(t *testing.T) {
	got := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") != "gzip" {
			http.Error(w, "not compressed", http.StatusBadRequest)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- string(b)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := &http.Client{Transport: newGzipTransport(http.DefaultTransport)}
	defer c.CloseIdleConnections()
	for i := range 5 {
		var body strings.Builder
		for j := range 1000 * (i + 1) {
			fmt.Fprintf(&body, "temperature,device=d%d value=%d %d\n", j%50, j, j)
		}
		resp, err := c.Post(srv.URL, "text/plain", strings.NewReader(body.String()))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("request %d: %s %s", i, resp.Status, bytes.TrimSpace(msg))
		}
		if b := <-got; b != body.String() {
			t.Fatalf("request %d: the server read %d bytes, %d were sent", i, len(b), body.Len())
		}
	}
}
