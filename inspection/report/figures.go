package report

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// The summary tables, one builder each, in the order the report shows
// them.

// Units.
var (
	unitHours   = Text{ZH: "小时", EN: "h"}
	unitMinutes = Text{ZH: "分钟", EN: "min"}
	unitPercent = Text{ZH: "%", EN: "%"}
)

func col(id, zh, en string) Column { return Column{ID: id, Title: Text{ZH: zh, EN: en}} }

func colU(id, zh, en string, unit Text) Column {
	return Column{ID: id, Title: Text{ZH: zh, EN: en}, Unit: unit}
}

// devices: per kind of device, how many and how available they were.
func (g *gen) devices(ctx context.Context) (section, error) {
	s := section{table: Table{
		ID: "devices", Title: Text{ZH: "一、设备在线情况", EN: "1. Devices online"},
		Columns: []Column{col("kind", "设备类型", "Kind of device"), col("devices", "设备数", "Devices"),
			colU("online_pct", "在线率", "Online", unitPercent), colU("offline_hours", "离线时长", "Offline", unitHours),
			colU("unknown_hours", "状态未知时长", "State unknown", unitHours), col("devices_with_outage", "发生离线的设备数", "Devices with an outage")},
		Note: Text{ZH: "离线：设备报告离线或超过其离线判定时间无数据；状态未知：尚无数据、网桥离线或设备已移除。在线率为在线时长占全部设备时长之比。",
			EN: "Offline: the device reported itself offline or was silent beyond its offline_after; unknown: no data yet, its bridge offline, or removed. Online is the share of all devices' time they were online."},
	}}
	byKind := map[string][]facility.Device{}
	for _, d := range g.f.Devices {
		if !d.Builtin {
			byKind[string(d.Kind)] = append(byKind[string(d.Kind)], d)
		}
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		devs := byKind[kind]
		slices.SortFunc(devs, func(a, b facility.Device) int { return cmp.Compare(a.ID, b.ID) })
		ref := "devices." + kind
		det := Table{ID: ref, Title: Text{ZH: "设备在线明细：" + kindText(kind).ZH, EN: "Device availability: " + kindText(kind).EN},
			Columns: []Column{col("device", "设备", "Device"), col("name", "名称", "Name"), col("zone", "区域", "Zone"),
				col("state", "状态", "State"), col("cause", "原因", "Cause"), col("start", "开始", "Start"), col("end", "结束", "End"),
				colU("hours", "时长", "Duration", unitHours)}}
		var online, offline, unknown time.Duration
		outages := 0
		for _, d := range devs {
			base := []Cell{id(d.ID), id(d.Name), text(g.zoneText(d.Zone))}
			if g.opts.Availability == nil {
				det.Rows = append(det.Rows, append(base, na(), na(), Cell{}, Cell{}, na()))
				continue
			}
			segs, err := g.opts.Availability(ctx, d, g.from, g.end)
			if err != nil {
				return section{}, fmt.Errorf("report: availability of device %s: %w", d.ID, err)
			}
			outage := false
			for _, sg := range segs {
				dur := sg.End.Sub(sg.Start)
				switch sg.State {
				case facility.Online:
					online += dur
				case facility.Offline:
					offline += dur
					outage = true
				default:
					unknown += dur
				}
				row := slices.Concat(base, []Cell{text(stateText(sg.State)), text(causeText(sg.Cause)), at(sg.Start), at(sg.End), num(round2(dur.Hours()), "")})
				det.Rows = append(det.Rows, row)
			}
			if outage {
				outages++
			}
		}
		row := []Cell{text(kindText(kind)), count(len(devs), ref)}
		if g.opts.Availability == nil {
			row = append(row, na(), na(), na(), na())
		} else {
			pct := 0.0
			if total := online + offline + unknown; total > 0 {
				pct = 100 * online.Hours() / total.Hours()
			}
			row = append(row, num(round2(pct), ref), num(round2(offline.Hours()), ref), num(round2(unknown.Hours()), ref), count(outages, ref))
		}
		s.table.Rows = append(s.table.Rows, row)
		s.details = append(s.details, det)
	}
	return s, nil
}

// raised returns the episodes that fired in the period, walk tests left
// out, sorted by firing time.
func (g *gen) raised(keep func(*episode) bool) []*episode {
	var out []*episode
	for _, ep := range g.episodes {
		if !ep.walkTest && g.inPeriod(ep.fired) && keep(ep) {
			out = append(out, ep)
		}
	}
	slices.SortFunc(out, func(a, b *episode) int {
		return cmp.Or(a.fired.Compare(b.fired), cmp.Compare(a.key.id, b.key.id), cmp.Compare(a.key.seq, b.key.seq))
	})
	return out
}

