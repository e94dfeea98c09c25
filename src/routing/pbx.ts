import type { Logger } from '../core/index.js'
import type { NameAddr, SipRequest } from '../sip/message/index.js'
import type { Flow } from '../sip/transport/index.js'
import type { Binding } from '../registrar/index.js'
import { parseTrunkUser, didOf, type PbxSettings, type PbxTarget, type TrunkRecord } from '../users/index.js'
import type { Callee, Caller, CallCap } from './b2bua.js'
import { UnavailableError } from './errors.js'

/** What PBX routing reads of users/Pbx. */
export interface PbxDirectory {
  trunksOf: (login: string) => Promise<TrunkRecord[]>
  settingsOf: (login: string) => Promise<PbxSettings>
  staticTrunkAt: (address: string) => TrunkRecord | undefined
  resolve: (user: string) => Promise<PbxTarget | undefined>
}

export interface PbxRoutingComponents {
  pbx: PbxDirectory
  /** source addresses of DID providers: `[pbx] did_providers` and the servers of `[[upstream]]` registrations */
  isProvider: (address: string) => boolean
  logger?: Logger
}

export interface PbxRoutingInit {
  /** our SIP domain: callers' identities become login@domain */
  domain: string
  /** seconds a trunk contact may stay silent before failover moves on (0: the transaction timeout) @default 5 */
  failoverTimeout?: number
}

