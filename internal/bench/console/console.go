// Package console measures the web console as its users meet it, in
// Debian's Chromium against a running gateway (the browser tests'
// gateway: demo facility, simulated sensors and cameras):
//
//   - first picture: from opening a camera's page (navigation start) to
//     the video element showing a frame, over repeated page opens, for a
//     camera with a 2 s and one with a 10 s keyframe interval;
//   - the JavaScript (gzip, as sent) a cold browser loads from opening the
//     login page to a usable alarm board, against the 400 KB budget: the
//     charts and the video player are loaded only by their pages.
//
// The gateway and the browser run on the bench machine; the figures are
// wall time as the browser measures it.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/console"
	"github.com/shelterwatch/shelterwatch/gateway/console/browsertest"
	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// Options configure a console bench run.
type Options struct {
	Opens int // page opens per camera
	Log   io.Writer
}

// JSBudget is the most JavaScript (gzip) the alarm board may need.
const JSBudget = 400 << 10

type cameraResult struct {
	camera, gop string
	firsts      []float64 // ms
}

type sizeResult struct {
	jsFiles, cssFiles int
	js, css           int64 // gzip bytes sent before the board was usable
	allJS             int64 // every JavaScript file of the console, gzip
	usable            float64
}

// Run measures and writes the tables to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	if !console.Built() {
		return errors.New("the console is not built into this binary: run make console (make bench does)")
	}
	dir, err := os.MkdirTemp("", "shelter-bench-console-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	g, err := browsertest.StartGateway(dir, slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		return err
	}
	defer g.Close()

	size, err := measureSize(ctx, g, dir)
	if err != nil {
		return fmt.Errorf("alarm board size: %w", err)
	}
	cams, err := measureFirstPicture(ctx, g, dir, o.Opens)
	if err != nil {
		return fmt.Errorf("first picture: %w", err)
	}
	printReport(w, o, size, cams)
	return nil
}

// resourcesJS sums what the page loaded, by type, as the browser counts
// it: encodedBodySize is the body as sent (gzip).
const resourcesJS = `(() => {
  const out = {js: 0, css: 0, jsFiles: 0, cssFiles: 0}
  for (const e of performance.getEntriesByType('resource')) {
    const path = new URL(e.name).pathname
    if (path.endsWith('.js')) { out.js += e.encodedBodySize; out.jsFiles++ }
    if (path.endsWith('.css')) { out.css += e.encodedBodySize; out.cssFiles++ }
  }
  return out
})()`

type resources struct {
	JS       int64 `json:"js"`
	CSS      int64 `json:"css"`
	JSFiles  int   `json:"jsFiles"`
	CSSFiles int   `json:"cssFiles"`
}

func measureSize(ctx context.Context, g *browsertest.Gateway, dir string) (sizeResult, error) {
	var res sizeResult
	b, err := browsertest.NewBrowser(g.URL, dir+"/profile-size")
	if err != nil {
		return res, err
	}
	defer b.Close()
	start := time.Now()
	if err := b.Login(g.Logins[users.RoleManager]); err != nil {
		return res, err
	}
	// Usable: the board is drawn and the live stream is open.
	if _, err := browsertest.Poll[bool](b, 15*time.Second,
		`location.pathname === '/alarms' && !!document.querySelector('.live.on') && !!document.querySelector('main .page-title')`); err != nil {
		return res, fmt.Errorf("alarm board not usable: %w", err)
	}
	res.usable = float64(time.Since(start).Milliseconds())
	r, err := browsertest.Eval[resources](b, resourcesJS)
	if err != nil {
		return res, err
	}
	res.js, res.css, res.jsFiles, res.cssFiles = r.JS, r.CSS, r.JSFiles, r.CSSFiles
	err = fs.WalkDir(console.Files(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
			return err
		}
		data, err := fs.ReadFile(console.Files(), path)
		res.allJS += int64(len(console.Gzip(data)))
		return err
	})
	if err != nil {
		return res, fmt.Errorf("read the console's files: %w", err)
	}
	return res, ctx.Err()
}

func measureFirstPicture(ctx context.Context, g *browsertest.Gateway, dir string, opens int) ([]cameraResult, error) {
	b, err := browsertest.NewBrowser(g.URL, dir+"/profile-video")
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if err := b.Login(g.Logins[users.RoleManager]); err != nil {
		return nil, err
	}
	out := []cameraResult{{camera: "entrance-cam", gop: "2 s"}, {camera: "ward-cam", gop: "10 s"}}
	for i := range out {
		// One open first, not counted: the browser caches the camera
		// page's code as a returning supervisor's would have it.
		if _, err := b.FirstPicture(out[i].camera, 15*time.Second); err != nil {
			return nil, err
		}
		for n := 0; n < opens; n++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			d, err := b.FirstPicture(out[i].camera, 15*time.Second)
			if err != nil {
				return nil, err
			}
			out[i].firsts = append(out[i].firsts, float64(d.Microseconds())/1000)
		}
	}
	return out, nil
}

func printReport(w io.Writer, o Options, size sizeResult, cams []cameraResult) {
	fmt.Fprintf(w, "\n### Console in Chromium: first picture after opening a camera's page (%d opens each)\n\n", o.Opens)
	fmt.Fprintln(w, "| camera | keyframe interval | p50 ms | p99 ms | max ms | goal |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|")
	allOK := true
	for _, c := range cams {
		sort.Float64s(c.firsts)
		p99 := report.Quantile(c.firsts, 0.99)
		ok := p99 <= 1000
		allOK = allOK && ok
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.0f | p99 ≤ 1000 ms: %s |\n", c.camera, c.gop,
			report.Quantile(c.firsts, 0.5), p99, c.firsts[len(c.firsts)-1], report.PassMiss(ok))
	}
	fmt.Fprintf(w, "\nFirst picture within 1 s of opening the page: %s.\n", report.PassMiss(allOK))

	fmt.Fprintln(w, "\n### Console in Chromium: what a cold browser loads before the alarm board is usable")
	fmt.Fprintln(w, "\n| measure | value |")
	fmt.Fprintln(w, "|---|---:|")
	fmt.Fprintf(w, "| JavaScript, gzip as sent (%d files) | %.1f KB |\n", size.jsFiles, float64(size.js)/1024)
	fmt.Fprintf(w, "| CSS, gzip as sent (%d files) | %.1f KB |\n", size.cssFiles, float64(size.css)/1024)
	fmt.Fprintf(w, "| every JavaScript file of the console, gzip | %.1f KB |\n", float64(size.allJS)/1024)
	fmt.Fprintf(w, "| login page opened → board usable (incl. typing and the password check) | %.0f ms |\n", size.usable)
	fmt.Fprintf(w, "\nGoal: JavaScript before the alarm board is usable ≤ %d KB gzip: %s.\n", JSBudget>>10, report.PassMiss(size.js <= JSBudget))
}
