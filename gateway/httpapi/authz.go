package httpapi

import (
	"fmt"
	"net/http"
)

// Permission is one thing a caller may do; every route names the one it
// needs (routes), and a role is a set of them (rolePerms). Roles are sets,
// not ranks: a supervisor watches video an inspector may not, an inspector
// reads history a supervisor does not need.
type Permission uint32

// Permissions.
const (
	// PermDevices: the facility's devices and their live state.
	PermDevices Permission = 1 << iota
	// PermHistory: stored readings (history charts, CSV).
	PermHistory
	// PermAvailability: device availability and outages.
	PermAvailability
	// PermGatewayHealth: the gateway's own state (forwarders' backlog
	// and lag, the health summary).
	PermGatewayHealth
	// PermDeadLetters: rejected messages, payloads included.
	PermDeadLetters
	// PermAlarmsRead: alarms, their timelines and notification deliveries.
	PermAlarmsRead
	// PermAlarmsAct: acknowledge and reset alarms, silence devices and
	// zones.
	PermAlarmsAct
	// PermAuditRead: the audit log (video entries only for the caller's
	// cameras, addresses only with PermPersonalData).
	PermAuditRead
	// PermAuditVideoOnly narrows PermAuditRead to viewing sessions.
	PermAuditVideoOnly
	// PermPersonalData: viewers' network addresses in the audit log.
	PermPersonalData
	// PermCameras: the camera list and its status (the caller's cameras).
	PermCameras
	// PermVideoWatch: live video over WHEP (the caller's cameras).
	PermVideoWatch
	// PermVideoSessions: who is watching now (the caller's cameras).
	PermVideoSessions
	// PermRulesReload: reload the rules file.
	PermRulesReload
	// PermMetrics: /metrics.
	PermMetrics
	// PermUsers: the console's accounts (list, add, change, passwords,
	// sessions) and the list of API tokens.
	PermUsers
	// PermReports: reports over a period (alarms and how fast they were
	// acknowledged).
	PermReports
	// PermWalkTest: start and end walk tests, which hold a zone's
	// notifications back while devices are tested.
	PermWalkTest
	// PermOnboarding: the devices that announce themselves and the
	// config entries proposed for them.
	PermOnboarding
	// PermHazardsRead: the hazard list.
	PermHazardsRead
	// PermHazardsInspect: add items to the hazard list, verify or reopen
	// rectified ones, change deadlines and responsible persons (an
	// inspector's judgement).
	PermHazardsInspect
	// PermHazardsRectify: record what was done to rectify an item (a
	// manager's account).
	PermHazardsRectify
	// PermReportsGenerate: generate a summary report now (it is kept and
	// mailed like a scheduled one).
	PermReportsGenerate

	// permMax is the highest permission.
	permMax = PermReportsGenerate
)

var permNames = map[Permission]string{
	PermDevices: "devices", PermHistory: "history", PermAvailability: "availability",
	PermGatewayHealth: "gateway health", PermDeadLetters: "dead letters", PermAlarmsRead: "alarms", PermAlarmsAct: "alarm actions",
	PermAuditRead: "audit log", PermAuditVideoOnly: "audit log (video only)", PermPersonalData: "personal data",
	PermCameras: "cameras", PermVideoWatch: "live video", PermVideoSessions: "video sessions",
	PermRulesReload: "rules reload", PermMetrics: "metrics", PermUsers: "users", PermReports: "reports",
	PermWalkTest: "walk tests", PermOnboarding: "device onboarding",
	PermHazardsRead: "hazard list", PermHazardsInspect: "hazard inspection", PermHazardsRectify: "hazard rectification",
	PermReportsGenerate: "report generation",
}

func (p Permission) String() string {
	if n, ok := permNames[p]; ok {
		return n
	}
	return fmt.Sprintf("permission(%#x)", uint32(p))
}

