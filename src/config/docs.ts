import { ARRAY_SCHEMA, SCHEMA, envName, type Field } from './schema.js'

/** config.example.toml as generated from the schema; a test keeps the committed file equal to it. */
export function exampleToml (): string {
  const lines: string[] = ['# m1node configuration. Every key is shown with its default; all are optional.',
    '# Any key can also be set by an environment variable M1NODE_<TABLE>_<KEY> (e.g. M1NODE_SIP_UDP_PORT=5070),',
    '# which wins over this file; lists are comma-separated there.', '']
  for (const [table, keys] of Object.entries(SCHEMA)) {
    lines.push(`[${table}]`)
    for (const [key, field] of Object.entries(keys) as Array<[string, Field]>) {
      lines.push(`# ${field.doc}`)
      lines.push(`${key} = ${tomlValue(field.default)}`)
    }
    lines.push('')
  }
  for (const [table, keys] of Object.entries(ARRAY_SCHEMA)) {
    lines.push(`# [[${table}]] may be given any number of times (no environment override), e.g.:`)
    lines.push(`# [[${table}]]`)
    for (const [key, field] of Object.entries(keys) as Array<[string, Field]>) {
      lines.push(`# ${key} = ${tomlValue(field.default)}  # ${field.doc}`)
    }
    lines.push('')
  }
  return lines.join('\n')
}

/** The key tables of docs/config.md; a test checks the committed doc holds exactly these rows. */
export function configTableRows (): string[] {
  const rows: string[] = []
  for (const [table, keys] of Object.entries(SCHEMA)) {
    for (const [key, field] of Object.entries(keys) as Array<[string, Field]>) {
      const range = field.min != null || field.max != null ? ` (${field.min ?? ''}..${field.max ?? ''})` : ''
      const values = field.values != null ? ` One of: ${field.values.map(v => `\`${v}\``).join(', ')}.` : ''
      rows.push(`| \`${table}.${key}\` | \`${envName(`${table}.${key}`)}\` | ${field.type}${range} | \`${tomlValue(field.default)}\` | ${field.doc.replace(/\|/g, '\\|')}${values} |`)
    }
  }
  return rows
}

export function tomlValue (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(x => JSON.stringify(x)).join(', ')}]`
  if (typeof v === 'string') return JSON.stringify(v)
  return String(v)
}

/** The rows of the `[[upstream]]` table in docs/config.md (array entries: no environment override). */
export function arrayTableRows (): string[] {
  const rows: string[] = []
  for (const [table, keys] of Object.entries(ARRAY_SCHEMA)) {
    for (const [key, field] of Object.entries(keys) as Array<[string, Field]>) {
      const range = field.min != null || field.max != null ? ` (${field.min ?? ''}..${field.max ?? ''})` : ''
      const values = field.values != null ? ` One of: ${field.values.map(v => `\`${v}\``).join(', ')}.` : ''
      rows.push(`| \`${table}[].${key}\` | ${field.type}${range} | \`${tomlValue(field.default)}\` | ${field.doc.replace(/\|/g, '\\|')}${values} |`)
    }
  }
  return rows
}
