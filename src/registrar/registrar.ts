import type { Logger } from '../core/index.js'
import type { Metrics, MetricCounter } from '../core/index.js'
import { createResponse, getHeader, getHeaders, parseContactHeader, formatUri, type NameAddr, type SipRequest, type SipResponse, type SipHeader } from '../sip/message/index.js'
import type { Flow } from '../sip/transport/index.js'
import type { Binding, Location } from './location.js'
import { IntervalTooBriefError, InvalidRegisterError, OutOfOrderRegisterError, RegisterForbiddenError, TooManyContactsError } from './errors.js'

export interface RegistrarComponents {
  /** returns the authenticated login or throws the auth layer's typed errors */
  authenticate: (req: SipRequest, source: string) => Promise<string>
  location: Pick<Location, 'update'>
  /** splits an authenticated principal into the AOR and the trunk it registers (`acme_office-pbx`); default: the AOR itself */
  principal?: (authenticated: string) => { login: string, trunk?: string }
  /** whether a host names this node (its SIP domain, aliases, or an address it listens on) */
  isLocalDomain: (host: string) => boolean
  logger?: Logger
  metrics?: Metrics
  now?: () => number
}

export interface RegistrarInit {
  /** @default 60 */
  minExpires: number
  /** @default 7200 */
  maxExpires: number
  /** used when the REGISTER gives no expiry @default 3600 */
  defaultExpires: number
  /** contacts one login may hold at once (phones, softphones, PBX trunks) @default 100 */
  maxContacts: number
}

/**
 * REGISTER policy (RFC 3261 §10.3, Kamailio registrar) over the location service. Returns the 200 to send, or
 * throws a typed error that routing/sip-errors turns into the status (401, 403, 400, 423, ...).
 */
export class Registrar {
  private readonly requests?: MetricCounter
  private readonly now: () => number

  constructor (private readonly components: RegistrarComponents, private readonly init: RegistrarInit) {
    this.requests = components.metrics?.counter('m1node_registrar_requests_total', 'REGISTER requests handled', ['result'])
    this.now = components.now ?? Date.now
  }

  async register (req: SipRequest, flow: Flow): Promise<SipResponse> {
    try {
      const res = await this.process(req, flow)
      this.requests?.inc({ result: 'ok' })
      return res
    } catch (err: any) {
      this.requests?.inc({ result: err?.name ?? 'error' })
      throw err
    }
  }

  private async process (req: SipRequest, flow: Flow): Promise<SipResponse> {
    // §10.3 step 1: the Request-URI names the domain, which must be ours
    if (!this.components.isLocalDomain(req.uri.host)) throw new RegisterForbiddenError(`domain ${req.uri.host} is not served here`)
    // step 3: authenticate
    const authenticated = await this.components.authenticate(req, flow.remoteAddress)
    const { login, trunk } = this.components.principal?.(authenticated) ?? { login: authenticated }
    // step 4-5: the authenticated user may change only its own AOR; a trunk registers under its login's AOR, as
    // `acme` or as its own username `acme_office-pbx` (what PBXs put in To by default)
    const toUser = req.to.uri.user != null ? safeLower(req.to.uri.user) : undefined
    if (toUser !== login && (trunk == null || toUser !== authenticated)) throw new RegisterForbiddenError(`${login} may not register ${toUser ?? '(no user)'}`)
    if (!this.components.isLocalDomain(req.to.uri.host)) throw new RegisterForbiddenError(`domain ${req.to.uri.host} is not served here`)

    const contacts = this.readContacts(req)
    const headerExpires = this.readExpires(getHeader(req, 'Expires'))
    const now = this.now()
    const path = getHeaders(req, 'Path')
    const userAgent = getHeader(req, 'User-Agent')
    const callId = req.callId
    const cseq = req.cseq.seq

    const bindings = await this.components.location.update(login, (current) => {
      if (contacts === '*') {
        // §10.3 step 6: '*' removes every binding unless one was made by a newer request of the same Call-ID
        for (const b of current) if (b.callId === callId && b.cseq >= cseq) throw new OutOfOrderRegisterError()
        // a trunk removes only its own contacts, a login only those of no trunk
        const kept = current.filter(b => b.trunk !== trunk)
        return { bindings: kept, result: kept }
      }
      const next = [...current]
      for (const c of contacts) {
        const expires = this.contactExpires(c, headerExpires)
        const key = (trunk != null ? `t:${trunk}:` : '') + contactKey(c)
        const i = next.findIndex(b => b.key === key)
        const existing = i >= 0 ? next[i] : undefined
        if (existing != null && existing.callId === callId && existing.cseq >= cseq) throw new OutOfOrderRegisterError()
        if (expires === 0) {
          if (i >= 0) next.splice(i, 1)
          continue
        }
        const { expires: _e, q: _q, ...params } = c.params
        const b: Binding = {
          key,
          contact: c.rawUri,
          contactParams: params,
          q: parseQ(c.params.q),
          expiresAt: now + expires * 1000,
          callId,
          cseq,
          flow: { transport: flow.transport, id: flow.id, remoteAddress: flow.remoteAddress, remotePort: flow.remotePort, localAddress: flow.localAddress, localPort: flow.localPort },
          path,
          nat: c.uri.host.replace(/^\[|\]$/g, '') !== flow.remoteAddress || (c.uri.port ?? 5060) !== flow.remotePort,
          ...(instanceOf(c) != null ? { instance: instanceOf(c)! } : {}),
          ...(c.params['reg-id'] != null ? { regId: Number(c.params['reg-id']) } : {}),
          ...(userAgent != null ? { userAgent: userAgent.slice(0, 200) } : {}),
          ...(trunk != null ? { trunk } : {}),
          updatedAt: now
        }
        if (i >= 0) next[i] = b
        else next.push(b)
      }
      if (next.length > this.init.maxContacts) throw new TooManyContactsError(this.init.maxContacts)
      return { bindings: next, result: next }
    })

    this.components.logger?.info({ aor: login, ...(trunk != null ? { trunk } : {}), contacts: bindings.length, source: `${flow.transport} ${flow.remoteAddress}:${flow.remotePort}` }, 'registered')
    // a trunk sees its own contacts only: the login's other equipment is none of its business
    const headers: SipHeader[] = bindings.filter(b => b.trunk === trunk).map(b => ({
      name: 'Contact',
      value: `<${b.contact}>;expires=${Math.max(0, Math.round((b.expiresAt - now) / 1000))}${b.q !== 1000 ? `;q=${(b.q / 1000).toString()}` : ''}${formatParams(b.contactParams)}`
    }))
    headers.push({ name: 'Date', value: new Date(now).toUTCString() })
    // RFC 3327 §5.3: echo Path when the client supports it
    if (path.length > 0 && /\bpath\b/i.test(getHeaders(req, 'Supported').join(','))) {
      for (const p of path) headers.push({ name: 'Path', value: p })
    }
    return createResponse(req, 200, 'OK', { headers, toTag: this.toTag(req) })
  }

