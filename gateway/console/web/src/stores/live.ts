// Live state over the gateway's event stream (GET /api/v1/events): the
// open alarms, the devices and the cameras this person may see, kept up
// to date without polling. The browser's EventSource reconnects by itself
// and sends Last-Event-ID, so the gateway replays what was missed (or a
// new snapshot). One stream per browser tab, opened at login.
import { reactive, readonly } from 'vue'
import type { Schemas } from '@/api/client'

export type Alarm = Schemas['Alarm']
export type Device = Schemas['Device']
export type Camera = Schemas['Camera']

const state = reactive({
  alarms: {} as Record<string, Alarm>,
  devices: {} as Record<string, Device>,
  cameras: {} as Record<string, Camera>,
  connected: false,
  /** Ids of alarms that opened while this page watched (for the sound). */
  newAlarms: [] as string[],
  seq: 0,
})

export const live = readonly(state)

let source: EventSource | null = null
let onEnded: () => void = () => {}

function deviceKey(d: Device): string {
  return `${d.device ?? ''}`
}

function parse<T>(e: MessageEvent): T | null {
  try {
    return JSON.parse(e.data) as T
  } catch {
    return null
  }
}

/** start opens the stream; ended is called when the gateway refuses it (the session is over). */
export function startLive(ended: () => void) {
  // What is shown stays until the new stream's snapshot replaces it.
  clearTimeout(retry)
  source?.close()
  onEnded = ended
  const es = new EventSource('/api/v1/events', { withCredentials: true })
  source = es
  es.addEventListener('open', () => {
    state.connected = true
    retries = 0
  })
  es.addEventListener('error', () => {
    state.connected = false
    // CLOSED means the browser gave up: the gateway refused the stream
    // (401 when the session is over; 429 when this login has too many
    // streams open, e.g. tabs just closed whose streams the gateway has
    // not seen end yet). Ask which; CONNECTING means the browser retries
    // by itself.
    if (es.readyState === EventSource.CLOSED && source === es) {
      source = null
      void refused()
    }
  })
  es.addEventListener('snapshot', (e) => {
    const s = parse<{ alarms?: Alarm[]; devices?: Device[]; cameras?: Camera[] }>(e as MessageEvent)
    if (!s) return
    const alarms: Record<string, Alarm> = {}
    for (const a of s.alarms ?? []) if (a.id) alarms[a.id] = a
    state.alarms = alarms
    const devices: Record<string, Device> = {}
    for (const d of s.devices ?? []) devices[deviceKey(d)] = d
    state.devices = devices
    const cameras: Record<string, Camera> = {}
    for (const c of s.cameras ?? []) if (c.id) cameras[c.id] = c
    state.cameras = cameras
    state.seq++
  })
  es.addEventListener('alarm', (e) => {
    const a = parse<Alarm>(e as MessageEvent)
    if (!a?.id) return
    if (!state.alarms[a.id]) state.newAlarms.push(a.id)
    state.alarms[a.id] = a
    state.seq++
  })
  es.addEventListener('alarm_closed', (e) => {
    const c = parse<{ id: string }>(e as MessageEvent)
    if (!c?.id) return
    delete state.alarms[c.id]
    state.seq++
  })
  es.addEventListener('device', (e) => {
    const d = parse<Device>(e as MessageEvent)
    if (!d) return
    state.devices[deviceKey(d)] = d
  })
  es.addEventListener('camera', (e) => {
    const c = parse<Camera>(e as MessageEvent)
    if (!c?.id) return
    state.cameras[c.id] = c
  })
}

let retry: ReturnType<typeof setTimeout> | undefined
let retries = 0

/** refused tells a refused stream from an ended session, and retries the former with a capped backoff. */
async function refused() {
  let alive = false
  try {
    alive = (await fetch('/api/v1/session', { credentials: 'same-origin' })).ok
  } catch {
    alive = true // the gateway is unreachable: keep trying, the session may well be fine
  }
  if (!alive) {
    onEnded()
    return
  }
  const wait = Math.min(30_000, 1000 * 2 ** retries) * (0.75 + Math.random() / 2)
  retries++
  clearTimeout(retry)
  retry = setTimeout(() => startLive(onEnded), wait)
}

export function stopLive() {
  clearTimeout(retry)
  source?.close()
  source = null
  state.connected = false
  state.alarms = {}
  state.devices = {}
  state.cameras = {}
  state.newAlarms = []
}

/** replaceAlarm puts an alarm the API answered with (after an action) before the stream says so. */
export function replaceAlarm(a: Alarm) {
  if (a.id) state.alarms[a.id] = a
}
