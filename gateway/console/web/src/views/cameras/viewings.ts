// Who is watching now (GET /api/v1/video/sessions, managers). The OpenAPI
// document gives its items as free objects, so each one is read field by
// field here, and items without an id or camera are left out.
import { api, must } from '@/api/client'

type Item = Awaited<ReturnType<typeof fetchRaw>>[number]

export interface Viewing {
  id: string
  camera: string
  who: string
  remote: string
  start: string
  bytes: number
}

function fetchRaw() {
  return must(api.GET('/api/v1/video/sessions'))
}

function str(o: Item, k: string): string {
  const v = o[k]
  return typeof v === 'string' ? v : ''
}

/** fetchViewings lists the sessions on the cameras this person may watch, grouped by camera. */
export async function fetchViewings(): Promise<Record<string, Viewing[]>> {
  const out: Record<string, Viewing[]> = {}
  for (const o of await fetchRaw()) {
    const v: Viewing = {
      id: str(o, 'id'),
      camera: str(o, 'camera'),
      who: str(o, 'who'),
      remote: str(o, 'remote'),
      start: str(o, 'start'),
      bytes: typeof o.bytes === 'number' ? o.bytes : 0,
    }
    if (!v.id || !v.camera) continue
    ;(out[v.camera] ??= []).push(v)
  }
  for (const list of Object.values(out)) list.sort((a, b) => a.start.localeCompare(b.start))
  return out
}
