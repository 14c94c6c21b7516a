// Turns a /api/v1/readings answer into the lines the history chart draws:
// per device the bucket means with a min–max band, or for a yes/no kind
// (door, smoke …) a step line of whether it happened in each bucket.
import type { ComposeOption } from 'echarts/core'
import type { LineSeriesOption } from 'echarts/charts'
import type { GridComponentOption, LegendComponentOption, TooltipComponentOption } from 'echarts/components'
import type { TooltipComponentFormatterCallbackParams } from 'echarts'
import type { Schemas } from '@/api/client'

export type ChartOption = ComposeOption<LineSeriesOption | GridComponentOption | LegendComponentOption | TooltipComponentOption>

type Series = NonNullable<Schemas['Readings']['series']>[number]

/** Kinds whose readings are yes/no (the gateway counts them as 0 and 1). */
export const boolKinds = new Set(['door', 'smoke', 'motion', 'panic', 'water_leak', 'tamper', 'battery_low', 'availability'])

export const units: Record<string, string> = {
  temperature: '°C',
  humidity: '%',
  pressure: 'hPa',
  battery: '%',
  co: 'ppm',
}

/** A drawn point: time (ms), the value drawn (mean, or max for yes/no; null: a gap), min, max, readings. */
export type Row = [time: number, value: number | null, min: number, max: number, count: number]

export interface Line {
  device: string
  rows: Row[]
  /** points: how many rows carry data (gaps left out). */
  points: number
}

function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (typeof v === 'boolean') return v ? 1 : 0
  return null
}

/**
 * lines makes one line per series. Numeric lines break where nothing
 * arrived for a while (gapMs); a yes/no line holds its last state.
 */
export function lines(series: Series[], bool: boolean, gapMs: number): Line[] {
  const out: Line[] = []
  for (const s of series) {
    const rows: Row[] = []
    let prev = -Infinity
    const push = (t: number, v: number, lo: number, hi: number, n: number) => {
      if (!bool && t - prev > gapMs && rows.length) rows.push([prev + 1, null, lo, hi, 0])
      rows.push([t, v, lo, hi, n])
      prev = t
    }
    for (const b of s.buckets ?? []) {
      const t = Date.parse(b.start ?? '')
      if (Number.isNaN(t) || b.mean === undefined || b.min === undefined || b.max === undefined) continue
      push(t, bool ? b.max : b.mean, b.min, b.max, b.count ?? 0)
    }
    for (const p of s.points ?? []) {
      const t = Date.parse(p.time ?? '')
      const v = num(p.value)
      if (Number.isNaN(t) || v === null) continue
      push(t, v, v, v, 1)
    }
    out.push({ device: s.device ?? '', rows, points: rows.filter((r) => r[1] !== null).length })
  }
  out.sort((a, b) => a.device.localeCompare(b.device))
  return out
}

export const palette = ['#1d4ed8', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490', '#a16207', '#be185d', '#4338ca', '#374151']

export interface OptionInput {
  lines: Line[]
  bool: boolean
  bucketed: boolean
  unit: string
  from: number
  to: number
  axisTime: (ms: number) => string
  tipTime: (ms: number) => string
  boolLabel: (v: number) => string
  words: { mean: string; min: string; max: string; count: string }
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function fmt(v: number): string {
  return String(Math.round(v * 100) / 100)
}

/** option builds the ECharts option of the history chart. */
export function option(inp: OptionInput): ChartOption {
  const series: LineSeriesOption[] = []
  inp.lines.forEach((l, i) => {
    const color = palette[i % palette.length]
    if (!inp.bool && inp.bucketed) {
      // The band: the min line (invisible) with max − min stacked on it.
      series.push({
        type: 'line',
        id: `lo:${l.device}`,
        name: l.device,
        data: l.rows.map((r) => [r[0], r[1] === null ? null : r[2]]),
        stack: `band:${l.device}`,
        stackStrategy: 'all',
        lineStyle: { opacity: 0 },
        showSymbol: false,
        silent: true,
        color,
        tooltip: { show: false },
        z: 1,
      })
      series.push({
        type: 'line',
        id: `hi:${l.device}`,
        name: l.device,
        data: l.rows.map((r) => [r[0], r[1] === null ? null : r[3] - r[2]]),
        stack: `band:${l.device}`,
        stackStrategy: 'all',
        lineStyle: { opacity: 0 },
        areaStyle: { color, opacity: 0.15 },
        showSymbol: false,
        silent: true,
        color,
        tooltip: { show: false },
        z: 1,
      })
    }
    series.push({
      type: 'line',
      id: `v:${l.device}`,
      name: l.device,
      data: l.rows,
      encode: { x: 0, y: 1 },
      step: inp.bool ? 'end' : false,
      showSymbol: l.points < 2,
      symbolSize: 5,
      connectNulls: false,
      color,
      lineStyle: { width: 2 },
      z: 3,
    })
  })

  const tooltipFormatter = (params: TooltipComponentFormatterCallbackParams): string => {
    const list = Array.isArray(params) ? params : [params]
    const lines: string[] = []
    let time = 0
    for (const p of list) {
      if (typeof p.seriesId !== 'string' || !p.seriesId.startsWith('v:')) continue
      const r = p.value as Row
      if (!Array.isArray(r) || r[1] === null) continue
      time = r[0]
      const name = esc(p.seriesName ?? '')
      let val: string
      if (inp.bool) val = esc(inp.boolLabel(r[1]))
      else if (inp.bucketed && r[4] > 1)
        val = `${inp.words.mean} ${fmt(r[1])}${inp.unit} (${inp.words.min} ${fmt(r[2])}, ${inp.words.max} ${fmt(r[3])}; ${inp.words.count} ${r[4]})`
      else val = `${fmt(r[1])}${inp.unit}`
      lines.push(`${typeof p.marker === 'string' ? p.marker : ''}${name}: ${esc(val)}`)
    }
    if (!lines.length) return ''
    return [esc(inp.tipTime(time)), ...lines].join('<br>')
  }

  return {
    animation: false,
    color: palette,
    grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
    legend: { type: 'plain', top: 0, data: inp.lines.map((l) => l.device), textStyle: { color: '#1f2329' } },
    tooltip: { trigger: 'axis', confine: true, formatter: tooltipFormatter },
    xAxis: {
      type: 'time',
      min: inp.from,
      max: inp.to,
      axisLabel: { formatter: (v: number) => inp.axisTime(v), hideOverlap: true, color: '#374151' },
      splitLine: { show: false },
    },
    yAxis: inp.bool
      ? {
          type: 'value',
          min: 0,
          max: 1,
          interval: 1,
          axisLabel: { formatter: (v: number) => inp.boolLabel(v), color: '#374151' },
        }
      : {
          type: 'value',
          scale: true,
          name: inp.unit,
          nameTextStyle: { color: '#374151' },
          axisLabel: { color: '#374151' },
        },
    series,
  }
}
