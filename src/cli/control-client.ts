import { join } from 'node:path'
import type { M1Config } from '../config/index.js'
import { readDaemonInfo, readTokenIfAny, FILES } from '../datadir.js'
import { Store } from '../store/index.js'
import { Users, Pbx, ImportError, type ImportResult, type NewTrunk, type PbxSettings, type DidRoute, type TrunkRecord } from '../users/index.js'
import { CallRecords, type CallRecord } from '../routing/index.js'
import { listMessages, type MessageRecord } from '../messaging/index.js'
import { CliError } from './exit.js'

export interface PublicUser { login: string, displayName?: string, realm: string, sha256: boolean, createdAt: number, registrations?: number }

/** What the CLI does to users, whether the daemon runs (control API) or not (the store, opened directly). */
export interface Admin {
  readonly live: boolean
  status(): Promise<Record<string, unknown> | undefined>
  addUser(login: string, password: string, displayName?: string, listed?: boolean): Promise<PublicUser>
  setPassword(login: string, password: string): Promise<void>
  updateUser(login: string, change: { displayName?: string, listed?: boolean }): Promise<void>
  removeUser(login: string): Promise<void>
  listUsers(): Promise<PublicUser[]>
  importCsv(text: string, update: boolean): Promise<ImportResult>
  calls(since?: number, limit?: number): Promise<CallRecord[]>
  messages(opts: { user?: string, since?: number, limit?: number }): Promise<MessageRecord[]>
  addTrunk(t: NewTrunk): Promise<PublicTrunk & { password: string }>
  listTrunks(login?: string): Promise<PublicTrunk[]>
  removeTrunk(login: string, name: string): Promise<void>
  setPbx(login: string, change: { mode?: string, distribution?: string, alias?: { name: string, ext: string | null, listed?: boolean } }): Promise<PbxSettings>
  addDid(number: string, target: string): Promise<DidRoute>
  listDids(login?: string): Promise<DidRoute[]>
  removeDid(number: string): Promise<void>
  close(): Promise<void>
}

export interface PublicTrunk { login: string, name: string, username: string, kind: string, maxCalls: number, allow?: string[], target?: string, extensionIdentity: boolean, registrations?: number }

/**
 * The daemon holds the LevelDB lock, so while it runs the CLI goes through its control API (token in the data dir);
 * when it is down (no daemon.json, or nothing answers there) the CLI opens the store itself.
 */
export async function openAdmin (dataDir: string, config: M1Config): Promise<Admin> {
  const daemon = await readDaemonInfo(dataDir)
  const token = await readTokenIfAny(dataDir)
  if (daemon != null && token != null) {
    const api = new ApiAdmin(daemon.url, token)
    if (await api.reachable()) return api
  }
  const store = new Store({}, { path: join(dataDir, FILES.store), sync: config.store.sync })
  await store.start()
  const realm = config.auth.realm !== '' ? config.auth.realm : await directRealm(dataDir, config)
  const users = new Users({ store }, { realm })
  const pbx = new Pbx({ store, userExists: async (login) => await users.get(login) != null }, { realm })
  await pbx.start()
  return new StoreAdmin(store, users, pbx)
}

/** The realm the daemon would use: auth.realm, else sip.domain, else the node name. */
async function directRealm (dataDir: string, config: M1Config): Promise<string> {
  if (config.sip.domain !== '') return config.sip.domain.toLowerCase()
  if (config.node.name !== '') return config.node.name
  const { loadIdentity, defaultNodeName, ensureDataDir } = await import('../datadir.js')
  await ensureDataDir(dataDir)
  return defaultNodeName(await loadIdentity(dataDir))
}

class ApiAdmin implements Admin {
  readonly live = true
  constructor (private readonly url: string, private readonly token: string) {}

