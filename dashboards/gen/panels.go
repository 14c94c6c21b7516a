//lint:file-ignore SA1019 the classic dashboard model is what Grafana's file provisioning reads; the SDK marks it deprecated in favour of the v2 schema

package gen

import (
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/text"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// viz is a panel type.
type viz int

const (
	vizTimeSeries viz = iota
	vizStat
	vizTable
	vizStateTimeline
	vizBarGauge
	vizText
)

// panel is what differs between the dashboards' panels; add turns it into
// the SDK's builder for its type.
type panel struct {
	viz         viz
	title, desc string
	unit        string
	w, h        uint32
	ds          common.DataSourceRef
	targets     []cog.Builder[variants.Dataquery]
	markdown    string // vizText only
}

func (l *layout) add(b *dashboard.DashboardBuilder, p panel) {
	id, pos := l.next(p.w, p.h)
	last := common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})
	switch p.viz {
	case vizTimeSeries:
		pb := timeseries.NewPanelBuilder().Id(id).GridPos(pos).Title(p.title).Description(p.desc).Datasource(p.ds).Targets(p.targets)
		if p.unit != "" {
			pb.Unit(p.unit)
		}
		b.WithPanel(pb)
	case vizStat:
		pb := stat.NewPanelBuilder().Id(id).GridPos(pos).Title(p.title).Description(p.desc).Datasource(p.ds).Targets(p.targets).ReduceOptions(last)
		if p.unit != "" {
			pb.Unit(p.unit)
		}
		b.WithPanel(pb)
	case vizTable:
		pb := table.NewPanelBuilder().Id(id).GridPos(pos).Title(p.title).Description(p.desc).Datasource(p.ds).Targets(p.targets)
		if p.unit != "" {
			pb.Unit(p.unit)
		}
		b.WithPanel(pb)
	case vizStateTimeline:
		b.WithPanel(statetimeline.NewPanelBuilder().Id(id).GridPos(pos).Title(p.title).Description(p.desc).Datasource(p.ds).Targets(p.targets).
			ShowValue(common.VisibilityModeAuto).MergeValues(true))
	case vizBarGauge:
		pb := bargauge.NewPanelBuilder().Id(id).GridPos(pos).Title(p.title).Description(p.desc).Datasource(p.ds).Targets(p.targets).ReduceOptions(last)
		if p.unit != "" {
			pb.Unit(p.unit)
		}
		b.WithPanel(pb)
	case vizText:
		b.WithPanel(text.NewPanelBuilder().Id(id).GridPos(pos).Title(p.title).Mode(text.TextModeMarkdown).Content(p.markdown))
	}
}

// Variables shared by the InfluxDB dashboards. Zone names follow the
// facility file's zone ids; the ward and dorm variables pick secure-ward
// and dormitory zones by name (InfluxDB does not know zone tags).
func influxVariables(b *dashboard.DashboardBuilder) {
	ds := Ref(InfluxType, InfluxQLUID)
	v := func(name, label, query, regex string, multi bool) {
		vb := dashboard.NewQueryVariableBuilder(name).Label(label).Datasource(ds).
			Query(dashboard.StringOrMap{String: &query}).Definition(query).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc)
		if multi {
			vb.Multi(true).IncludeAll(true)
		}
		if regex != "" {
			vb.Regex(regex)
		}
		b.WithVariable(vb)
	}
	v("facility", "Facility 机构", `SHOW TAG VALUES WITH KEY = "facility"`, "", false)
	v("zone", "Zone 区域", `SHOW TAG VALUES WITH KEY = "zone" WHERE "facility" =~ /^$facility$/`, "", true)
	v("device", "Device 设备", `SHOW TAG VALUES WITH KEY = "device" WHERE "facility" =~ /^$facility$/ AND "zone" =~ /^$zone$/`, "", true)
	v("ward", "Secure ward 监护区", `SHOW TAG VALUES WITH KEY = "zone" WHERE "facility" =~ /^$facility$/`, "/ward/", true)
	v("dorm", "Dormitory 宿舍", `SHOW TAG VALUES WITH KEY = "zone" WHERE "facility" =~ /^$facility$/`, "/dorm/", true)
}

// fluxBucket is the constant variable naming the bucket Flux reads: on
// InfluxDB 1.8 "database/retention-policy".
func fluxBucket(b *dashboard.DashboardBuilder) {
	v := "shelterwatch/autogen"
	b.WithVariable(dashboard.NewConstantVariableBuilder("bucket").Label("Flux bucket").Value(dashboard.StringOrMap{String: &v}))
}
