// Files the console offers to save: the gateway's own CSV answers and CSV
// made in the browser, under names that say what and when.
import { fetchText } from '@/api/client'
import { wallClock } from '@/components/TimeRange.vue'

/** fileStamp gives an instant as yyyymmdd-hhmm in zone tz, for file names. */
export function fileStamp(iso: string, tz: string | undefined): string {
  const [y, mo, d, h, mi] = wallClock(Date.parse(iso), tz)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${y}${p(mo + 1)}${p(d)}-${p(h)}${p(mi)}`
}

/** safeName keeps a file name part to letters, digits, dot, dash and underscore. */
export function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_') || 'all'
}

/** downloadText offers text as a file to save. */
export function downloadText(name: string, text: string, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

/** saveCSV fetches an API path as CSV (format=csv added to query) and saves it as name. */
export async function saveCSV(path: string, query: Record<string, string | number | undefined>, name: string): Promise<void> {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v))
  params.set('format', 'csv')
  downloadText(name, await fetchText(`${path}?${params.toString()}`))
}
