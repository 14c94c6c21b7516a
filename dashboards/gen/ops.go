//lint:file-ignore SA1019 the classic dashboard model is what Grafana's file provisioning reads; the SDK marks it deprecated in favour of the v2 schema

package gen

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

func prom(ref, expr, legend string) cog.Builder[variants.Dataquery] {
	return prometheus.NewDataqueryBuilder().RefId(ref).Datasource(Ref(PrometheusType, PrometheusUID)).
		Expr(expr).LegendFormat(legend).Range()
}

// sel is the label selector of the instance variable.
const sel = `{instance=~"$instance"}`

// gatewayOps is the operator's dashboard of the gateway itself, from its
// Prometheus metrics (README, "Metrics").
func gatewayOps() *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder("Gateway operations 网关运维").
		Uid("sw-gateway-ops").
		Description("For whoever runs the gateways: ingest, dead letters, the InfluxDB forwarder, disk, video viewers, alarm delivery. 供网关运维人员使用。").
		Tags([]string{"shelterwatch", "gateway-ops"}).
		Timezone("browser").Time("now-24h", "now").Refresh("30s").Readonly()
	ds := Ref(PrometheusType, PrometheusUID)
	q := `label_values(shelterwatch_store_last_seq, instance)`
	b.WithVariable(dashboard.NewQueryVariableBuilder("instance").Label("Gateway 网关").Datasource(ds).
		Query(dashboard.StringOrMap{String: &q}).Definition(q).Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).Multi(true).IncludeAll(true))
	var l layout
	l.add(b, panel{viz: vizTimeSeries, title: "Ingest rate 接入速率", unit: "reqps", w: 12, h: 8, ds: ds, targets: targets(
		prom("A", `sum by (instance) (rate(shelterwatch_ingest_readings_total`+sel+`[$__rate_interval]))`, "{{instance}} readings/s"),
		prom("B", `sum by (instance, format) (rate(shelterwatch_ingest_messages_total`+sel+`[$__rate_interval]))`, "{{instance}} {{format}} messages/s"))})
	l.add(b, panel{viz: vizTimeSeries, title: "Dead letters 死信", w: 12, h: 8, ds: ds, targets: targets(
		prom("A", `sum by (instance, reason) (increase(shelterwatch_ingest_dead_lettered_total`+sel+`[$__rate_interval]))`, "{{instance}} ingest {{reason}}"),
		prom("B", `sum by (instance, target) (increase(shelterwatch_forward_dead_lettered_total`+sel+`[$__rate_interval]))`, "{{instance}} InfluxDB {{target}}"))})
	l.add(b, panel{viz: vizTimeSeries, title: "Forwarder backlog 转发积压", unit: "short", w: 8, h: 8, ds: ds, targets: targets(
		prom("A", `shelterwatch_forward_backlog_points`+sel, "{{instance}} {{target}}"))})
	l.add(b, panel{viz: vizTimeSeries, title: "Forwarder lag 转发延迟", unit: "s", w: 8, h: 8, ds: ds, targets: targets(
		prom("A", `shelterwatch_forward_backlog_seconds`+sel, "{{instance}} {{target}} oldest unsent"),
		prom("B", `time() - shelterwatch_forward_last_success_timestamp_seconds`+sel, "{{instance}} {{target}} since last write"))})
	l.add(b, panel{viz: vizTimeSeries, title: "Disk use 磁盘占用", unit: "bytes", w: 8, h: 8, ds: ds, targets: targets(
		prom("A", `shelterwatch_store_size_bytes`+sel, "{{instance}} store"),
		prom("B", `shelterwatch_store_disk_full`+sel, "{{instance}} disk full"))})
	l.add(b, panel{viz: vizTimeSeries, title: "Video viewers 视频观看人数", unit: "short", w: 12, h: 8, ds: ds, targets: targets(
		prom("A", `sum by (instance) (shelterwatch_video_sessions`+sel+`)`, "{{instance}}"))})
	l.add(b, panel{viz: vizTimeSeries, title: "Alarm delivery latency (p95) 报警送达延迟", unit: "s", w: 12, h: 8, ds: ds, targets: targets(
		prom("A", `histogram_quantile(0.95, sum by (le, channel) (rate(shelterwatch_notify_delivery_latency_seconds_bucket`+sel+`[$__rate_interval])))`, "{{channel}}"))})
	return b
}
