// Who is watching now (GET /api/v1/video/sessions, managers), grouped by
// camera, oldest session first.
import { api, must, type Schemas } from '@/api/client'

export type Viewing = Schemas['VideoSession']

/** fetchViewings lists the sessions on the cameras this person may watch, grouped by camera. */
export async function fetchViewings(): Promise<Record<string, Viewing[]>> {
  const out: Record<string, Viewing[]> = {}
  for (const v of await must(api.GET('/api/v1/video/sessions'))) {
    ;(out[v.camera] ??= []).push(v)
  }
  for (const list of Object.values(out)) list.sort((a, b) => a.start.localeCompare(b.start))
  return out
}