var episodeColumns = []Column{col("alarm", "报警编号", "Alarm"), col("seq", "序号", "Seq"), col("rule", "规则", "Rule"),
	col("severity", "级别", "Severity"), col("zone", "区域", "Zone"), col("fired", "报警时间", "Fired"),
	col("acknowledged", "确认时间", "Acknowledged"), col("by", "确认人", "By"), col("comment", "确认说明", "Comment"),
	col("ended", "结束时间", "Ended")}

func (g *gen) episodeRow(ep *episode) []Cell {
	return []Cell{id(ep.key.id), num(float64(ep.key.seq), ""), id(ep.rule), text(severityText(ep.severity)), text(g.zoneText(ep.zone)),
		at(ep.fired), at(ep.acked), id(ep.ackBy), id(ep.comment), at(ep.ended)}
}

// alarms: per rule and severity, how many alarms were raised and how
// fast people acknowledged them.
func (g *gen) alarms() section {
	s := section{table: Table{
		ID: "alarms", Title: Text{ZH: "二、报警及处置情况", EN: "2. Alarms and their handling"},
		Columns: []Column{col("rule", "规则", "Rule"), col("severity", "级别", "Severity"), col("raised", "报警数", "Raised"),
			col("acknowledged", "已确认", "Acknowledged"), col("never_acknowledged", "未确认", "Never acknowledged"),
			colU("ack_median_min", "确认用时中位数", "Time to acknowledge, median", unitMinutes),
			colU("ack_p90_min", "确认用时90分位", "Time to acknowledge, 90th percentile", unitMinutes),
			colU("ack_max_min", "最长确认用时", "Slowest acknowledgement", unitMinutes),
			col("slowest_reason", "最长用时原因", "Reason of the slowest")},
		Note: Text{ZH: "统计本期内触发的报警；巡检测试期间的报警不计入。未确认：至本期结束仍未确认。百分位按最近秩计算。",
			EN: "Alarms that fired in the period; those raised during walk tests are left out. Never acknowledged: not acknowledged by the end of the period. Percentiles by nearest rank."},
	}}
	type group struct {
		rule, severity string
		eps            []*episode
	}
	groups := map[[2]string]*group{}
	for _, ep := range g.raised(func(*episode) bool { return true }) {
		k := [2]string{ep.rule, ep.severity}
		if groups[k] == nil {
			groups[k] = &group{rule: ep.rule, severity: ep.severity}
		}
		groups[k].eps = append(groups[k].eps, ep)
	}
	list := make([]*group, 0, len(groups))
	for _, gr := range groups {
		list = append(list, gr)
	}
	slices.SortFunc(list, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.rule, b.rule), -cmp.Compare(alarm.Severity(a.severity).Rank(), alarm.Severity(b.severity).Rank()), cmp.Compare(a.severity, b.severity))
	})
	for _, gr := range list {
		ref := "alarms." + gr.rule + "." + gr.severity
		det := Table{ID: ref, Title: Text{ZH: "报警明细：" + gr.rule + "（" + severityText(gr.severity).ZH + "）", EN: "Alarms: " + gr.rule + " (" + gr.severity + ")"},
			Columns: episodeColumns}
		type ack struct {
			d  time.Duration
			ep *episode
		}
		var acks []ack
		for _, ep := range gr.eps {
			det.Rows = append(det.Rows, g.episodeRow(ep))
			if !ep.acked.IsZero() {
				acks = append(acks, ack{ep.acked.Sub(ep.fired), ep})
			}
		}
		row := []Cell{id(gr.rule), text(severityText(gr.severity)), count(len(gr.eps), ref), count(len(acks), ref), count(len(gr.eps)-len(acks), ref)}
		if len(acks) == 0 {
			row = append(row, Cell{}, Cell{}, Cell{}, Cell{})
		} else {
			slices.SortStableFunc(acks, func(a, b ack) int { return cmp.Compare(a.d, b.d) })
			// Nearest rank: each figure is a time someone actually took.
			rank := func(p float64) float64 {
				i := max(int(math.Ceil(p*float64(len(acks))))-1, 0)
				return round2(acks[i].d.Minutes())
			}
			slow := acks[len(acks)-1].ep
			reason := slow.comment
			if reason == "" {
				reason = fmt.Sprintf("%s #%d", slow.key.id, slow.key.seq)
			}
			row = append(row, num(rank(0.5), ref), num(rank(0.9), ref), num(rank(1), ref), Cell{Text: &Text{ZH: reason, EN: reason}, Detail: ref})
		}
		s.table.Rows = append(s.table.Rows, row)
		s.details = append(s.details, det)
	}
	return s
}