  /** A stable To-tag per REGISTER Call-ID, so retransmissions after a lost reply look the same. */
  private toTag (req: SipRequest): string {
    let h = 0x811c9dc5
    for (let i = 0; i < req.callId.length; i++) h = Math.imul(h ^ req.callId.charCodeAt(i), 16777619)
    return (h >>> 0).toString(16)
  }

  private readContacts (req: SipRequest): NameAddr[] | '*' {
    const values = getHeaders(req, 'Contact')
    const out: NameAddr[] = []
    let star = false
    for (const v of values) {
      let parsed: NameAddr[] | '*'
      try { parsed = parseContactHeader(v) } catch { throw new InvalidRegisterError(`bad Contact: ${v.slice(0, 80)}`) }
      if (parsed === '*') star = true
      else out.push(...parsed)
    }
    if (star) {
      // §10.3 step 6: '*' only alone and with Expires: 0
      if (out.length > 0 || values.length !== 1) throw new InvalidRegisterError('"*" must be the only Contact')
      if (getHeader(req, 'Expires')?.trim() !== '0') throw new InvalidRegisterError('"*" needs Expires: 0')
      return '*'
    }
    for (const c of out) {
      if (!['sip', 'sips'].includes(c.uri.scheme)) throw new InvalidRegisterError(`unsupported Contact scheme ${c.uri.scheme}`)
    }
    return out
  }

  private readExpires (value: string | undefined): number | undefined {
    if (value == null) return undefined
    const v = value.trim()
    if (!/^\d{1,10}$/.test(v)) throw new InvalidRegisterError('Expires must be a number of seconds')
    return Number(v)
  }

  private contactExpires (c: NameAddr, headerExpires: number | undefined): number {
    const p = c.params.expires
    let expires = headerExpires ?? this.init.defaultExpires
    if (p != null) {
      if (!/^\d{1,10}$/.test(p.trim())) throw new InvalidRegisterError('Contact expires must be a number of seconds')
      expires = Number(p)
    }
    if (expires === 0) return 0
    if (expires < this.init.minExpires) throw new IntervalTooBriefError(this.init.minExpires)
    return Math.min(expires, this.init.maxExpires)
  }
}

function parseQ (q: string | null | undefined): number {
  if (q == null) return 1000
  const v = Number(q)
  if (!Number.isFinite(v) || v < 0 || v > 1) throw new InvalidRegisterError('q must be between 0 and 1')
  return Math.round(v * 1000)
}

function instanceOf (c: NameAddr): string | undefined {
  const v = c.params['+sip.instance']
  return v != null ? v.replace(/^"|"$/g, '') : undefined
}

/** RFC 5626: contacts of one device instance (+sip.instance, reg-id) replace each other; otherwise compare URIs. */
function contactKey (c: NameAddr): string {
  const inst = instanceOf(c)
  if (inst != null) return `i:${inst}:${c.params['reg-id'] ?? ''}`
  return `u:${formatUri(c.uri).toLowerCase()}`
}

function formatParams (params: Record<string, string | null>): string {
  let s = ''
  for (const [k, v] of Object.entries(params)) s += v == null ? `;${k}` : `;${k}=${v}`
  return s
}

function safeLower (user: string): string {
  try { return decodeURIComponent(user).toLowerCase() } catch { return user.toLowerCase() }
}
