package browsertest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/inspection/filing"
)

// TestReportGenerateAndPrint: after a smoke alarm, an inspector generates
// the month's summary report through the form on the reports page; it
// tops the list, marked as theirs. Its printable page bears the
// facility's title, and the alarms table counts the smoke alarm once; the
// figure opens the drill-down list naming the alarm, and the table's CSV
// is the gateway's. Print calls the browser's print, and in print media
// the console's navigation, the buttons and the drill-down are hidden.
// A supervisor sees the report in the list without the form. Screenshots
// in zh-CN (the printable page also in print media); axe-core on the
// list, the form and the printable page.
func TestReportGenerateAndPrint(t *testing.T) {
	f := startFixture(t)
	axe := axeSource(t)

	const alarmID = "smoke@dev:kitchen-smoke"
	f.publish("kitchen-smoke", "zigbee2mqtt/kitchen/smoke", `{"smoke":true,"battery":80,"linkquality":90}`)
	waitAlarm(f, alarmID, 10*time.Second)

	// The inspector generates the month's report.
	in := f.newBrowser(t, "inspector")
	in.login(users.RoleInspector)
	in.open("/reports")
	if got := eval[string](in, "the title", `document.querySelector('.page-title').textContent.trim()`); got != "汇总表" {
		t.Errorf("title %q, want 汇总表", got)
	}
	if !eval[bool](in, "the nav entry", `[...document.querySelectorAll('nav a')].some(a => a.getAttribute('href') === '/reports' && a.textContent.trim() === '汇总表')`) {
		t.Error("no 汇总表 entry in the inspector's navigation")
	}
	poll[bool](in, "the empty list", 10*time.Second, `document.querySelector('[data-test=report-none]')?.textContent.includes('还没有汇总表') === true`)
	in.settle()
	in.checkAxe(axe, "reports-empty-zh-CN-desktop")
	in.do("generate the month so far", 10*time.Second,
		chromedp.Click(chromedp.CSS("[data-test=report-kind] [data-kind=month]")),
		chromedp.Click(chromedp.CSS("[data-test=report-which] [data-which=current]")),
		chromedp.Click(chromedp.CSS("[data-test=report-generate-submit]")))
	id := poll[string](in, "the new report at the top of the list", 30*time.Second,
		`document.querySelector('[data-test=report-list] tbody tr[data-report-id][data-kind=month]:first-child')?.dataset.reportId || false`)
	row := fmt.Sprintf(`[data-test=report-list] tr[data-report-id=%q]`, id)
	var listed struct {
		Reports []filing.Entry `json:"reports"`
	}
	if err := json.Unmarshal(f.apiGet("/api/v1/reports"), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Reports) != 1 || listed.Reports[0].ID != id || listed.Reports[0].By != f.logins[users.RoleInspector].Name {
		t.Fatalf("the gateway's reports after generating %s: %+v", id, listed.Reports)
	}
	label := listed.Reports[0].Period.Label.ZH
	text := eval[string](in, "the row", `document.querySelector('`+row+`').textContent`)
	for _, w := range []string{label, "月度", f.logins[users.RoleInspector].Name, "未发送", "打开", "下载 Excel"} {
		if !strings.Contains(text, w) {
			t.Errorf("the new report's row %q has no %q", text, w)
		}
	}
	in.settle()
	in.checkAxe(axe, "reports-zh-CN-desktop")
	in.screenshot("reports-zh-CN-desktop")

	// Its printable page.
	in.do("open the report", 10*time.Second, chromedp.Click(chromedp.CSS(row+" [data-test=report-open]")))
	wantTitle := f.Config.Facility.NameZH + "安全情况汇总表"
	poll[bool](in, "the report's title", 15*time.Second,
		fmt.Sprintf(`document.querySelector('[data-test=report-title]')?.textContent.trim() === %q`, wantTitle))
	if p := eval[string](in, "the path", `location.pathname`); p != "/reports/"+id {
		t.Errorf("the report opened at %s, want /reports/%s", p, id)
	}
	if line := eval[string](in, "the period line", `document.querySelector('[data-test=report-period-line]').textContent`); !strings.Contains(line, label) {
		t.Errorf("period line %q has no %q", line, label)
	}
	alarms := `[data-test=report-sheet] section[data-table=alarms]`
	raised := poll[string](in, "the smoke alarms' raised count", 5*time.Second, `(() => {
  for (const tr of document.querySelectorAll('`+alarms+` tbody tr'))
    if (tr.querySelector('td[data-col=rule]')?.textContent.trim() === 'smoke') return tr.querySelector('td[data-col=raised]').textContent.trim()
  return false
})()`)
	if raised != "1" {
		t.Fatalf("smoke alarms raised %q, want 1", raised)
	}
	if n := eval[int](in, "the signature lines", `document.querySelectorAll('[data-test=report-signatures] .sign').length`); n != 4 {
		t.Errorf("%d signature lines, want 4", n)
	}
	in.do("open the figure's drill-down", 10*time.Second, chromedp.Click(chromedp.CSS(alarms+` tbody tr td[data-col=raised] [data-test=report-figure]`)))
	poll[bool](in, "the drill-down naming the alarm", 5*time.Second,
		fmt.Sprintf(`document.querySelector('%s [data-test=report-detail]')?.textContent.includes(%q) === true`, alarms, alarmID))
	if !eval[bool](in, "the figure expanded", `document.querySelector('`+alarms+` td[data-col=raised] [data-test=report-figure]').getAttribute('aria-expanded') === 'true'`) {
		t.Error("the figure's button does not say its drill-down is expanded")
	}

	// The table's CSV is the gateway's.
	_, saved := in.download(alarms + ` [data-test=report-table-csv]`)
	if fromAPI := string(f.apiGet("/api/v1/reports/" + id + "/csv?table=alarms&lang=zh")); saved != fromAPI || !strings.Contains(saved, "报警数") {
		t.Errorf("the saved CSV differs from the gateway's:\nsaved:\n%s\nAPI:\n%s", saved, fromAPI)
	}
	in.settle()
	in.checkAxe(axe, "report-zh-CN-desktop")
	in.screenshot("report-zh-CN-desktop")

	// Print: the browser's dialog, and a printout without the console.
	eval[bool](in, "hook print", `(window.print = () => { window.__printed = true }, true)`)
	in.do("print", 10*time.Second, chromedp.Click(chromedp.CSS("[data-test=report-print]")))
	poll[bool](in, "window.print called", 5*time.Second, `window.__printed === true`)
	if _, err := chromedp.Call(in.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatal(err)
	}
	hidden := eval[map[string]string](in, "the printout's display", `(() => {
  // The nav by its own display; the rest may be hidden by an ancestor.
  const d = (s) => { const e = document.querySelector(s); return !e ? 'missing' : s === 'nav' || e.checkVisibility() ? getComputedStyle(e).display : 'none' }
  return {nav: d('nav'), header: d('header.bar'), print: d('[data-test=report-print]'), csv: d('[data-test=report-table-csv]'),
    detail: d('[data-test=report-detail]'), sheet: d('[data-test=report-sheet]'), signatures: d('[data-test=report-signatures]')}
})()`)
	for _, k := range []string{"nav", "header", "print", "csv", "detail"} {
		if hidden[k] != "none" {
			t.Errorf("in print media, %s is displayed (%q)", k, hidden[k])
		}
	}
	for _, k := range []string{"sheet", "signatures"} {
		if hidden[k] == "none" || hidden[k] == "missing" {
			t.Errorf("in print media, the report's %s is not shown (%q)", k, hidden[k])
		}
	}
	in.screenshot("report-print-zh-CN")
	if _, err := chromedp.Call(in.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}
	// In English: the English title and signatures block.
	eval[bool](in, "choose English", `(localStorage.setItem('sw.locale', 'en'), true)`)
	in.open("/reports/" + id)
	wantTitle = f.Config.Facility.Name + " safety summary report"
	poll[bool](in, "the English title", 15*time.Second,
		fmt.Sprintf(`document.querySelector('[data-test=report-title]')?.textContent.trim() === %q`, wantTitle))
	signs := eval[string](in, "the signatures", `[...document.querySelectorAll('[data-test=report-signatures] .sign')].map(s => s.textContent.trim()).join(' ')`)
	if signs != "Prepared by: Checked by: Head of facility: Date:" {
		t.Errorf("English signatures %q", signs)
	}
	in.settle()
	in.checkAxe(axe, "report-en-desktop")
	in.screenshot("report-en-desktop")

	// Back in the list, the console's frame prints again as it did.
	in.do("back to the list", 10*time.Second, chromedp.Click(chromedp.CSS("[data-test=report-back]")))
	poll[bool](in, "the list again", 10*time.Second, `document.querySelector('`+row+`') !== null`)
	if eval[bool](in, "the print class", `document.documentElement.classList.contains('sw-print-report')`) {
		t.Error("the report page's print rules outlive the page")
	}

	// The supervisor reads the list, and may not generate.
	s := f.newBrowser(t, "supervisor")
	s.login(users.RoleSupervisor)
	s.open("/reports")
	poll[bool](s, "the report in the supervisor's list", 10*time.Second, `document.querySelector('`+row+`') !== null`)
	if eval[bool](s, "the generate form", `document.querySelector('[data-test=report-generate], [data-test=report-generate-submit]') !== null`) {
		t.Error("a supervisor is offered to generate a report")
	}
	s.settle()
	s.checkAxe(axe, "reports-supervisor-zh-CN-desktop")
	s.screenshot("reports-supervisor-zh-CN-desktop")
}

// waitAlarm waits until the gateway lists the alarm id.
func waitAlarm(f *fixture, id string, within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if strings.Contains(string(f.apiGet("/api/v1/alarms")), fmt.Sprintf("%q", id)) {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no alarm %s within %v", id, within)
		}
		time.Sleep(50 * time.Millisecond) // polling the API: there is no event to await here
	}
}
