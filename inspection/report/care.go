package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// The figures about residents' care: remote supervision of foster
// placements, dormitory temperatures, night exits from secure wards.

// video: per camera of a supervised zone, who watched it and for how long.
func (g *gen) video() section {
	s := section{table: Table{
		ID: "video", Title: Text{ZH: "六、寄养点远程视频监督情况", EN: "6. Remote video supervision of foster placements"},
		Columns: []Column{col("camera", "摄像头", "Camera"), col("zone", "区域", "Zone"), col("sessions", "查看次数", "Viewing sessions"),
			col("supervisors", "查看人数", "Supervisors"), colU("minutes", "查看时长", "Watched", unitMinutes),
			col("days_without_view", "无人查看天数", "Days without a view")},
		Note: Text{ZH: "查看时长计入本期内的部分；期末仍在进行的查看计至期末。无人查看天数只计已结束的自然日（机构所在时区）。",
			EN: "Minutes within the period; a session still open at its end counts until then. Days without a view count whole calendar days (the facility's time zone) that are over."},
	}}
	var cams []facility.Camera
	for _, c := range g.f.Cameras {
		if z := g.zones[c.Zone]; z != nil && z.HasTag(g.opts.SupervisedTag) {
			cams = append(cams, c)
		}
	}
	slices.SortFunc(cams, func(a, b facility.Camera) int { return cmp.Compare(a.ID, b.ID) })
	byCam := map[string][]*session{}
	for _, ss := range g.sessions {
		if ss.started.IsZero() || !ss.started.Before(g.end) || (!ss.ended.IsZero() && !ss.ended.After(g.from)) {
			continue
		}
		byCam[ss.camera] = append(byCam[ss.camera], ss)
	}
	// Whole local days of the period that are over.
	var days []span
	for d := g.from.In(g.loc); ; {
		next := time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, g.loc)
		if next.After(g.end) {
			break
		}
		days = append(days, span{d, next})
		d = next
	}
	for _, c := range cams {
		sref, dref := "video."+c.ID+".sessions", "video."+c.ID+".days"
		name := Text{ZH: c.NameZH, EN: c.DisplayName()}
		if name.ZH == "" {
			name.ZH = name.EN
		}
		sdet := Table{ID: sref, Title: Text{ZH: "查看记录：" + name.ZH, EN: "Viewing sessions: " + name.EN},
			Columns: []Column{col("session", "会话", "Session"), col("user", "查看人", "User"), col("started", "开始", "Started"),
				col("ended", "结束", "Ended"), colU("minutes", "时长", "Watched", unitMinutes)}}
		ddet := Table{ID: dref, Title: Text{ZH: "无人查看的日期：" + name.ZH, EN: "Days without a view: " + name.EN},
			Columns: []Column{col("date", "日期", "Date")}}
		list := byCam[c.ID]
		slices.SortFunc(list, func(a, b *session) int { return cmp.Or(a.started.Compare(b.started), cmp.Compare(a.id, b.id)) })
		users := map[string]bool{}
		var watched time.Duration
		viewed := make([]bool, len(days))
		for _, ss := range list {
			stop := ss.ended
			if stop.IsZero() {
				stop = g.end // still open: it counts until the end
			}
			sp, _ := (span{ss.started, stop}).clip(g.from, g.end)
			d := sp.to.Sub(sp.from)
			watched += d
			users[ss.by] = true
			for i, day := range days {
				if sp.from.Before(day.to) && (sp.to.After(day.from) || sp.from.Equal(day.from)) {
					viewed[i] = true
				}
			}
			sdet.Rows = append(sdet.Rows, []Cell{id(ss.id), id(ss.by), at(ss.started), at(ss.ended), num(round2(d.Minutes()), "")})
		}
		idle := 0
		for i, day := range days {
			if !viewed[i] {
				idle++
				ddet.Rows = append(ddet.Rows, []Cell{id(day.from.Format("2006-01-02"))})
			}
		}
		s.table.Rows = append(s.table.Rows, []Cell{text(name), text(g.zoneText(c.Zone)), count(len(list), sref), count(len(users), sref),
			num(round2(watched.Minutes()), sref), count(idle, dref)})
		s.details = append(s.details, sdet, ddet)
	}
	return s
}