// rolePerms is what each role may do.
var rolePerms = map[Role]Permission{
	// A Prometheus server's token.
	RoleMetrics: PermMetrics,
	// Read-only for machines (Grafana, scripts): everything but alarm
	// actions, personal data, dead letters and who is watching; video
	// only of the token's cameras.
	RoleViewer: PermDevices | PermHistory | PermAvailability | PermGatewayHealth | PermAlarmsRead | PermAuditRead |
		PermCameras | PermVideoWatch | PermReports | PermHazardsRead,
	// A fire-safety inspector: history, availability, alarms, reports,
	// the audit log; raises and verifies hazards; no video. Inspectors
	// judge rectifications, so they do not record them.
	RoleInspector: PermDevices | PermHistory | PermAvailability | PermAlarmsRead | PermAuditRead | PermReports |
		PermHazardsRead | PermHazardsInspect | PermReportsGenerate,
	// A civil-affairs supervisor: alarms, the hazard list, the reports
	// filed to the department, and live video of the cameras granted to
	// them with those cameras' viewing audit.
	RoleSupervisor: PermAlarmsRead | PermCameras | PermVideoWatch | PermAuditRead | PermAuditVideoOnly | PermHazardsRead |
		PermReports,
	// A facility manager: everything in the facility, and acting on
	// alarms.
	RoleManager: PermDevices | PermHistory | PermAvailability | PermGatewayHealth | PermDeadLetters | PermAlarmsRead | PermAlarmsAct |
		PermAuditRead | PermPersonalData | PermCameras | PermVideoWatch | PermVideoSessions | PermReports |
		PermHazardsRead | PermHazardsRectify,
	// An administrator: a manager who also manages the gateway and its
	// accounts.
	RoleAdmin: PermDevices | PermHistory | PermAvailability | PermGatewayHealth | PermDeadLetters | PermAlarmsRead | PermAlarmsAct |
		PermAuditRead | PermPersonalData | PermCameras | PermVideoWatch | PermVideoSessions | PermRulesReload | PermMetrics |
		PermUsers | PermReports | PermWalkTest | PermOnboarding | PermHazardsRead | PermHazardsRectify | PermReportsGenerate,
}

// may reports whether the role includes p.
func (r Role) may(p Permission) bool { return rolePerms[r]&p == p }

// route is one API route and the permission it needs. Handler registers
// the API from this table only, so the authorisation matrix test sees
// every route.
type route struct {
	pattern string // ServeMux pattern, method first
	perm    Permission
	handler func(a *api) http.HandlerFunc
	video   bool // only when video is configured
	long    bool // a stream: outlasts the server's write timeout
}

