// Package hazard keeps the facility's hazard list (隐患/问题清单): the
// safety problems an inspector must see fixed, each with where, what,
// since when, the standard to meet, a responsible person, a deadline and
// a status that moves open → rectified → verified (or back to open).
//
// Items come from two places. Inspectors add their own (a blocked exit,
// a missing extinguisher). Rules raise the rest from what the gateway
// already sees, as second-order judgements over the alarm lifecycle: an
// alarm says "now"; a hazard says "this has gone on too long, or happened
// too often, to be an incident" — a detector offline for a day, a battery
// low for a week, a secure-ward door opened at night three times in a
// week, a smoke detector nobody has tested this quarter. Each rule and
// its threshold is in rules.go and in the README's hazard table.
//
// # Lifecycle
//
//   - open: raised by a rule once its condition has held long enough (or
//     often enough), or created by an inspector. Its deadline is the
//     rule's (or the inspector's).
//   - rectified: the rule's condition has been clear for the rule's
//     clear_for (the gateway's own evidence), or a manager recorded what
//     was done. A manager cannot rectify an item whose condition still
//     holds.
//   - verified: an inspector checked the rectification. The item is
//     closed; if its condition comes back later, a new item is raised.
//   - reopened (open again): an inspector rejected the rectification, or
//     the condition returned before verification.
//
// An open item past its deadline is overdue: it notifies like an alarm of
// trouble severity. The Service reports the overdue items of each zone as
// the fault condition of a built-in gateway device
// (gateway.hazards.<zone>), which the gateway rule hazard-overdue turns
// into an alarm with the usual channels, escalation, acknowledgement and
// audit: one alarm path. Every change to an item is written to the audit
// log.
//
// # Design and concurrency
//
// Core is a deterministic state machine like the rules engine's: alarm
// events and the engine's open alarms go in, Tick(now) raises, rectifies
// and marks overdue, and every action takes its time as an argument, so
// tests are timelines over a simulated quarter. Service owns a Core from
// one goroutine, feeds it the engine's alarm events (never blocking the
// engine: they queue in memory, bounded) and its open alarms at every
// tick, writes the audit entries, then saves the state to disk
// (hazards.json, written and fsynced before it is renamed into place).
// An alarm storm is judged together, at most once a second, so that the
// list is not saved once per alarm. Backpressure: alarm events are rare;
// past MaxQueued the oldest are
// dropped and counted, and the next sync with the engine's open alarms
// repairs the duration rules (only counts can miss an event).
package hazard
