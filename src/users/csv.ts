/** Splits CSV text into rows of fields (RFC 4180: quoted fields, doubled quotes, CRLF or LF). Pure. */
export function parseCsv (text: string): Array<{ line: number, fields: string[] }> {
  const rows: Array<{ line: number, fields: string[] }> = []
  let field = ''
  let fields: string[] = []
  let quoted = false
  let line = 1
  let rowLine = 1
  const endRow = (): void => {
    fields.push(field)
    if (!(fields.length === 1 && fields[0]!.trim() === '')) rows.push({ line: rowLine, fields })
    fields = []
    field = ''
  }
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') { field += '"'; i++ } else quoted = false
      } else {
        if (ch === '\n') line++
        field += ch
      }
    } else if (ch === '"' && field.trim() === '') {
      quoted = true
      field = ''
    } else if (ch === ',') {
      fields.push(field)
      field = ''
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++
      endRow()
      line++
      rowLine = line
    } else {
      field += ch
    }
  }
  if (field !== '' || fields.length > 0) endRow()
  return rows
}
