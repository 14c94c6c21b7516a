// WHEP (RFC 9725) signalling with the gateway: one POST of an SDP offer
// per viewing session, answered by the SDP answer and the session's
// Location; a DELETE of that Location ends it. The gateway's answer holds
// every one of its candidates, so the player does not trickle: it waits
// for its own candidates (briefly), sends the offer and is done.
import { csrfHeader } from '@/api/client'
import { session } from '@/stores/session'

/** WhepError is a refused offer: the HTTP status and the gateway's reason (text/plain). */
export class WhepError extends Error {
  constructor(
    public status: number,
    message: string,
    /** Retry-After in milliseconds (0: none given). */
    public retryAfter = 0,
  ) {
    super(message)
  }
}

/**
 * The STUN/TURN servers the gateway named in its last answer (Link
 * headers), for the next connection: TURN credentials are the viewer's
 * own, so they are kept for the user they were given to.
 */
let lastIce = { user: '', servers: [] as RTCIceServer[] }

export function iceServers(): RTCIceServer[] {
  return lastIce.user === (session.user?.name ?? '') ? lastIce.servers : []
}

/**
 * gathered waits until the peer connection has gathered its candidates,
 * or at most ms. Sending the offer before gathering ends saves little
 * (host candidates come within about 150 ms) and, in Chromium, delays the
 * connectivity checks after the answer by more than that.
 */
export function gathered(pc: RTCPeerConnection, ms = 1000): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      pc.removeEventListener('icegatheringstatechange', check)
      resolve()
    }
    const check = () => {
      if (pc.iceGatheringState === 'complete') done()
    }
    const timer = setTimeout(done, ms)
    pc.addEventListener('icegatheringstatechange', check)
  })
}

/**
 * offerURL is where a camera's WHEP offers go. tiles is how many cameras
 * the wall shows: the gateway gives a wall the cameras' sub streams, and
 * a camera shown alone the stream the viewer's link carries
 * (quality=auto).
 */
export function offerURL(camera: string, tiles = 1): string {
  return `/api/v1/cameras/${encodeURIComponent(camera)}/whep?quality=auto&tiles=${tiles}`
}

/**
 * post sends an offer and gives the answer and the session's Location.
 * It is not aborted when the player goes away meanwhile: the caller ends
 * the session it gets (an aborted POST would leave a session the gateway
 * keeps until its connect timeout, counted against this person's limit).
 */
export async function post(
  camera: string,
  offer: string,
  tiles = 1,
  timeoutMs = 20000,
): Promise<{ answer: string; location: string }> {
  const r = await fetch(offerURL(camera, tiles), {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/sdp', ...csrfHeader() },
    body: offer,
    signal: AbortSignal.timeout(timeoutMs),
  })
  const body = await r.text()
  if (r.status !== 201) {
    const after = Number(r.headers.get('Retry-After'))
    throw new WhepError(r.status, body.trim() || r.statusText, Number.isFinite(after) && after > 0 ? after * 1000 : 0)
  }
  const servers = parseLinks(r.headers.get('Link'))
  if (servers.length) lastIce = { user: session.user?.name ?? '', servers }
  return { answer: body, location: r.headers.get('Location') ?? '' }
}

/** hangUp ends a session; it outlives the page (keepalive) and ignores every error. */
export function hangUp(location: string): void {
  if (!location) return
  fetch(location, { method: 'DELETE', credentials: 'same-origin', headers: csrfHeader(), keepalive: true }).catch(
    () => {
      /* the session ends by itself when its peer goes away */
    },
  )
}

/**
 * parseLinks reads `Link: <turn:h:3478>; rel="ice-server"; username="u";
 * credential="c"; credential-type="password"` (one or several, comma
 * separated) into RTCIceServers.
 */
export function parseLinks(header: string | null): RTCIceServer[] {
  if (!header) return []
  const out: RTCIceServer[] = []
  // A link is <url> followed by ;-separated parameters, some quoted.
  const re = /<([^>]*)>((?:\s*;\s*[\w-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,]*))*)/g
  for (const m of header.matchAll(re)) {
    const params: Record<string, string> = {}
    for (const p of m[2].matchAll(/;\s*([\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,]*)/g)) {
      let v = p[2].trim()
      if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1')
      params[p[1].toLowerCase()] = v
    }
    if (params.rel !== 'ice-server') continue
    const s: RTCIceServer = { urls: m[1] }
    if (params.username) s.username = params.username
    if (params.credential) s.credential = params.credential
    out.push(s)
  }
  return out
}
