import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { Logger, Metrics, MetricGauge, MetricCounter } from '../core/index.js'
import { computeHa1, computeResponse, formatCredentials, parseChallenge, type DigestChallenge } from '../sip/auth/index.js'
import { createRequest, getHeader, getHeaders, newBranch, newCallId, newTag, parseContactHeader, parseUri, type SipRequest, type SipResponse, type TransportName } from '../sip/message/index.js'
import type { ClientTransactionUser } from '../sip/transaction/index.js'
import type { SendTarget } from '../sip/transport/index.js'
import type { LocalEnd } from '../sip/dialog/index.js'

/** One provider account the node registers to (`[[upstream]]`). */
export interface UpstreamAccount {
  server: string
  username: string
  password: string
  /** digest username when it differs from username */
  authUsername?: string
  /** account domain; default the host of server */
  domain?: string
  /** seconds asked for */
  expiry: number
  transport: 'udp' | 'tcp'
  /** user part of our Contact; default username */
  contactUser?: string
}

export interface UpstreamStatus {
  server: string
  username: string
  state: 'registering' | 'registered' | 'failed' | 'stopped'
  /** epoch ms when the registration runs out, while registered */
  expiresAt?: number
  /** the address the server resolved to */
  address?: string
  lastError?: string
  /** failures in a row since the last success */
  failures: number
}

export interface UpstreamRegistrationsComponents {
  stack: { request: (req: SipRequest, target: SendTarget, user: ClientTransactionUser, opts?: { signal?: AbortSignal }) => unknown }
  localEnd: (transport: TransportName) => LocalEnd
  logger?: Logger
  metrics?: Metrics
  /** name -> address (tests stub it); default node:dns lookup */
  resolve?: (host: string) => Promise<string>
}

export interface UpstreamRegistrationsInit {
  accounts: UpstreamAccount[]
  /** first retry after a failure, ms; doubles up to maxRetryMs @default 2000 */
  retryMs?: number
  /** @default 300000 */
  maxRetryMs?: number
}

class Account {
  status: UpstreamStatus
  callId = newCallId()
  tag = newTag()
  cseq = 0
  timer?: NodeJS.Timeout
  target?: SendTarget
  nc = 0
  nonce = ''

  constructor (readonly a: UpstreamAccount) {
    this.status = { server: a.server, username: a.username, state: 'registering', failures: 0 }
  }

  get host (): string { return splitHostPort(this.a.server).host }
  get domain (): string { return this.a.domain != null && this.a.domain !== '' ? this.a.domain : this.host.replace(/^\[|\]$/g, '') }
}

/**
 * Outbound registration to DID / SIP providers (like Asterisk's outbound registration): REGISTER with RFC 2617 /
 * 7616 client digest, refresh at 85 % of the granted expiry, retries with exponential backoff after failures or
 * timeouts, so that a provider that restarts gets the registration back. The password never reaches a log.
 */
export class UpstreamRegistrations {
  private readonly accounts: Account[]
  private stopped = true
  private readonly registered?: MetricGauge
  private readonly attempts?: MetricCounter

  constructor (private readonly components: UpstreamRegistrationsComponents, private readonly init: UpstreamRegistrationsInit) {
    this.accounts = init.accounts.map(a => new Account(a))
    this.registered = components.metrics?.gauge('m1node_upstream_registered', 'Upstream provider registration in force (1) or not (0)', ['server', 'username'])
    this.attempts = components.metrics?.counter('m1node_upstream_register_total', 'REGISTER transactions to upstream providers, by result', ['result'])
    for (const acc of this.accounts) this.publish(acc)
  }

