import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual, createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../core/index.js'
import type { Metrics } from '../core/index.js'
import { InvalidInputError, M1Error } from '../core/index.js'
import type { Users, UserRecord } from '../users/index.js'
import { ImportError, UnknownUserError, UserExistsError, TrunkExistsError, UnknownTrunkError, DidExistsError, UnknownDidError, type Pbx, type TrunkRecord, type TrunkKind, type PbxMode, type PbxSettings } from '../users/index.js'
import type { Binding } from '../registrar/index.js'
import type { CallRecord } from '../routing/index.js'
import type { MessageRecord } from '../messaging/index.js'
import type { Directory } from '../directory/index.js'
import { BadQueryError, NameKeyChangedError, NameNotFoundError } from '../directory/index.js'
import type { PeerInfo } from '../p2p/index.js'

export interface WebComponents {
  users: Pick<Users, 'add' | 'setPassword' | 'update' | 'remove' | 'list' | 'importCsv' | 'get'>
  location: { lookup: (aor: string) => Binding[] }
  /** trunks, PBX routing and DIDs (docs/pbx.md): /api/trunks, /api/pbx, /api/dids */
  pbx?: Pick<Pbx, 'addTrunk' | 'removeTrunk' | 'listTrunks' | 'setSettings' | 'settingsOf' | 'addDid' | 'removeDid' | 'listDids'>
  records: { list: (opts: { since?: number, limit?: number }) => Promise<CallRecord[]> }
  /** message history (src/messaging), when messaging runs: /api/messages */
  messages?: { list: (opts: { login?: string, since?: number, limit?: number }) => Promise<MessageRecord[]> }
  /** the directory, when p2p runs: /api/resolve, /api/search */
  directory?: Pick<Directory, 'resolve' | 'find'>
  /** connected libp2p peers, when p2p runs: /api/peers */
  peers?: () => Promise<PeerInfo[]>
  metrics?: Metrics
  /** node status for /api/status and /health */
  status: () => Record<string, unknown>
  ready: () => boolean
  logger?: Logger
}

export interface WebInit {
  /** @default '127.0.0.1' */
  host: string
  /** @default 5080 */
  port: number
  /** bearer token of the control API (control.token in the data dir) */
  token: string
}

/** Largest request body: a CSV of some hundred thousand users. */
const MAX_BODY = 64 * 1024 * 1024

class HttpError extends M1Error {
  static override readonly name: string = 'HttpError'
  constructor (readonly status: number, message: string) { super(message) }
}

/** HTTP: GET /health, GET /metrics, and the control API under /api (bearer token) that the CLI uses while the daemon holds the store. */
export class WebServer {
  private server?: Server
  private readonly tokenHash: Buffer

  constructor (private readonly components: WebComponents, private readonly init: WebInit) {
    this.tokenHash = createHash('sha256').update(init.token).digest()
  }

