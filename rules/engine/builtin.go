package engine

import (
	"time"

	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// Builtin returns the built-in rule set for the concerns of the
// civil-affairs notice: fire, cold and heat in dormitories, residents
// leaving secure wards at night, sensors that stop reporting, flat
// batteries. The README's rule reference lists each with its threshold and
// the reason for it. A rule in the config with the same id replaces the
// built-in one.
func Builtin() []RuleConfig {
	d := func(x time.Duration) facility.Duration { return facility.Duration(x) }
	return []RuleConfig{
		{
			// Any detector: smoke must page at once, and stays until a
			// person has checked and reset it.
			ID: "smoke", Kinds: []string{"smoke"}, When: "value", Severity: "critical", Latched: true,
			Title: TextConfig{EN: "Smoke detected: {{.ZoneName}} ({{.Device}})", ZH: "烟雾报警：{{.ZoneNameZH}}（{{.Device}}）"},
			Body: TextConfig{EN: "Detector {{.Device}} in {{.ZoneName}} reports smoke since {{.Since.Format \"15:04:05\"}}. Check the room now; reset the alarm once it is safe.",
				ZH: "{{.ZoneNameZH}}的探测器 {{.Device}} 自 {{.Since.Format \"15:04:05\"}} 起检测到烟雾。请立即到场查看，确认安全后复位报警。"},
		},
		{
			// Two detectors of one zone within a minute: a real fire is far
			// more likely than a faulty detector or burnt toast.
			ID: "confirmed-fire", Type: TypeCoincidence, Kinds: []string{"smoke"}, When: "value", Window: d(time.Minute), Count: 2,
			Severity: "fire", Latched: true, Inhibits: []string{"smoke", "heat-rise"},
			Title: TextConfig{EN: "FIRE confirmed: {{.ZoneName}}", ZH: "确认火警：{{.ZoneNameZH}}"},
			Body: TextConfig{EN: "{{len .Devices}} smoke detectors in {{.ZoneName}} within one minute ({{range $i, $d := .Devices}}{{if $i}}, {{end}}{{$d}}{{end}}). Evacuate and call 119.",
				ZH: "{{.ZoneNameZH}}一分钟内 {{len .Devices}} 个烟雾探测器报警。请立即疏散人员并拨打 119。"},
		},
		{
			// Supplementary to smoke detectors: consumer sensors report too
			// rarely to be an EN 54-5 heat detector, but 8 °C in a minute
			// (the usual rate-of-rise trip point) indoors is never normal.
			ID: "heat-rise", Type: TypeRateOfRise, Kinds: []string{"temperature"}, When: "true", Rise: "8", Window: d(time.Minute),
			Severity: "critical",
			Title:    TextConfig{EN: "Rapid temperature rise: {{.ZoneName}} ({{.Value}} °C in a minute)", ZH: "温度骤升：{{.ZoneNameZH}}（一分钟内{{.Value}} °C）"},
		},
		{
			// EN 50291: a CO alarm must sound within 3 minutes at 300 ppm
			// and within 10-40 minutes at 100 ppm; 100 ppm for 10 minutes
			// pages, well before the stricter limit.
			ID: "co-high", Kinds: []string{"co"}, When: "value >= 100", Clear: "value < 30", For: d(10 * time.Minute),
			Severity: "critical",
			Title:    TextConfig{EN: "Carbon monoxide {{.Value}} ppm: {{.ZoneName}}", ZH: "一氧化碳浓度 {{.Value}} ppm：{{.ZoneNameZH}}"},
			Body:     TextConfig{EN: "Ventilate and get everyone out of {{.ZoneName}}.", ZH: "请立即通风并疏散{{.ZoneNameZH}}内人员。"},
		},
		{
			// "Winter warmth": below 16 °C for a quarter of an hour in a
			// dormitory (WHO: at least 18 °C indoors, more for the old and
			// sick); clears at 18 °C so a heater cycling does not flap.
			ID: "dorm-cold", Kinds: []string{"temperature"}, Match: `"dormitory" in tags`, When: "value < 16", Clear: "value >= 18",
			For: d(15 * time.Minute), Severity: "warning",
			Title: TextConfig{EN: "Too cold: {{.ZoneName}} {{.Value}} °C", ZH: "宿舍温度过低：{{.ZoneNameZH}} {{.Value}} °C"},
			Body:  TextConfig{EN: "Check the heating and give residents blankets.", ZH: "请检查供暖设备，并为住宿人员增加被褥。"},
		},
		{
			// "Summer cooling": above 32 °C for a quarter of an hour risks
			// heat stroke for frail residents; clears at 30 °C.
			ID: "dorm-hot", Kinds: []string{"temperature"}, Match: `"dormitory" in tags`, When: "value > 32", Clear: "value <= 30",
			For: d(15 * time.Minute), Severity: "warning",
			Title: TextConfig{EN: "Too hot: {{.ZoneName}} {{.Value}} °C", ZH: "宿舍温度过高：{{.ZoneNameZH}} {{.Value}} °C"},
			Body:  TextConfig{EN: "Check the cooling and give residents water.", ZH: "请检查降温设备，并为住宿人员提供饮水。"},
		},
		{
			// A door of a secure ward opening at night: a resident with
			// dementia may be walking out.
			ID: "ward-night-door", Kinds: []string{"door"}, Match: `"secure-ward" in tags`, When: "value",
			Active: ActiveConfig{Between: "22:00-06:00"}, Severity: "critical",
			Title: TextConfig{EN: "Night exit: {{.ZoneName}} door opened ({{.Device}})", ZH: "夜间出入：{{.ZoneNameZH}}门被打开（{{.Device}}）"},
			Body:  TextConfig{EN: "Check at once that every resident of {{.ZoneName}} is in.", ZH: "请立即核查{{.ZoneNameZH}}所有人员是否在位。"},
		},
		{
			// Any door held open 5 minutes: fire doors and exits must
			// close; residents may leave unseen.
			ID: "door-held-open", Kinds: []string{"door"}, When: "value", For: d(5 * time.Minute), Severity: "warning",
			Title: TextConfig{EN: "Door open for 5 minutes: {{.ZoneName}} ({{.Device}})", ZH: "门已打开超过 5 分钟：{{.ZoneNameZH}}（{{.Device}}）"},
		},
		{
			ID: "panic-button", Kinds: []string{"panic"}, When: "value", Severity: "critical", Latched: true,
			Title: TextConfig{EN: "Call for help: {{.ZoneName}} ({{.Device}})", ZH: "紧急呼叫：{{.ZoneNameZH}}（{{.Device}}）"},
		},
		{
			ID: "water-leak", Kinds: []string{"water_leak"}, When: "value", Severity: "warning",
			Title: TextConfig{EN: "Water leak: {{.ZoneName}} ({{.Device}})", ZH: "漏水：{{.ZoneNameZH}}（{{.Device}}）"},
		},
		{
			ID: "tamper", Kinds: []string{"tamper"}, When: "value", Severity: "trouble",
			Title: TextConfig{EN: "Sensor opened or removed: {{.Device}} ({{.ZoneName}})", ZH: "传感器被拆开或移除：{{.Device}}（{{.ZoneNameZH}}）"},
		},
		{
			// 15 % leaves a few weeks on most Zigbee batteries; 25 % to
			// clear so one cold night does not flap.
			ID: "low-battery", When: "has_battery && battery < 15", Clear: "has_battery && battery >= 25", Severity: "trouble",
			Title: TextConfig{EN: "Battery low: {{.Device}} ({{.ZoneName}})", ZH: "电池电量低：{{.Device}}（{{.ZoneNameZH}}）"},
		},
		{
			// A sensor that answers but cannot measure (ESPHome "nan", a
			// Shelly or Tasmota null): the device is alive, so no offline
			// alarm would ever say that its thermometer is dead. Clears at
			// the device's next real reading.
			ID: "sensor-fault", When: `kind == "sensor_fault" && value == true`,
			Clear:    `kind != "sensor_fault" && kind != "availability" && kind != "reach"`,
			Severity: "trouble",
			Title:    TextConfig{EN: "Sensor fault: {{.Device}} ({{.ZoneName}})", ZH: "传感器故障：{{.Device}}（{{.ZoneNameZH}}）"},
			Body: TextConfig{EN: "{{.Device}} is online but its sensor cannot measure. Check the wiring or replace the sensor.",
				ZH: "{{.Device}} 在线，但其传感器无法测量。请检查接线或更换传感器。"},
		},
		{
			// A sensor silent beyond its offline_after (1 h for periodic
			// sensors, 25 h for daily check-ins) or reporting itself
			// offline protects nobody.
			ID: "device-offline", Type: TypeAbsence, Severity: "trouble",
			Title: TextConfig{EN: "Sensor offline: {{.Device}} ({{.ZoneName}}): {{.Value}}", ZH: "传感器离线：{{.Device}}（{{.ZoneNameZH}}）"},
		},
		{
			// Nothing at all for 10 minutes: the broker, the Zigbee
			// coordinator or the network is down. One alarm instead of a
			// page per device.
			ID: "no-readings", Type: TypeAbsence, Scope: ScopeGateway, After: d(10 * time.Minute), Severity: "critical",
			Inhibits: []string{"device-offline"},
			Title:    TextConfig{EN: "No sensor readings for 10 minutes: check the MQTT broker, Zigbee coordinator and network", ZH: "10 分钟未收到任何传感器数据：请检查 MQTT 代理、Zigbee 协调器和网络"},
		},
	}
}

// GatewayRules raise the gateway's faults about itself. Each part of the
// gateway that owns some state reports its condition as fault readings of
// a built-in device (ingest/health), and these rules turn them into alarms
// with the same lifecycle as a sensor's: escalation, silences,
// acknowledgement, audit. They run even when the built-in sensor rules
// are turned off; a configured rule with the same id replaces one.
func GatewayRules() []RuleConfig {
	fault := func(id, match, sev string, latched bool, title, body TextConfig) RuleConfig {
		return RuleConfig{ID: id, Kinds: []string{"fault"}, Match: match, When: `value != "ok"`, Severity: sev, Latched: latched,
			Title: title, Body: body, Labels: []string{"source=gateway"}}
	}
	return []RuleConfig{
		// An always-on camera without video for its down_alarm_after:
		// remote supervision of that area is interrupted. Latched: the gap
		// must be seen and reset by a manager, not found in the log later.
		fault("camera-down", `device startsWith "gateway.camera."`, "trouble", true,
			TextConfig{EN: "Camera dark: {{.DeviceName}} ({{.ZoneName}})", ZH: "摄像头无视频：{{.DeviceName}}（{{.ZoneNameZH}}）"},
			TextConfig{EN: "{{.Value}}. Remote supervision of this area is interrupted.", ZH: "{{.Value}}。该区域的远程监督已中断。"}),
		// Nothing confirmed by an InfluxDB target for its stalled_after
		// (15 minutes): history is safe in the local store but nobody
		// upstream sees it. Latched like camera-down.
		fault("forward-stalled", `device startsWith "gateway.influx."`, "trouble", true,
			TextConfig{EN: "InfluxDB target {{.DeviceName}} is not receiving readings", ZH: "InfluxDB 目标 {{.DeviceName}} 未能接收数据"},
			TextConfig{EN: "{{.Value}}. The readings are safe in the local store and will be sent when it is back.",
				ZH: "{{.Value}}。读数已安全保存在本地存储中，恢复后会自动补发。"}),
		fault("forward-auth", `device startsWith "gateway.influx-auth."`, "critical", false,
			TextConfig{EN: "InfluxDB target {{.DeviceName}} refuses the gateway's credentials", ZH: "InfluxDB 目标 {{.DeviceName}} 拒绝了网关的凭据"},
			TextConfig{EN: "{{.Value}}. Nothing is dropped; fix the token or password in the configuration.",
				ZH: "{{.Value}}。数据不会丢弃；请在配置中更正令牌或密码。"}),
		// Readings deleted before every InfluxDB target had them are lost
		// to history: latched until a manager has seen it and reset it.
		fault("store-data-loss", `device == "gateway.store"`, "critical", true,
			TextConfig{EN: "Readings lost to history: the local store deleted unforwarded data", ZH: "历史数据丢失：本地存储删除了未转发的读数"},
			TextConfig{EN: "{{.Value}}. Bring InfluxDB back or raise store.disk_budget.", ZH: "{{.Value}}。请恢复 InfluxDB 连接或增大 store.disk_budget。"}),
		// Unforwarded readings fill 80 % of the store's disk budget: an
		// InfluxDB outage that goes on will soon cost history. Clears when
		// forwarding catches up.
		fault("store-budget", `device == "gateway.store-budget"`, "trouble", false,
			TextConfig{EN: "Local store nearly full of unforwarded readings", ZH: "本地存储即将被未转发的读数占满"},
			TextConfig{EN: "{{.Value}}. Bring InfluxDB back or raise store.disk_budget before history is lost.",
				ZH: "{{.Value}}。请尽快恢复 InfluxDB 连接或增大 store.disk_budget，以免丢失历史数据。"}),
		// The store's file system is below its reserve: readings are not
		// stored (the broker keeps them unacknowledged), though the safety
		// rules still see them. Critical: history and forwarding stop,
		// and the next thing to fail would be the alarm state.
		fault("disk-full", `device == "gateway.disk"`, "critical", false,
			TextConfig{EN: "The gateway's disk is full", ZH: "网关磁盘已满"},
			TextConfig{EN: "{{.Value}}. Safety rules still run and alarms are still sent. Free space on the gateway's storage (or lower store.disk_budget).",
				ZH: "{{.Value}}。安全规则仍在运行，报警仍会发送。请释放网关存储空间（或调低 store.disk_budget）。"}),
		// A system clock that is not set (no NTP after a power cut) or
		// jumped: alarm times, schedules (night rules) and certificates all
		// depend on it.
		fault("clock", `device == "gateway.clock"`, "trouble", false,
			TextConfig{EN: "The gateway's clock is wrong", ZH: "网关系统时间异常"},
			TextConfig{EN: "{{.Value}}. Check the time synchronisation (NTP) of the gateway.", ZH: "{{.Value}}。请检查网关的时间同步（NTP）。"}),
		// A Zigbee2MQTT bridge (or its USB coordinator) that stopped:
		// every detector behind it is deaf at once, so it pages like a
		// smoke detector's own trouble would not. Not latched: it clears
		// when the bridge says it is back.
		fault("bridge-down", `device startsWith "gateway.bridge."`, "critical", false,
			TextConfig{EN: "Zigbee bridge offline: {{.DeviceName}}", ZH: "Zigbee 网桥离线：{{.DeviceName}}"},
			TextConfig{EN: "{{.Value}}. Check the bridge's host and its USB coordinator; until it is back, smoke detectors and door contacts behind it are not heard.",
				ZH: "{{.Value}}。请检查网桥主机及其 USB 协调器；恢复之前，其下的烟雾探测器和门磁均无法上报。"}),
		// The audit log is the record of who acknowledged an alarm and who
		// watched inside a placement: a failed write must be seen.
		fault("audit-log-failed", `device == "gateway.audit"`, "trouble", false,
			TextConfig{EN: "The audit log cannot be written", ZH: "审计日志无法写入"},
			TextConfig{EN: "{{.Value}}. Free disk space or fix the permissions of alarms.dir.", ZH: "{{.Value}}。请释放磁盘空间或检查 alarms.dir 的权限。"}),
		// An item of the hazard list (inspection/hazard) past its
		// deadline: one alarm per zone naming its overdue items, fired
		// again when another item there passes its deadline. Trouble, as
		// the hazard list's own severity.
		fault("hazard-overdue", `device startsWith "gateway.hazards"`, "trouble", false,
			TextConfig{EN: "Hazard rectification overdue: {{.ZoneName}}", ZH: "隐患整改逾期：{{.ZoneNameZH}}"},
			TextConfig{EN: "{{.Value}}. Rectify the items and record what was done on the hazard list.",
				ZH: "{{.Value}}。请尽快整改，并在隐患清单中记录整改情况。"}),
		// The nightly backup (backup.dir) failed: until one succeeds the
		// facility has no fresh copy to restore if the disk dies.
		fault("backup-failed", `device == "gateway.backup"`, "trouble", false,
			TextConfig{EN: "The nightly backup failed", ZH: "夜间备份失败"},
			TextConfig{EN: "{{.Value}}. Check that backup.dir is mounted and has room; make a backup by hand with shelter-gateway backup meanwhile.",
				ZH: "{{.Value}}。请检查 backup.dir 是否已挂载且有足够空间；在此期间请用 shelter-gateway backup 手动备份。"}),
		// A TLS certificate that expires within 14 days (or already has):
		// devices and browsers will refuse the gateway.
		fault("certificate-expiry", `device startsWith "gateway.tls."`, "trouble", false,
			TextConfig{EN: "TLS certificate {{.DeviceName}} needs renewing", ZH: "TLS 证书 {{.DeviceName}} 需要更新"},
			TextConfig{EN: "{{.Value}}. Replace the certificate and reload the gateway.", ZH: "{{.Value}}。请更换证书并重新加载网关。"}),
	}
}

// Merge returns the built-in rules with those of own replacing built-ins
// of the same id, then own's other rules in order.
func Merge(builtin, own []RuleConfig) []RuleConfig {
	byID := map[string]int{}
	for i, r := range own {
		byID[r.ID] = i
	}
	used := map[string]bool{}
	out := make([]RuleConfig, 0, len(builtin)+len(own))
	for _, r := range builtin {
		if i, ok := byID[r.ID]; ok {
			out = append(out, own[i])
			used[r.ID] = true
			continue
		}
		out = append(out, r)
	}
	for _, r := range own {
		if !used[r.ID] {
			out = append(out, r)
		}
	}
	return out
}
