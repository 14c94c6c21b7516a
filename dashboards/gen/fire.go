//lint:file-ignore SA1019 the classic dashboard model is what Grafana's file provisioning reads; the SDK marks it deprecated in favour of the v2 schema

package gen

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// The filter every InfluxQL query of the facility dashboards starts with.
const (
	whereFacility = `"facility" =~ /^$facility$/ AND $timeFilter`
	whereZone     = `"facility" =~ /^$facility$/ AND "zone" =~ /^$zone$/ AND $timeFilter`
	whereDevice   = `"facility" =~ /^$facility$/ AND "zone" =~ /^$zone$/ AND "device" =~ /^$device$/ AND $timeFilter`
)

func targets(ts ...cog.Builder[variants.Dataquery]) []cog.Builder[variants.Dataquery] { return ts }

// fireSafety is the fire-safety inspector's dashboard: temperatures and
// their rate of rise, smoke events, whether detectors were online, their
// batteries, and the alarms with their time to acknowledge.
func fireSafety() *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder("Fire-safety inspection 消防安全检查").
		Uid("sw-fire-safety").
		Description("For fire-safety inspectors: temperatures, smoke, detector availability, batteries and alarms of one facility. 供消防检查人员使用。").
		Tags([]string{"shelterwatch", "fire-safety"}).
		Timezone("browser").Time("now-7d", "now").Refresh("1m").Readonly()
	influxVariables(b)
	fluxBucket(b)
	influx := Ref(InfluxType, InfluxQLUID)
	fl := Ref(InfluxType, FluxUID)
	gw := Ref(GatewayType, GatewayUID)
	var l layout
	l.add(b, panel{viz: vizStat, title: "Alarms 报警数", desc: "Alarms raised in the time range, from the gateway's alarm report (alarms are not in InfluxDB).",
		w: 8, h: 5, ds: gw, targets: targets(gateway("A", QueryAlarmReport))})
	l.add(b, panel{viz: vizTable, title: "Time to acknowledge 确认用时", desc: "Per rule, zone and severity: alarms raised, acknowledged, never acknowledged, and the median, 90th percentile and slowest time to acknowledge (the gateway's alarm report over the time range).",
		w: 16, h: 5, ds: gw, targets: targets(gateway("A", QueryAlarmReport))})
	l.add(b, panel{viz: vizTimeSeries, title: "Temperature per zone 各区域温度", unit: "celsius", w: 12, h: 8, ds: influx,
		targets: targets(influxQL("A", `SELECT mean("value") FROM "temperature" WHERE `+whereZone+` GROUP BY time($__interval), "zone" fill(none)`, false))})
	l.add(b, panel{viz: vizTimeSeries, title: "Rate of rise 升温速率", desc: "°C per minute; a fast rise is how heat detectors see a fire.",
		unit: "none", w: 12, h: 8, ds: influx,
		targets: targets(influxQL("A", `SELECT derivative(mean("value"), 1m) FROM "temperature" WHERE `+whereZone+` GROUP BY time($__interval), "zone" fill(none)`, false))})
	l.add(b, panel{viz: vizStateTimeline, title: "Smoke 烟雾", desc: "Smoke detector states (true: smoke).", w: 12, h: 7, ds: influx,
		targets: targets(influxQL("A", `SELECT "value" FROM "smoke" WHERE `+whereDevice+` GROUP BY "device"`, false))})
	l.add(b, panel{viz: vizTable, title: "Smoke events 烟雾事件", w: 12, h: 7, ds: influx,
		targets: targets(influxQL("A", `SELECT "value", "device", "zone" FROM "smoke" WHERE "value" = true AND `+whereDevice, true))})
	l.add(b, panel{viz: vizStateTimeline, title: "Detector availability 探测器在线", desc: "availability (true: online) of each device.", w: 12, h: 7, ds: influx,
		targets: targets(influxQL("A", `SELECT "value" FROM "availability" WHERE `+whereDevice+` GROUP BY "device"`, false))})
	l.add(b, panel{viz: vizBarGauge, title: "Percent online 在线率", desc: "Share of the time range each device was online, time-weighted (Flux).",
		unit: "percent", w: 12, h: 7, ds: fl,
		targets: targets(flux("A", `from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "availability" and r._field == "value" and r.facility == "${facility}")
  |> keep(columns: ["_start", "_stop", "_time", "_value", "device"])
  |> aggregateWindow(every: 1m, fn: last, createEmpty: true)
  |> fill(usePrevious: true)
  |> filter(fn: (r) => exists r._value)
  |> map(fn: (r) => ({r with _value: if r._value then 100.0 else 0.0}))
  |> mean()`))})
	l.add(b, panel{viz: vizTable, title: "Outages 离线记录", desc: "Offline minutes per device (InfluxQL, from availability), and devices the gateway could not reach (reach not ok).",
		w: 12, h: 7, ds: influx,
		targets: targets(
			influxQL("A", `SELECT count("last") AS "offline_minutes" FROM (SELECT last("value") FROM "availability" WHERE `+whereDevice+` GROUP BY time(1m), "device" fill(previous)) WHERE "last" = false GROUP BY "device"`, true),
			influxQL("B", `SELECT "value", "device", "zone" FROM "reach" WHERE "value" <> 'ok' AND `+whereFacility, true))})
	l.add(b, panel{viz: vizBarGauge, title: "Battery 电池电量", desc: "Last battery level of each device: the battery field of its readings, or its battery readings.",
		unit: "percent", w: 12, h: 7, ds: influx,
		targets: targets(
			influxQL("A", `SELECT last("battery") FROM "smoke", "temperature", "door", "co", "humidity" WHERE `+whereDevice+` GROUP BY "device"`, false),
			influxQL("B", `SELECT last("value") FROM "battery" WHERE `+whereDevice+` GROUP BY "device"`, false))})
	return b
}
