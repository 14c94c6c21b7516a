package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestHandler(t *testing.T) {
	js := strings.Repeat("console.log('alarm board');\n", 200)
	files := fstest.MapFS{
		"index.html":              {Data: []byte("<!doctype html><title>ShelterWatch</title>")},
		"assets/index-abc123.js":  {Data: []byte(js)},
		"assets/index-abc123.css": {Data: []byte("body{}")},
	}
	h := Handler(files)
	cases := []struct {
		name, method, path, acceptEncoding string
		status                             int
		ctype, cache, encoding, body       string
	}{
		{name: "root is the application", method: "GET", path: "/", status: 200, ctype: "text/html; charset=utf-8", cache: "no-cache", body: "<!doctype html>"},
		{name: "an application route is the application", method: "GET", path: "/cameras", status: 200, ctype: "text/html; charset=utf-8", cache: "no-cache", body: "<!doctype html>"},
		{name: "a nested application route", method: "GET", path: "/alarms/smoke@dev:x", status: 200, body: "<!doctype html>"},
		{name: "hashed asset cached for a year", method: "GET", path: "/assets/index-abc123.js", status: 200, ctype: "text/javascript; charset=utf-8", cache: "public, max-age=31536000, immutable", body: "console.log"},
		{name: "gzip when accepted", method: "GET", path: "/assets/index-abc123.js", acceptEncoding: "gzip, deflate, br", status: 200, encoding: "gzip", body: "console.log"},
		{name: "no gzip when refused", method: "GET", path: "/assets/index-abc123.js", acceptEncoding: "gzip;q=0", status: 200, encoding: "", body: "console.log"},
		{name: "an asset of another build is a 404, not the page", method: "GET", path: "/assets/index-old999.js", status: 404},
		{name: "an unknown API path is a JSON 404", method: "GET", path: "/api/v1/nothing", status: 404, ctype: "application/json", body: "no such API route"},
		{name: "an unknown API path by POST too", method: "POST", path: "/api/v2/x", status: 404, ctype: "application/json"},
		{name: "no writes", method: "POST", path: "/cameras", status: 405},
		{name: "metrics served elsewhere is a 404", method: "GET", path: "/metrics", status: 404, ctype: "application/json"},
		{name: "HEAD has no body", method: "HEAD", path: "/", status: 200, ctype: "text/html; charset=utf-8"},
		{name: "a path escaping the root stays inside", method: "GET", path: "/../../etc/passwd", status: 200, body: "<!doctype html>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "http://gw"+c.path, nil)
			if c.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", c.acceptEncoding)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.ctype != "" && res.Header.Get("Content-Type") != c.ctype {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), c.ctype)
			}
			if c.cache != "" && res.Header.Get("Cache-Control") != c.cache {
				t.Errorf("Cache-Control %q, want %q", res.Header.Get("Cache-Control"), c.cache)
			}
			if got := res.Header.Get("Content-Encoding"); got != c.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, c.encoding)
			}
			if c.status == 200 && !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("Content-Security-Policy %q", res.Header.Get("Content-Security-Policy"))
			}
			body, _ := io.ReadAll(res.Body)
			if res.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if string(body) != js {
					t.Error("gzip body differs from the file")
				}
			}
			if c.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD answered %d bytes", len(body))
			}
			if !strings.Contains(string(body), c.body) {
				t.Errorf("body %.80q, want it to contain %q", body, c.body)
			}
		})
	}
}

// TestNotBuilt: a binary built without the console says so in both
// languages instead of an empty page; the API paths still get JSON.
func TestNotBuilt(t *testing.T) {
	h := Handler(fstest.MapFS{".gitkeep": {}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/alarms", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "控制台未构建 / Console not built") {
		t.Errorf("not built: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/x", nil))
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("API path without a console: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}
