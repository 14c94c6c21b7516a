// The one place the console talks to the gateway. Types come from the
// gateway's OpenAPI document (npm run gen:api), never copied by hand.
import createClient, { type Middleware } from 'openapi-fetch'
import type { paths, components } from './schema'

export type Schemas = components['schemas']

let csrfToken = ''
let onUnauthorized: () => void = () => {}

/** setCSRF keeps the session's CSRF token, sent on every changing request. */
export function setCSRF(token: string) {
  csrfToken = token
}

/** setUnauthorizedHandler is called when the gateway says the session is over. */
export function setUnauthorizedHandler(fn: () => void) {
  onUnauthorized = fn
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (request.method !== 'GET' && request.method !== 'HEAD' && csrfToken) {
      request.headers.set('X-CSRF-Token', csrfToken)
    }
    return request
  },
  onResponse({ response, request }) {
    // A 401 on anything but the login itself means the session ended
    // (idle, logout elsewhere, new password): back to the login page.
    if (response.status === 401 && !request.url.endsWith('/api/v1/session')) {
      onUnauthorized()
    }
    return response
  },
}

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' })
api.use(csrf)

/** ApiError carries the gateway's own message ({"error": "..."}). */
export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
    /** The gateway's machine-readable reason, where it gives one. */
    public reason = '',
  ) {
    super(message)
  }
}

/** must unwraps an openapi-fetch answer: the data, or an ApiError with the gateway's message. */
export async function must<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await p
  if (error !== undefined || !response.ok) {
    const body = error && typeof error === 'object' ? (error as { error?: unknown; reason?: unknown }) : {}
    const msg = 'error' in body ? String(body.error) : response.statusText
    throw new ApiError(response.status, msg, typeof body.reason === 'string' ? body.reason : '')
  }
  return data as T
}

/** fetchText GETs a URL of the API as text (CSV downloads), with the session's cookie. */
export async function fetchText(url: string): Promise<string> {
  const r = await fetch(url, { credentials: 'same-origin' })
  if (!r.ok) {
    let msg = r.statusText
    try {
      msg = (await r.json()).error ?? msg
    } catch {
      /* not JSON */
    }
    if (r.status === 401) onUnauthorized()
    throw new ApiError(r.status, msg)
  }
  return r.text()
}

/** csrfHeader is the header a raw fetch (WHEP) sends on a changing request. */
export function csrfHeader(): Record<string, string> {
  return csrfToken ? { 'X-CSRF-Token': csrfToken } : {}
}
