// Store-and-forward messaging throughput and latency: SIP MESSAGE from UDP senders, authenticated (digest, nonce
// reused with nc++ as phones do), durably stored (202) and delivered to registered UDP receivers. Two cases:
//   local:  senders and receivers on one node;
//   remote: senders on node A, receivers on node B, messages carried over /m1/msg/1.0.0 (libp2p on 127.0.0.1).
// Nodes are `m1node start` daemons (the built dist/), each in its own process. Reports delivered messages/s (first send
// to last delivery), latency send -> 202 and send -> delivery at the receiving device (p50/p99), and node CPU.
// Each case runs twice: saturated (every sender keeps `window` MESSAGEs outstanding: throughput) and paced at `rate`
// messages/s in total (latency below saturation).
// Build first: npm run build; then: node bench/messaging.mjs [--messages 10000] [--pairs 20] [--window 8] [--rate 1000]
//   [--receivers N]: the 20 senders write to N receivers (fan-in), results in messaging-fanin<k>.{json,md}
import { spawn, execSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { cpus, tmpdir, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { parseMessage, getHeader, getHeaders } from '../dist/sip/message/index.js'
import { computeHa1, computeResponse, parseChallenge } from '../dist/sip/auth/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const BIN = join(here, '..', 'bin', 'm1node.js')
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const MESSAGES = Number(arg('messages', 10000))
const PAIRS = Number(arg('pairs', 20))
const WINDOW = Number(arg('window', 8))
const RATE = Number(arg('rate', 1000))
// fan-in: sender i writes to receiver i % RECEIVERS (default: one receiver per sender)
const RECEIVERS = Math.max(1, Math.min(PAIRS, Number(arg('receivers', PAIRS))))
const rnd = (n = 6) => randomBytes(n).toString('hex')
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

let clkTck = 100
try { clkTck = Number(execSync('getconf CLK_TCK').toString().trim()) || 100 } catch {}
const cpuTicks = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12])
}

async function freePort () {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
}

const children = []
async function startDaemon (name, users, env = {}) {
  const dir = mkdtempSync(join(tmpdir(), `m1bench-${name}-`))
  const csv = join(dir, 'users.csv')
  writeFileSync(csv, users.map(u => `${u},pw-${u}`).join('\n') + '\n')
  const baseEnv = {
    ...process.env,
    M1NODE_NODE_NAME: name,
    M1NODE_SIP_HOST: '127.0.0.1',
    M1NODE_SIP_UDP_PORT: String(await freePort()),
    M1NODE_SIP_TRANSPORTS: 'udp',
    M1NODE_WEB_PORT: '0',
    M1NODE_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
    M1NODE_P2P_ALLOW_PRIVATE_ADDRESSES: 'true',
    M1NODE_SIP_EGRESS_ALLOW: '127.0.0.0/8',
    M1NODE_LOG_LEVEL: 'warn',
    M1NODE_MEDIA_ANCHOR: 'never',
    M1NODE_MESSAGING_RATE_PER_SECOND: '0',
    M1NODE_MESSAGING_INBOX_MAX: '1000000',
    ...env
  }
  execSync(`${process.execPath} ${BIN} user import ${csv} --data ${dir}`, { env: baseEnv, stdio: 'ignore' })
  const child = spawn(process.execPath, [BIN, 'start', '--data', dir], { env: baseEnv, stdio: ['ignore', 'ignore', 'inherit'] })
  children.push({ child, dir })
  const deadline = Date.now() + 20000
  for (;;) {
    if (Date.now() > deadline) throw new Error(`${name} did not start`)
    try {
      const info = JSON.parse(readFileSync(join(dir, 'daemon.json'), 'utf8'))
      if (info.pid === child.pid && (await fetch(`${info.url}/health`)).status === 200) {
        const token = readFileSync(join(dir, 'control.token'), 'utf8').trim()
        const status = await (await fetch(`${info.url}/api/status`, { headers: { authorization: `Bearer ${token}` } })).json()
        return { name, dir, child, url: info.url, token, sipPort: Number(baseEnv.M1NODE_SIP_UDP_PORT), status }
      }
    } catch {}
    await sleep(100)
  }
}

