// Reads GET /api/v1/availability. The OpenAPI document describes each
// device only as an object (additionalProperties), so the fields the page
// shows are read here with their types checked, never assumed; the names
// are those of docs/api.md ("GET /api/v1/availability").
import type { Schemas } from '@/api/client'

type DeviceJSON = NonNullable<Schemas['Availability']['devices']>[number]

export interface Span {
  start: string
  end: string
  seconds: number
  cause: string
  ongoing: boolean
}

export interface DeviceAvailability {
  device: string
  zone: string
  onlinePercent: number
  offlinePercent: number
  unknownPercent: number
  onlineSeconds: number
  offlineSeconds: number
  unknownSeconds: number
  /** knownPercent: the share of the time its state was known that it was online (null: never known). */
  knownPercent: number | null
  outages: Span[]
  longest: Span | null
}

function str(o: Record<string, unknown>, k: string): string {
  const v = o[k]
  return typeof v === 'string' ? v : ''
}
function num(o: Record<string, unknown>, k: string): number {
  const v = o[k]
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function spans(v: unknown): Span[] {
  if (!Array.isArray(v)) return []
  return v.filter(isObject).map((s) => ({
    start: str(s, 'start'),
    end: str(s, 'end'),
    seconds: num(s, 'seconds'),
    cause: str(s, 'cause'),
    ongoing: s.ongoing === true,
  }))
}

export function readDevice(d: DeviceJSON): DeviceAvailability {
  const online = num(d, 'online_seconds')
  const offline = num(d, 'offline_seconds')
  const outages = spans(d.outages)
  let longest: Span | null = null
  for (const o of outages) if (!longest || o.seconds > longest.seconds) longest = o
  return {
    device: str(d, 'device'),
    zone: str(d, 'zone'),
    onlinePercent: num(d, 'online_percent'),
    offlinePercent: num(d, 'offline_percent'),
    unknownPercent: num(d, 'unknown_percent'),
    onlineSeconds: online,
    offlineSeconds: offline,
    unknownSeconds: num(d, 'unknown_seconds'),
    knownPercent: online + offline > 0 ? (online / (online + offline)) * 100 : null,
    outages,
    longest,
  }
}

/** worstFirst: the least time online first; of equals, the most time offline, then the most outages. */
export function worstFirst(a: DeviceAvailability, b: DeviceAvailability): number {
  return (
    a.onlinePercent - b.onlinePercent ||
    b.offlineSeconds - a.offlineSeconds ||
    b.outages.length - a.outages.length ||
    a.device.localeCompare(b.device)
  )
}
