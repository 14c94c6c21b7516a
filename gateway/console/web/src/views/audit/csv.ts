// CSV made in the browser from what a page shows: RFC 4180 quoting, CRLF
// line ends and a byte-order mark so that spreadsheet programs read the
// Chinese text as UTF-8.

/**
 * csvField quotes a field when it needs it. A field that a spreadsheet
 * would take for a formula (=, +, -, @, tab, CR at its start) gets a
 * leading apostrophe: comments are typed by people, and a comment such as
 * =HYPERLINK(...) must stay text when the file is opened.
 */
export function csvField(v: string | number | boolean | undefined | null): string {
  let s = v === undefined || v === null ? '' : String(v)
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = "'" + s
  if (/[",\r\n]/.test(s) || s !== s.trim()) s = '"' + s.replace(/"/g, '""') + '"'
  return s
}

/** toCSV joins rows (the first being the header) into one CSV text. */
export function toCSV(rows: (string | number | boolean | undefined | null)[][]): string {
  return '\ufeff' + rows.map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n'
}