const EXT_RE = /^[a-z0-9*#+][a-z0-9*#+.-]{0,31}$/i

/**
 * Calls into and out of PBXs (docs/pbx.md): who a trunk's INVITE is from (registered trunk credentials or a static
 * trunk's source address), which contacts a call to a login or one of its extensions goes to (Contact URIs kept as
 * registered, Asterisk's `line` included; the user part rewritten to the extension), and in which order.
 */
export class PbxRouting {
  private readonly turn = new Map<string, number>()

  constructor (private readonly components: PbxRoutingComponents, private readonly init: PbxRoutingInit) {}

  /** The caller of an INVITE from a static trunk's address, or undefined. */
  staticCaller (req: SipRequest, flow: Flow): Caller | undefined {
    if (flow.transport === 'P2P') return undefined
    const t = this.components.pbx.staticTrunkAt(flow.remoteAddress)
    return t != null ? this.trunkCaller(req, t) : undefined
  }

  /** The caller behind an authenticated principal: a login, or a trunk username `<login>_<name>`. */
  async authenticatedCaller (req: SipRequest, principal: string, identity: (login: string) => Promise<NameAddr>): Promise<Caller> {
    const parsed = parseTrunkUser(principal)
    if (parsed != null) {
      const t = (await this.components.pbx.trunksOf(parsed.login)).find(x => x.name === parsed.name)
      if (t != null) return this.trunkCaller(req, t, await identity(t.login))
    }
    return { login: principal, identity: await identity(principal) }
  }

  /** Whether an unauthenticated INVITE may reach a DID of ours: only from a provider. */
  isProvider (address: string): boolean {
    return this.components.isProvider(address.replace(/^\[|\]$/g, '').replace(/^::ffff:/, ''))
  }

  /** A DID, `login.ext` or alias that a Request-URI user names (not a login of its own). */
  async resolve (user: string): Promise<PbxTarget | undefined> {
    return await this.components.pbx.resolve(user)
  }

  /**
   * The callee of a call to `login` (its main number) or to one of its extensions: when the login has trunks, their
   * contacts (and static targets) only, in the order of its distribution; otherwise every binding, in parallel.
   */
  async callee (login: string, bindings: Binding[], target: { ext?: string, toUser?: string } = {}): Promise<Callee> {
    const trunks = await this.components.pbx.trunksOf(login)
    const pbxTrunks = trunks.filter(t => t.kind !== 'line')
    const lines = new Set(trunks.filter(t => t.kind === 'line').map(t => t.name))
    if (pbxTrunks.length === 0) {
      if (target.ext != null) throw new UnavailableError(`${login} has no PBX trunk for extension ${target.ext}`)
      return { login, bindings, ...(target.toUser != null ? { toUser: target.toUser } : {}) }
    }
    const names = new Set(pbxTrunks.map(t => t.name))
    let list = bindings.filter(b => b.trunk != null && names.has(b.trunk) && !lines.has(b.trunk))
    for (const t of pbxTrunks) if (t.kind === 'static' && t.target != null) list.push(staticBinding(login, t))
    if (list.length === 0) throw new UnavailableError(`no trunk of ${login} is registered`)
    if (target.ext != null) list = list.map(b => ({ ...b, contact: withUser(b.contact, target.ext!) }))
    const settings = await this.components.pbx.settingsOf(login)
    // failover: highest q first (RFC 3261 §16.6 ordering); equal q keep their registration order
    list.sort((x, y) => y.q - x.q)
    if (settings.distribution === 'roundrobin') {
      const n = this.turn.get(login) ?? 0
      this.turn.set(login, n + 1)
      const k = n % list.length
      list = [...list.slice(k), ...list.slice(0, k)]
    }
    const used = new Set(list.map(b => b.trunk))
    const caps: CallCap[] = pbxTrunks.filter(t => t.maxCalls > 0 && used.has(t.name) && used.size === 1).map(t => ({ key: `trunk:${t.login}_${t.name}`, max: t.maxCalls }))
    return {
      login,
      bindings: list,
      sequential: settings.distribution !== 'parallel',
      failoverAfterMs: (this.init.failoverTimeout ?? 5) * 1000,
      ...(target.toUser != null ? { toUser: target.toUser } : {}),
      ...(caps.length > 0 ? { caps } : {})
    }
  }

  private trunkCaller (req: SipRequest, t: TrunkRecord, base?: NameAddr): Caller {
    const identity = base ?? identityOf(t.login, undefined, this.init.domain)
    const ext = req.from.uri.user != null ? safeDecode(req.from.uri.user) : undefined
    let shown = identity
    if (t.extensionIdentity === true && ext != null && EXT_RE.test(ext)) {
      // the PBX's extension travels as `acme.201`, which calls back to that extension
      const user = `${t.login}.${ext.toLowerCase()}`
      shown = {
        ...(req.from.displayName != null ? { displayName: req.from.displayName } : identity.displayName != null ? { displayName: identity.displayName } : {}),
        uri: { scheme: 'sip', user, host: this.init.domain, params: {}, headers: {} },
        rawUri: `sip:${user}@${this.init.domain}`,
        params: {}
      }
    }
    return {
      login: t.login,
      identity: shown,
      ...(t.maxCalls > 0 ? { caps: [{ key: `trunk:${t.login}_${t.name}`, max: t.maxCalls }] } : {})
    }
  }
}

/** PBX dial plan escape: `bob*othernode` -> bob at othernode; undefined when the user part is no such escape. */
export function dialEscape (user: string): { login: string, node: string } | undefined {
  const m = /^([a-z0-9][a-z0-9.-]*)\*([a-z0-9][a-z0-9.-]*)$/i.exec(user)
  return m != null ? { login: m[1]!.toLowerCase(), node: m[2]!.toLowerCase() } : undefined
}

/** Whether a user part looks like a telephone number (a DID we may not hold). */
export function isNumber (user: string): boolean {
  return didOf(user) != null
}

/** The Request-URI of a registered contact with another user part; host, port and parameters (`;line=`) kept. */
export function withUser (contact: string, user: string): string {
  const m = /^(sips?:)(?:[^@;?]*@)?(.*)$/i.exec(contact)
  if (m == null) return contact
  return `${m[1]!}${user}@${m[2]!}`
}

function staticBinding (login: string, t: TrunkRecord): Binding {
  const target = t.target!
  const i = target.lastIndexOf(':')
  const host = target.slice(0, i)
  const port = Number(target.slice(i + 1))
  const now = Date.now()
  return {
    key: `static:${t.name}`,
    contact: `sip:${login}@${target}`,
    contactParams: {},
    q: 1000,
    expiresAt: now + 3600_000,
    callId: '',
    cseq: 0,
    flow: { transport: 'UDP', id: `udp:${target}`, remoteAddress: host.replace(/^\[|\]$/g, ''), remotePort: port, localAddress: '', localPort: 0 },
    path: [],
    nat: false,
    trunk: t.name,
    updatedAt: now
  }
}

function identityOf (login: string, displayName: string | undefined, domain: string): NameAddr {
  return {
    ...(displayName != null ? { displayName } : {}),
    uri: { scheme: 'sip', user: login, host: domain, params: {}, headers: {} },
    rawUri: `sip:${login}@${domain}`,
    params: {}
  }
}

function safeDecode (s: string): string | undefined {
  try { return decodeURIComponent(s) } catch { return undefined }
}
