// The fire alarm tone: two alternating tones every second, made with
// WebAudio (no sound file to ship), until stopAlarmSound.
let ctx: AudioContext | null = null
let timer: number | undefined

function beep() {
  if (!ctx) return
  const now = ctx.currentTime
  for (const [i, f] of [880, 660].entries()) {
    const osc = ctx.createOscillator()
    const gain = ctx.createGain()
    osc.frequency.value = f
    gain.gain.value = 0.2
    osc.connect(gain).connect(ctx.destination)
    osc.start(now + i * 0.3)
    osc.stop(now + i * 0.3 + 0.25)
  }
}

export function startAlarmSound() {
  if (timer !== undefined) return
  try {
    ctx ??= new AudioContext()
    void ctx.resume()
  } catch {
    ctx = null // no audio device: the red banner still shows
  }
  beep()
  timer = window.setInterval(beep, 1000)
}

export function stopAlarmSound() {
  if (timer !== undefined) window.clearInterval(timer)
  timer = undefined
}
