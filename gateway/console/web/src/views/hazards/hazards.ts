// What the hazard list page works with: the item type from the API, who
// may do what, the status a person reads (overdue is an open item past its
// deadline), and deadlines picked on the facility's wall clock.
import { can, session } from '@/stores/session'
import { instantOf, wallClock } from '@/components/TimeRange.vue'
import { toISO } from '@/utils/time'
import type { Schemas } from '@/api/client'

export type HazardItem = Schemas['HazardItem']
export type HazardEntry = HazardItem['history'][number]

/** may says whether the signed-in person has a hazard list permission (the gateway enforces it). */
export function may(p: 'hazard list' | 'hazard inspection' | 'hazard rectification'): boolean {
  return can(p)
}

/** A step on one item, each in its dialog. */
export type HazardStep = 'rectify' | 'verify' | 'reopen' | 'change'

/** The rules that raise items; anything else shows as its id. */
export const RULES = [
  'detector-offline',
  'battery-low',
  'smoke-untested',
  'ward-night-exits',
  'doors-held-open',
  'nuisance-alarms',
  'camera-dark',
  'dorm-temperature',
  'manual',
] as const

/** The status filter's choices, as GET /api/v1/hazards?status= takes them. */
export const STATUS_FILTERS = ['open', 'overdue', 'rectified', 'verified'] as const
export type StatusFilter = (typeof STATUS_FILTERS)[number]

export function isStatusFilter(s: string): s is StatusFilter {
  return (STATUS_FILTERS as readonly string[]).includes(s)
}

/** shownStatus is the status a person reads: overdue for an open item past its deadline. */
export function shownStatus(it: HazardItem): 'open' | 'overdue' | 'rectified' | 'verified' {
  return it.status === 'open' && it.overdue ? 'overdue' : it.status
}

/** statusTag is the Element Plus tag type of a shown status. */
export function statusTag(s: ReturnType<typeof shownStatus>): 'danger' | 'warning' | 'primary' | 'success' {
  switch (s) {
    case 'overdue':
      return 'danger'
    case 'open':
      return 'warning'
    case 'rectified':
      return 'primary'
    default:
      return 'success'
  }
}

const DAY = 86_400_000
/** The gateway refuses deadlines further ahead than this (inspection/hazard, maxDeadline). */
export const MAX_DEADLINE_MS = 366 * DAY

function tz(): string | undefined {
  return session.facility?.timezone || undefined
}

// Element Plus pickers give and take Dates in the browser's zone; these
// Dates read, field by field, as the facility's wall clock (as the time
// range picker does), whatever zone the browser is in.

/** toPicker gives the picker's Date for an instant. */
export function toPicker(ms: number): Date {
  const [y, mo, d, h, mi, s] = wallClock(ms, tz())
  return new Date(y, mo, d, h, mi, s)
}

/** fromPicker gives the instant (ms) a picker's Date stands for. */
export function fromPicker(d: Date): number {
  return instantOf(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), 0, tz())
}

/** pickerISO is a picker's Date as RFC 3339 UTC, for the API. */
export function pickerISO(d: Date): string {
  return toISO(new Date(fromPicker(d)))
}

/** defaultDeadline is in a week, at 18:00 on the facility's clock. */
export function defaultDeadline(now = Date.now()): Date {
  const d = toPicker(now + 7 * DAY)
  d.setHours(18, 0, 0, 0)
  return d
}

/** deadlineProblem names what is wrong with a picked deadline ('' when it is fine). */
export function deadlineProblem(d: Date | null | undefined, now = Date.now()): '' | 'needDeadline' | 'pastDeadline' | 'farDeadline' {
  if (!d) return 'needDeadline'
  const ms = fromPicker(d)
  if (ms <= now) return 'pastDeadline'
  if (ms - now > MAX_DEADLINE_MS) return 'farDeadline'
  return ''
}

/** pastDay tells the picker which days cannot hold a deadline (before today, or beyond a year). */
export function pastDay(d: Date, now = Date.now()): boolean {
  const today = toPicker(now)
  today.setHours(0, 0, 0, 0)
  const last = toPicker(now + MAX_DEADLINE_MS)
  return d.getTime() < today.getTime() || d.getTime() > last.getTime()
}
