// Package console serves the web console: the Vue application built by
// `make console` into dist/ and embedded in the binary, so a gateway on a
// facility LAN with no internet serves every file itself (no CDN, no
// external fonts).
//
// Files under assets/ carry a content hash in their names and are cached
// for a year; everything else (index.html) is revalidated on every load
// so an upgraded gateway serves its new console at once. Any other path
// that is not a file is the application's own route (/alarms, /cameras/…)
// and gets index.html. Text files are sent gzip-compressed when the
// browser accepts it, compressed once on first use and kept: the console
// is a few hundred kilobytes, so the cache is bounded by the binary.
//
// The handler is safe for concurrent use; it holds no per-request state.
package console

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed all:dist
var dist embed.FS

// Files returns the built console (dist/), for tests and the bench.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees dist/
	}
	return sub
}

// Built reports whether the binary carries a built console (make console
// ran before go build).
func Built() bool { return built(Files()) }

func built(files fs.FS) bool {
	_, err := fs.Stat(files, "index.html")
	return err == nil
}

// contentSecurityPolicy allows the console's own files only: scripts,
// styles and images from the gateway, API calls and the event stream to
// it, video from WebRTC (media streams are not fetched, so media-src
// needs only blob:), and no framing by other sites. Element Plus sets
// inline style attributes, hence 'unsafe-inline' for styles alone.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' blob:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// reserved are the gateway's machine paths: never the console's page,
// whether this listener serves them or not.
var reserved = map[string]bool{"metrics": true, "healthz": true, "readyz": true}

// Handler serves the console from files; files is Files() in the gateway.
func Handler(files fs.FS) http.Handler {
	return &handler{files: files, gz: map[string][]byte{}}
}

type handler struct {
	files fs.FS
	mu    sync.Mutex
	gz    map[string][]byte // gzip of text files by path, made on first use
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "api" || strings.HasPrefix(name, "api/") || reserved[name] {
		// An API path that no route matched, or a machine's path this
		// listener does not serve (/metrics on its own listener): a JSON
		// 404, not the application's page (a script asking a wrong URL
		// should see it).
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"no such API route"}` + "\n"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	// Camera and microphone are never needed: the console only receives.
	hdr.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")

	if !built(h.files) {
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(notBuiltPage))
		return
	}
	data, err := fs.ReadFile(h.files, name)
	if name == "" || err != nil {
		if strings.HasPrefix(name, "assets/") {
			// A hashed asset of another build (the page was loaded
			// before an upgrade): 404, so the browser does not run
			// index.html as a script.
			http.NotFound(w, r)
			return
		}
		name = "index.html"
		if data, err = fs.ReadFile(h.files, name); err != nil {
			http.Error(w, "console files unreadable", http.StatusInternalServerError)
			return
		}
	}
	if strings.HasPrefix(name, "assets/") {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = http.DetectContentType(data)
	}
	hdr.Set("Content-Type", ctype)
	if compressible(ctype) {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			data = h.gzipped(name, data)
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	hdr.Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "javascript") ||
		strings.Contains(ctype, "json") || strings.Contains(ctype, "svg")
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func (h *handler) gzipped(name string, data []byte) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if z, ok := h.gz[name]; ok {
		return z
	}
	z := Gzip(data)
	h.gz[name] = z
	return z
}

// Gzip compresses data as the handler sends it (best compression: it is
// done once per file). The bench measures the console's size with it.
func Gzip(data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	_, _ = zw.Write(data)                                    // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return buf.Bytes()
}

// notBuiltPage answers when the binary was built without `make console`.
const notBuiltPage = `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>ShelterWatch</title></head>
<body>
<h1>控制台未构建 / Console not built</h1>
<p>此网关程序构建时未包含网页控制台。请使用 <code>make build</code> 重新构建；API 仍可使用。</p>
<p>This gateway binary was built without the web console. Rebuild it with <code>make build</code>; the API still works.</p>
</body></html>
`
