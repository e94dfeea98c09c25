// A minimal SIP user agent over UDP on 127.0.0.1 for benchmarks (built on dist/: run `npm run build` first):
// REGISTER with digest auth, calls with proxy auth (timestamps of the authorised INVITE, its 180 and its 200), and
// an answering mode (180 then 200 at once, SDP naming one media port for every call). Nothing leaves loopback.
import { createSocket } from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { getHeader, getHeaders, parseMessage } from '../../dist/sip/message/index.js'
import { computeHa1, computeResponse, parseChallenge } from '../../dist/sip/auth/index.js'

const rnd = (n = 6) => randomBytes(n).toString('hex')

export function sdp (port, id = 1) {
  return ['v=0', `o=- ${id} 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 8`, 'a=rtpmap:8 PCMA/8000', 'a=ptime:20', ''].join('\r\n')
}

/** The first m= port and c= address of an SDP body. */
export function sdpTarget (body) {
  const text = body.toString()
  return { port: Number(/^m=audio (\d+)/m.exec(text)?.[1]), address: /^c=IN IP4 (\S+)/m.exec(text)?.[1] ?? '127.0.0.1' }
}

export class Ua {
  constructor (login, password, serverPort, domain) {
    this.login = login
    this.password = password
    this.serverPort = serverPort
    this.domain = domain
    this.cseq = 1
    this.waiters = new Set()
    /** answering mode: the media port its SDP names */
    this.answerPort = 0
    this.answered = 0
  }

  async open () {
    const s = this.sock = createSocket('udp4')
    s.on('message', (buf) => { this.onData(buf) })
    await new Promise(resolve => s.bind(0, '127.0.0.1', resolve))
    try { s.setRecvBufferSize(1 << 22) } catch {}
    this.port = s.address().port
  }

  close () { try { this.sock.close() } catch {} }

  send (text) { this.sock.send(Buffer.from(text), this.serverPort, '127.0.0.1') }

  via (branch) { return `SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport` }

  onData (buf) {
    const at = performance.now()
    let msg
    try { msg = parseMessage(buf) } catch { return }
    if (msg.kind === 'request') { this.onRequest(msg); return }
    for (const w of this.waiters) {
      if (w.match(msg)) { w.resolve({ msg, at }) }
    }
  }