  async reachable (): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2000) })
      return res.status === 200 || res.status === 503
    } catch {
      return false
    }
  }

  private async call (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<any> {
    const res = await fetch(`${this.url}/api${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body != null ? { 'content-type': contentType } : {}) },
      ...(body != null ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(120_000)
    })
    const text = await res.text()
    const data = text !== '' ? JSON.parse(text) : undefined
    if (res.ok) return data
    const message: string = data?.error ?? `HTTP ${res.status}`
    if (res.status === 400 && Array.isArray(data?.rows)) throw new ImportError(data.rows)
    if (res.status === 400) throw new CliError(message, 2)
    if (res.status === 404) throw new CliError(message, 2)
    if (res.status === 409) throw new CliError(message, 2)
    throw new CliError(`daemon answered: ${message}`)
  }

  async status (): Promise<Record<string, unknown>> { return await this.call('GET', '/status') }
  async addUser (login: string, password: string, displayName?: string, listed?: boolean): Promise<PublicUser> {
    return await this.call('POST', '/users', { login, password, ...(displayName != null ? { displayName } : {}), ...(listed === true ? { listed: true } : {}) })
  }

  async setPassword (login: string, password: string): Promise<void> { await this.call('PUT', `/users/${encodeURIComponent(login)}/password`, { password }) }
  async updateUser (login: string, change: { displayName?: string, listed?: boolean }): Promise<void> { await this.call('PATCH', `/users/${encodeURIComponent(login)}`, change) }
  async removeUser (login: string): Promise<void> { await this.call('DELETE', `/users/${encodeURIComponent(login)}`) }
  async listUsers (): Promise<PublicUser[]> {
    const out: PublicUser[] = []
    let after: string | undefined
    for (;;) {
      const page: { users: PublicUser[] } = await this.call('GET', `/users?limit=10000${after != null ? `&after=${encodeURIComponent(after)}` : ''}`)
      out.push(...page.users)
      if (page.users.length < 10000) return out
      after = page.users[page.users.length - 1]!.login
    }
  }

  async calls (since?: number, limit?: number): Promise<CallRecord[]> {
    const r: { calls: CallRecord[] } = await this.call('GET', `/calls?since=${since ?? 0}&limit=${limit ?? 1000}`)
    return r.calls
  }

  async messages (opts: { user?: string, since?: number, limit?: number }): Promise<MessageRecord[]> {
    const q = `since=${opts.since ?? 0}&limit=${opts.limit ?? 1000}${opts.user != null ? `&user=${encodeURIComponent(opts.user)}` : ''}`
    const r: { messages: MessageRecord[] } = await this.call('GET', `/messages?${q}`)
    return r.messages
  }

  async importCsv (text: string, update: boolean): Promise<ImportResult> {
    return await this.call('POST', `/users/import${update ? '?update=1' : ''}`, text, 'text/csv')
  }

  async addTrunk (t: NewTrunk): Promise<PublicTrunk & { password: string }> { return await this.call('POST', '/trunks', t) }
  async listTrunks (login?: string): Promise<PublicTrunk[]> {
    return (await this.call('GET', `/trunks${login != null ? `?login=${encodeURIComponent(login)}` : ''}`)).trunks
  }

  async removeTrunk (login: string, name: string): Promise<void> { await this.call('DELETE', `/trunks/${encodeURIComponent(login)}/${encodeURIComponent(name)}`) }
  async setPbx (login: string, change: { mode?: string, distribution?: string, alias?: { name: string, ext: string | null, listed?: boolean } }): Promise<PbxSettings> {
    return await this.call('PATCH', `/pbx/${encodeURIComponent(login)}`, change)
  }

  async addDid (number: string, target: string): Promise<DidRoute> { return await this.call('POST', '/dids', { number, target }) }
  async listDids (login?: string): Promise<DidRoute[]> { return (await this.call('GET', `/dids${login != null ? `?login=${encodeURIComponent(login)}` : ''}`)).dids }
  async removeDid (number: string): Promise<void> { await this.call('DELETE', `/dids/${encodeURIComponent(number)}`) }

  async close (): Promise<void> {}
}

class StoreAdmin implements Admin {
  readonly live = false
  constructor (private readonly store: Store, private readonly users: Users, private readonly pbx: Pbx) {}
  async status (): Promise<undefined> { return undefined }
  async addUser (login: string, password: string, displayName?: string, listed?: boolean): Promise<PublicUser> {
    const u = await this.users.add({ login, password, ...(displayName != null ? { displayName } : {}), ...(listed === true ? { listed: true } : {}) })
    return { login: u.login, realm: u.realm, sha256: u.ha1Sha256 != null, createdAt: u.createdAt, ...(u.displayName != null ? { displayName: u.displayName } : {}) }
  }

  async setPassword (login: string, password: string): Promise<void> { await this.users.setPassword(login, password) }
  async updateUser (login: string, change: { displayName?: string, listed?: boolean }): Promise<void> { await this.users.update(login, change) }
  async removeUser (login: string): Promise<void> {
    await this.users.remove(login)
    await this.pbx.forget(login)
  }

  async listUsers (): Promise<PublicUser[]> {
    return (await this.users.list()).map(u => ({ login: u.login, realm: u.realm, sha256: u.ha1Sha256 != null, createdAt: u.createdAt, ...(u.displayName != null ? { displayName: u.displayName } : {}) }))
  }

  async importCsv (text: string, update: boolean): Promise<ImportResult> { return await this.users.importCsv(text, { update }) }
  async calls (since?: number, limit?: number): Promise<CallRecord[]> {
    return await new CallRecords({ table: this.store.table<CallRecord>('time_cdr') }).list({ ...(since != null ? { since } : {}), ...(limit != null ? { limit } : {}) })
  }
  async messages (opts: { user?: string, since?: number, limit?: number }): Promise<MessageRecord[]> {
    return await listMessages(this.store.table<MessageRecord>('msgid_message'), { ...(opts.user != null ? { login: opts.user } : {}), ...(opts.since != null ? { since: opts.since } : {}), ...(opts.limit != null ? { limit: opts.limit } : {}) })
  }

  async addTrunk (t: NewTrunk): Promise<PublicTrunk & { password: string }> {
    const r = await this.pbx.addTrunk(t)
    return { ...storeTrunk(r.trunk), password: r.password }
  }

  async listTrunks (login?: string): Promise<PublicTrunk[]> { return (await this.pbx.listTrunks(login)).map(storeTrunk) }
  async removeTrunk (login: string, name: string): Promise<void> { await this.pbx.removeTrunk(login, name) }
  async setPbx (login: string, change: { mode?: string, distribution?: string, alias?: { name: string, ext: string | null, listed?: boolean } }): Promise<PbxSettings> {
    return await this.pbx.setSettings(login, change as Parameters<Pbx['setSettings']>[1])
  }

  async addDid (number: string, target: string): Promise<DidRoute> { return await this.pbx.addDid(number, target) }
  async listDids (login?: string): Promise<DidRoute[]> { return await this.pbx.listDids(login) }
  async removeDid (number: string): Promise<void> { await this.pbx.removeDid(number) }
  async close (): Promise<void> { await this.store.stop() }
}


function storeTrunk (t: TrunkRecord): PublicTrunk {
  return { login: t.login, name: t.name, username: `${t.login}_${t.name}`, kind: t.kind, maxCalls: t.maxCalls, ...(t.allow != null ? { allow: t.allow } : {}), ...(t.target != null ? { target: t.target } : {}), extensionIdentity: t.extensionIdentity === true }
}
