import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { InvalidInputError } from '../core/index.js'
import { computeHa1 } from '../sip/auth/index.js'
import type { Table } from '../store/index.js'
import { DidExistsError, TrunkExistsError, UnknownDidError, UnknownTrunkError, UnknownUserError } from './errors.js'
import { normalizeLogin, tryNormalizeLogin } from './login.js'
import type { Credentials } from './users.js'

/**
 * PBX equipment under a login (docs/pbx.md): trunks and lines, each with its own digest username
 * `<login>_<name>` (`_` is in no login, so the two never collide, and every PBX and phone accepts it as a SIP
 * user), per-login inbound routing (main number or extensions, aliases) and DIDs.
 */

/** Separator of the auth username of a trunk: `acme_office-pbx`. */
export const TRUNK_SEPARATOR = '_'
const TRUNK_NAME_RE = /^[a-z0-9][a-z0-9-]{0,31}$/
const EXT_RE = /^[a-z0-9*#+][a-z0-9*#+.-]{0,31}$/
/** RFC 3966/E.164: `+` and 1-15 digits. */
export const E164_RE = /^\+\d{1,15}$/

/** register: a PBX or gateway that registers; static: IP-authenticated, no registration; line: a phone of the login */
export type TrunkKind = 'register' | 'static' | 'line'

/** One piece of SIP equipment under a login. Never holds the password: only HA1s of `<login>_<name>`. */
export interface TrunkRecord {
  login: string
  name: string
  kind: TrunkKind
  realm: string
  ha1Md5: string
  ha1Sha256: string
  /** static trunks: source addresses (IP literals) whose INVITEs are this trunk's, without registration */
  allow?: string[]
  /** static trunks: where calls to the login go, `host:port` with an IP literal host */
  target?: string
  /** calls at once through this trunk, either way; 0: no cap */
  maxCalls: number
  /** calls from the PBX show `<login>.<extension>` (the PBX's From user) instead of the bare login */
  extensionIdentity?: boolean
  createdAt: number
}

export type PbxMode = 'main' | 'extensions'

/** How calls to a login reach its PBX. */
export interface PbxSettings {
  login: string
  /** main: every call to the login goes to the trunk unchanged; extensions: `login.201` reaches extension 201 */
  mode: PbxMode
  /** failover: one contact at a time by q-value; roundrobin: the contacts in turn; parallel: all at once */
  distribution: 'failover' | 'roundrobin' | 'parallel'
  /** `<alias>.<login>` -> extension, e.g. sales -> 201 */
  aliases: Record<string, string>
  /** aliases published as login records of their own (`sales.acme`), found by directory search */
  listed?: string[]
}

/** A number routed to a login (or one of its extensions). */
export interface DidRoute {
  did: string
  login: string
  ext?: string
  createdAt: number
}

export interface NewTrunk {
  login: string
  name: string
  kind?: TrunkKind
  /** generated (24 random characters) when left out */
  password?: string
  allow?: string[]
  target?: string
  maxCalls?: number
  extensionIdentity?: boolean
}

export interface PbxComponents {
  store: { table: <V>(name: 'trunk_entry' | 'login_pbx' | 'did_target') => Table<V> }
  /** whether a login exists (trunks and DIDs hang under one) */
  userExists: (login: string) => Promise<boolean>
}

export interface PbxInit {
  /** digest realm (the node's `auth.realm`) */
  realm: string
  /** distribution for logins that set none @default 'failover' */
  defaultDistribution?: PbxSettings['distribution']
}

/** Where a Request-URI user part leads, as far as trunks, extensions and DIDs are concerned. */
export interface PbxTarget {
  login: string
  /** the extension to put in the Request-URI user part of the trunk's contact */
  ext?: string
  /** the request came in for this DID */
  did?: string
}

export interface PbxEvents {
  'did:added': CustomEvent<{ did: DidRoute }>
  'did:removed': CustomEvent<{ did: string }>
  /** an alias `<alias>.<login>` was added, changed or removed; `listed`: whether it has a directory entry */
  'alias:changed': CustomEvent<{ name: string, listed: boolean, removed: boolean }>
}

/** Trunks, PBX settings and DIDs (sublevels trunk_entry, login_pbx, did_target); every write synced. */
export class Pbx extends EventTarget {
  private readonly trunks: Table<TrunkRecord>
  private readonly settings: Table<PbxSettings>
  private readonly dids: Table<DidRoute>
  /** static trunks by source address, kept in memory: looked up on every INVITE */
  private byAddress = new Map<string, TrunkRecord>()
  private readonly trunkCache = new Map<string, TrunkRecord[]>()
  /** routing settings by login (null: none stored), read on every call to a PBX */
  private readonly settingsCache = new Map<string, PbxSettings | null>()

  constructor (private readonly components: PbxComponents, private readonly init: PbxInit) {
    super()
    this.trunks = components.store.table<TrunkRecord>('trunk_entry')
    this.settings = components.store.table<PbxSettings>('login_pbx')
    this.dids = components.store.table<DidRoute>('did_target')
  }

  async start (): Promise<void> { await this.reloadStatic() }
  async stop (): Promise<void> {}

  // ---- trunks ----

  /** Adds a trunk; returns it and its password (shown once, never stored). */
  async addTrunk (t: NewTrunk): Promise<{ trunk: TrunkRecord, password: string, username: string }> {
    const login = normalizeLogin(t.login)
    const name = t.name.trim().toLowerCase()
    if (!TRUNK_NAME_RE.test(name)) throw new InvalidInputError('name', 'must be 1-32 characters of a-z, 0-9 and "-", starting with a letter or digit')
    if (!await this.components.userExists(login)) throw new UnknownUserError(login)
    if (await this.trunks.get(`${login}!${name}`) != null) throw new TrunkExistsError(`${login}${TRUNK_SEPARATOR}${name}`)
    const kind = t.kind ?? 'register'
    const password = t.password ?? randomBytes(18).toString('base64url')
    if (password.length < 8 || password.length > 256) throw new InvalidInputError('password', 'must be 8-256 characters')
    const maxCalls = t.maxCalls ?? 0
    if (!Number.isInteger(maxCalls) || maxCalls < 0 || maxCalls > 1_000_000) throw new InvalidInputError('max_calls', 'must be an integer 0-1000000 (0: no cap)')
    let allow: string[] | undefined
    let target: string | undefined
    if (kind === 'static') {
      allow = (t.allow ?? []).map(a => a.trim())
      if (allow.length === 0) throw new InvalidInputError('allow', 'a static trunk needs at least one source address')
      for (const a of allow) if (isIP(a) === 0) throw new InvalidInputError('allow', `"${a}" is no IP address`)
      if (t.target == null) throw new InvalidInputError('target', 'a static trunk needs a target host:port')
      target = checkHostPort(t.target)
      for (const a of allow) {
        const other = this.byAddress.get(a)
        if (other != null) throw new InvalidInputError('allow', `${a} belongs to trunk ${other.login}${TRUNK_SEPARATOR}${other.name}`)
      }
    } else if (kind !== 'register' && kind !== 'line') {
      throw new InvalidInputError('kind', 'must be register, static or line')
    }
    const username = `${login}${TRUNK_SEPARATOR}${name}`
    const rec: TrunkRecord = {
      login,
      name,
      kind,
      realm: this.init.realm,
      ha1Md5: computeHa1('MD5', username, this.init.realm, password),
      ha1Sha256: computeHa1('SHA-256', username, this.init.realm, password),
      ...(allow != null ? { allow } : {}),
      ...(target != null ? { target } : {}),
      maxCalls,
      ...(t.extensionIdentity === true ? { extensionIdentity: true } : {}),
      createdAt: Date.now()
    }
    await this.trunks.put(`${login}!${name}`, rec, { sync: true })
    this.trunkCache.delete(login)
    await this.reloadStatic()
    return { trunk: rec, password, username }
  }

  async removeTrunk (login: string, name: string): Promise<void> {
    const l = normalizeLogin(login)
    const key = `${l}!${name.toLowerCase()}`
    if (await this.trunks.get(key) == null) throw new UnknownTrunkError(`${l}${TRUNK_SEPARATOR}${name}`)
    await this.trunks.del(key, { sync: true })
    this.trunkCache.delete(l)
    await this.reloadStatic()
  }

  /** Trunks of one login, or of every login. */
  async listTrunks (login?: string): Promise<TrunkRecord[]> {
    const out: TrunkRecord[] = []
    const range = login != null ? { gte: `${normalizeLogin(login)}!`, lt: `${normalizeLogin(login)}!\xff` } : {}
    for await (const [, t] of this.trunks.entries(range)) out.push(t)
    return out
  }

  /** Trunks of a login, cached (the INVITE path reads them). */
  async trunksOf (login: string): Promise<TrunkRecord[]> {
    const hit = this.trunkCache.get(login)
    if (hit != null) return hit
    const list = await this.listTrunks(login)
    if (this.trunkCache.size > 100_000) this.trunkCache.clear()
    this.trunkCache.set(login, list)
    return list
  }

  async trunk (login: string, name: string): Promise<TrunkRecord | undefined> {
    return (await this.trunksOf(login)).find(t => t.name === name)
  }

  /** Digest credentials of a trunk username `<login>_<name>`, or undefined. */
  async credentials (username: string): Promise<Credentials | undefined> {
    const parsed = parseTrunkUser(username)
    if (parsed == null) return undefined
    const t = await this.trunk(parsed.login, parsed.name)
    if (t == null || t.kind === 'static') return undefined
    return { login: `${t.login}${TRUNK_SEPARATOR}${t.name}`, realm: t.realm, ha1Md5: t.ha1Md5, ha1Sha256: t.ha1Sha256 }
  }

  /** The static trunk whose allow-list holds this source address. */
  staticTrunkAt (address: string): TrunkRecord | undefined {
    return this.byAddress.get(address.replace(/^\[|\]$/g, '').replace(/^::ffff:/, ''))
  }

  private async reloadStatic (): Promise<void> {
    const map = new Map<string, TrunkRecord>()
    for (const t of await this.listTrunks()) {
      if (t.kind === 'static') for (const a of t.allow ?? []) map.set(a, t)
    }
    this.byAddress = map
  }

  /** Drops every trunk, the settings and the DIDs of a login (the login was removed). */
  async forget (login: string): Promise<void> {
    const l = normalizeLogin(login)
    for (const t of await this.listTrunks(l)) await this.trunks.del(`${l}!${t.name}`, { sync: true })
    const listed = (await this.stored(l))?.listed ?? []
    await this.settings.del(l, { sync: true })
    for (const a of listed) this.dispatchEvent(new CustomEvent('alias:changed', { detail: { name: `${a}.${l}`, listed: false, removed: true } }))
    this.settingsCache.delete(l)
    for (const d of await this.listDids(l)) {
      await this.dids.del(d.did, { sync: true })
      this.dispatchEvent(new CustomEvent('did:removed', { detail: { did: d.did } }))
    }
    this.trunkCache.delete(l)
    await this.reloadStatic()
  }

  // ---- routing settings ----

  async settingsOf (login: string): Promise<PbxSettings> {
    const s = await this.stored(login)
    return s != null ? { ...s, aliases: { ...s.aliases } } : { login, mode: 'main', distribution: this.init.defaultDistribution ?? 'failover', aliases: {} }
  }

  private async stored (login: string): Promise<PbxSettings | undefined> {
    const hit = this.settingsCache.get(login)
    if (hit !== undefined) return hit ?? undefined
    const s = await this.settings.get(login)
    if (this.settingsCache.size > 100_000) this.settingsCache.clear()
    this.settingsCache.set(login, s ?? null)
    return s
  }

  async setSettings (login: string, change: { mode?: PbxMode, distribution?: PbxSettings['distribution'], alias?: { name: string, ext: string | null, listed?: boolean } }): Promise<PbxSettings> {
    const l = normalizeLogin(login)
    if (!await this.components.userExists(l)) throw new UnknownUserError(l)
    const s = await this.settingsOf(l)
    if (change.mode != null) {
      if (change.mode !== 'main' && change.mode !== 'extensions') throw new InvalidInputError('mode', 'must be main or extensions')
      s.mode = change.mode
    }
    if (change.distribution != null) {
      if (!['failover', 'roundrobin', 'parallel'].includes(change.distribution)) throw new InvalidInputError('distribution', 'must be failover, roundrobin or parallel')
      s.distribution = change.distribution
    }
    if (change.alias != null) {
      const name = change.alias.name.toLowerCase()
      if (tryNormalizeLogin(`${name}.${l}`) == null || name.includes('.')) throw new InvalidInputError('alias', `"${name}.${l}" is no valid name`)
      const listed = new Set(s.listed ?? [])
      if (change.alias.ext == null) {
        const { [name]: _gone, ...rest } = s.aliases
        s.aliases = rest
        listed.delete(name)
      } else {
        s.aliases = { ...s.aliases, [name]: checkExt(change.alias.ext) }
        if (change.alias.listed === true) listed.add(name)
        else if (change.alias.listed === false) listed.delete(name)
      }
      if (listed.size > 0) s.listed = [...listed].sort()
      else delete s.listed
    }
    await this.settings.put(l, s, { sync: true })
    this.settingsCache.set(l, s)
    if (change.alias != null) {
      const name = `${change.alias.name.toLowerCase()}.${l}`
      this.dispatchEvent(new CustomEvent('alias:changed', { detail: { name, listed: s.listed?.includes(change.alias.name.toLowerCase()) === true, removed: change.alias.ext == null } }))
    }
    return { ...s, aliases: { ...s.aliases } }
  }

  /** Every alias with a directory entry of its own: `sales.acme`. */
  async listedAliases (): Promise<string[]> {
    const out: string[] = []
    for await (const [login, s] of this.settings.entries()) for (const a of s.listed ?? []) out.push(`${a}.${login}`)
    return out
  }

  /**
   * The PBX target a Request-URI user names when it is no login of its own: a DID (`+15551234567` or
   * `15551234567`), `<login>.<ext>` of a login in extensions mode, or an alias `<alias>.<login>`.
   */
  async resolve (user: string): Promise<PbxTarget | undefined> {
    const did = didOf(user)
    if (did != null) {
      const d = await this.dids.get(did)
      return d != null ? { login: d.login, ...(d.ext != null ? { ext: d.ext } : {}), did } : undefined
    }
    const u = user.toLowerCase()
    const first = u.indexOf('.')
    if (first > 0) {
      // alias: sales.acme
      const login = tryNormalizeLogin(u.slice(first + 1))
      if (login != null) {
        const s = await this.stored(login)
        const ext = s?.aliases[u.slice(0, first)]
        if (ext != null) return { login, ext }
      }
    }
    const last = u.lastIndexOf('.')
    if (last > 0) {
      // extension: acme.201
      const login = tryNormalizeLogin(u.slice(0, last))
      const ext = u.slice(last + 1)
      if (login != null && EXT_RE.test(ext)) {
        const s = await this.stored(login)
        if (s?.mode === 'extensions') return { login, ext }
      }
    }
    return undefined
  }

  // ---- DIDs ----

  async addDid (number: string, target: string): Promise<DidRoute> {
    const did = checkE164(number)
    const dot = target.indexOf('.')
    let login = normalizeLogin(target)
    let ext: string | undefined
    if (!await this.components.userExists(login) && dot > 0) {
      // acme.201: the login and an extension
      const last = target.lastIndexOf('.')
      login = normalizeLogin(target.slice(0, last))
      ext = checkExt(target.slice(last + 1))
    }
    if (!await this.components.userExists(login)) throw new UnknownUserError(login)
    if (await this.dids.get(did) != null) throw new DidExistsError(did)
    const rec: DidRoute = { did, login, ...(ext != null ? { ext } : {}), createdAt: Date.now() }
    await this.dids.put(did, rec, { sync: true })
    this.dispatchEvent(new CustomEvent('did:added', { detail: { did: rec } }))
    return rec
  }

  async removeDid (number: string): Promise<void> {
    const did = checkE164(number)
    if (await this.dids.get(did) == null) throw new UnknownDidError(did)
    await this.dids.del(did, { sync: true })
    this.dispatchEvent(new CustomEvent('did:removed', { detail: { did } }))
  }

  async getDid (number: string): Promise<DidRoute | undefined> {
    const did = didOf(number)
    return did != null ? await this.dids.get(did) : undefined
  }

  async listDids (login?: string): Promise<DidRoute[]> {
    const out: DidRoute[] = []
    for await (const [, d] of this.dids.entries()) if (login == null || d.login === login) out.push(d)
    return out
  }
}

/** `acme_office-pbx` -> { login: acme, name: office-pbx }, or undefined. */
export function parseTrunkUser (username: string): { login: string, name: string } | undefined {
  const i = username.indexOf(TRUNK_SEPARATOR)
  if (i <= 0) return undefined
  const login = tryNormalizeLogin(username.slice(0, i))
  const name = username.slice(i + 1).toLowerCase()
  if (login == null || !TRUNK_NAME_RE.test(name)) return undefined
  return { login, name }
}

/** Checks an E.164 number (`+` and 1-15 digits, spaces, dots and dashes ignored); throws InvalidInputError. */
export function checkE164 (number: string): string {
  const n = number.trim().replace(/[\s.()-]/g, '')
  if (!E164_RE.test(n)) throw new InvalidInputError('number', `"${number}" is no E.164 number ("+" and 1-15 digits, e.g. +15551234567)`)
  return n
}

/** The DID a Request-URI user part names: `+15551234567`, or the same digits without `+` (8 digits or more). */
export function didOf (user: string): string | undefined {
  const u = user.replace(/^tel:/, '').replace(/[.()-]/g, '')
  if (E164_RE.test(u)) return u
  if (/^\d{8,15}$/.test(u)) return `+${u}`
  return undefined
}

function checkExt (ext: string): string {
  const e = ext.trim().toLowerCase()
  if (!EXT_RE.test(e)) throw new InvalidInputError('extension', `"${ext}" must be 1-32 characters of a-z, 0-9, *, #, +, "." and "-"`)
  return e
}

function checkHostPort (v: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+)(?::(\d{1,5}))?$/.exec(v.trim())
  if (m == null || isIP(m[1]!.replace(/^\[|\]$/g, '')) === 0) throw new InvalidInputError('target', `"${v}" must be an IP address with an optional port, e.g. 192.0.2.10:5060`)
  const port = Number(m[2] ?? 5060)
  if (port < 1 || port > 65535) throw new InvalidInputError('target', 'port must be 1-65535')
  return `${m[1]!}:${port}`
}
