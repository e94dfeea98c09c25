import { createSocket, type Socket } from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { createResponse, getHeader, getHeaders, parseMessage, parseNameAddr, serialize, type SipRequest, type SipResponse } from '../../src/sip/message/index.js'
import { computeHa1, computeResponse, parseChallenge } from '../../src/sip/auth/index.js'

const rnd = (n = 6): string => randomBytes(n).toString('hex')

/** What a phone does with an incoming INVITE. */
export type InviteBehaviour =
  | { kind: 'answer', afterMs?: number, sdp?: string }
  | { kind: 'reject', status: number, afterMs?: number }
  | { kind: 'ring' }

export function sdpFor (port: number, opts: { address?: string, direction?: string, version?: number } = {}): string {
  const addr = opts.address ?? '127.0.0.1'
  return [
    'v=0', `o=- 1 ${opts.version ?? 1} IN IP4 ${addr}`, 's=-', `c=IN IP4 ${addr}`, 't=0 0',
    `m=audio ${port} RTP/AVP 0 8 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000',
    `a=${opts.direction ?? 'sendrecv'}`, ''
  ].join('\r\n')
}

/**
 * A SIP phone over a real UDP socket on 127.0.0.1, for tests: registers, places calls with digest auth, answers or
 * rejects incoming INVITEs, answers BYE/CANCEL/re-INVITE, and records everything it receives.
 */
export class Phone {
  private sock?: Socket
  port = 0
  readonly received: Array<SipRequest | SipResponse> = []
  private readonly waiters: Array<{ match: (m: SipRequest | SipResponse) => boolean, resolve: (m: SipRequest | SipResponse) => void }> = []
  behaviour: InviteBehaviour = { kind: 'answer' }
  /** incoming INVITE server side state per Call-ID */
  readonly incoming = new Map<string, { invite: SipRequest, tag: string, answered: boolean, timer?: ReturnType<typeof setTimeout> }>()
  private cseq = 1
  readonly mediaPort = 30000 + Math.floor(Math.random() * 1000) * 2

  /** `local`: the loopback address the phone binds (127.0.0.2 plays a host that is not the node's) */
  constructor (readonly login: string, readonly password: string, readonly server: { port: number, host?: string, domain?: string }, readonly local = '127.0.0.1') {}

  get domain (): string { return this.server.domain ?? '127.0.0.1' }

  async open (): Promise<void> {
    const s = this.sock = createSocket('udp4')
    s.on('message', (buf) => { this.onData(buf) })
    await new Promise<void>(resolve => s.bind(0, this.local, resolve))
    this.port = s.address().port
  }

  close (): void {
    for (const c of this.incoming.values()) if (c.timer != null) clearTimeout(c.timer)
    this.sock?.close()
  }

  send (msg: SipRequest | SipResponse | string): void {
    const buf = typeof msg === 'string' ? Buffer.from(msg) : serialize(msg)
    this.sock!.send(buf, this.server.port, this.server.host ?? '127.0.0.1')
  }

  /** Resolves with the first message (already received or future) that matches. */
  async wait (match: (m: SipRequest | SipResponse) => boolean, timeoutMs = 5000, what = 'message'): Promise<SipRequest | SipResponse> {
    const seen = this.received.find(match)
    if (seen != null) return seen
    return await new Promise((resolve, reject) => {
      const w = { match, resolve: (m: SipRequest | SipResponse) => { clearTimeout(timer); resolve(m) } }
      const timer = setTimeout(() => { this.waiters.splice(this.waiters.indexOf(w), 1); reject(new Error(`${this.login}: no ${what} within ${timeoutMs} ms`)) }, timeoutMs)
      this.waiters.push(w)
    })
  }

  async waitRequest (method: string, timeoutMs = 5000, after = 0): Promise<SipRequest> {
    return await this.wait((m, i = this.received.indexOf(m)) => m.kind === 'request' && m.method === method && i >= after, timeoutMs, method) as SipRequest
  }

  private onData (buf: Buffer): void {
    let msg: SipRequest | SipResponse
    try { msg = parseMessage(buf) } catch { return }
    this.received.push(msg)
    for (const w of [...this.waiters]) {
      if (w.match(msg)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(msg) }
    }
    if (msg.kind === 'request') this.onRequest(msg)
  }

  private onRequest (req: SipRequest): void {
    const reply = (status: number, opts: { tag?: string, body?: string, headers?: Array<{ name: string, value: string }> } = {}): SipResponse => {
      const headers = [...(opts.headers ?? [])]
      if (opts.body != null) headers.push({ name: 'Content-Type', value: 'application/sdp' })
      const res = createResponse(req, status, undefined, { ...(opts.tag != null ? { toTag: opts.tag } : {}), headers, ...(opts.body != null ? { body: Buffer.from(opts.body) } : {}) })
      this.send(res)
      return res
    }
    const contact = { name: 'Contact', value: `<sip:${this.login}@${this.local}:${this.port}>` }
    switch (req.method) {
      case 'INVITE': {
        if (req.to.params.tag != null) { reply(200, { body: sdpFor(this.mediaPort, { version: 2 }), headers: [contact] }); return }
        if (this.incoming.has(req.callId)) return // retransmission
        const tag = rnd()
        const c = { invite: req, tag, answered: false } as { invite: SipRequest, tag: string, answered: boolean, timer?: ReturnType<typeof setTimeout> }
        this.incoming.set(req.callId, c)
        reply(180, { tag, headers: [contact] })
        const b = this.behaviour
        if (b.kind === 'answer') c.timer = setTimeout(() => { c.answered = true; reply(200, { tag, body: b.sdp ?? sdpFor(this.mediaPort), headers: [contact] }) }, b.afterMs ?? 0)
        if (b.kind === 'reject') c.timer = setTimeout(() => { reply(b.status, { tag }) }, b.afterMs ?? 0)
        return
      }
      case 'CANCEL': {
        reply(200)
        const c = this.incoming.get(req.callId)
        if (c != null && !c.answered) {
          if (c.timer != null) clearTimeout(c.timer)
          this.send(createResponse(c.invite, 487, undefined, { toTag: c.tag }))
        }
        return
      }
      case 'BYE': case 'UPDATE': case 'INFO': case 'OPTIONS': case 'NOTIFY': case 'MESSAGE':
        reply(200, req.method === 'UPDATE' && req.body.length > 0 ? { body: sdpFor(this.mediaPort, { version: 3 }) } : {})
        return
      case 'ACK':
        return
      default:
        reply(501)
    }
  }

  private via (branch = `z9hG4bK${rnd()}`): string { return `SIP/2.0/UDP ${this.local}:${this.port};branch=${branch};rport` }

  /** REGISTER with digest auth; resolves with the final response. */
  async register (expires = 3600): Promise<SipResponse> {
    const callId = `reg-${rnd()}`
    const build = (auth?: string): string => [
      `REGISTER sip:${this.domain} SIP/2.0`, `Via: ${this.via()}`, 'Max-Forwards: 70',
      `From: <sip:${this.login}@${this.domain}>;tag=${rnd()}`, `To: <sip:${this.login}@${this.domain}>`,
      `Call-ID: ${callId}`, `CSeq: ${this.cseq++} REGISTER`, `Contact: <sip:${this.login}@${this.local}:${this.port}>`,
      `Expires: ${expires}`, ...(auth != null ? [`Authorization: ${auth}`] : []), 'Content-Length: 0', '', ''
    ].join('\r\n')
    let res = await this.request(build())
    if (res.status === 401) res = await this.request(build(this.authorize(res, 'REGISTER', `sip:${this.domain}`, 'WWW-Authenticate')))
    return res
  }

  /** Sends a raw request and resolves with its final response. */
  async request (text: string, timeoutMs = 5000): Promise<SipResponse> {
    const branch = /branch=([^;\s]+)/.exec(text)?.[1]
    const method = text.slice(0, text.indexOf(' '))
    // CANCEL shares the INVITE's branch: match on the CSeq method too
    const p = this.wait(m => m.kind === 'response' && m.status >= 200 && m.vias[0]?.params.branch === branch && m.cseq.method === method, timeoutMs, `final response to ${text.split(' ')[0] ?? ''}`)
    this.send(text)
    return await p as SipResponse
  }

  authorize (challenge: SipResponse, method: string, uri: string, header: 'WWW-Authenticate' | 'Proxy-Authenticate'): string {
    const ch = getHeaders(challenge, header).map(v => parseChallenge(v)).find(c => c?.algorithm === 'MD5')
    if (ch == null) throw new Error('no MD5 challenge')
    const ha1 = computeHa1('MD5', this.login, ch.realm, this.password)
    const cnonce = rnd()
    const response = computeResponse({ algorithm: 'MD5', ha1, nonce: ch.nonce, method, uri, qop: 'auth', nc: 1, cnonce })
    return `Digest username="${this.login}", realm="${ch.realm}", nonce="${ch.nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"`
  }

  /**
   * Places a call to `target` (a login), answering the 407 challenge; resolves with the final response and a
   * handle to ACK, BYE or CANCEL it. Provisional responses are in `received`.
   */
  call (target: string, opts: CallOptions = {}): OutgoingCall {
    return new OutgoingCall(this, target, opts)
  }

  nextCseq (): number { return this.cseq++ }
  newBranch (): string { return `z9hG4bK${rnd()}` }
  viaFor (branch: string): string { return this.via(branch) }
}

export interface CallOptions {
  sdp?: string
  /** false: do not answer a 407 */
  auth?: boolean
  /** From URI (default sip:<login>@<domain>) */
  from?: string
  /** Request-URI and To (default sip:<target>@<domain>) */
  uri?: string
}

export class OutgoingCall {
  readonly callId = `call-${rnd()}`
  readonly tag = rnd()
  cseq: number
  branch: string
  uri: string
  final: Promise<SipResponse>
  private authHeader?: string
  answer?: SipResponse

  constructor (private readonly phone: Phone, readonly target: string, private readonly opts: CallOptions) {
    this.uri = opts.uri ?? `sip:${target}@${phone.domain}`
    this.cseq = phone.nextCseq()
    this.branch = phone.newBranch()
    this.final = this.run()
  }

  private invite (): string {
    const sdp = this.opts.sdp ?? sdpFor(this.phone.mediaPort)
    return [
      `INVITE ${this.uri} SIP/2.0`, `Via: ${this.phone.viaFor(this.branch)}`, 'Max-Forwards: 70',
      `From: <${this.opts.from ?? `sip:${this.phone.login}@${this.phone.domain}`}>;tag=${this.tag}`, `To: <${this.uri}>`,
      `Call-ID: ${this.callId}`, `CSeq: ${this.cseq} INVITE`, `Contact: <sip:${this.phone.login}@${this.phone.local}:${this.phone.port}>`,
      'Content-Type: application/sdp', ...(this.authHeader != null ? [`Proxy-Authorization: ${this.authHeader}`] : []),
      `Content-Length: ${Buffer.byteLength(sdp)}`, '', sdp
    ].join('\r\n')
  }

  private async run (): Promise<SipResponse> {
    let res = await this.phone.request(this.invite(), 10_000)
    if (res.status === 407 && this.opts.auth !== false) {
      this.sendAck(res)
      this.authHeader = this.phone.authorize(res, 'INVITE', this.uri, 'Proxy-Authenticate')
      this.cseq = this.phone.nextCseq()
      this.branch = this.phone.newBranch()
      res = await this.phone.request(this.invite(), 70_000)
    }
    if (res.status >= 300) this.sendAck(res)
    else {
      this.answer = res
      this.ack()
    }
    return res
  }

  /** ACK for a non-2xx final: same branch (RFC 3261 §17.1.1.3). */
  private sendAck (res: SipResponse): void {
    this.phone.send([
      `ACK ${this.uri} SIP/2.0`, `Via: ${this.phone.viaFor(this.branch)}`, 'Max-Forwards: 70',
      `From: <sip:${this.phone.login}@${this.phone.domain}>;tag=${this.tag}`, `To: ${getHeader(res, 'To') ?? ''}`,
      `Call-ID: ${this.callId}`, `CSeq: ${this.cseq} ACK`, 'Content-Length: 0', '', ''
    ].join('\r\n'))
  }

  private remoteTarget (): string {
    return parseNameAddr(getHeader(this.answer!, 'Contact')!).rawUri
  }

  private inDialog (method: string, cseq: number, extra: string[] = [], body = '', branch = this.phone.newBranch()): string {
    return [
      `${method} ${this.remoteTarget()} SIP/2.0`, `Via: ${this.phone.viaFor(branch)}`, 'Max-Forwards: 70',
      `From: <sip:${this.phone.login}@${this.phone.domain}>;tag=${this.tag}`, `To: ${getHeader(this.answer!, 'To') ?? ''}`,
      `Call-ID: ${this.callId}`, `CSeq: ${cseq} ${method}`, `Contact: <sip:${this.phone.login}@${this.phone.local}:${this.phone.port}>`,
      ...extra, `Content-Length: ${Buffer.byteLength(body)}`, '', body
    ].join('\r\n')
  }

  ack (body = ''): void {
    this.phone.send(this.inDialog('ACK', this.cseq, body !== '' ? ['Content-Type: application/sdp'] : [], body))
  }

  async bye (): Promise<SipResponse> {
    return await this.phone.request(this.inDialog('BYE', ++this.cseq))
  }

  async reinvite (sdp: string): Promise<SipResponse> {
    const cseq = ++this.cseq
    const res = await this.phone.request(this.inDialog('INVITE', cseq, ['Content-Type: application/sdp'], sdp), 10_000)
    if (res.status < 300) this.phone.send(this.inDialog('ACK', cseq))
    return res
  }

  async info (body: string, type = 'application/dtmf-relay'): Promise<SipResponse> {
    return await this.phone.request(this.inDialog('INFO', ++this.cseq, [`Content-Type: ${type}`], body))
  }

  /** CANCEL the pending INVITE (same branch and CSeq number). */
  cancel (): void {
    this.phone.send([
      `CANCEL ${this.uri} SIP/2.0`, `Via: ${this.phone.viaFor(this.branch)}`, 'Max-Forwards: 70',
      `From: <sip:${this.phone.login}@${this.phone.domain}>;tag=${this.tag}`, `To: <${this.uri}>`,
      `Call-ID: ${this.callId}`, `CSeq: ${this.cseq} CANCEL`, 'Content-Length: 0', '', ''
    ].join('\r\n'))
  }
}

/** REGISTER with digest auth and a Contact of our choosing (a PBX's, with Asterisk's `line`); `to`: another AOR user. */
export async function registerContact (p: Phone, contact: string, opts: { to?: string, expires?: number } = {}): Promise<SipResponse> {
  const callId = `reg-${Math.random().toString(16).slice(2)}`
  const to = opts.to ?? p.login
  const build = (auth?: string): string => [
    `REGISTER sip:${p.domain} SIP/2.0`, `Via: ${p.viaFor(p.newBranch())}`, 'Max-Forwards: 70',
    `From: <sip:${to}@${p.domain}>;tag=t${callId}`, `To: <sip:${to}@${p.domain}>`,
    `Call-ID: ${callId}`, `CSeq: ${p.nextCseq()} REGISTER`, `Contact: ${contact}`,
    `Expires: ${opts.expires ?? 600}`, ...(auth != null ? [`Authorization: ${auth}`] : []), 'Content-Length: 0', '', ''
  ].join('\r\n')
  let res = await p.request(build())
  if (res.status === 401) res = await p.request(build(p.authorize(res, 'REGISTER', `sip:${p.domain}`, 'WWW-Authenticate')))
  return res
}
