// Who is logged in, what they may do, and the facility they look at. The
// console hides what a role cannot do; the gateway enforces it.
import { reactive, readonly } from 'vue'
import { api, must, setCSRF, type Schemas } from '@/api/client'
import { i18n } from '@/i18n'

type SessionInfo = Schemas['SessionInfo']
type Facility = Schemas['Facility']

const state = reactive({
  user: null as SessionInfo | null,
  facility: null as Facility | null,
  checked: false,
})

export const session = readonly(state)

/** Permission names as the gateway gives them in SessionInfo.permissions. */
export type Permission =
  | 'devices'
  | 'history'
  | 'availability'
  | 'gateway health'
  | 'dead letters'
  | 'alarms'
  | 'alarm actions'
  | 'audit log'
  | 'personal data'
  | 'cameras'
  | 'live video'
  | 'video sessions'
  | 'rules reload'
  | 'users'
  | 'reports'
  | 'walk tests'
  | 'device onboarding'
  | 'hazard list'
  | 'hazard inspection'
  | 'hazard rectification'
  | 'report generation'

export function can(p: Permission): boolean {
  return !!state.user?.permissions.includes(p)
}

async function loadFacility() {
  try {
    state.facility = await must(api.GET('/api/v1/facility'))
  } catch {
    state.facility = null
  }
}

/** check asks the gateway whether this browser has a session. */
export async function checkSession(): Promise<boolean> {
  const { data, response } = await api.GET('/api/v1/session')
  state.checked = true
  if (response.ok && data) {
    state.user = data
    setCSRF(data.csrf_token ?? '')
    // Names and the time zone fill in when they come: the page need not
    // wait for them (a camera page starts its video at once).
    void loadFacility()
    return true
  }
  state.user = null
  return false
}

export async function login(name: string, password: string): Promise<void> {
  const data = await must(api.POST('/api/v1/session', { body: { name, password } }))
  state.user = data as SessionInfo
  setCSRF(state.user.csrf_token ?? '')
  await loadFacility()
}

export async function logout(everywhere = false): Promise<void> {
  try {
    if (everywhere) await api.POST('/api/v1/session/end-all')
    else await api.DELETE('/api/v1/session')
  } finally {
    forget()
  }
}

/** forget drops the session locally (the gateway already ended it). */
export function forget() {
  state.user = null
  setCSRF('')
}

/** zoneName is a zone's name in the console's language (its id when the facility does not name it). */
export function zoneName(id: string | undefined): string {
  if (!id) return ''
  const z = state.facility?.zones?.find((z) => z.id === id)
  if (!z) return id
  return (i18n.global.locale.value === 'en' ? z.name || z.name_zh : z.name_zh || z.name) || id
}
