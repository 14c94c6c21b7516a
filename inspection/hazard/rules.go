package hazard

import (
	"fmt"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Built-in hazard rules. Each watches alarms of one or more rules of the
// rules engine (its built-in ids; a configured rule of the same id
// replaces the built-in one and so feeds the hazard rule too).
const (
	// RuleDetectorOffline: a device-offline alarm open longer than After.
	RuleDetectorOffline = "detector-offline"
	// RuleBatteryLow: a low-battery alarm open longer than After.
	RuleBatteryLow = "battery-low"
	// RuleSmokeUntested: a smoke detector that raised no smoke alarm (a
	// walk test or its test button) for After.
	RuleSmokeUntested = "smoke-untested"
	// RuleNightExits: Count or more ward-night-door alarms in one zone
	// within Window.
	RuleNightExits = "ward-night-exits"
	// RuleDoorHeldOpen: Count or more door-held-open alarms in one zone
	// within Window.
	RuleDoorHeldOpen = "doors-held-open"
	// RuleNuisanceAlarms: Count or more smoke alarms (walk tests aside) in
	// one zone within Window.
	RuleNuisanceAlarms = "nuisance-alarms"
	// RuleCameraDark: a camera-down alarm whose condition holds longer
	// than After.
	RuleCameraDark = "camera-dark"
	// RuleDormTemperature: a dorm-cold alarm in the cold season or a
	// dorm-hot alarm in the hot season open longer than After in a zone.
	RuleDormTemperature = "dorm-temperature"
	// RuleManual marks an inspector's own item.
	RuleManual = "manual"
)

// The rules engine's alarm rules the hazard rules watch.
const (
	alarmDeviceOffline = "device-offline"
	alarmLowBattery    = "low-battery"
	alarmSmoke         = "smoke"
	alarmNightDoor     = "ward-night-door"
	alarmDoorHeldOpen  = "door-held-open"
	alarmCameraDown    = "camera-down"
	alarmDormCold      = "dorm-cold"
	alarmDormHot       = "dorm-hot"
)

// Thresholds are a rule's settings (config hazards.rules.<id>).
type Thresholds struct {
	// After: how long the condition must hold (duration rules, and the
	// time without a test).
	After time.Duration
	// Count within Window: how often (count rules).
	Count  int
	Window time.Duration
	// Deadline: the time given to rectify, from when the item opens.
	Deadline time.Duration
	// ClearFor: how long the condition must stay clear for the gateway to
	// count the item rectified by itself (0: as soon as it clears).
	ClearFor time.Duration
	// Disabled turns the rule off.
	Disabled bool
}

type ruleType uint8

const (
	typeDuration ruleType = iota + 1 // an alarm open for After
	typeCount                        // Count alarms within Window
	typeUntested                     // no smoke alarm of a detector for After
)

// ruleDef is a built-in hazard rule.
type ruleDef struct {
	id       string
	typ      ruleType
	alarms   []string // alarm rules watched
	defaults Thresholds
	// title says what is wrong; name is the subject's display name, n the
	// count (count rules), th the thresholds.
	title    func(name string, n int, th Thresholds) alarm.Text
	standard alarm.Text
}

// day is 24 hours: thresholds are spans of time, not calendar days.
const day = 24 * time.Hour

var ruleDefs = []ruleDef{
	{
		// A day offline is a day of a room without a detector; the alarm
		// already paged, so a day is long enough to have fixed it.
		id: RuleDetectorOffline, typ: typeDuration, alarms: []string{alarmDeviceOffline},
		defaults: Thresholds{After: day, Deadline: 3 * day, ClearFor: day},
		title: func(name string, _ int, th Thresholds) alarm.Text {
			return alarm.Text{EN: fmt.Sprintf("Detector %s offline for more than %s", name, span(th.After, false)),
				ZH: fmt.Sprintf("探测器 %s 离线超过 %s", name, span(th.After, true))}
		},
		standard: alarm.Text{EN: "Every detector is online and reporting; an offline detector is repaired or replaced.",
			ZH: "所有探测器保持在线并正常上报；离线探测器应及时修复或更换。"},
	},
	{
		// 15 % leaves a few weeks; a week unreplaced is a habit.
		id: RuleBatteryLow, typ: typeDuration, alarms: []string{alarmLowBattery},
		defaults: Thresholds{After: 7 * day, Deadline: 3 * day, ClearFor: day},
		title: func(name string, _ int, th Thresholds) alarm.Text {
			return alarm.Text{EN: fmt.Sprintf("Battery of %s low for more than %s", name, span(th.After, false)),
				ZH: fmt.Sprintf("%s 电池电量低超过 %s", name, span(th.After, true))}
		},
		standard: alarm.Text{EN: "Batteries are replaced before they run flat.", ZH: "电池应在耗尽前及时更换。"},
	},
	{
		// Fire-safety inspections expect every detector tested at least
		// once a quarter.
		id: RuleSmokeUntested, typ: typeUntested, alarms: []string{alarmSmoke},
		defaults: Thresholds{After: 92 * day, Deadline: 14 * day},
		title: func(name string, _ int, th Thresholds) alarm.Text {
			return alarm.Text{EN: fmt.Sprintf("Smoke detector %s not tested for more than %s", name, span(th.After, false)),
				ZH: fmt.Sprintf("烟感探测器 %s 超过 %s 未测试", name, span(th.After, true))}
		},
		standard: alarm.Text{EN: "Every smoke detector is tested (walk test or test button) at least once a quarter.",
			ZH: "每个烟感探测器至少每季度测试一次（巡检测试或按测试按钮）。"},
	},
	{
		// Each night exit already paged; three in a week means the ward's
		// night routine does not hold.
		// Rectified after a quiet week below the count: a routine that
		// holds, not a lucky night.
		id: RuleNightExits, typ: typeCount, alarms: []string{alarmNightDoor},
		defaults: Thresholds{Count: 3, Window: 7 * day, Deadline: 14 * day, ClearFor: 7 * day},
		title: func(name string, n int, th Thresholds) alarm.Text {
			return alarm.Text{EN: fmt.Sprintf("%d night exits from %s within %s", n, name, span(th.Window, false)),
				ZH: fmt.Sprintf("%s %s内夜间出入 %d 次", name, span(th.Window, true), n)}
		},
		standard: alarm.Text{EN: "Residents of the secure ward are accounted for at night: the door is secured and night rounds are kept.",
			ZH: "夜间落实封闭区域人员清点与巡查，门禁保持有效。"},
	},
	{
		id: RuleDoorHeldOpen, typ: typeCount, alarms: []string{alarmDoorHeldOpen},
		defaults: Thresholds{Count: 3, Window: 7 * day, Deadline: 14 * day, ClearFor: 7 * day},
		title: func(name string, n int, th Thresholds) alarm.Text {
			return alarm.Text{EN: fmt.Sprintf("A door of %s held open %d times within %s", name, n, span(th.Window, false)),
				ZH: fmt.Sprintf("%s %s内门长时间敞开 %d 次", name, span(th.Window, true), n)}
		},
		standard: alarm.Text{EN: "Fire doors and exits are kept closed.", ZH: "防火门及出入口保持常闭。"},
	},
	{
		// Alarms nobody believes are the most dangerous kind.
		id: RuleNuisanceAlarms, typ: typeCount, alarms: []string{alarmSmoke},
		defaults: Thresholds{Count: 3, Window: 30 * day, Deadline: 30 * day, ClearFor: 14 * day},
		title: func(name string, n int, th Thresholds) alarm.Text {
			return alarm.Text{EN: fmt.Sprintf("%d smoke alarms in %s within %s", n, name, span(th.Window, false)),
				ZH: fmt.Sprintf("%s %s内烟雾报警 %d 次", name, span(th.Window, true), n)}
		},
		standard: alarm.Text{EN: "The cause of repeated alarms is found and removed (detector placement, cooking, smoking, dust); a faulty detector is replaced.",
			ZH: "查明并消除反复报警的原因（探测器位置、烹饪、吸烟、灰尘），更换故障探测器。"},
	},
	{
		id: RuleCameraDark, typ: typeDuration, alarms: []string{alarmCameraDown},
		defaults: Thresholds{After: day, Deadline: 3 * day, ClearFor: day},
		title: func(name string, _ int, th Thresholds) alarm.Text {
			return alarm.Text{EN: fmt.Sprintf("Camera %s dark for more than %s", name, span(th.After, false)),
				ZH: fmt.Sprintf("摄像头 %s 无视频超过 %s", name, span(th.After, true))}
		},
		standard: alarm.Text{EN: "Cameras for remote supervision show video at all times.", ZH: "远程监督摄像头应始终保持正常画面。"},
	},
	{
		// Hours, not the alarm's quarter of an hour: a heater that fails
		// for a night is a hazard to fix, not only an alarm to answer.
		id: RuleDormTemperature, typ: typeDuration, alarms: []string{alarmDormCold, alarmDormHot},
		defaults: Thresholds{After: 4 * time.Hour, Deadline: 2 * day, ClearFor: day},
		title: func(name string, _ int, th Thresholds) alarm.Text {
			return alarm.Text{EN: fmt.Sprintf("%s outside its temperature band for more than %s", name, span(th.After, false)),
				ZH: fmt.Sprintf("%s 温度超出规定范围超过 %s", name, span(th.After, true))}
		},
		standard: alarm.Text{EN: "Dormitories are kept warm in the cold season and cool in the hot season, within the dorm-cold and dorm-hot limits.",
			ZH: "冬季保暖、夏季防暑，宿舍温度保持在规定范围内。"},
	},
}

// RuleIDs lists the built-in hazard rules.
func RuleIDs() []string {
	out := make([]string, len(ruleDefs))
	for i := range ruleDefs {
		out[i] = ruleDefs[i].id
	}
	return out
}

// Defaults returns a built-in rule's default thresholds.
func Defaults(id string) (Thresholds, bool) {
	for i := range ruleDefs {
		if ruleDefs[i].id == id {
			return ruleDefs[i].defaults, true
		}
	}
	return Thresholds{}, false
}

// ruleDefOf returns the built-in rule id, or nil.
func ruleDefOf(id string) *ruleDef {
	for i := range ruleDefs {
		if ruleDefs[i].id == id {
			return &ruleDefs[i]
		}
	}
	return nil
}

// span writes a threshold for people: "24h" → "1 day", "4h" → "4 hours".
func span(d time.Duration, zh bool) string {
	if d >= day && d%day == 0 {
		n := int(d / day)
		if zh {
			return fmt.Sprintf("%d 天", n)
		}
		if n == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", n)
	}
	if d >= time.Hour && d%time.Hour == 0 {
		n := int(d / time.Hour)
		if zh {
			return fmt.Sprintf("%d 小时", n)
		}
		if n == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", n)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
	if zh {
		return s
	}
	return s
}