// routes is the API. WHEP signalling (authorised per camera by
// authorizeCamera, PermVideoWatch) and /metrics (PermMetrics) are wired
// in Handler; healthz, readyz and the login (POST /api/v1/session) are
// open.
var routes = []route{
	// The caller's own session (any authenticated caller: permission 0).
	{pattern: "GET /api/v1/session", handler: func(a *api) http.HandlerFunc { return a.whoami }},
	{pattern: "DELETE /api/v1/session", handler: func(a *api) http.HandlerFunc { return a.logout }},
	{pattern: "POST /api/v1/session/end-all", handler: func(a *api) http.HandlerFunc { return a.endAll }},
	// Live updates: each event filtered by the caller's permissions.
	{pattern: "GET /api/v1/events", long: true, handler: func(a *api) http.HandlerFunc { return a.events }},
	// The facility's names, time zone and zones, for the console.
	{pattern: "GET /api/v1/facility", handler: func(a *api) http.HandlerFunc { return a.facility }},
	{pattern: "GET /api/v1/devices", perm: PermDevices, handler: func(a *api) http.HandlerFunc { return a.devices }},
	{pattern: "GET /api/v1/readings", perm: PermHistory, handler: func(a *api) http.HandlerFunc { return a.readings }},
	{pattern: "GET /api/v1/availability", perm: PermAvailability, handler: func(a *api) http.HandlerFunc { return a.availability }},
	{pattern: "GET /api/v1/dead-letters", perm: PermDeadLetters, handler: func(a *api) http.HandlerFunc { return a.deadLetters }},
	{pattern: "GET /api/v1/forwarders", perm: PermGatewayHealth, handler: func(a *api) http.HandlerFunc { return a.forwarders }},
	{pattern: "GET /api/v1/health", perm: PermGatewayHealth, handler: func(a *api) http.HandlerFunc { return a.gatewayHealth }},
	{pattern: "GET /api/v1/alarms", perm: PermAlarmsRead, handler: func(a *api) http.HandlerFunc { return a.alarmsList }},
	{pattern: "POST /api/v1/alarms/{id}/ack", perm: PermAlarmsAct, handler: func(a *api) http.HandlerFunc { return a.alarmAction("ack") }},
	{pattern: "POST /api/v1/alarms/{id}/reset", perm: PermAlarmsAct, handler: func(a *api) http.HandlerFunc { return a.alarmAction("reset") }},
	{pattern: "GET /api/v1/alarms/{id}/deliveries", perm: PermAlarmsRead, handler: func(a *api) http.HandlerFunc { return a.deliveries }},
	{pattern: "GET /api/v1/audit", perm: PermAuditRead, handler: func(a *api) http.HandlerFunc { return a.audit }},
	{pattern: "GET /api/v1/reports/alarms", perm: PermReports, handler: func(a *api) http.HandlerFunc { return a.alarmReport }},
	// The summary reports (summaryreports.go).
	{pattern: "GET /api/v1/reports", perm: PermReports, handler: func(a *api) http.HandlerFunc { return a.reportsList }},
	{pattern: "POST /api/v1/reports", perm: PermReportsGenerate, handler: func(a *api) http.HandlerFunc { return a.reportGenerate }},
	{pattern: "GET /api/v1/reports/{id}", perm: PermReports, handler: func(a *api) http.HandlerFunc { return a.reportGet }},
	{pattern: "GET /api/v1/reports/{id}/xlsx", perm: PermReports, handler: func(a *api) http.HandlerFunc { return a.reportXLSX }},
	{pattern: "GET /api/v1/reports/{id}/csv", perm: PermReports, handler: func(a *api) http.HandlerFunc { return a.reportCSV }},
	{pattern: "POST /api/v1/silences", perm: PermAlarmsAct, handler: func(a *api) http.HandlerFunc { return a.addSilence }},
	{pattern: "GET /api/v1/rules", perm: PermAlarmsRead, handler: func(a *api) http.HandlerFunc { return a.rulesList }},
	{pattern: "GET /api/v1/devices/discovered", perm: PermOnboarding, handler: func(a *api) http.HandlerFunc { return a.discoveredDevices }},
	{pattern: "POST /api/v1/devices/discovered/config", perm: PermOnboarding, handler: func(a *api) http.HandlerFunc { return a.discoveredConfig }},
	{pattern: "GET /api/v1/walktests", perm: PermDevices, handler: func(a *api) http.HandlerFunc { return a.walkTests }},
	{pattern: "POST /api/v1/walktests", perm: PermWalkTest, handler: func(a *api) http.HandlerFunc { return a.startWalkTest }},
	{pattern: "POST /api/v1/walktests/end", perm: PermWalkTest, handler: func(a *api) http.HandlerFunc { return a.endWalkTest }},
	{pattern: "GET /api/v1/walktests/{id}/record.csv", perm: PermDevices, handler: func(a *api) http.HandlerFunc { return a.walkTestRecord }},
	// The hazard list (hazards.go).
	{pattern: "GET /api/v1/hazards", perm: PermHazardsRead, handler: func(a *api) http.HandlerFunc { return a.hazardsList }},
	{pattern: "GET /api/v1/hazards/{id}", perm: PermHazardsRead, handler: func(a *api) http.HandlerFunc { return a.hazardGet }},
	{pattern: "POST /api/v1/hazards", perm: PermHazardsInspect, handler: func(a *api) http.HandlerFunc { return a.hazardCreate }},
	{pattern: "PATCH /api/v1/hazards/{id}", perm: PermHazardsInspect, handler: func(a *api) http.HandlerFunc { return a.hazardPatch }},
	{pattern: "POST /api/v1/hazards/{id}/rectify", perm: PermHazardsRectify, handler: func(a *api) http.HandlerFunc { return a.hazardAction("rectify") }},
	{pattern: "POST /api/v1/hazards/{id}/verify", perm: PermHazardsInspect, handler: func(a *api) http.HandlerFunc { return a.hazardAction("verify") }},
	{pattern: "POST /api/v1/hazards/{id}/reopen", perm: PermHazardsInspect, handler: func(a *api) http.HandlerFunc { return a.hazardAction("reopen") }},
	{pattern: "POST /api/v1/rules/reload", perm: PermRulesReload, handler: func(a *api) http.HandlerFunc { return a.reloadRules }},
	{pattern: "GET /api/v1/cameras", perm: PermCameras, video: true, handler: func(a *api) http.HandlerFunc { return a.cameras }},
	{pattern: "GET /api/v1/video/sessions", perm: PermVideoSessions, video: true, handler: func(a *api) http.HandlerFunc { return a.videoSessions }},
	// The console's accounts and the API tokens (accounts.go).
	{pattern: "GET /api/v1/users", perm: PermUsers, handler: func(a *api) http.HandlerFunc { return a.usersList }},
	{pattern: "POST /api/v1/users", perm: PermUsers, handler: func(a *api) http.HandlerFunc { return a.userAdd }},
	{pattern: "PATCH /api/v1/users/{name}", perm: PermUsers, handler: func(a *api) http.HandlerFunc { return a.userPatch }},
	{pattern: "POST /api/v1/users/{name}/password", perm: PermUsers, handler: func(a *api) http.HandlerFunc { return a.userPassword }},
	{pattern: "POST /api/v1/users/{name}/end-sessions", perm: PermUsers, handler: func(a *api) http.HandlerFunc { return a.userEndSessions }},
	{pattern: "GET /api/v1/tokens", perm: PermUsers, handler: func(a *api) http.HandlerFunc { return a.tokens }},
}
