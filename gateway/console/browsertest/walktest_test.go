package browsertest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shelterwatch/shelterwatch/gateway/users"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// TestWalkTestOnTheFacilityPage: an admin starts a walk test of the whole
// facility from the facility page, presses a smoke detector's test button
// (its Zigbee2MQTT payload), and sees the detector marked triggered while
// its alarm is held back; after ending the test the record is listed and
// its CSV is the API's. A manager sees the running test but has no
// button to start or end one.
func TestWalkTestOnTheFacilityPage(t *testing.T) {
	f := startFixture(t)
	b := f.newBrowser(t, "admin")
	b.login(users.RoleAdmin)
	b.open("/facility")
	b.do("open the walk test panel", 10*time.Second, chromedp.Click(chromedp.CSS("[data-test=walk-test] summary")))
	b.do("start the walk test", 10*time.Second, chromedp.Click(chromedp.CSS("[data-test=walk-start]")))
	id := poll[string](b, "the running walk test", 10*time.Second,
		`(() => { const r = document.querySelector('[data-test=walk-running]'); return r ? r.dataset.walkId : false })()`)

	m := f.newBrowser(t, "manager")
	m.login(users.RoleManager)
	m.open("/facility")
	poll[bool](m, "the running test shown to the manager", 30*time.Second, `document.querySelector('[data-test=walk-running]') !== null`)
	if eval[bool](m, "the end button", `document.querySelector('[data-test=walk-end]') !== null`) {
		t.Error("a manager is offered to end the walk test")
	}

	f.publish("dorm-1-smoke", "zigbee2mqtt/dorm-1/smoke", `{"smoke":true,"battery":90,"linkquality":120}`)
	poll[bool](b, "the detector triggered in the list", 10*time.Second,
		`(() => { const r = document.querySelector('[data-test=walk-running] tr[data-device="dorm-1-smoke"]'); return !!r && r.dataset.reported === 'true' && !!r.querySelector('.status.ok') })()`)
	b.screenshot("walktest-running-zh-CN-desktop")
	b.viewport(390, 844, true)
	b.screenshot("walktest-running-zh-CN-phone")
	b.viewport(1280, 900, false)
	var alarms struct{ Alarms []alarm.Alarm }
	if err := json.Unmarshal(f.apiGet("/api/v1/alarms"), &alarms); err != nil {
		t.Fatal(err)
	}
	held := false
	for _, a := range alarms.Alarms {
		if a.ID == "smoke@dev:dorm-1-smoke" {
			held = a.Silenced && strings.HasPrefix(a.Reason, "walk test "+id)
		}
	}
	if !held {
		t.Fatalf("the test alarm is not held by the walk test: %+v", alarms.Alarms)
	}
	f.publish("dorm-1-smoke", "zigbee2mqtt/dorm-1/smoke", `{"smoke":false,"battery":90,"linkquality":120}`)

	b.do("end the walk test", 10*time.Second, chromedp.Click(chromedp.CSS("[data-test=walk-end]")))
	poll[bool](b, "the record listed", 10*time.Second,
		`document.querySelector('[data-test=walk-running]') === null && document.querySelector('.records [data-walk-id="`+id+`"]') !== null`)

	eval[bool](b, "hook the download", `(() => {
  const c = URL.createObjectURL
  URL.createObjectURL = (blob) => { blob.text().then(t => { window.__csv = t }); return c(blob) }
  return true
})()`)
	b.do("save the record", 10*time.Second, chromedp.Click(chromedp.CSS(`.records [data-walk-id="`+id+`"] [data-test=walk-csv]`)))
	saved := poll[string](b, "the CSV saved", 10*time.Second, `window.__csv || false`)
	if fromAPI := string(f.apiGet("/api/v1/walktests/" + id + "/record.csv")); saved != fromAPI {
		t.Fatalf("saved CSV differs from the API's:\n%s\nvs\n%s", saved, fromAPI)
	}
	if !strings.Contains(saved, ",dorm-1-smoke,") {
		t.Fatalf("record without the detector: %s", saved)
	}
}