/** A UDP SIP endpoint: registers, sends MESSAGE with digest (nonce reused, nc++), answers MESSAGE with 200. */
class Device {
  constructor (login, node, domain) {
    this.login = login
    this.node = node
    this.domain = domain
    this.pending = new Map()
    this.auth = undefined
    this.delivered = new Map() // message id -> time it arrived
    this.cseq = 1
  }

  async open () {
    this.sock = createSocket('udp4')
    this.sock.on('message', (buf) => this.onData(buf))
    await new Promise(resolve => this.sock.bind(0, '127.0.0.1', resolve))
    this.port = this.sock.address().port
  }

  close () { this.sock.close() }
  send (text) { this.sock.send(Buffer.from(text), this.node.sipPort, '127.0.0.1') }

  onData (buf) {
    let m
    try { m = parseMessage(buf) } catch { return }
    if (m.kind === 'response') {
      const p = this.pending.get(m.vias[0]?.params.branch)
      if (p != null && m.status >= 200) { this.pending.delete(m.vias[0].params.branch); p(m) }
      return
    }
    if (m.method === 'MESSAGE') {
      const id = getHeader(m, 'M1-Message-ID')
      if (id != null && !this.delivered.has(id)) this.delivered.set(id, performance.now())
      const h = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].flatMap(n => getHeaders(m, n).map(v => `${n}: ${v}`))
      this.send(['SIP/2.0 200 OK', ...h.map(x => x.startsWith('To:') ? `${x};tag=${rnd()}` : x), 'Content-Length: 0', '', ''].join('\r\n'))
    }
  }

  async request (build) {
    const branch = `z9hG4bK${rnd()}`
    const p = new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.pending.delete(branch); reject(new Error('timeout')) }, 10000)
      this.pending.set(branch, (m) => { clearTimeout(t); resolve(m) })
    })
    this.send(build(branch))
    return await p
  }

  authHeader (method, uri, header) {
    const a = this.auth
    a.nc++
    const cnonce = rnd()
    const ha1 = computeHa1('MD5', this.login, a.realm, `pw-${this.login}`)
    const response = computeResponse({ algorithm: 'MD5', ha1, nonce: a.nonce, method, uri, qop: 'auth', nc: a.nc, cnonce })
    return `${header}: Digest username="${this.login}", realm="${a.realm}", nonce="${a.nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=${a.nc.toString(16).padStart(8, '0')}, cnonce="${cnonce}"`
  }

  learn (res, header) {
    const ch = getHeaders(res, header).map(v => parseChallenge(v)).find(c => c?.algorithm === 'MD5')
    this.auth = { realm: ch.realm, nonce: ch.nonce, nc: 0 }
  }

  async register (expires = 3600) {
    const uri = `sip:${this.domain}`
    const callId = this.callId ?? `reg-${rnd()}`
    const build = (auth) => (branch) => [
      `REGISTER ${uri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`, 'Max-Forwards: 70',
      `From: <sip:${this.login}@${this.domain}>;tag=${rnd()}`, `To: <sip:${this.login}@${this.domain}>`, `Call-ID: ${callId}`,
      `CSeq: ${this.cseq++} REGISTER`, `Contact: <sip:${this.login}@127.0.0.1:${this.port}>`, `Expires: ${expires}`,
      ...(auth != null ? [auth] : []), 'Content-Length: 0', '', ''
    ].join('\r\n')
    let res = await this.request(build())
    if (res.status === 401) {
      this.learn(res, 'WWW-Authenticate')
      res = await this.request(build(this.authHeader('REGISTER', uri, 'Authorization')))
    }
    if (res.status !== 200) throw new Error(`${this.login}: REGISTER ${res.status}`)
    this.auth = undefined
    this.callId = callId
  }

  async message (uri, body) {
    const callId = `m-${rnd()}`
    const build = (auth) => (branch) => [
      `MESSAGE ${uri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${branch};rport`, 'Max-Forwards: 70',
      `From: <sip:${this.login}@${this.domain}>;tag=${rnd()}`, `To: <${uri}>`, `Call-ID: ${callId}`,
      `CSeq: ${this.cseq++} MESSAGE`, 'Content-Type: text/plain', ...(auth != null ? [auth] : []),
      `Content-Length: ${Buffer.byteLength(body)}`, '', body
    ].join('\r\n')
    let res = await this.request(build(this.auth != null ? this.authHeader('MESSAGE', uri, 'Proxy-Authorization') : undefined))
    if (res.status === 407) {
      this.learn(res, 'Proxy-Authenticate')
      res = await this.request(build(this.authHeader('MESSAGE', uri, 'Proxy-Authorization')))
    }
    return res
  }
}

