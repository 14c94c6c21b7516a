// What the summary report pages work with: the types from the API, a
// cell as a person reads it, times on the facility's clock (as the XLSX
// shows them), and the report's files saved through the session.
import { api, must, type Schemas } from '@/api/client'
import { wallClock } from '@/components/TimeRange.vue'
import { i18n, pick } from '@/i18n'
import { downloadText } from '@/utils/download'

export type ReportEntry = Schemas['ReportEntry']
export type SummaryReport = Schemas['SummaryReport']
export type ReportTable = Schemas['ReportTable']
export type ReportColumn = ReportTable['columns'][number]
export type ReportCell = ReportTable['rows'][number][number]

/** The kinds of period, as POST /api/v1/reports takes them. */
export const KINDS = ['month', 'quarter', 'notice'] as const
export type Kind = (typeof KINDS)[number]

/** BY_SCHEDULE is who generated a scheduled report. */
export const BY_SCHEDULE = 'schedule'

/** DETAIL_ROWS bounds the rows a drill-down list shows; its CSV has them all. */
export const DETAIL_ROWS = 500

const p2 = (n: number) => String(n).padStart(2, '0')

/** localDay gives an instant as yyyy-mm-dd on a clock in zone tz. */
export function localDay(iso: string, tz: string | undefined): string {
  const [y, mo, d] = wallClock(Date.parse(iso), tz)
  return `${y}-${p2(mo + 1)}-${p2(d)}`
}

/** localTime gives an instant as yyyy-mm-dd hh:mm:ss on a clock in zone tz. */
export function localTime(iso: string | undefined, tz: string | undefined): string {
  if (!iso) return '—'
  const ms = Date.parse(iso)
  if (Number.isNaN(ms)) return '—'
  const [y, mo, d, h, mi, s] = wallClock(ms, tz)
  return `${y}-${p2(mo + 1)}-${p2(d)} ${p2(h)}:${p2(mi)}:${p2(s)}`
}

/** periodDays is a period's first and last day (its end is excluded) in zone tz. */
export function periodDays(p: { from: string; to: string }, tz: string | undefined): string {
  return `${localDay(p.from, tz)} – ${localDay(new Date(Date.parse(p.to) - 1).toISOString(), tz)}`
}

/** columnTitle is a column's header in the console's language, with its unit. */
export function columnTitle(c: ReportColumn): string {
  const title = pick(c.title)
  const unit = pick(c.unit)
  if (!unit) return title
  return i18n.global.locale.value === 'en' ? `${title} (${unit})` : `${title}（${unit}）`
}

/** isNumber says whether a cell is a figure (right-aligned). */
export function isNumber(c: ReportCell): boolean {
  return c.num !== undefined && c.num !== null
}

/** cellText is a cell as a person reads it; na is the language's "n/a". */
export function cellText(c: ReportCell, tz: string | undefined, na: string): string {
  if (c.na) return na
  if (isNumber(c)) {
    const tag = i18n.global.locale.value === 'en' ? 'en-GB' : 'zh-CN'
    return new Intl.NumberFormat(tag, { maximumFractionDigits: 2, useGrouping: false }).format(c.num as number)
  }
  if (c.text) return pick(c.text)
  if (c.time) return localTime(c.time, tz)
  return ''
}

/** lang is the report files' language code for the console's language. */
export function lang(): 'zh' | 'en' {
  return i18n.global.locale.value === 'en' ? 'en' : 'zh'
}

/** filenameOf is the name a Content-Disposition header gives, or fallback. */
function filenameOf(r: Response, fallback: string): string {
  const m = /filename="?([^";]+)"?/.exec(r.headers.get('Content-Disposition') ?? '')
  return m?.[1] || fallback
}

/** saveXLSX fetches a report's workbook with the session and offers it to save. */
export async function saveXLSX(id: string): Promise<void> {
  const r = await api.GET('/api/v1/reports/{id}/xlsx', { params: { path: { id } }, parseAs: 'blob' })
  const blob = (await must(Promise.resolve(r))) as Blob
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filenameOf(r.response, `${id}.xlsx`)
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

/** saveTableCSV fetches one table or drill-down list of a report as CSV, headed in the console's language. */
export async function saveTableCSV(id: string, table: string): Promise<void> {
  const r = await api.GET('/api/v1/reports/{id}/csv', { params: { path: { id }, query: { table, lang: lang() } }, parseAs: 'text' })
  const text = (await must(Promise.resolve(r))) as string
  downloadText(filenameOf(r.response, `${id}-${table}.csv`), text)
}
