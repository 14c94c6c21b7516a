// Element Plus date pickers show and give Date objects in the browser's
// time zone; the page shows times in the facility's. These convert
// between an instant and a browser-local Date that reads, field by
// field, as the facility's wall clock at that instant, so that a picker
// shows and takes facility times.

function fields(instant: number, timeZone: string): number[] {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(instant))
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0)
  return [get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')]
}

/** offset is how far the zone's wall clock is ahead of UTC at instant, in ms. */
function offset(instant: number, timeZone: string): number {
  const [y, mo, d, h, mi, s] = fields(instant, timeZone)
  return Date.UTC(y, mo, d, h, mi, s) - Math.floor(instant / 1000) * 1000
}

/** toWall gives the browser-local Date that reads as the zone's wall clock at instant. */
export function toWall(instant: Date, timeZone: string | undefined): Date {
  if (!timeZone) return instant
  const [y, mo, d, h, mi, s] = fields(instant.getTime(), timeZone)
  return new Date(y, mo, d, h, mi, s, instant.getMilliseconds())
}

/** fromWall is the instant at which the zone's wall clock reads what wall reads in the browser. */
export function fromWall(wall: Date, timeZone: string | undefined): Date {
  if (!timeZone) return wall
  const utc = Date.UTC(
    wall.getFullYear(),
    wall.getMonth(),
    wall.getDate(),
    wall.getHours(),
    wall.getMinutes(),
    wall.getSeconds(),
    wall.getMilliseconds(),
  )
  // Twice, for a wall time near a change of the zone's offset.
  let instant = utc - offset(utc, timeZone)
  instant = utc - offset(instant, timeZone)
  return new Date(instant)
}
