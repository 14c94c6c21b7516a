package browsertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// consolePages are every page of the console, as an admin opens them.
var consolePages = []struct{ name, path string }{
	{"alarms", "/alarms"},
	{"facility", "/facility"},
	{"cameras", "/cameras"},
	{"history", "/history?device=dorm-1-climate&kind=temperature"},
	{"inspection", "/inspection"},
	{"hazards", "/hazards"},
	{"reports", "/reports"},
	{"audit", "/audit"},
	{"health", "/health"},
	{"users", "/users"},
}

// viewports are a desktop and a phone (the alarm board is used on a
// phone on the night shift).
var viewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"desktop", 1280, 900, false},
	{"phone", 390, 844, true},
}

// screenshotDir is where the browser tests leave their screenshots
// (git-ignored).
const screenshotDir = "../screenshots"

// axeSource is axe-core, installed with the console's packages.
func axeSource(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../web/node_modules/axe-core/axe.min.js")
	if err != nil {
		msg := "axe-core missing (make console installs it): " + err.Error()
		if testpeer.CI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return string(src)
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axeJS runs axe-core on the page and answers the serious and critical
// violations.
const axeJS = `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
  .filter(v => v.impact === 'serious' || v.impact === 'critical')
  .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + (n.failureSummary || '').split('\n').slice(0, 2).join(' '))})))`

// checkAxe runs axe-core on the current page and reports serious and
// critical violations.
func (b *browser) checkAxe(axe, where string) {
	b.t.Helper()
	if !eval[bool](b, "load axe-core", `typeof axe !== 'undefined' || (() => { `+axe+`; return true })()`) {
		b.t.Fatal("axe-core did not load")
	}
	for _, v := range eval[[]axeViolation](b, "axe-core on "+where, axeJS) {
		b.t.Errorf("accessibility, %s: %s (%s): %s\n\t%s", where, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
	}
}

// settle waits until the page has no loading masks and two frames were
// drawn, so a screenshot shows the page, not its spinner.
func (b *browser) settle() {
	b.t.Helper()
	// No loading masks, and no transition running (a tag fading in
	// would be measured half transparent by axe-core), nor a toast
	// fading in or out.
	poll[bool](b, "the page settled", 15*time.Second,
		`document.querySelectorAll('.el-loading-mask').length === 0 && document.getAnimations().every(a => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity) && [...document.querySelectorAll('.el-message')].every(m => getComputedStyle(m).opacity === '1')`)
	eval[bool](b, "two frames", `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedpRun(b, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestEveryPage opens every page of the console as an admin, in zh-CN and
// English, at desktop and phone widths: each renders its title in the
// language chosen, axe-core finds no serious or critical violation, and
// a screenshot is saved.
func TestEveryPage(t *testing.T) {
	f := startFixture(t)
	axe := axeSource(t)
	// Something on the alarm board and in the history.
	f.publish("kitchen-smoke", "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":80,"linkquality":90}`)

	b := f.newBrowser(t, "admin")
	b.do("open the login page", 30*time.Second, chromedp.Navigate(f.url+"/login"))
	for _, lang := range []string{"zh-CN", "en"} {
		eval[bool](b, "choose "+lang, `(localStorage.setItem('sw.locale', '`+lang+`'), true)`)
		for _, vp := range viewports {
			b.viewport(vp.width, vp.height, vp.mobile)
			b.do("open the login page", 30*time.Second, chromedp.Navigate(f.url+"/login"))
			b.settle()
			where := "login-" + lang + "-" + vp.name
			b.checkAxe(axe, where)
			b.screenshot(where)
		}
	}
	eval[bool](b, "back to Chinese", `(localStorage.setItem('sw.locale', 'zh-CN'), true)`)
	b.viewport(1280, 900, false)
	b.login(users.RoleAdmin)
	poll[bool](b, "the smoke alarm", 10*time.Second, `document.querySelector('[data-alarm-id]') !== null`)

	titles := map[string]map[string]string{
		"zh-CN": {"alarms": "告警", "facility": "设施设备", "cameras": "视频监控", "history": "历史数据", "inspection": "检查报表", "hazards": "隐患清单", "reports": "汇总表", "audit": "审计日志", "health": "网关状态", "users": "用户与令牌"},
		"en":    {"alarms": "Alarms", "facility": "Facility", "cameras": "Cameras", "history": "History", "inspection": "Inspection", "hazards": "Hazard list", "reports": "Summary reports", "audit": "Audit log", "health": "Gateway health", "users": "Users and tokens"},
	}
	for _, lang := range []string{"zh-CN", "en"} {
		eval[bool](b, "choose "+lang, `(localStorage.setItem('sw.locale', '`+lang+`'), true)`)
		for _, vp := range viewports {
			b.viewport(vp.width, vp.height, vp.mobile)
			for _, p := range consolePages {
				where := p.name + "-" + lang + "-" + vp.name
				b.open(p.path)
				b.settle()
				if p.name == "cameras" {
					// Best effort: the tiles' pictures, for the screenshot.
					_, _ = chromedpRun(b, chromedp.Poll[bool](`[...document.querySelectorAll('video')].every(v => v.videoWidth > 0)`,
						chromedp.WithPollingTimeout(5*time.Second)))
				}
				if got := eval[string](b, "the title", `document.querySelector('.page-title').textContent.trim()`); got != titles[lang][p.name] {
					t.Errorf("%s: title %q, want %q", where, got, titles[lang][p.name])
				}
				if lang == "en" && vp.name == "desktop" || lang == "zh-CN" {
					b.checkAxe(axe, where)
				}
				b.screenshot(where)
			}
		}
	}
}

// viewport sets the page's size, as a phone (touch, 2× pixels) when mobile.
func (b *browser) viewport(width, height int64, mobile bool) {
	b.t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	}
	b.do("set the viewport", 10*time.Second, chromedp.EmulateViewport(width, height, opts...))
}