const pct = (sorted, p) => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
const r1 = (x) => Math.round(x * 10) / 10

async function scenario (label, senderNode, receiverNode, receiverDomain, rate = 0) {
  const senders = []
  const receivers = []
  for (let i = 0; i < PAIRS; i++) {
    const s = new Device(`s${i}`, senderNode, senderNode.name)
    await s.open()
    senders.push(s)
  }
  for (let i = 0; i < RECEIVERS; i++) {
    const r = new Device(`r${i}`, receiverNode, receiverNode.name)
    await r.open()
    await r.register()
    receivers.push(r)
  }
  // warm-up: one message per pair (directory lookups, connections, JIT)
  await Promise.all(senders.map(async (s, i) => await s.message(`sip:r${i % RECEIVERS}@${receiverDomain}`, 'warm-up')))
  await sleep(1000)
  for (const r of receivers) r.delivered.clear()

  const sent = new Map() // id -> { at, accepted }
  const per = Math.ceil(MESSAGES / PAIRS)
  const cpu0 = [senderNode, receiverNode].map(n => cpuTicks(n.child.pid))
  const t0 = performance.now()
  let refused = 0
  const one = async (s, i, n) => {
    const at = performance.now()
    const res = await s.message(`sip:r${i % RECEIVERS}@${receiverDomain}`, `bench message ${n} from s${i}`).catch(() => undefined)
    const id = res != null && res.status === 202 ? getHeader(res, 'M1-Message-ID') : undefined
    if (id == null) { refused++; return }
    sent.set(id, { at, accepted: performance.now() })
  }
  await Promise.all(senders.map(async (s, i) => {
    if (rate > 0) {
      // paced: sender i sends every PAIRS/rate seconds, whatever the answers
      const interval = PAIRS * 1000 / rate
      const start = performance.now() + i * interval / PAIRS
      const all = []
      for (let n = 0; n < per; n++) {
        const wait = start + n * interval - performance.now()
        if (wait > 0) await sleep(wait)
        all.push(one(s, i, n))
      }
      await Promise.all(all)
      return
    }
    let next = 0
    const lane = async () => { while (next < per) await one(s, i, next++) }
    await Promise.all(Array.from({ length: WINDOW }, lane))
  }))
  const tSent = performance.now()
  const deadline = Date.now() + 120000
  const deliveredAll = () => receivers.reduce((n, r) => n + r.delivered.size, 0)
  while (deliveredAll() < sent.size && Date.now() < deadline) await sleep(20)
  const delivered = new Map()
  for (const r of receivers) for (const [id, t] of r.delivered) delivered.set(id, t)
  const last = Math.max(...delivered.values())
  const cpu1 = [senderNode, receiverNode].map(n => cpuTicks(n.child.pid))
  const lat = []
  const acc = []
  for (const [id, s] of sent) {
    acc.push(s.accepted - s.at)
    const d = delivered.get(id)
    if (d != null) lat.push(d - s.at)
  }
  lat.sort((a, b) => a - b)
  acc.sort((a, b) => a - b)
  const seconds = (last - t0) / 1000
  // the next run registers new devices: these go away first
  await Promise.all(receivers.map(async r => await r.register(0).catch(() => {})))
  for (const d of [...senders, ...receivers]) d.close()
  const cpuSec = cpu1.map((c, i) => (c - cpu0[i]) / clkTck)
  return {
    case: label,
    load: rate > 0 ? `paced ${rate}/s` : `saturated (${WINDOW} outstanding per sender)`,
    messages: sent.size,
    refused,
    delivered: delivered.size,
    lost: sent.size - [...sent.keys()].filter(id => delivered.has(id)).length,
    seconds: r1(seconds),
    acceptedPerSecond: Math.round(sent.size / ((tSent - t0) / 1000)),
    deliveredPerSecond: Math.round(delivered.size / seconds),
    acceptP50Ms: r1(pct(acc, 0.5)),
    acceptP99Ms: r1(pct(acc, 0.99)),
    deliveryP50Ms: r1(pct(lat, 0.5)),
    deliveryP99Ms: r1(pct(lat, 0.99)),
    cpuSecondsSenderNode: r1(cpuSec[0]),
    cpuSecondsReceiverNode: label === 'local' ? undefined : r1(cpuSec[1])
  }
}