  async start (): Promise<void> {
    this.stopped = false
    for (const acc of this.accounts) this.schedule(acc, 0)
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const acc of this.accounts) {
      clearTimeout(acc.timer)
      acc.status.state = 'stopped'
      this.publish(acc)
    }
  }

  /** Status of every account, for `m1node status` and /metrics. */
  status (): UpstreamStatus[] {
    return this.accounts.map(acc => ({ ...acc.status }))
  }

  /** Whether an address is the server of one of our registrations (its calls to our DIDs are accepted). */
  isServer (address: string): boolean {
    return this.accounts.some(acc => acc.status.address === address)
  }

  private schedule (acc: Account, delayMs: number): void {
    if (this.stopped) return
    clearTimeout(acc.timer)
    acc.timer = setTimeout(() => { void this.register(acc).catch((err: unknown) => { this.failed(acc, (err as Error).message) }) }, delayMs)
    acc.timer.unref()
  }

  private publish (acc: Account): void {
    this.registered?.set(acc.status.state === 'registered' ? 1 : 0, { server: acc.a.server, username: acc.a.username })
  }

  private failed (acc: Account, reason: string): void {
    this.attempts?.inc({ result: 'failed' })
    const wasRegistered = acc.status.state === 'registered'
    acc.status.failures++
    acc.status.lastError = reason
    // while the last registration still runs, the state stays registered
    if (!(wasRegistered && (acc.status.expiresAt ?? 0) > Date.now())) {
      acc.status.state = 'failed'
      delete acc.status.expiresAt
    }
    const base = this.init.retryMs ?? 2000
    const delay = Math.min(base * 2 ** Math.min(acc.status.failures - 1, 16), this.init.maxRetryMs ?? 300_000)
    this.components.logger?.warn({ server: acc.a.server, username: acc.a.username, reason, retryInMs: delay }, 'upstream registration failed')
    this.publish(acc)
    this.schedule(acc, delay)
  }

  private async register (acc: Account, challenge?: { ch: DigestChallenge, proxy: boolean }): Promise<void> {
    if (this.stopped) return
    const { host, port } = splitHostPort(acc.a.server)
    const bare = host.replace(/^\[|\]$/g, '')
    const address = isIP(bare) !== 0 ? bare : await (this.components.resolve ?? defaultResolve)(bare)
    acc.status.address = address
    const transport: TransportName = acc.a.transport === 'tcp' ? 'TCP' : 'UDP'
    acc.target = { transport, address, port }
    const local = this.components.localEnd(transport)
    const uri = `sip:${acc.domain}`
    const aor = `sip:${acc.a.username}@${acc.domain}`
    const localHost = local.host.includes(':') ? `[${local.host}]` : local.host
    const contact = `<sip:${acc.a.contactUser != null && acc.a.contactUser !== '' ? acc.a.contactUser : acc.a.username}@${localHost}:${local.port};transport=${transport.toLowerCase()}>`
    acc.cseq++
    const headers = [
      { name: 'Contact', value: contact },
      { name: 'Expires', value: String(acc.a.expiry) },
      { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO' }
    ]
    if (challenge != null) headers.push({ name: challenge.proxy ? 'Proxy-Authorization' : 'Authorization', value: this.credentials(acc, challenge.ch, uri) })
    const req = createRequest({
      method: 'REGISTER',
      uri: parseUri(uri),
      from: { uri: parseUri(aor), rawUri: aor, params: { tag: acc.tag } },
      to: { uri: parseUri(aor), rawUri: aor, params: {} },
      callId: acc.callId,
      cseq: acc.cseq,
      via: { protocol: 'SIP/2.0', transport, host: local.host, port: local.port, params: { branch: newBranch(), rport: null } },
      maxForwards: 70,
      headers
    })
    const res = await new Promise<SipResponse | string>(resolve => {
      try {
        this.components.stack.request(req, acc.target!, {
          onResponse: (r) => { if (r.status >= 200) resolve(r) },
          onTimeout: () => { resolve('no answer (timeout)') },
          onTransportError: (err) => { resolve(`transport error: ${err.message}`) }
        })
      } catch (err) {
        resolve(`cannot send: ${(err as Error).message}`)
      }
    })
    if (typeof res === 'string') return this.failed(acc, res)
    if ((res.status === 401 || res.status === 407) && challenge == null) {
      const proxy = res.status === 407
      const ch = getHeaders(res, proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate').map(v => parseChallenge(v)).find(c => c != null && (c.algorithm === 'MD5' || c.algorithm === 'SHA-256'))
      if (ch == null) return this.failed(acc, `${res.status} without a usable digest challenge`)
      return await this.register(acc, { ch, proxy })
    }
    if (res.status === 401 || res.status === 407) {
      // a second challenge: stale nonce gets one more try, anything else means wrong credentials
      const ch = getHeaders(res, res.status === 407 ? 'Proxy-Authenticate' : 'WWW-Authenticate').map(v => parseChallenge(v)).find(c => c != null)
      if (ch?.stale === true) return await this.register(acc, { ch, proxy: res.status === 407 })
      return this.failed(acc, `${res.status} ${res.reason}: credentials refused`)
    }
    if (res.status === 423) {
      const min = Number(getHeader(res, 'Min-Expires'))
      if (Number.isInteger(min) && min > acc.a.expiry && min <= 86_400) {
        acc.a.expiry = min
        return await this.register(acc)
      }
    }
    if (res.status < 200 || res.status >= 300) return this.failed(acc, `${res.status} ${res.reason}`)
    const granted = grantedExpiry(res, acc.a.expiry, local)
    const now = Date.now()
    const first = acc.status.state !== 'registered'
    acc.status = { ...acc.status, state: 'registered', expiresAt: now + granted * 1000, failures: 0 }
    delete acc.status.lastError
    this.attempts?.inc({ result: 'registered' })
    this.publish(acc)
    if (first) this.components.logger?.info({ server: acc.a.server, username: acc.a.username, expires: granted }, 'registered upstream')
    // RFC 3261 §10.2.4 leaves the margin to the client: refresh at 85 %, at least 2 s before the end
    this.schedule(acc, Math.max(1000, Math.min(granted * 850, granted * 1000 - 2000)))
  }

  private credentials (acc: Account, ch: DigestChallenge, uri: string): string {
    const username = acc.a.authUsername != null && acc.a.authUsername !== '' ? acc.a.authUsername : acc.a.username
    const ha1 = computeHa1(ch.algorithm, username, ch.realm, acc.a.password)
    const qop = ch.qop.includes('auth') ? 'auth' as const : undefined
    const cnonce = randomBytes(8).toString('hex')
    if (ch.nonce !== acc.nonce) { acc.nonce = ch.nonce; acc.nc = 0 }
    acc.nc++
    const response = computeResponse({ algorithm: ch.algorithm, ha1, nonce: ch.nonce, method: 'REGISTER', uri, ...(qop != null ? { qop, nc: acc.nc, cnonce } : {}) })
    return formatCredentials({
      username,
      realm: ch.realm,
      nonce: ch.nonce,
      uri,
      response,
      algorithm: ch.algorithm,
      ...(qop != null ? { qop, nc: acc.nc.toString(16).padStart(8, '0'), cnonce } : {}),
      ...(ch.opaque != null ? { opaque: ch.opaque } : {})
    })
  }
}

/** The expiry the registrar granted our contact: its Contact's expires, else Expires, else what we asked. */
function grantedExpiry (res: SipResponse, asked: number, local: LocalEnd): number {
  for (const v of getHeaders(res, 'Contact')) {
    let parsed
    try { parsed = parseContactHeader(v) } catch { continue }
    if (parsed === '*') continue
    for (const c of parsed) {
      if (c.uri.host.replace(/^\[|\]$/g, '') !== local.host || (c.uri.port ?? 5060) !== local.port) continue
      const e = Number(c.params.expires)
      if (Number.isInteger(e) && e > 0) return e
    }
  }
  const e = Number(getHeader(res, 'Expires'))
  return Number.isInteger(e) && e > 0 ? e : asked
}

function splitHostPort (server: string): { host: string, port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(server)
  return { host: m?.[1] ?? server, port: Number(m?.[2] ?? 5060) }
}

async function defaultResolve (host: string): Promise<string> {
  return (await lookup(host, { family: 4 })).address
}
