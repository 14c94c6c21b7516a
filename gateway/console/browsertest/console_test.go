package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shelterwatch/shelterwatch/gateway/users"
)

// TestLogin: a wrong password is refused on the page, the right one lands
// on the alarm board.
func TestLogin(t *testing.T) {
	f := startFixture(t)
	b := f.newBrowser(t, "manager")
	l := f.logins[users.RoleManager]

	b.fillLogin(l.Name, l.Password+"x")
	msg := poll[string](b, "the wrong-password message", 15*time.Second,
		`(document.querySelector('[data-test=login-error]') || {}).textContent || ''`)
	if !strings.Contains(msg, "用户名或密码错误") {
		t.Errorf("wrong password: page says %q, want 用户名或密码错误", msg)
	}
	if p := eval[string](b, "where", `location.pathname`); p != "/login" {
		t.Errorf("after a wrong password the page is %s, want /login", p)
	}

	b.login(users.RoleManager)
	if p := eval[string](b, "where", `location.pathname`); p != "/alarms" {
		t.Errorf("a manager lands on %s, want /alarms", p)
	}
	title := eval[string](b, "the page title", `document.querySelector('.page-title').textContent`)
	if title != "告警" {
		t.Errorf("alarm board title %q, want 告警 (zh-CN by default)", title)
	}
}