  async start (): Promise<void> {
    const server = createServer((req, res) => { void this.handle(req, res) })
    server.keepAliveTimeout = 5000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.init.port, this.init.host, () => { server.off('error', reject); resolve() })
    })
    this.server = server
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) return
    this.server = undefined
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }

  address (): { address: string, port: number } {
    const a = this.server?.address() as AddressInfo | null
    return { address: a?.address ?? this.init.host, port: a?.port ?? this.init.port }
  }

  get url (): string {
    const { address, port } = this.address()
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}`
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost')
      if (req.method === 'GET' && url.pathname === '/health') {
        const ready = this.components.ready()
        return send(res, ready ? 200 : 503, { status: ready ? 'ok' : 'starting' })
      }
      if (req.method === 'GET' && url.pathname === '/metrics') {
        const m = this.components.metrics
        if (m == null) return send(res, 404, { error: 'metrics disabled' })
        res.writeHead(200, { 'content-type': m.contentType })
        res.end(await m.render())
        return
      }
      if (url.pathname.startsWith('/api/')) {
        if (!this.authorized(req)) return send(res, 401, { error: 'missing or wrong control token' })
        return await this.api(req, res, url)
      }
      send(res, 404, { error: 'not found' })
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message })
      if (err instanceof ImportError) return send(res, 400, { error: err.message, rows: err.rows.slice(0, 100) })
      if (err instanceof InvalidInputError) return send(res, 400, { error: err.message })
      if (err instanceof UserExistsError || err instanceof TrunkExistsError || err instanceof DidExistsError) return send(res, 409, { error: err.message })
      if (err instanceof UnknownUserError || err instanceof UnknownTrunkError || err instanceof UnknownDidError) return send(res, 404, { error: err.message })
      if (err instanceof NameNotFoundError) return send(res, 404, { error: err.message })
      if (err instanceof BadQueryError) return send(res, 400, { error: err.message })
      if (err instanceof NameKeyChangedError) return send(res, 409, { error: err.message })
      this.components.logger?.error({ err }, 'control API request failed')
      send(res, 500, { error: 'internal error' })
    }
  }

  /** The directory or peer list; 503 when the node runs without p2p. */
  private p2pPart<K extends 'directory' | 'peers'> (part: K): NonNullable<WebComponents[K]> {
    const v = this.components[part]
    if (v == null) throw new HttpError(503, 'p2p is disabled on this node ([p2p] enabled = false)')
    return v as NonNullable<WebComponents[K]>
  }

  /** /api/trunks[/<login>/<name>], /api/pbx/<login>, /api/dids[/<number>] */
  private async pbxApi (req: IncomingMessage, res: ServerResponse, url: URL, parts: string[]): Promise<void> {
    const pbx = this.components.pbx
    if (pbx == null) throw new HttpError(503, 'PBX routing is not available')
    const lookup = (l: string): Binding[] => this.components.location.lookup(l)
    const route = `${req.method ?? ''} /${parts[1]!}${parts.length > 2 ? '/' + parts.slice(2).map(() => ':').join('/') : ''}`
    switch (route) {
      case 'GET /trunks': {
        const login = url.searchParams.get('login') ?? undefined
        const list = await pbx.listTrunks(login)
        return send(res, 200, { trunks: list.map(t => publicTrunk(t, lookup(t.login))) })
      }
      case 'POST /trunks': {
        const b = await readJson(req)
        if (b.allow != null && (!Array.isArray(b.allow) || b.allow.some(a => typeof a !== 'string'))) throw new InvalidInputError('allow', 'must be a list of IP addresses')
        if (b.maxCalls != null && typeof b.maxCalls !== 'number') throw new InvalidInputError('maxCalls', 'must be a number')
        const kind = optStr(b.kind, 'kind')
        const password = optStr(b.password, 'password')
        const target = optStr(b.target, 'target')
        const r = await pbx.addTrunk({
          login: str(b.login, 'login'),
          name: str(b.name, 'name'),
          ...(kind != null ? { kind: kind as TrunkKind } : {}),
          ...(password != null ? { password } : {}),
          ...(b.allow != null ? { allow: b.allow as string[] } : {}),
          ...(target != null ? { target } : {}),
          ...(typeof b.maxCalls === 'number' ? { maxCalls: b.maxCalls } : {}),
          ...(b.extensionIdentity === true ? { extensionIdentity: true } : {})
        })
        return send(res, 201, { ...publicTrunk(r.trunk, []), password: r.password })
      }
      case 'DELETE /trunks/:/:':
        await pbx.removeTrunk(parts[2]!, parts[3]!)
        res.writeHead(204).end()
        return
      case 'GET /pbx/:':
        return send(res, 200, await pbx.settingsOf(parts[2]!))
      case 'PATCH /pbx/:': {
        const b = await readJson(req)
        const alias = b.alias as { name?: unknown, ext?: unknown, listed?: unknown } | undefined
        const mode = optStr(b.mode, 'mode')
        const distribution = optStr(b.distribution, 'distribution')
        const s = await pbx.setSettings(parts[2]!, {
          ...(mode != null ? { mode: mode as PbxMode } : {}),
          ...(distribution != null ? { distribution: distribution as PbxSettings['distribution'] } : {}),
          ...(alias != null ? { alias: { name: str(alias.name, 'alias.name'), ext: alias.ext == null ? null : str(alias.ext, 'alias.ext'), ...(typeof alias.listed === 'boolean' ? { listed: alias.listed } : {}) } } : {})
        })
        return send(res, 200, s)
      }
      case 'GET /dids': {
        const login = url.searchParams.get('login') ?? undefined
        return send(res, 200, { dids: await pbx.listDids(login) })
      }
      case 'POST /dids': {
        const b = await readJson(req)
        return send(res, 201, await pbx.addDid(str(b.number, 'number'), str(b.target, 'target')))
      }
      case 'DELETE /dids/:':
        await pbx.removeDid(parts[2]!)
        res.writeHead(204).end()
        return
      default:
        throw new HttpError(404, `no route ${route}`)
    }
  }

  private authorized (req: IncomingMessage): boolean {
    const h = req.headers.authorization
    if (h == null || !h.startsWith('Bearer ')) return false
    const given = createHash('sha256').update(h.slice(7).trim()).digest()
    return timingSafeEqual(given, this.tokenHash)
  }

  private async api (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const { users } = this.components
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent) // ['api', ...]
    // /api/users/<login>[/password]; 'import' is a verb, not a login
    const route = `${req.method ?? ''} /${parts.slice(1).map((p, i) => i === 1 && parts[1] === 'users' && p !== 'import' ? ':login' : p).join('/')}`
    const login = parts[2] ?? ''
    if (['trunks', 'pbx', 'dids'].includes(parts[1] ?? '')) return await this.pbxApi(req, res, url, parts)
    switch (route) {
      case 'GET /status':
        return send(res, 200, this.components.status())
      case 'GET /calls': {
        const since = Number(url.searchParams.get('since') ?? '0')
        const limit = Number(url.searchParams.get('limit') ?? '1000')
        if (!Number.isFinite(since) || since < 0) throw new InvalidInputError('since', 'must be epoch milliseconds')
        const calls = await this.components.records.list({ since, limit: Number.isInteger(limit) && limit > 0 ? Math.min(limit, 100_000) : 1000 })
        return send(res, 200, { calls })
      }
      case 'GET /messages': {
        const since = Number(url.searchParams.get('since') ?? '0')
        const limit = Number(url.searchParams.get('limit') ?? '1000')
        const user = url.searchParams.get('user') ?? undefined
        if (!Number.isFinite(since) || since < 0) throw new InvalidInputError('since', 'must be epoch milliseconds')
        const list = await this.components.messages?.list({ since, limit: Number.isInteger(limit) && limit > 0 ? Math.min(limit, 100_000) : 1000, ...(user != null && user !== '' ? { login: user } : {}) }) ?? []
        return send(res, 200, { messages: list })
      }
      case 'GET /users': {
        const limit = Number(url.searchParams.get('limit') ?? '1000')
        const after = url.searchParams.get('after') ?? undefined
        const list = await users.list({ ...(after != null ? { after } : {}), limit: Number.isInteger(limit) && limit > 0 ? Math.min(limit, 100_000) : 1000 })
        return send(res, 200, { users: list.map(u => publicUser(u, this.components.location.lookup(u.login).length)) })
      }
      case 'POST /users': {
        const body = await readJson(req)
        const u = await users.add({ login: str(body.login, 'login'), ...(body.password != null ? { password: str(body.password, 'password') } : {}), ...(body.displayName != null ? { displayName: str(body.displayName, 'displayName') } : {}), ...(body.listed === true ? { listed: true } : {}) })
        return send(res, 201, publicUser(u, 0))
      }
      case 'GET /users/:login': {
        const u = await users.get(login)
        if (u == null) throw new UnknownUserError(login)
        const bindings = this.components.location.lookup(u.login)
        return send(res, 200, { ...publicUser(u, bindings.length), bindings: bindings.map(publicBinding) })
      }
      case 'PUT /users/:login/password': {
        const body = await readJson(req)
        const u = await users.setPassword(login, str(body.password, 'password'))
        return send(res, 200, publicUser(u, this.components.location.lookup(u.login).length))
      }
      case 'PATCH /users/:login': {
        const body = await readJson(req)
        if (body.listed != null && typeof body.listed !== 'boolean') throw new InvalidInputError('listed', 'must be true or false')
        const u = await users.update(login, {
          ...(body.displayName != null ? { displayName: str(body.displayName, 'displayName') } : {}),
          ...(typeof body.listed === 'boolean' ? { listed: body.listed } : {})
        })
        return send(res, 200, publicUser(u, this.components.location.lookup(u.login).length))
      }
      case 'DELETE /users/:login':
        await users.remove(login)
        res.writeHead(204).end()
        return
      case 'POST /users/import': {
        const text = (await readBody(req)).toString('utf8')
        const result = await users.importCsv(text, { update: url.searchParams.get('update') === '1' })
        return send(res, 200, result)
      }
      case 'GET /resolve': {
        const name = url.searchParams.get('name') ?? ''
        if (name === '') throw new InvalidInputError('name', 'missing')
        return send(res, 200, await this.p2pPart('directory').resolve(name, { signal: AbortSignal.timeout(15_000) }))
      }
      case 'GET /search': {
        const q = url.searchParams.get('q') ?? ''
        return send(res, 200, { results: await this.p2pPart('directory').find(q, { signal: AbortSignal.timeout(15_000) }) })
      }
      case 'GET /peers':
        return send(res, 200, { peers: await this.p2pPart('peers')() })
      default:
        throw new HttpError(404, `no route ${route}`)
    }
  }
}

function publicTrunk (t: TrunkRecord, bindings: Binding[]): Record<string, unknown> {
  const mine = bindings.filter(b => b.trunk === t.name)
  return {
    login: t.login,
    name: t.name,
    username: `${t.login}_${t.name}`,
    kind: t.kind,
    maxCalls: t.maxCalls,
    ...(t.allow != null ? { allow: t.allow } : {}),
    ...(t.target != null ? { target: t.target } : {}),
    extensionIdentity: t.extensionIdentity === true,
    createdAt: t.createdAt,
    registrations: mine.length,
    contacts: mine.map(publicBinding)
  }
}

function publicUser (u: UserRecord, registrations: number): Record<string, unknown> {
  return { login: u.login, displayName: u.displayName, realm: u.realm, sha256: u.ha1Sha256 != null, listed: u.listed === true, createdAt: u.createdAt, updatedAt: u.updatedAt, registrations }
}

function publicBinding (b: Binding): Record<string, unknown> {
  return { contact: b.contact, expiresAt: b.expiresAt, q: b.q / 1000, transport: b.flow.transport, source: `${b.flow.remoteAddress}:${b.flow.remotePort}`, userAgent: b.userAgent }
}

function optStr (v: unknown, field: string): string | undefined {
  return v == null ? undefined : str(v, field)
}

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new HttpError(413, 'body too large')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

async function readJson (req: IncomingMessage): Promise<Record<string, unknown>> {
  try {
    const v = JSON.parse((await readBody(req)).toString('utf8'))
    if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object')
    return v
  } catch (err) {
    if (err instanceof HttpError) throw err
    throw new HttpError(400, 'body must be a JSON object')
  }
}

function str (v: unknown, field: string): string {
  if (typeof v !== 'string') throw new InvalidInputError(field, 'must be a string')
  return v
}
