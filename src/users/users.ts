import { computeHa1 } from '../sip/auth/index.js'
import type { Table } from '../store/index.js'
import { parseCsv } from './csv.js'
import { ImportError, InvalidLoginError, UnknownUserError, UserExistsError } from './errors.js'
import { normalizeLogin } from './login.js'
import { InvalidInputError } from '../core/index.js'

/** A stored account. Never holds the password: only digest HA1 values (RFC 7616 §3.4.2), for one realm. */
export interface UserRecord {
  login: string
  displayName?: string
  realm: string
  ha1Md5: string
  /** absent when the user was imported from an MD5 HA1 only */
  ha1Sha256?: string
  /** found by directory search (its login record says `listed`) */
  listed?: boolean
  createdAt: number
  updatedAt: number
}

/** Events of {@link Users}: the directory republishes login records on them (node.ts wires it). */
export interface UsersEvents {
  'user:added': CustomEvent<{ user: UserRecord }>
  'user:changed': CustomEvent<{ user: UserRecord }>
  'user:removed': CustomEvent<{ login: string }>
}

/** What the registrar needs to check a digest response. */
export interface Credentials { login: string, realm: string, ha1Md5: string, ha1Sha256?: string }

export interface UsersComponents {
  store: { table: <V>(name: 'login_user') => Table<V> }
}

export interface UsersInit {
  /** Digest realm new passwords are hashed for (the node's `auth.realm`). */
  realm: string
}

export interface NewUser {
  login: string
  password?: string
  /** instead of a password: MD5 HA1 computed by another server for `realm` */
  ha1Md5?: string
  ha1Sha256?: string
  realm?: string
  displayName?: string
  /** found by directory search */
  listed?: boolean
}

export interface ImportResult { added: number, updated: number }

const HEX32 = /^[0-9a-f]{32}$/
const HEX64 = /^[0-9a-f]{64}$/

/** Accounts (Kamailio auth_db + subscriber): add, change password, list, remove, bulk import; cached reads. */
export class Users extends EventTarget {
  private readonly table: Table<UserRecord>
  private readonly cache = new Map<string, UserRecord | null>()

  constructor (components: UsersComponents, private readonly init: UsersInit) {
    super()
    this.table = components.store.table<UserRecord>('login_user')
  }