// TestSmokeAlarmLive: a smoke reading published over MQTT appears on two
// managers' alarm boards without a reload; one acknowledges it with a
// comment, the other sees it acknowledged, and the audit log has it.
func TestSmokeAlarmLive(t *testing.T) {
	f := startFixture(t)
	a := f.newBrowser(t, "manager A")
	b := f.newBrowser(t, "admin B")
	a.login(users.RoleManager)
	b.login(users.RoleAdmin)
	for _, br := range []*browser{a, b} {
		poll[bool](br, "the live stream", 10*time.Second, `document.querySelector('.live.on') !== null`)
	}
	// A marker that a reload would wipe.
	eval[bool](b, "mark the page", `(window.__noReload = true)`)

	const id = "smoke@dev:dorm-1-smoke"
	sel := fmt.Sprintf(`[data-alarm-id=%q]`, id)
	published := time.Now()
	f.publish("dorm-1-smoke", "zigbee2mqtt/dorm-1/smoke", `{"smoke":true,"battery":90,"linkquality":120}`)
	for _, br := range []*browser{a, b} {
		poll[bool](br, "the smoke alarm on the board", 2*time.Second, fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
		t.Logf("%s: smoke alarm shown %v after the publish", br.name, time.Since(published).Round(time.Millisecond))
	}
	if !eval[bool](b, "the marker", `window.__noReload === true`) {
		t.Error("the board reloaded to show the alarm")
	}
	// A smoke alarm nobody acknowledged sounds.
	if s := eval[string](a, "the alarm sound", `document.querySelector('.shell').dataset.alarmSound`); s != "on" {
		t.Errorf("alarm sound %q with an unacknowledged smoke alarm, want on", s)
	}

	const comment = "到场查看：厨房烧水，误报"
	a.do("acknowledge", 15*time.Second,
		chromedp.Click(chromedp.CSS(sel+" [data-test=ack]")),
		chromedp.WaitVisible(chromedp.CSS("#ack-comment")),
		chromedp.SendKeys(chromedp.CSS("#ack-comment"), comment),
		chromedp.Click(chromedp.CSS("[data-test=ack-confirm]")),
	)
	for _, br := range []*browser{a, b} {
		poll[bool](br, "the alarm acknowledged", 5*time.Second,
			fmt.Sprintf(`(document.querySelector(%q) || {dataset: {}}).dataset.state === 'acknowledged'`, sel))
	}
	poll[bool](a, "the sound stopped", 5*time.Second, `document.querySelector('.shell').dataset.alarmSound === 'off'`)

	var got struct {
		Audit []struct {
			Action, By, Comment string
		} `json:"audit"`
	}
	if err := json.Unmarshal(f.apiGet("/api/v1/audit?action=acknowledged&alarm="+url.QueryEscape(id)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Audit) != 1 || got.Audit[0].By != f.logins[users.RoleManager].Name || got.Audit[0].Comment != comment {
		t.Errorf("audit log after the acknowledgement: %+v, want one entry by %s with the comment", got.Audit, f.logins[users.RoleManager].Name)
	}
}

// TestInspectorSeesNoVideo: an inspector has no camera wall in the
// console, is sent away from its URL, and the gateway refuses WHEP and
// acknowledging with 403 to the inspector's own session.
func TestInspectorSeesNoVideo(t *testing.T) {
	f := startFixture(t)
	b := f.newBrowser(t, "inspector")
	b.login(users.RoleInspector)
	if eval[bool](b, "the camera link", `document.querySelector('nav a[href="/cameras"]') !== null`) {
		t.Error("the inspector's navigation has the camera wall")
	}
	b.do("open the camera wall", 15*time.Second, chromedp.Navigate(f.url+"/cameras?camera=ward-cam"))
	p := poll[string](b, "a redirect", 10*time.Second, `location.pathname !== '/cameras' && location.pathname`)
	t.Logf("inspector sent from /cameras to %s", p)
	if n := eval[int](b, "video elements", `document.querySelectorAll('video').length`); n != 0 {
		t.Errorf("%d video elements on the inspector's page", n)
	}
	offer := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	if code := b.fetchStatus("POST", "/api/v1/cameras/ward-cam/whep", "application/sdp", offer); code != http.StatusForbidden {
		t.Errorf("WHEP POST by an inspector: %d, want 403", code)
	}
	if code := b.fetchStatus("POST", "/api/v1/alarms/smoke@dev:dorm-1-smoke/ack", "application/json", `{"comment":"x"}`); code != http.StatusForbidden {
		t.Errorf("acknowledge by an inspector: %d, want 403", code)
	}
}

// TestLanguageSwitch: switching to English changes the texts without a
// reload, and the choice stays for the next visit.
func TestLanguageSwitch(t *testing.T) {
	f := startFixture(t)
	b := f.newBrowser(t, "manager")
	b.login(users.RoleManager)
	eval[bool](b, "mark the page", `(window.__noReload = true)`)
	nav := func() string {
		return eval[string](b, "the navigation", `document.querySelector('nav').innerText`)
	}
	if n := nav(); !strings.Contains(n, "告警") || !strings.Contains(n, "设施设备") {
		t.Fatalf("navigation %q, want Chinese", n)
	}
	// The language control is an Element Plus select in the top bar.
	b.do("choose English", 15*time.Second,
		chromedp.Click(chromedp.CSS(".bar .lang")),
		chromedp.WaitVisible(chromedp.CSS(".el-select-dropdown__item")),
	)
	eval[bool](b, "pick English", `(() => { for (const li of document.querySelectorAll('.el-select-dropdown__item')) if (li.textContent.trim() === 'English') { li.click(); return true } return false })()`)
	poll[bool](b, "English texts", 5*time.Second, `document.querySelector('nav').innerText.includes('Alarms')`)
	if n := nav(); strings.Contains(n, "告警") || !strings.Contains(n, "Facility") {
		t.Errorf("navigation after the switch %q, want English only", n)
	}
	if title := eval[string](b, "the title", `document.querySelector('.page-title').textContent`); title != "Alarms" {
		t.Errorf("page title %q, want Alarms", title)
	}
	if !eval[bool](b, "the marker", `window.__noReload === true`) {
		t.Error("switching language reloaded the page")
	}
	b.open("/facility")
	if title := eval[string](b, "the title", `document.querySelector('.page-title').textContent`); title != "Facility" {
		t.Errorf("after a new visit the title is %q, want Facility (the choice kept)", title)
	}
}
