// CSV downloads of the reports: the gateway's own CSV (format=csv), saved
// under a name that says what and when.
import { fetchText } from '@/api/client'
import { wallClock } from '@/components/TimeRange.vue'

/** stamp gives an instant as yyyymmdd-hhmm in zone tz, for file names. */
export function stamp(iso: string, tz: string | undefined): string {
  const [y, mo, d, h, mi] = wallClock(Date.parse(iso), tz)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${y}${p(mo + 1)}${p(d)}-${p(h)}${p(mi)}`
}

/** safe keeps a file name part to letters, digits, dot, dash and underscore. */
export function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_') || 'all'
}

/** saveCSV fetches path (with format=csv added to query) and saves it as name. */
export async function saveCSV(path: string, query: Record<string, string | undefined>, name: string): Promise<void> {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v) params.set(k, v)
  params.set('format', 'csv')
  const text = await fetchText(`${path}?${params.toString()}`)
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }))
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
