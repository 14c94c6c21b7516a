// What the facility page reads from a device's live state: its latest
// values (the `values` map: kind → {value, time}), whether its battery is
// low, and the order problems come in.
import type { Device } from '@/stores/live'

/** A battery below this many percent is low. */
export const lowBattery = 20

export const units: Record<string, string> = {
  temperature: '°C',
  humidity: '%',
  pressure: 'hPa',
  battery: '%',
  co: 'ppm',
}

/** Yes/no kinds whose "yes" needs someone's attention. */
const alarming = new Set(['smoke', 'water_leak', 'panic', 'tamper', 'battery_low'])

export interface Value {
  kind: string
  value: number | boolean | string
  time: string
  /** alert: a yes of an alarming kind. */
  alert: boolean
}

function isEntry(v: unknown): v is { value?: unknown; time?: unknown } {
  return typeof v === 'object' && v !== null
}

/** values lists a device's latest values, its main kind first; availability is shown as the state instead. */
export function values(d: Device): Value[] {
  const out: Value[] = []
  for (const [kind, e] of Object.entries(d.values ?? {})) {
    // Availability is the state shown; a battery level already shown as such.
    if (kind === 'availability' || (kind === 'battery' && typeof d.battery === 'number') || !isEntry(e)) continue
    const v = e.value
    if (typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'string') continue
    out.push({ kind, value: v, time: typeof e.time === 'string' ? e.time : '', alert: v === true && alarming.has(kind) })
  }
  out.sort((a, b) => (a.kind === d.kind ? -1 : b.kind === d.kind ? 1 : a.kind.localeCompare(b.kind)))
  return out
}

export function isLow(d: Device): boolean {
  if (typeof d.battery === 'number' && d.battery < lowBattery) return true
  const e = d.values?.battery_low
  return isEntry(e) && e.value === true
}

/** rank orders devices: offline first, then low battery, then the rest. */
export function rank(d: Device): number {
  if (!d.online) return 0
  if (isLow(d)) return 1
  return 2
}

export function compareDevices(a: Device, b: Device): number {
  return rank(a) - rank(b) || (a.device ?? '').localeCompare(b.device ?? '')
}

export function formatNumber(kind: string, v: number): string {
  const r = Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 10) / 10
  const u = units[kind]
  return u ? `${r} ${u}` : String(r)
}