const loadBefore = loadavg()[0]
const users = [...Array.from({ length: PAIRS }, (_, i) => `s${i}`), ...Array.from({ length: PAIRS }, (_, i) => `r${i}`)]
const results = []
try {
  const local = await startDaemon('bench-local', users)
  results.push(await scenario('local', local, local, 'bench-local'))
  results.push(await scenario('local', local, local, 'bench-local', RATE))
  const a = await startDaemon('bench-a', users.filter(u => u.startsWith('s')))
  const boot = a.status.p2p.filter(x => x.includes('/127.0.0.1/')).join(',')
  const b = await startDaemon('bench-b', users.filter(u => u.startsWith('r')), { M1NODE_P2P_BOOTSTRAP: boot })
  // B's node record must be in the DHT before A can route to it
  await sleep(3000)
  results.push(await scenario('remote', a, b, 'bench-b'))
  results.push(await scenario('remote', a, b, 'bench-b', RATE))
} finally {
  for (const c of children) c.child.kill('SIGTERM')
  await sleep(1500)
  for (const c of children) { try { c.child.kill('SIGKILL') } catch {} rmSync(c.dir, { recursive: true, force: true }) }
}

const meta = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, messages: MESSAGES, pairs: PAIRS, receivers: RECEIVERS, window: WINDOW, note: 'loopback; nodes and load generator share the machine', loadAverageBefore: Math.round(loadBefore * 100) / 100, loadAverageAfter: Math.round(loadavg()[0] * 100) / 100 }
mkdirSync(join(here, 'results'), { recursive: true })
const suffix = RECEIVERS === PAIRS ? '' : `-fanin${PAIRS / RECEIVERS}`
writeFileSync(join(here, 'results', `messaging${suffix}.json`), JSON.stringify({ meta, results }, null, 2) + '\n')
const md = [
  '# bench/messaging.mjs',
  '',
  `${meta.date}, Node ${meta.node}, ${meta.cpus} CPUs (${meta.cpuModel ?? '?'}), ${MESSAGES} messages, ${PAIRS} senders → ${RECEIVERS} receivers, ${WINDOW} outstanding MESSAGEs per sender. ${meta.note}; 1-minute load average ${meta.loadAverageBefore} before, ${meta.loadAverageAfter} after.`,
  'Every 202 follows a fsynced LevelDB batch (group commit). Latency is from the MESSAGE leaving the sender to its 202 (accept) and to its arrival at the receiving device (delivery).',
  '',
  '| case | load | messages | delivered/s | accepted/s | accept p50 / p99 ms | delivery p50 / p99 ms | lost | node CPU s (sender / receiver) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.map(r => `| ${r.case} | ${r.load} | ${r.messages} | ${r.deliveredPerSecond} | ${r.acceptedPerSecond} | ${r.acceptP50Ms} / ${r.acceptP99Ms} | ${r.deliveryP50Ms} / ${r.deliveryP99Ms} | ${r.lost} | ${r.cpuSecondsSenderNode}${r.cpuSecondsReceiverNode != null ? ` / ${r.cpuSecondsReceiverNode}` : ''} |`),
  ''
].join('\n')
writeFileSync(join(here, 'results', `messaging${suffix}.md`), md)
process.stdout.write(md)