// escalations: the alarms whose escalation reached the civil-affairs
// department.
func (g *gen) escalations() section {
	const ref = "escalations.list"
	s := section{table: Table{
		ID: "escalations", Title: Text{ZH: "三、上报民政部门的报警", EN: "3. Alarms escalated to the civil-affairs department"},
		Columns: []Column{col("department_level", "上报民政部门的升级级别", "Escalation level of the department"), col("alarms", "报警数", "Alarms")},
	}}
	det := Table{ID: ref, Title: Text{ZH: "上报明细", EN: "Escalations to the department"},
		Columns: []Column{col("time", "升级时间", "Escalated"), col("alarm", "报警编号", "Alarm"), col("seq", "序号", "Seq"),
			col("rule", "规则", "Rule"), col("severity", "级别", "Severity"), col("zone", "区域", "Zone"), col("level", "级别序号", "Level")}}
	lv := g.opts.DepartmentLevel
	if lv <= 0 {
		s.table.Rows = [][]Cell{{na(), na()}}
		return s
	}
	seen := map[episodeKey]bool{}
	for i := len(g.escalated) - 1; i >= 0; i-- { // oldest first
		e := &g.escalated[i]
		if e.Alarm.Level < lv {
			continue
		}
		k := episodeKey{e.Alarm.AlarmID, e.Alarm.Seq}
		seen[k] = true
		sev := ""
		if ep := g.episodes[k]; ep != nil {
			sev = ep.severity
		}
		det.Rows = append(det.Rows, []Cell{at(e.Time), id(k.id), num(float64(k.seq), ""), id(e.Alarm.Rule), text(severityText(sev)),
			text(g.zoneText(g.alarmZone(k.id))), num(float64(e.Alarm.Level), "")})
	}
	s.table.Rows = [][]Cell{{num(float64(lv), ""), count(len(seen), ref)}}
	s.details = []Table{det}
	return s
}

// walkTests: the walk tests started or ended in the period.
func (g *gen) walkTests() section {
	const ref = "walktests.list"
	s := section{table: Table{
		ID: "walktests", Title: Text{ZH: "四、巡检测试情况", EN: "4. Walk tests"},
		Columns: []Column{col("walk_tests", "巡检测试次数", "Walk tests"), col("completed", "已结束", "Completed"),
			col("with_silent_devices", "有设备未响应的", "With silent devices")},
	}}
	det := Table{ID: ref, Title: Text{ZH: "巡检测试明细", EN: "Walk tests"},
		Columns: []Column{col("walk_test", "编号", "Walk test"), col("started", "开始时间", "Started"), col("started_by", "发起人", "Started by"),
			col("scope", "范围", "Scope"), col("ended", "结束时间", "Ended"), col("ended_by", "结束人", "Ended by"), col("result", "结果", "Result")}}
	type walk struct {
		id                     string
		started, ended         time.Time
		by, scope, endBy, outc string
		inPeriod, silent       bool
	}
	walks := map[string]*walk{}
	var order []*walk
	for i := len(g.walkEntries) - 1; i >= 0; i-- { // oldest first
		e := &g.walkEntries[i]
		wid, rest, _ := strings.Cut(e.Detail, ": ")
		w := walks[wid]
		if w == nil {
			w = &walk{id: wid}
			walks[wid] = w
			order = append(order, w)
		}
		w.inPeriod = w.inPeriod || g.inPeriod(e.Time)
		if e.Action == actionWalktestStarted {
			w.started, w.by, w.scope = e.Time, e.By, rest
		} else {
			w.ended, w.endBy, w.outc = e.Time, e.By, rest
			w.silent = strings.Contains(rest, "; silent: ")
		}
	}
	n, done, silent := 0, 0, 0
	for _, w := range order {
		if !w.inPeriod {
			continue
		}
		n++
		if !w.ended.IsZero() {
			done++
		}
		if w.silent {
			silent++
		}
		det.Rows = append(det.Rows, []Cell{id(w.id), at(w.started), id(w.by), id(w.scope), at(w.ended), id(w.endBy), id(w.outc)})
	}
	s.table.Rows = [][]Cell{{count(n, ref), count(done, ref), count(silent, ref)}}
	s.details = []Table{det}
	return s
}

