//lint:file-ignore SA1019 the classic dashboard model is what Grafana's file provisioning reads; the SDK marks it deprecated in favour of the v2 schema

package gen

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// nightHoursUTC selects 22:00-06:00 China Standard Time (UTC+8) in Flux,
// whose hourSelection counts hours in UTC on InfluxDB 1.8: 14:00-21:59 UTC.
const nightHoursUTC = `hourSelection(start: 14, stop: 21)`

// supervision is the civil-affairs supervisor's dashboard: the facility's
// state at a glance, night exits from secure wards, cold and heat in
// dormitories, and remote-video supervision.
func supervision() *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder("Civil-affairs supervision 民政监管").
		Uid("sw-supervision").
		Description("For civil-affairs supervisors: open alarms, escalations, cameras, gateways' last contact, night exits, cold and heat exposure, remote-video sessions. 供民政监管人员使用。").
		Tags([]string{"shelterwatch", "civil-affairs"}).
		Timezone("browser").Time("now-7d", "now").Refresh("1m").Readonly()
	influxVariables(b)
	fluxBucket(b)
	sample := "5"
	b.WithVariable(dashboard.NewConstantVariableBuilder("sample_minutes").Label("Minutes between temperature readings").
		Value(dashboard.StringOrMap{String: &sample}))
	influx := Ref(InfluxType, InfluxQLUID)
	fl := Ref(InfluxType, FluxUID)
	gw := Ref(GatewayType, GatewayUID)
	var l layout
	l.add(b, panel{viz: vizStat, title: "Open alarms 未关闭报警", w: 6, h: 5, ds: gw, targets: targets(gateway("A", QueryAlarms))})
	l.add(b, panel{viz: vizTable, title: "Escalations 升级", desc: "Alarms escalated because nobody acknowledged them in time.",
		w: 6, h: 5, ds: gw, targets: targets(gateway("A", QueryAlarms))})
	l.add(b, panel{viz: vizTable, title: "Cameras live or dark 摄像头状态", w: 6, h: 5, ds: gw, targets: targets(gateway("A", QueryCameras))})
	l.add(b, panel{viz: vizTable, title: "Last contact 最后联系", desc: "Newest reading InfluxDB holds from each facility's gateway, per kind.",
		w: 6, h: 5, ds: influx,
		targets: targets(influxQL("A", `SELECT last("value") FROM "temperature", "humidity", "smoke", "door", "availability", "fault" WHERE $timeFilter GROUP BY "facility"`, true))})
	l.add(b, panel{viz: vizText, title: "Night exits: how to read 夜间外出说明", w: 24, h: 3,
		markdown: "Night exits count door openings (door = true) in the secure-ward zones picked by **Secure ward** (zones whose id contains `ward`). " +
			"The table lists every opening of the time range: InfluxQL cannot select hours of the day, so read the time column. " +
			"The chart beside it (Flux) keeps only 22:00–06:00 China Standard Time.\n\n" +
			"夜间外出：监护区（区域编号含 `ward`）门磁打开次数。表格列出全部打开记录（InfluxQL 无法按小时筛选）；右侧图表（Flux）只统计北京时间 22:00–06:00。"})
	l.add(b, panel{viz: vizTable, title: "Door openings in secure wards 监护区开门记录", w: 12, h: 8, ds: influx,
		targets: targets(influxQL("A", `SELECT "value", "device", "zone" FROM "door" WHERE "value" = true AND "facility" =~ /^$facility$/ AND "zone" =~ /^$ward$/ AND $timeFilter`, true))})
	l.add(b, panel{viz: vizBarGauge, title: "Night exits per ward 夜间外出次数", desc: "Door openings 22:00–06:00 (UTC+8) per secure-ward zone (Flux).",
		w: 12, h: 8, ds: fl,
		targets: targets(flux("A", `from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "door" and r._field == "value" and r.facility == "${facility}" and r.zone =~ /${ward:regex}/)
  |> filter(fn: (r) => r._value == true)
  |> `+nightHoursUTC+`
  |> group(columns: ["zone"])
  |> count()`))})
	l.add(b, panel{viz: vizBarGauge, title: "Cold exposure (< 16 °C) 低温时长", desc: "Minutes below 16 °C per dormitory: readings below the threshold × minutes between readings (InfluxQL).",
		unit: "m", w: 8, h: 7, ds: influx,
		targets: targets(influxQL("A", `SELECT count("value") * $sample_minutes FROM "temperature" WHERE "value" < 16 AND "facility" =~ /^$facility$/ AND "zone" =~ /^$dorm$/ AND $timeFilter GROUP BY "zone"`, false))})
	l.add(b, panel{viz: vizBarGauge, title: "Heat exposure (> 32 °C) 高温时长", desc: "Minutes above 32 °C per dormitory (InfluxQL, as cold exposure).",
		unit: "m", w: 8, h: 7, ds: influx,
		targets: targets(influxQL("A", `SELECT count("value") * $sample_minutes FROM "temperature" WHERE "value" > 32 AND "facility" =~ /^$facility$/ AND "zone" =~ /^$dorm$/ AND $timeFilter GROUP BY "zone"`, false))})
	l.add(b, panel{viz: vizBarGauge, title: "Cold and heat, time-weighted 低温高温时长（按时间）", desc: "Minutes below 16 °C and above 32 °C per dormitory device, each minute taking the last reading (Flux).",
		unit: "m", w: 8, h: 7, ds: fl,
		targets: targets(
			flux("A", dormMinutes(`r._value < 16.0`, "cold")),
			flux("B", dormMinutes(`r._value > 32.0`, "heat")))})
	l.add(b, panel{viz: vizTable, title: "Remote-video supervision 远程视频监督", desc: "Who watched which camera, when and for how long (the gateway's viewing audit).",
		w: 24, h: 7, ds: gw, targets: targets(gateway("A", QueryVideoSessions))})
	return b
}

// dormMinutes is a Flux query counting the minutes a dormitory's
// temperature met cond.
func dormMinutes(cond, name string) string {
	return `from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "temperature" and r._field == "value" and r.facility == "${facility}" and r.zone =~ /${dorm:regex}/)
  |> keep(columns: ["_start", "_stop", "_time", "_value", "zone", "device"])
  |> aggregateWindow(every: 1m, fn: last, createEmpty: true)
  |> fill(usePrevious: true)
  |> filter(fn: (r) => exists r._value and ` + cond + `)
  |> count()
  |> map(fn: (r) => ({r with _field: "` + name + `"}))`
}
