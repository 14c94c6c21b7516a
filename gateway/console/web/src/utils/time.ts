// Dates as the facility's staff read them: in the facility's time zone,
// in the console's language.
import { session } from '@/stores/session'
import { i18n } from '@/i18n'

function zone(): string | undefined {
  return session.facility?.timezone || undefined
}

function locale(): string {
  return i18n.global.locale.value === 'en' ? 'en-GB' : 'zh-CN'
}

/** formatTime gives date and time to the second. */
export function formatTime(iso: string | undefined | null): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 1971) return '—'
  return new Intl.DateTimeFormat(locale(), {
    timeZone: zone(),
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  }).format(d)
}

/** formatAgo says how long ago, roughly ("3 分钟前", "3 min ago"). */
export function formatAgo(iso: string | undefined | null, now = Date.now()): string {
  if (!iso) return '—'
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000))
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto', style: 'short' })
  if (s < 60) return rtf.format(-s, 'second')
  if (s < 3600) return rtf.format(-Math.floor(s / 60), 'minute')
  if (s < 86400) return rtf.format(-Math.floor(s / 3600), 'hour')
  return rtf.format(-Math.floor(s / 86400), 'day')
}

/** formatDuration gives seconds as "1 h 5 min" / "1 小时 5 分". */
export function formatDuration(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return '—'
  const zh = i18n.global.locale.value !== 'en'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const r = s % 60
  const parts: string[] = []
  if (h) parts.push(zh ? `${h} 小时` : `${h} h`)
  if (m) parts.push(zh ? `${m} 分` : `${m} min`)
  if (!h && (r || !m)) parts.push(zh ? `${r} 秒` : `${r} s`)
  return parts.join(' ')
}

/** toLocalInput/fromLocalInput are not needed: Element Plus date pickers give Date objects in the browser's zone; rangeToISO sends them as instants. */
export function toISO(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}
