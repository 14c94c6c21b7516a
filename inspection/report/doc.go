// Package report computes the periodic summary report of a facility
// (情况汇总表) that civil-affairs departments require at fixed dates and
// inspectors sign: devices online, alarms and how fast people
// acknowledged them, escalations that reached the department, walk tests,
// the hazard list, remote video supervision of foster placements,
// dormitory temperatures and night exits from secure wards.
//
// Every figure comes from records the gateway holds and is traceable:
// each figure cell of a summary Table names a drill-down list
// (Report.Details) of the records it counts.
//
// # Inputs
//
// Generate takes Options: the facility model (zones, devices, cameras,
// time zone), the audit log (AuditLog, *audit.Log), an optional
// availability source (AvailabilityFunc, backed by ingest/availability in
// the gateway), the escalation level at which the department is told,
// the zone tag of foster placements and the cold and hot seasons. The
// Period is a month, a quarter or one of the notice's four-month periods,
// in the facility's time zone (PeriodContaining, LastCompletePeriod).
//
// The audit log is read once, newest first, from Options.Lookback before
// the period to its end (or now, for a running period): an alarm still
// open at the period's start is seen by its later entries, and the read
// costs what the period holds, not what the log holds. The tables' notes
// say what that approximates.
//
// # Output
//
// A Report marshals to JSON for the API (ids of tables, columns and
// drill-downs are stable; every text a person reads is in zh-CN and en),
// writes any table as CSV (Report.CSV) and the whole as an Excel workbook
// laid out as the filed form, with a signatures block (Report.XLSX).
//
// # Concurrency
//
// The package only reads: it never writes the audit log or the store.
// Generate runs in the caller's goroutine and holds no state between
// calls, so reports may be generated concurrently; a Report is not
// safe for concurrent mutation.
package report