  private emit<K extends keyof UsersEvents> (type: K, detail: UsersEvents[K]['detail']): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }

  get realm (): string { return this.init.realm }

  /** Builds a validated record; throws InvalidInputError naming the field. */
  private build (u: NewUser, now: number, existing?: UserRecord): UserRecord {
    const login = normalizeLogin(u.login)
    const realm = u.realm ?? this.init.realm
    const displayName = u.displayName?.trim()
    if (displayName != null && (displayName.length > 128 || /[\r\n\0]/.test(displayName))) {
      throw new InvalidInputError('display_name', 'must be at most 128 characters on one line')
    }
    let ha1Md5: string
    let ha1Sha256: string | undefined
    if (u.password != null) {
      if (u.password.length < 4 || u.password.length > 256) throw new InvalidInputError('password', 'must be 4-256 characters')
      ha1Md5 = computeHa1('MD5', login, realm, u.password)
      ha1Sha256 = computeHa1('SHA-256', login, realm, u.password)
    } else if (u.ha1Md5 != null) {
      ha1Md5 = u.ha1Md5.toLowerCase()
      if (!HEX32.test(ha1Md5)) throw new InvalidInputError('ha1_md5', 'must be 32 hex digits')
      ha1Sha256 = u.ha1Sha256?.toLowerCase()
      if (ha1Sha256 != null && !HEX64.test(ha1Sha256)) throw new InvalidInputError('ha1_sha256', 'must be 64 hex digits')
    } else {
      throw new InvalidInputError('password', 'a password or an HA1 is required')
    }
    return {
      login,
      ...(displayName != null && displayName !== '' ? { displayName } : existing?.displayName != null ? { displayName: existing.displayName } : {}),
      realm,
      ha1Md5,
      ...(ha1Sha256 != null ? { ha1Sha256 } : {}),
      ...((u.listed ?? existing?.listed) === true ? { listed: true } : {}),
      createdAt: existing?.createdAt ?? now,
      updatedAt: now
    }
  }

  async get (login: string): Promise<UserRecord | undefined> {
    let key: string
    try { key = normalizeLogin(login) } catch { return undefined }
    const cached = this.cache.get(key)
    if (cached !== undefined) return cached ?? undefined
    const rec = await this.table.get(key)
    if (this.cache.size > 200_000) this.cache.clear() // bounded: a cache, not a copy of the table
    this.cache.set(key, rec ?? null)
    return rec
  }

  /** Digest credentials of a login, or undefined (unknown logins are treated the same by the caller). */
  async credentials (login: string): Promise<Credentials | undefined> {
    const u = await this.get(login)
    if (u == null) return undefined
    return { login: u.login, realm: u.realm, ha1Md5: u.ha1Md5, ...(u.ha1Sha256 != null ? { ha1Sha256: u.ha1Sha256 } : {}) }
  }

  async add (u: NewUser): Promise<UserRecord> {
    const rec = this.build(u, Date.now())
    if (await this.get(rec.login) != null) throw new UserExistsError(rec.login)
    await this.table.put(rec.login, rec, { sync: true })
    this.cache.set(rec.login, rec)
    this.emit('user:added', { user: rec })
    return rec
  }

  /** Changes the display name and/or the directory listing of a user. */
  async update (login: string, change: { displayName?: string, listed?: boolean }): Promise<UserRecord> {
    const existing = await this.get(login)
    if (existing == null) throw new UnknownUserError(login)
    const displayName = change.displayName?.trim()
    if (displayName != null && (displayName.length > 128 || /[\r\n\0]/.test(displayName))) {
      throw new InvalidInputError('display_name', 'must be at most 128 characters on one line')
    }
    const { listed: _listed, displayName: _display, ...rest } = existing
    const rec: UserRecord = {
      ...rest,
      ...((displayName ?? existing.displayName) != null && (displayName ?? existing.displayName) !== '' ? { displayName: displayName ?? existing.displayName } : {}),
      ...((change.listed ?? existing.listed) === true ? { listed: true } : {}),
      updatedAt: Date.now()
    }
    await this.table.put(rec.login, rec, { sync: true })
    this.cache.set(rec.login, rec)
    this.emit('user:changed', { user: rec })
    return rec
  }

  async setPassword (login: string, password: string): Promise<UserRecord> {
    const existing = await this.get(login)
    if (existing == null) throw new UnknownUserError(login)
    const rec = this.build({ login: existing.login, password }, Date.now(), existing)
    await this.table.put(rec.login, rec, { sync: true })
    this.cache.set(rec.login, rec)
    return rec
  }

  async remove (login: string): Promise<void> {
    const existing = await this.get(login)
    if (existing == null) throw new UnknownUserError(login)
    await this.table.del(existing.login, { sync: true })
    this.cache.set(existing.login, null)
    this.emit('user:removed', { login: existing.login })
  }

  async list (opts: { after?: string, limit?: number } = {}): Promise<UserRecord[]> {
    const out: UserRecord[] = []
    for await (const [, rec] of this.table.entries({ ...(opts.after != null ? { gte: opts.after + '\0' } : {}), limit: opts.limit ?? -1 })) {
      out.push(rec)
    }
    return out
  }

  /**
   * Bulk import from CSV: `login,password,display_name` rows, or a header naming the columns among
   * login, password, ha1_md5 (or ha1), ha1_sha256, realm, display_name. All rows are checked first; if any is bad
   * nothing is written and ImportError lists the bad lines. Existing logins are refused unless `update`.
   */
  async importCsv (text: string, opts: { update?: boolean } = {}): Promise<ImportResult> {
    const rows = parseCsv(text)
    if (rows.length === 0) return { added: 0, updated: 0 }
    let columns = ['login', 'password', 'display_name']
    const first = rows[0]!.fields.map(f => f.trim().toLowerCase())
    if (first.includes('login')) {
      columns = first.map(c => c === 'ha1' ? 'ha1_md5' : c)
      const unknown = columns.find(c => !['login', 'password', 'ha1_md5', 'ha1_sha256', 'realm', 'display_name', 'name'].includes(c))
      if (unknown != null) throw new ImportError([{ line: rows[0]!.line, reason: `unknown column "${unknown}"` }])
      rows.shift()
    }
    const now = Date.now()
    const bad: Array<{ line: number, reason: string }> = []
    const seen = new Set<string>()
    const records: Array<{ rec: UserRecord, exists: boolean }> = []
    for (const { line, fields } of rows) {
      const v: Record<string, string> = {}
      columns.forEach((c, i) => { const f = fields[i]?.trim(); if (f != null && f !== '') v[c] = f })
      try {
        if (v.login == null) throw new InvalidInputError('login', 'missing')
        const existing = await this.get(v.login)
        if (existing != null && opts.update !== true) throw new UserExistsError(normalizeLogin(v.login))
        const rec = this.build({
          login: v.login,
          ...(v.password != null ? { password: v.password } : {}),
          ...(v.ha1_md5 != null ? { ha1Md5: v.ha1_md5 } : {}),
          ...(v.ha1_sha256 != null ? { ha1Sha256: v.ha1_sha256 } : {}),
          ...(v.realm != null ? { realm: v.realm } : {}),
          ...((v.display_name ?? v.name) != null ? { displayName: v.display_name ?? v.name } : {})
        }, now, existing)
        if (seen.has(rec.login)) throw new InvalidInputError('login', `${rec.login} appears twice`)
        seen.add(rec.login)
        records.push({ rec, exists: existing != null })
      } catch (err: any) {
        if (!(err instanceof InvalidInputError || err instanceof UserExistsError || err instanceof InvalidLoginError)) throw err
        bad.push({ line, reason: err.message })
      }
    }
    if (bad.length > 0) throw new ImportError(bad)
    for (let i = 0; i < records.length; i += 1000) {
      const chunk = records.slice(i, i + 1000)
      await this.table.batch(chunk.map(({ rec }) => ({ type: 'put' as const, key: rec.login, value: rec })), { sync: true })
      for (const { rec, exists } of chunk) {
        this.cache.set(rec.login, rec)
        this.emit(exists ? 'user:changed' : 'user:added', { user: rec })
      }
    }
    const updated = records.filter(r => r.exists).length
    return { added: records.length - updated, updated }
  }
}
