// Package chromium starts Debian's Chromium, headless, for the browser
// tests and the console bench: the real browser a facility's staff use,
// driven over the DevTools protocol (chromedp). Never a downloaded
// browser build: the Debian package, installed by `make test`.
//
// Each Launch is its own browser process with a new, empty profile, so
// cookies and storage of one never leak into another (the tests use two
// to play two people). The flags keep it off the network: no QUIC, no
// background updates, no sync, loopback only in practice.
package chromium

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"
)

// ErrMissing says Chromium is not installed.
var ErrMissing = errors.New("chromium: /usr/bin/chromium not found (Debian package chromium)")

// Path finds the browser: $CHROMIUM, else Debian's chromium.
func Path() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrMissing
}

// Options for Launch.
type Options struct {
	// ProfileDir is the new, empty user-data-dir (required: a fresh
	// profile per browser).
	ProfileDir string
	// Width and Height of the window (default 1280×900).
	Width, Height int
}

// emptyDir removes what dir holds, keeping dir.
func emptyDir(dir string) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, de := range des {
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Launch starts a browser and returns a context for its first tab; cancel
// closes the tab and stops the browser.
func Launch(parent context.Context, o Options) (context.Context, context.CancelFunc, error) {
	path, err := Path()
	if err != nil {
		return nil, nil, err
	}
	if o.ProfileDir == "" {
		return nil, nil, errors.New("chromium: a profile directory is required")
	}
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(o.ProfileDir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		// The fire alarm's tone plays without a click in this tab: a
		// person's login click allows it in a real browser.
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(o.Width, o.Height),
	}
	// Start the browser now, so a missing library fails here, clearly.
	// On a loaded 2-core machine Chromium now and then exits before it
	// prints its DevTools address: a start is tried three times, each
	// with the profile emptied (a failed start may leave its lock).
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * time.Second)
			if err := emptyDir(o.ProfileDir); err != nil {
				return nil, nil, fmt.Errorf("chromium: reset the profile: %w", err)
			}
		}
		actx, acancel := chromedp.NewExecAllocator(parent, opts...)
		ctx, cancel := chromedp.NewContext(actx)
		if lastErr = chromedp.Do(ctx); lastErr == nil {
			return ctx, func() { cancel(); acancel() }, nil
		}
		cancel()
		acancel()
		if parent.Err() != nil {
			break
		}
	}
	return nil, nil, fmt.Errorf("chromium: start %s: %w", path, lastErr)
}
