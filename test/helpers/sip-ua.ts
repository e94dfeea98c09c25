import { createSocket, type Socket } from 'node:dgram'
import { connect, type Socket as TcpSocket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { parseMessage, type SipResponse, getHeaders } from '../../src/sip/message/index.js'
import { computeHa1, computeResponse, parseChallenge, type DigestAlgorithm } from '../../src/sip/auth/index.js'
import { StreamFramer } from '../../src/sip/transport/index.js'

const rnd = (n = 8): string => randomBytes(n).toString('hex')

/** A raw SIP user agent over a real UDP or TCP socket on 127.0.0.1, for tests. It speaks only what tests need. */
export class SipTestUa {
  private udp?: Socket
  private tcp?: TcpSocket
  private readonly waiters: Array<(m: SipResponse) => boolean> = []
  readonly received: SipResponse[] = []
  readonly requests: string[] = []
  localPort = 0
  private cseq = 1
  readonly callId = `${rnd()}@test`
  readonly fromTag = rnd(4)

  constructor (readonly transport: 'UDP' | 'TCP', readonly serverPort: number, readonly server = '127.0.0.1') {}

  async open (): Promise<void> {
    if (this.transport === 'UDP') {
      const s = this.udp = createSocket('udp4')
      s.on('message', (buf) => { this.onData(buf) })
      await new Promise<void>(resolve => s.bind(0, '127.0.0.1', resolve))
      this.localPort = s.address().port
    } else {
      const framer = new StreamFramer({ onMessage: (b) => { this.onData(b) }, onPing: () => {}, onError: () => {} }, {})
      const s = this.tcp = connect(this.serverPort, this.server)
      s.on('data', (b) => { framer.push(b) })
      s.on('error', () => {})
      await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
      this.localPort = s.localPort ?? 0
    }
  }

  close (): void {
    this.udp?.close()
    this.tcp?.destroy()
  }

  private onData (buf: Buffer): void {
    const text = buf.toString('utf8')
    if (!text.startsWith('SIP/2.0')) { this.requests.push(text); return }
    let msg
    try { msg = parseMessage(buf) } catch { return }
    if (msg.kind !== 'response') return
    this.received.push(msg)
    const i = this.waiters.findIndex(w => w(msg))
    if (i >= 0) this.waiters.splice(i, 1)
  }

  sendRaw (data: string | Buffer): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    if (this.udp != null) this.udp.send(buf, this.serverPort, this.server)
    else this.tcp!.write(buf)
  }

  /** Sends a request and resolves with its first final response (provisional ones are skipped). */
  async request (text: string, timeoutMs = 3000): Promise<SipResponse> {
    const branch = /branch=([^;\s\r]+)/.exec(text)?.[1]
    const p = new Promise<SipResponse>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no response within ${timeoutMs} ms`)) }, timeoutMs)
      this.waiters.push((m) => {
        if (m.status < 200 || m.vias[0]?.params.branch !== branch) return false
        clearTimeout(timer)
        resolve(m)
        return true
      })
    })
    this.sendRaw(text)
    return await p
  }

  /** Builds a REGISTER for `login`. */
  register (login: string, opts: { expires?: number, contact?: string, authorization?: string, domain?: string, extra?: string[] } = {}): string {
    const domain = opts.domain ?? this.server
    const t = this.transport
    const contact = opts.contact ?? `<sip:${login}@127.0.0.1:${this.localPort};transport=${t.toLowerCase()}>`
    return [
      `REGISTER sip:${domain} SIP/2.0`,
      `Via: SIP/2.0/${t} 127.0.0.1:${this.localPort};branch=z9hG4bK${rnd()};rport`,
      'Max-Forwards: 70',
      `From: <sip:${login}@${domain}>;tag=${this.fromTag}`,
      `To: <sip:${login}@${domain}>`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${this.cseq++} REGISTER`,
      `Contact: ${contact}`,
      ...(opts.expires != null ? [`Expires: ${opts.expires}`] : []),
      ...(opts.authorization != null ? [`Authorization: ${opts.authorization}`] : []),
      ...(opts.extra ?? []),
      'Content-Length: 0',
      '', ''
    ].join('\r\n')
  }

  /** REGISTER with the digest dance: first request, 401, then credentials for `algorithm`. */
  async registerWithAuth (login: string, password: string, opts: { expires?: number, contact?: string, algorithm?: DigestAlgorithm, domain?: string } = {}): Promise<{ challenge: SipResponse, final: SipResponse }> {
    const challenge = await this.request(this.register(login, opts))
    if (challenge.status !== 401) return { challenge, final: challenge }
    const algorithm = opts.algorithm ?? 'MD5'
    const authorization = this.authorize(challenge, login, password, 'REGISTER', `sip:${opts.domain ?? this.server}`, algorithm)
    const final = await this.request(this.register(login, { ...opts, authorization }))
    return { challenge, final }
  }

  authorize (challenge: SipResponse, login: string, password: string, method: string, uri: string, algorithm: DigestAlgorithm = 'MD5'): string {
    const chs = getHeaders(challenge, 'WWW-Authenticate').map(v => parseChallenge(v)).filter(c => c != null)
    const ch = chs.find(c => c.algorithm === algorithm)
    if (ch == null) throw new Error(`no ${algorithm} challenge`)
    const ha1 = computeHa1(algorithm, login, ch.realm, password)
    const cnonce = rnd()
    const response = computeResponse({ algorithm, ha1, nonce: ch.nonce, method, uri, qop: 'auth', nc: 1, cnonce })
    return `Digest username="${login}", realm="${ch.realm}", nonce="${ch.nonce}", uri="${uri}", response="${response}", algorithm=${algorithm}, qop=auth, nc=00000001, cnonce="${cnonce}"${ch.opaque != null ? `, opaque="${ch.opaque}"` : ''}`
  }
}