// hazards: what happened to the items of the hazard list.
func (g *gen) hazards() section {
	s := section{table: Table{
		ID: "hazards", Title: Text{ZH: "五、隐患排查整改情况", EN: "5. Hazard list"},
		Columns: []Column{col("opened", "新发现", "Opened"), col("rectified", "已整改", "Rectified"), col("verified", "已验收", "Verified"),
			col("reopened", "重新打开", "Reopened"), col("overdue", "逾期", "Overdue"), col("open_at_end", "期末未整改", "Open at the end")},
		Note: Text{ZH: "各项为本期内发生该操作的隐患条目数（同一条目只计一次）。期末未整改按期初前一个月起的记录推算：更早发现且此后无任何记录的条目不计入。",
			EN: "Each figure is the number of items that had that action in the period (an item counts once). Open at the end is worked out from the entries since a month before the period: an item opened earlier and not touched since is not seen."},
	}}
	hazardCols := []Column{col("hazard", "隐患编号", "Hazard"), col("time", "时间", "Time"), col("action", "操作", "Action"),
		col("status", "状态", "Status"), col("rule", "规则", "Rule"), col("zone", "区域", "Zone"), col("subject", "对象", "Subject"),
		col("deadline", "整改期限", "Deadline"), col("by", "操作人", "By")}
	row := func(e *audit.Entry) []Cell {
		h := e.Hazard
		return []Cell{id(h.HazardID), at(e.Time), id(strings.TrimPrefix(e.Action, "hazard_")), id(h.Status), id(h.Rule),
			text(g.zoneText(h.Zone)), id(h.Subject), at(h.Deadline), id(e.By)}
	}
	var cells []Cell
	for _, a := range []struct{ action, zh, en string }{
		{audit.ActionHazardOpened, "新发现", "opened"}, {audit.ActionHazardRectified, "已整改", "rectified"},
		{audit.ActionHazardVerified, "已验收", "verified"}, {audit.ActionHazardReopened, "重新打开", "reopened"},
		{audit.ActionHazardOverdue, "逾期", "overdue"},
	} {
		ref := "hazards." + a.en
		det := Table{ID: ref, Title: Text{ZH: "隐患明细：" + a.zh, EN: "Hazard items " + a.en}, Columns: hazardCols}
		items := map[string]bool{}
		for i := len(g.hazard) - 1; i >= 0; i-- { // oldest first
			e := &g.hazard[i]
			if e.Action == a.action && g.inPeriod(e.Time) {
				items[e.Hazard.HazardID] = true
				det.Rows = append(det.Rows, row(e))
			}
		}
		cells = append(cells, count(len(items), ref))
		s.details = append(s.details, det)
	}
	// The newest entry that says an item's status decides it.
	const ref = "hazards.open_at_end"
	det := Table{ID: ref, Title: Text{ZH: "期末未整改隐患", EN: "Hazard items open at the end"}, Columns: hazardCols}
	decided := map[string]bool{}
	var open []*audit.Entry
	for i := range g.hazard {
		e := &g.hazard[i]
		hid := e.Hazard.HazardID
		if decided[hid] {
			continue
		}
		st := hazardStatus(e)
		if st == "" {
			continue
		}
		decided[hid] = true
		if st == "open" {
			open = append(open, e)
		}
	}
	slices.SortFunc(open, func(a, b *audit.Entry) int { return cmp.Compare(a.Hazard.HazardID, b.Hazard.HazardID) })
	for _, e := range open {
		det.Rows = append(det.Rows, row(e))
	}
	cells = append(cells, count(len(open), ref))
	s.details = append(s.details, det)
	s.table.Rows = [][]Cell{cells}
	return s
}

// hazardStatus is an item's status after e: its Status, or what the
// action implies; "" when neither says (overdue, updated without one).
func hazardStatus(e *audit.Entry) string {
	if st := e.Hazard.Status; st != "" {
		return st
	}
	switch e.Action {
	case audit.ActionHazardOpened, audit.ActionHazardReopened:
		return "open"
	case audit.ActionHazardRectified:
		return "rectified"
	case audit.ActionHazardVerified:
		return "verified"
	}
	return ""
}
