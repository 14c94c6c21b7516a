// A dead letter's payload as a person can read it: the text (JSON
// indented) when it is UTF-8, else a hex dump.

export interface ShownPayload {
  text: string
  binary: boolean
  kept: number
}

function fromBase64(b64: string): Uint8Array {
  try {
    const s = atob(b64)
    const out = new Uint8Array(s.length)
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
    return out
  } catch {
    return new Uint8Array()
  }
}

function hexDump(b: Uint8Array): string {
  const lines: string[] = []
  for (let off = 0; off < b.length; off += 16) {
    const row = b.subarray(off, off + 16)
    const hex = [...row].map((x) => x.toString(16).padStart(2, '0')).join(' ')
    const ascii = [...row].map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('')
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`)
  }
  return lines.join('\n')
}

/** showPayload decodes the base64 payload the API gives. */
export function showPayload(b64: string | undefined): ShownPayload {
  const bytes = fromBase64(b64 ?? '')
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    // Control characters other than white space make it binary.
    if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) throw new Error('binary')
    try {
      return { text: JSON.stringify(JSON.parse(text), null, 2), binary: false, kept: bytes.length }
    } catch {
      return { text, binary: false, kept: bytes.length }
    }
  } catch {
    return { text: hexDump(bytes), binary: true, kept: bytes.length }
  }
}
