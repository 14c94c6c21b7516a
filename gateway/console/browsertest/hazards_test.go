package browsertest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/inspection/hazard"
)

// TestHazardListSteps walks one item of the hazard list through its
// lifecycle in the console, as the people who take each step: an
// inspector adds it through the dialog (the form says what is missing
// first) and names another responsible person, a manager records the
// rectification with a note, the inspector verifies it and reads its
// history. After each step the table shows the new status and the
// gateway's list agrees. A supervisor reads the list, filtered, without a
// single action button, and saves the gateway's CSV. Screenshots in
// zh-CN; axe-core on the list, its details and the dialog.
func TestHazardListSteps(t *testing.T) {
	f := startFixture(t)
	axe := axeSource(t)

	// The inspector adds an item.
	in := f.newBrowser(t, "inspector")
	in.login(users.RoleInspector)
	in.open("/hazards")
	in.settle()
	if got := eval[string](in, "the title", `document.querySelector('.page-title').textContent.trim()`); got != "隐患清单" {
		t.Errorf("title %q, want 隐患清单", got)
	}
	if !eval[bool](in, "the nav entry", `[...document.querySelectorAll('nav a')].some(a => a.getAttribute('href') === '/hazards' && a.textContent.trim() === '隐患清单')`) {
		t.Error("no 隐患清单 entry in the inspector's navigation")
	}
	poll[bool](in, "the empty list", 10*time.Second, `document.querySelector('.page .state')?.textContent.includes('没有符合条件的隐患') === true`)

	in.do("open the add dialog", 10*time.Second,
		chromedp.Click(chromedp.CSS("[data-test=hazard-add]")),
		chromedp.WaitVisible(chromedp.CSS("[data-test=hazard-title-zh]")))
	in.settle()
	in.checkAxe(axe, "hazards-add-dialog-zh-CN")
	// Nothing filled in: the form names what is missing and sends nothing.
	in.do("add without filling in", 10*time.Second, chromedp.Click(chromedp.CSS("[data-test=hazard-create]")))
	for _, want := range []string{"请选择区域", "请至少填写一种语言的隐患描述", "请至少填写一种语言的整改标准", "请填写责任人"} {
		poll[bool](in, "the message "+want, 5*time.Second,
			fmt.Sprintf(`[...document.querySelectorAll('[data-test=hazard-add-dialog] .el-form-item__error')].some(e => e.textContent.trim() === %q)`, want))
	}
	in.settle()
	in.screenshot("hazards-add-zh-CN-desktop")
	// The dialog's zone list is the visible one: the filters' lists are
	// in the page too, hidden.
	in.do("open the zone list", 10*time.Second, chromedp.Click(chromedp.CSS("[data-test=hazard-add-dialog] [data-test=hazard-zone]")))
	poll[bool](in, "pick 厨房 in the dialog's zone list", 5*time.Second, `(() => {
  for (const li of document.querySelectorAll('.el-select-dropdown__item'))
    if (li.offsetParent !== null && li.textContent.trim() === '厨房') { li.click(); return true }
  return false
})()`)
	const title, standard, responsible = "厨房安全出口堆放杂物", "安全出口保持畅通，1 米内无堆放物", "张站长"
	in.do("fill in the item", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("[data-test=hazard-title-zh]"), title),
		chromedp.SendKeys(chromedp.CSS("[data-test=hazard-title-en]"), "Kitchen exit blocked"),
		chromedp.SendKeys(chromedp.CSS("[data-test=hazard-standard-zh]"), standard),
		chromedp.SendKeys(chromedp.CSS("[data-test=hazard-responsible]"), responsible),
		chromedp.SendKeys(chromedp.CSS("[data-test=hazard-note]"), "消防检查发现"),
		chromedp.Click(chromedp.CSS("[data-test=hazard-create]")))
	id := poll[string](in, "the new item in the table", 10*time.Second, fmt.Sprintf(`(() => {
  for (const tb of document.querySelectorAll('[data-test=hazard-table] tbody[data-hazard-id]'))
    if (tb.querySelector('[data-test=hazard-title]')?.textContent.trim() === %q) return tb.dataset.hazardId
  return false
})()`, title))
	row := fmt.Sprintf(`[data-test=hazard-table] tbody[data-hazard-id=%q]`, id)
	checkRow(in, row, "open", "待整改", []string{"厨房", standard, responsible, "人工登记"})
	it := apiHazard(f, id)
	if it.Status != hazard.StatusOpen || it.Rule != "manual" || it.Zone != "kitchen" || it.By != f.logins[users.RoleInspector].Name ||
		it.Title.ZH != title || it.Responsible != responsible || !it.Deadline.After(time.Now()) {
		t.Fatalf("the gateway's item after adding: %+v", it)
	}
	if eval[bool](in, "the rectify button", `document.querySelector('`+row+` [data-test=hazard-rectify]') !== null`) {
		t.Error("an inspector is offered to record the rectification")
	}
	in.settle()
	in.checkAxe(axe, "hazards-zh-CN-desktop")
	in.screenshot("hazards-open-zh-CN-desktop")

	// The inspector names another responsible person.
	const responsible2 = "李主任"
	in.do("change the responsible person", 10*time.Second,
		chromedp.Click(chromedp.CSS(row+" [data-test=hazard-change]")),
		chromedp.WaitVisible(chromedp.CSS("[data-test=hazard-new-responsible]")))
	eval[bool](in, "clear the responsible person", `(() => { const i = document.querySelector('[data-test=hazard-new-responsible]'); i.select(); return true })()`)
	in.do("type the new responsible person", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("[data-test=hazard-new-responsible]"), responsible2),
		chromedp.Click(chromedp.CSS("[data-test=hazard-step-confirm]")))
	poll[bool](in, "the new responsible person in the row", 10*time.Second,
		fmt.Sprintf(`document.querySelector(%q)?.querySelector('tr').textContent.includes(%q) === true`, row, responsible2))
	if it := apiHazard(f, id); it.Responsible != responsible2 || it.Status != hazard.StatusOpen {
		t.Fatalf("the gateway's item after the change: %+v", it)
	}
	in.settle()

	// The manager records the rectification.
	m := f.newBrowser(t, "manager")
	m.login(users.RoleManager)
	m.open("/hazards")
	poll[bool](m, "the item on the manager's list", 10*time.Second, `document.querySelector('`+row+`') !== null`)
	if eval[bool](m, "inspector buttons", `document.querySelector('[data-test=hazard-add], [data-test=hazard-change], [data-test=hazard-verify]') !== null`) {
		t.Error("a manager is offered an inspector's step (add, change deadline or verify)")
	}
	m.do("open the rectification dialog", 10*time.Second,
		chromedp.Click(chromedp.CSS(row+" [data-test=hazard-rectify]")),
		chromedp.WaitVisible(chromedp.CSS("[data-test=hazard-step-note]")),
		chromedp.Click(chromedp.CSS("[data-test=hazard-step-confirm]")))
	poll[bool](m, "the note required", 5*time.Second,
		`[...document.querySelectorAll('[data-test=hazard-step-dialog] .el-form-item__error')].some(e => e.textContent.trim() === '请填写说明')`)
	const rectified = "杂物已清走，出口处划线禁止堆放"
	m.do("record the rectification", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("[data-test=hazard-step-note]"), rectified),
		chromedp.Click(chromedp.CSS("[data-test=hazard-step-confirm]")))
	checkRow(m, row, "rectified", "已整改", nil)
	it = apiHazard(f, id)
	if it.Status != hazard.StatusRectified || it.RectifiedBy != f.logins[users.RoleManager].Name || it.Evidence != rectified {
		t.Fatalf("the gateway's item after the rectification: %+v", it)
	}

	// The inspector verifies it, and reads its history.
	in.open("/hazards")
	poll[bool](in, "the rectified item", 10*time.Second, `document.querySelector('`+row+`')?.dataset.status === 'rectified'`)
	if !eval[bool](in, "the reopen button", `document.querySelector('`+row+` [data-test=hazard-reopen]') !== null`) {
		t.Error("no reopen button on a rectified item for the inspector")
	}
	in.do("verify", 10*time.Second,
		chromedp.Click(chromedp.CSS(row+" [data-test=hazard-verify]")),
		chromedp.WaitVisible(chromedp.CSS("[data-test=hazard-step-note]")),
		chromedp.SendKeys(chromedp.CSS("[data-test=hazard-step-note]"), "现场复查合格"),
		chromedp.Click(chromedp.CSS("[data-test=hazard-step-confirm]")))
	checkRow(in, row, "verified", "已验收", nil)
	it = apiHazard(f, id)
	if it.Status != hazard.StatusVerified || it.VerifiedBy != f.logins[users.RoleInspector].Name {
		t.Fatalf("the gateway's item after verifying: %+v", it)
	}
	in.settle() // the dialog's mask fades out before the row can be clicked
	in.do("open the item's details", 10*time.Second,
		chromedp.Click(chromedp.CSS(row+" [data-test=hazard-expand]")),
		chromedp.WaitVisible(chromedp.CSS(row+" [data-test=hazard-history]")))
	history := eval[[]string](in, "the history", `[...document.querySelectorAll('`+row+` [data-test=hazard-history] tbody tr')].map(tr => [...tr.cells].slice(1).map(c => c.textContent.trim()).join(' | '))`)
	want := []string{
		"登记 | " + f.logins[users.RoleInspector].Name + " | 消防检查发现",
		"修改 | " + f.logins[users.RoleInspector].Name + ` | responsible "张站长" → "李主任"`,
		"整改 | " + f.logins[users.RoleManager].Name + " | " + rectified,
		"验收 | " + f.logins[users.RoleInspector].Name + " | 现场复查合格",
	}
	if strings.Join(history, "\n") != strings.Join(want, "\n") {
		t.Errorf("history on the page:\n%s\nwant:\n%s", strings.Join(history, "\n"), strings.Join(want, "\n"))
	}
	if ev := eval[string](in, "the evidence", `document.querySelector('`+row+` [data-test=hazard-evidence]')?.textContent ?? ''`); !strings.Contains(ev, rectified) {
		t.Errorf("evidence %q, want the manager's note", ev)
	}
	in.settle()
	in.checkAxe(axe, "hazards-details-zh-CN-desktop")
	in.screenshot("hazards-zh-CN-desktop")
	in.viewport(390, 844, true)
	in.settle()
	in.checkAxe(axe, "hazards-details-zh-CN-phone")
	in.screenshot("hazards-zh-CN-phone")

	// The supervisor reads, and may do nothing.
	s := f.newBrowser(t, "supervisor")
	s.login(users.RoleSupervisor)
	s.open("/hazards?status=verified&zone=kitchen")
	poll[bool](s, "the verified item on the supervisor's list", 10*time.Second, `document.querySelector('`+row+`')?.dataset.status === 'verified'`)
	if n := eval[int](s, "action buttons", `document.querySelectorAll('[data-test=hazard-add], [data-test=hazard-rectify], [data-test=hazard-verify], [data-test=hazard-reopen], [data-test=hazard-change], .page .actions').length`); n != 0 {
		t.Errorf("the supervisor sees %d action buttons on the hazard list, want none", n)
	}
	// The CSV is the gateway's, for the filters shown.
	path, saved := s.download("[data-test=hazard-csv]")
	if !strings.HasPrefix(path, "/api/v1/hazards?") || !strings.Contains(path, "status=verified") || !strings.Contains(path, "zone=kitchen") {
		t.Errorf("the console downloaded %q, want the hazard list as CSV with status=verified and zone=kitchen", path)
	}
	if fromAPI := string(f.apiGet(path)); saved != fromAPI || !strings.Contains(saved, id+",verified,") {
		t.Errorf("the saved CSV differs from the API's answer to %s or lacks %s:\nsaved:\n%s\nAPI:\n%s", path, id, saved, fromAPI)
	}
	s.settle()
	s.checkAxe(axe, "hazards-supervisor-zh-CN-desktop")
	s.screenshot("hazards-supervisor-zh-CN-desktop")
}

// checkRow waits until the item's row shows status (its data-status and
// its tag's text) and then holds every one of texts.
func checkRow(b *browser, row, status, tag string, texts []string) {
	b.t.Helper()
	poll[bool](b, "the item "+status, 10*time.Second, fmt.Sprintf(`(() => {
  const r = document.querySelector(%q)
  return !!r && r.dataset.status === %q && r.querySelector('[data-test=hazard-status]').textContent.trim() === %q
})()`, row, status, tag))
	text := eval[string](b, "the row's text", fmt.Sprintf(`document.querySelector(%q).querySelector('tr').textContent`, row))
	for _, w := range texts {
		if !strings.Contains(text, w) {
			b.t.Errorf("%s: the row %q has no %q", b.name, text, w)
		}
	}
}

// apiHazard is one item as the gateway answers it.
func apiHazard(f *fixture, id string) hazard.Item {
	f.t.Helper()
	var it hazard.Item
	if err := json.Unmarshal(f.apiGet("/api/v1/hazards/"+id), &it); err != nil {
		f.t.Fatal(err)
	}
	return it
}
