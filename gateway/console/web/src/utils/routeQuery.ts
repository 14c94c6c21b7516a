// Page state kept in the URL's query, so a link or a reload shows the same
// view: one place for reading and patching it, and for a time range.
import { ref, watch, type Ref } from 'vue'
import { useRoute, useRouter, type LocationQueryRaw } from 'vue-router'
import { isPreset, resolvePreset, type Preset, type TimeRangeValue } from '@/components/TimeRange.vue'

export function useRouteQuery() {
  const route = useRoute()
  const router = useRouter()
  /** qs is a query parameter as a string ("" when absent or repeated). */
  function qs(k: string): string {
    const v = route.query[k]
    return typeof v === 'string' ? v : ''
  }
  /** setQuery merges patch into the query; undefined or "" removes a key. */
  function setQuery(patch: LocationQueryRaw) {
    const q: LocationQueryRaw = { ...route.query, ...patch }
    for (const k of Object.keys(q)) if (q[k] === undefined || q[k] === '') delete q[k]
    void router.replace({ query: q })
  }
  return { qs, setQuery }
}

/**
 * useRangeQuery is a time range kept in the query (range=<preset>, or
 * range=custom&from=&to=): a quick range is resolved when chosen, in the
 * facility's time zone; fallback is the preset without one in the URL.
 */
export function useRangeQuery(presets: Preset[], fallback: Preset, tz: Ref<string | undefined>) {
  const { qs, setQuery } = useRouteQuery()
  function fromQuery(): TimeRangeValue {
    const r = qs('range')
    if (r === 'custom') {
      const from = qs('from')
      const to = qs('to')
      if (!Number.isNaN(Date.parse(from)) && !Number.isNaN(Date.parse(to)) && from < to) return { preset: 'custom', from, to }
    }
    const p: Preset = isPreset(r) && presets.includes(r) ? r : fallback
    return { preset: p, ...resolvePreset(p, tz.value) }
  }
  const range = ref<TimeRangeValue>(fromQuery())
  function setRange(v: TimeRangeValue) {
    range.value = v
    setQuery(v.preset === 'custom' ? { range: 'custom', from: v.from, to: v.to } : { range: v.preset, from: undefined, to: undefined })
  }
  watch(
    () => [qs('range'), qs('from'), qs('to')],
    () => {
      const r = qs('range') || fallback
      const cur = range.value
      if (r !== cur.preset || (r === 'custom' && (qs('from') !== cur.from || qs('to') !== cur.to))) range.value = fromQuery()
    },
  )
  return { range, setRange }
}