  /** Waits for a response matching `match` (also provisional ones). */
  wait (match, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (v) => { clearTimeout(w.timer); this.waiters.delete(w); resolve(v) }
      }
      w.timer = setTimeout(() => { this.waiters.delete(w); reject(new Error('timeout waiting for a response')) }, timeoutMs)
      this.waiters.add(w)
    })
  }

  authorize (challenge, header, method, uri) {
    const ch = getHeaders(challenge, header).map(v => parseChallenge(v)).find(c => c?.algorithm === 'MD5')
    if (ch == null) throw new Error('no MD5 challenge')
    const ha1 = computeHa1('MD5', this.login, ch.realm, this.password)
    const cnonce = rnd()
    const response = computeResponse({ algorithm: 'MD5', ha1, nonce: ch.nonce, method, uri, qop: 'auth', nc: 1, cnonce })
    return `Digest username="${this.login}", realm="${ch.realm}", nonce="${ch.nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"`
  }

  async register () {
    const callId = `reg-${rnd()}`
    const build = (auth) => {
      const branch = `z9hG4bK${rnd()}`
      return { branch, text: [`REGISTER sip:${this.domain} SIP/2.0`, `Via: ${this.via(branch)}`, 'Max-Forwards: 70', `From: <sip:${this.login}@${this.domain}>;tag=${rnd()}`,
        `To: <sip:${this.login}@${this.domain}>`, `Call-ID: ${callId}`, `CSeq: ${this.cseq++} REGISTER`, `Contact: <sip:${this.login}@127.0.0.1:${this.port}>`, 'Expires: 3600',
        ...(auth != null ? [`Authorization: ${auth}`] : []), 'Content-Length: 0', '', ''].join('\r\n') }
    }
    let r = build()
    let p = this.wait(m => m.vias[0]?.params.branch === r.branch && m.status >= 200)
    this.send(r.text)
    let { msg } = await p
    if (msg.status === 401) {
      r = build(this.authorize(msg, 'WWW-Authenticate', 'REGISTER', `sip:${this.domain}`))
      p = this.wait(m => m.vias[0]?.params.branch === r.branch && m.status >= 200)
      this.send(r.text)
      msg = (await p).msg
    }
    if (msg.status !== 200) throw new Error(`REGISTER ${this.login}: ${msg.status}`)
  }

  /**
   * Calls `uri` with an SDP naming `mediaPort`; answers the 407. Resolves with the times (performance.now ms) of
   * the authorised INVITE, its 180 and its 200, the 200 and a `bye()`.
   */
  async call (uri, mediaPort, timeoutMs = 10_000) {
    const callId = `bench-${rnd()}`
    const tag = rnd()
    const body = sdp(mediaPort)
    let cseq = this.cseq++
    const invite = (branch, auth) => [`INVITE ${uri} SIP/2.0`, `Via: ${this.via(branch)}`, 'Max-Forwards: 70', `From: <sip:${this.login}@${this.domain}>;tag=${tag}`,
      `To: <${uri}>`, `Call-ID: ${callId}`, `CSeq: ${cseq} INVITE`, `Contact: <sip:${this.login}@127.0.0.1:${this.port}>`, 'Content-Type: application/sdp',
      ...(auth != null ? [`Proxy-Authorization: ${auth}`] : []), `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n')
    const ackFor = (branch, to) => [`ACK ${uri} SIP/2.0`, `Via: ${this.via(branch)}`, 'Max-Forwards: 70', `From: <sip:${this.login}@${this.domain}>;tag=${tag}`,
      `To: ${to}`, `Call-ID: ${callId}`, `CSeq: ${cseq} ACK`, 'Content-Length: 0', '', ''].join('\r\n')
    let branch = `z9hG4bK${rnd()}`
    let final = this.wait(m => m.callId === callId && m.cseq.method === 'INVITE' && m.status >= 200, timeoutMs)
    this.send(invite(branch))
    let { msg } = await final
    if (msg.status !== 407) throw new Error(`INVITE without credentials: ${msg.status}`)
    this.send(ackFor(branch, getHeader(msg, 'To')))
    const auth = this.authorize(msg, 'Proxy-Authenticate', 'INVITE', uri)
    cseq = this.cseq++
    branch = `z9hG4bK${rnd()}`
    const ringing = this.wait(m => m.callId === callId && m.cseq.seq === cseq && m.status === 180, timeoutMs)
    ringing.catch(() => {})
    final = this.wait(m => m.callId === callId && m.cseq.seq === cseq && m.status >= 200, timeoutMs)
    const sent = performance.now()
    this.send(invite(branch, auth))
    const answered = await final
    msg = answered.msg
    const r180 = await Promise.race([ringing, Promise.resolve(undefined)])
    if (msg.status >= 300) {
      this.send(ackFor(branch, getHeader(msg, 'To')))
      return { status: msg.status, sent, t180: r180?.at, t200: undefined }
    }
    const to = getHeader(msg, 'To')
    const contact = /<([^>]+)>/.exec(getHeader(msg, 'Contact') ?? '')?.[1] ?? uri
    const inDialog = (method, n, b = `z9hG4bK${rnd()}`) => [`${method} ${contact} SIP/2.0`, `Via: ${this.via(b)}`, 'Max-Forwards: 70', `From: <sip:${this.login}@${this.domain}>;tag=${tag}`,
      `To: ${to}`, `Call-ID: ${callId}`, `CSeq: ${n} ${method}`, 'Content-Length: 0', '', ''].join('\r\n')
    this.send(inDialog('ACK', cseq))
    const bye = async () => {
      const n = this.cseq++
      const done = this.wait(m => m.callId === callId && m.cseq.seq === n && m.status >= 200, timeoutMs)
      this.send(inDialog('BYE', n))
      return (await done).msg.status
    }
    return { status: msg.status, sent, t180: r180?.at, t200: answered.at, answer: msg, media: sdpTarget(msg.body), bye }
  }

  onRequest (req) {
    const base = (status, reason, extra = [], body = '') => ['SIP/2.0 ' + status + ' ' + reason, ...getHeaders(req, 'Via').map(v => `Via: ${v}`),
      `From: ${getHeader(req, 'From')}`, `To: ${getHeader(req, 'To')}${status > 100 && req.method === 'INVITE' && req.to.params.tag == null ? `;tag=${this.tagFor(req.callId)}` : ''}`,
      `Call-ID: ${req.callId}`, `CSeq: ${req.cseq.seq} ${req.cseq.method}`, ...extra, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n')
    if (req.method === 'INVITE') {
      const contact = `Contact: <sip:${this.login}@127.0.0.1:${this.port}>`
      this.send(base(180, 'Ringing', [contact]))
      this.send(base(200, 'OK', [contact, 'Content-Type: application/sdp'], sdp(this.answerPort)))
      this.answered++
      if (this.onInvite != null) this.onInvite(req)
      return
    }
    if (req.method === 'ACK') return
    if (req.method === 'BYE' || req.method === 'CANCEL' || req.method === 'OPTIONS') { this.send(base(200, 'OK')); return }
    this.send(base(200, 'OK'))
  }

  tagFor (callId) {
    this.tags ??= new Map()
    let t = this.tags.get(callId)
    if (t == null) {
      t = rnd()
      if (this.tags.size > 10_000) this.tags.clear()
      this.tags.set(callId, t)
    }
    return t
  }
}
