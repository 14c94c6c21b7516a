// How alarms are ordered and coloured: fire and critical first, then
// unacknowledged before acknowledged, then the newest.
import type { Alarm } from '@/stores/live'

export const severityRank: Record<string, number> = { fire: 0, critical: 1, warning: 2, trouble: 3, info: 4 }

export function compareAlarms(a: Alarm, b: Alarm): number {
  const s = (severityRank[a.severity] ?? 9) - (severityRank[b.severity] ?? 9)
  if (s) return s
  const ack = Number(a.state === 'acknowledged') - Number(b.state === 'acknowledged')
  if (ack) return ack
  return b.since.localeCompare(a.since)
}

export function severityTag(sev: string): 'danger' | 'warning' | 'info' | 'primary' {
  if (sev === 'fire' || sev === 'critical') return 'danger'
  if (sev === 'warning' || sev === 'trouble') return 'warning'
  return 'info'
}