// taggedZones returns the zones carrying tag, by id.
func (g *gen) taggedZones(tag string) []facility.Zone {
	var out []facility.Zone
	for _, z := range g.f.Zones {
		if z.HasTag(tag) {
			out = append(out, z)
		}
	}
	slices.SortFunc(out, func(a, b facility.Zone) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// dormitories: hours of cold-season cold alarms and hot-season heat
// alarms per dormitory.
func (g *gen) dormitories() section {
	s := section{table: Table{
		ID: "dormitory", Title: Text{ZH: "七、宿舍温度异常情况", EN: "7. Dormitory temperatures"},
		Columns: []Column{col("zone", "宿舍", "Dormitory"), colU("cold_hours", "冬季低温时长", "Too cold in the cold season", unitHours),
			col("cold_alarms", "低温报警次数", "Cold alarms"), colU("hot_hours", "夏季高温时长", "Too hot in the hot season", unitHours),
			col("hot_alarms", "高温报警次数", "Heat alarms")},
		Note: Text{ZH: "报警从触发到解除的时长，只计本期与季节内的部分。",
			EN: "From an alarm's firing to its end, only the part within the period and the season."},
	}}
	epCols := []Column{col("alarm", "报警编号", "Alarm"), col("seq", "序号", "Seq"), col("fired", "报警时间", "Fired"),
		col("ended", "结束时间", "Ended"), colU("hours", "计入时长", "Counted", unitHours)}
	for _, z := range g.taggedZones(TagDormitory) {
		row := []Cell{text(g.zoneText(z.ID))}
		for _, k := range []struct {
			rule, name string
			season     facility.Season
			zh, en     string
		}{{RuleDormCold, "cold", g.opts.ColdSeason, "低温", "too cold"}, {RuleDormHot, "hot", g.opts.HotSeason, "高温", "too hot"}} {
			ref := "dormitory." + z.ID + "." + k.name
			det := Table{ID: ref, Title: Text{ZH: "宿舍" + k.zh + "报警：" + g.zoneText(z.ID).ZH, EN: "Dormitory " + k.en + ": " + g.zoneText(z.ID).EN},
				Columns: epCols}
			seasons := seasonSpans(k.season, g.from, g.end, g.loc)
			var total float64
			var eps []*episode
			for _, ep := range g.episodes {
				if ep.rule == k.rule && ep.zone == z.ID && !ep.walkTest {
					eps = append(eps, ep)
				}
			}
			slices.SortFunc(eps, func(a, b *episode) int { return cmp.Or(a.fired.Compare(b.fired), a.ended.Compare(b.ended)) })
			for _, ep := range eps {
				// Fired before the read: it was active from (at least) the
				// read's start, which is before the period.
				active := span{ep.fired, ep.ended}
				if active.from.IsZero() {
					active.from = g.readFrom
				}
				if active.to.IsZero() {
					active.to = g.end
				}
				h := 0.0
				for _, season := range seasons {
					if sp, ok := active.clip(season.from, season.to); ok {
						h += sp.hours()
					}
				}
				if h <= 0 {
					continue
				}
				total += h
				det.Rows = append(det.Rows, []Cell{id(ep.key.id), num(float64(ep.key.seq), ""), at(ep.fired), at(ep.ended), num(round2(h), "")})
			}
			row = append(row, num(round2(total), ref), count(len(det.Rows), ref))
			s.details = append(s.details, det)
		}
		s.table.Rows = append(s.table.Rows, row)
	}
	return s
}

// wards: night exits (doors of secure wards opened at night) per ward.
func (g *gen) wards() section {
	s := section{table: Table{
		ID: "ward", Title: Text{ZH: "八、封闭病区夜间出入情况", EN: "8. Night exits from secure wards"},
		Columns: []Column{col("zone", "病区", "Ward"), col("night_exits", "夜间出入报警次数", "Night exit alarms")},
	}}
	for _, z := range g.taggedZones(TagSecureWard) {
		ref := "ward." + z.ID
		det := Table{ID: ref, Title: Text{ZH: "夜间出入明细：" + g.zoneText(z.ID).ZH, EN: "Night exits: " + g.zoneText(z.ID).EN}, Columns: episodeColumns}
		eps := g.raised(func(ep *episode) bool { return ep.rule == RuleWardNightDoor && ep.zone == z.ID })
		for _, ep := range eps {
			det.Rows = append(det.Rows, g.episodeRow(ep))
		}
		s.table.Rows = append(s.table.Rows, []Cell{text(g.zoneText(z.ID)), count(len(eps), ref)})
		s.details = append(s.details, det)
	}
	return s
}

// Texts of the model's enumerations.

func kindText(kind string) Text {
	if t, ok := map[string]Text{
		"smoke": {"烟雾探测器", "Smoke detectors"}, "door": {"门磁", "Door contacts"}, "temperature": {"温度传感器", "Thermometers"},
		"humidity": {"湿度传感器", "Hygrometers"}, "pressure": {"气压传感器", "Barometers"}, "motion": {"人体感应器", "Motion sensors"},
		"water_leak": {"漏水探测器", "Water leak detectors"}, "panic": {"紧急呼叫按钮", "Panic buttons"}, "tamper": {"防拆开关", "Tamper switches"},
		"co": {"一氧化碳探测器", "CO detectors"}, "battery": {"电池", "Batteries"},
	}[kind]; ok {
		return t
	}
	return same(kind)
}

func stateText(a facility.Availability) Text {
	switch a {
	case facility.Online:
		return Text{"在线", "online"}
	case facility.Offline:
		return Text{"离线", "offline"}
	}
	return Text{"未知", "unknown"}
}

func causeText(c facility.Cause) Text {
	switch c {
	case facility.CauseNone:
		return Text{}
	case facility.CauseNoData:
		return Text{"无数据", "no data"}
	case facility.CauseReported:
		return Text{"设备报告离线", "reported offline"}
	case facility.CauseSilent:
		return Text{"超时无数据", "silent"}
	case facility.CauseBridgeOffline:
		return Text{"网桥离线", "bridge offline"}
	case facility.CauseRemoved:
		return Text{"已移除", "removed"}
	}
	return same(c.String())
}

func severityText(s string) Text {
	if t, ok := map[string]Text{"fire": {"火警", "fire"}, "critical": {"紧急", "critical"}, "warning": {"警告", "warning"},
		"trouble": {"故障", "trouble"}, "info": {"提示", "info"}}[s]; ok {
		return t
	}
	return same(s)
}
