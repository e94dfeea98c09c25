import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { resolve } from 'node:path'
import { parse as parseToml, TomlError } from 'smol-toml'
import { ConfigError } from '../core/index.js'
import { SCHEMA, envName, fields, fromEnv, validate, type M1Config } from './schema.js'

export interface LoadOptions {
  /** a config file that must exist */
  file?: string
  /** used when no file is given: loaded when it exists */
  defaultFile?: string
  env?: NodeJS.ProcessEnv
  /** values from CLI flags by key path (`node.data_dir`), the strongest source */
  overrides?: Record<string, unknown>
}

/** defaults < TOML file < environment (M1NODE_*) < CLI flags, validated once. */
export async function loadConfig (opts: LoadOptions = {}): Promise<M1Config> {
  let raw: Record<string, Record<string, unknown>> = {}
  const file = opts.file ?? opts.defaultFile
  if (file != null) {
    let text: string | undefined
    try {
      text = await readFile(file, 'utf8')
    } catch (err: any) {
      if (opts.file != null || err?.code !== 'ENOENT') throw new ConfigError('--config', `cannot read ${file}: ${err?.code ?? err?.message}`)
    }
    if (text != null) raw = parseTomlText(text, file)
  }
  const env = opts.env ?? process.env
  for (const [path, field] of fields()) {
    const text = env[envName(path)]
    if (text == null) continue
    set(raw, path, fromEnv(path, field, text))
  }
  for (const [path, value] of Object.entries(opts.overrides ?? {})) {
    if (value !== undefined) set(raw, path, value)
  }
  return validate(raw)
}

export function parseTomlText (text: string, file = 'config'): Record<string, Record<string, unknown>> {
  try {
    return parseToml(text) as Record<string, Record<string, unknown>>
  } catch (err) {
    const where = err instanceof TomlError ? `line ${err.line}, column ${err.column}` : 'parse error'
    const reason = (err as Error).message.split('\n')[0] ?? 'invalid TOML'
    throw new ConfigError(file, `${where}: ${reason}`)
  }
}

function set (raw: Record<string, Record<string, unknown>>, path: string, value: unknown): void {
  const i = path.lastIndexOf('.')
  const table = path.slice(0, i)
  const key = path.slice(i + 1)
  if (!(table in SCHEMA)) throw new ConfigError(path, 'unknown key')
  raw[table] ??= {}
  raw[table]![key] = value
}

/** `~` and relative paths -> absolute. */
export function expandPath (p: string, base = process.cwd()): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2))
  return resolve(base, p)
}
