// Calls across two m1node daemons on loopback (separate processes, bootstrapped to each other):
//  1. call setup INVITE->180 and INVITE->200 through both nodes, warm (directory cached) and cold (a fresh caller
//     node, its first call), next to a local call on one node;
//  2. cross-node calls per second with SIPp (caller at node A, callee at node B);
//  3. one-way media latency and loss at N concurrent calls, cross-node (phone -> relay A -> /m1/rtp/1.0.0 -> relay B
//     -> phone) against local calls (phone -> relay A -> phone).
// One command: `npm run build && node bench/federation.mjs` [--calls 100] [--seconds 10] [--setup 200] [--cold 5]
// [--cps 50,100,200] [--cps-seconds 10]. Writes bench/results/federation.json and .md. Everything stays on 127.0.0.1.
import { spawn, execFileSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Ua } from './lib/ua.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = dirname(here)
const BIN = join(root, 'bin', 'm1node.js')
const SCEN = join(root, 'test', 'interop', 'scenarios')
if (!existsSync(join(root, 'dist', 'cli', 'index.js'))) { console.error('build first: npm run build'); process.exit(2) }
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const CALLS = Number(arg('calls', 100))
const SECONDS = Number(arg('seconds', 10))
const SETUP = Number(arg('setup', 200))
const COLD = Number(arg('cold', 5))
const CPS = String(arg('cps', '50,100,200')).split(',').filter(x => x !== '').map(Number)
const CPS_SECONDS = Number(arg('cps-seconds', 10))
const PPS = 50
const SIZE = 172

const work = mkdtempSync(join(tmpdir(), 'm1node-bench-fed-'))
const children = new Set()
const log = (...a) => console.error('[federation]', ...a)
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

function cli (args, dir, env = {}) {
  return execFileSync(process.execPath, [BIN, ...args, '--data', dir], { env: { ...process.env, ...env }, encoding: 'utf8' })
}

let nextRange = 0
async function startDaemon (name, users, bootstrap = []) {
  const dir = join(work, name)
  mkdirSync(dir, { recursive: true })
  for (const login of users) cli(['user', 'add', login, '-p', `pw-${login}`], dir, { M1NODE_NODE_NAME: name })
  const range = 20000 + (nextRange++) * 4000
  const child = spawn(process.execPath, [BIN, 'start', '--data', dir], {
    env: {
      ...process.env,
      M1NODE_NODE_NAME: name,
      M1NODE_SIP_HOST: '127.0.0.1',
      M1NODE_SIP_UDP_PORT: '0',
      M1NODE_SIP_TCP_PORT: '0',
      M1NODE_SIP_WS_PORT: '0',
      M1NODE_SIP_TRANSPORTS: 'udp',
      M1NODE_WEB_PORT: '0',
      M1NODE_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
      M1NODE_P2P_ALLOW_PRIVATE_ADDRESSES: 'true',
      M1NODE_P2P_BOOTSTRAP: bootstrap.join(','),
      M1NODE_SIP_EGRESS_ALLOW: '127.0.0.0/8',
      M1NODE_AUTH_ALGORITHMS: 'MD5',
      M1NODE_MEDIA_HOST: '127.0.0.1',
      M1NODE_MEDIA_PORT_MIN: String(range),
      M1NODE_MEDIA_PORT_MAX: String(range + 3999),
      M1NODE_LOG_LEVEL: 'warn'
    },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  children.add(child)
  const deadline = Date.now() + 20_000
  for (;;) {
    if (Date.now() > deadline) throw new Error(`${name} did not start`)
    try {
      const info = JSON.parse(readFileSync(join(dir, 'daemon.json'), 'utf8'))
      if (info.pid === child.pid && (await fetch(`${info.url}/health`)).status === 200) break
    } catch {}
    await sleep(100)
  }
  const status = JSON.parse(cli(['status', '--json'], dir))
  return { name, dir, child, web: status.web, udp: status.sip.find(s => s.transport === 'UDP').port, boot: status.p2p.filter(a => a.includes('/127.0.0.1/')) }
}

async function stopDaemon (d) {
  if (d.child.exitCode != null) return
  const closed = new Promise(resolve => d.child.once('close', resolve))
  d.child.kill('SIGTERM')
  const t = setTimeout(() => d.child.kill('SIGKILL'), 10_000)
  await closed
  clearTimeout(t)
  children.delete(d.child)
}

async function metric (d, re) {
  const text = await (await fetch(`${d.web}/metrics`)).text()
  const m = re.exec(text)
  return m == null ? 0 : Number(m[1])
}

async function until (what, fn, ms = 30_000) {
  const deadline = Date.now() + ms
  for (;;) {
    try { if (await fn()) return } catch {}
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await sleep(200)
  }
}

const pct = (sorted, p) => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
const stats = (xs) => {
  const s = Float64Array.from(xs).sort()
  return { n: s.length, p50: pct(s, 50), p99: pct(s, 99), max: s[s.length - 1] }
}
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d

// ---- setup times ----------------------------------------------------------------------------------------
async function setupSeries (caller, uri, count) {
  const t180 = []
  const t200 = []
  let failed = 0
  for (let i = 0; i < count; i++) {
    const c = await caller.call(uri, 40000)
    if (c.status !== 200) { failed++; continue }
    if (c.t180 != null) t180.push(c.t180 - c.sent)
    t200.push(c.t200 - c.sent)
    await c.bye()
  }
  return { invite180: stats(t180), invite200: stats(t200), failed }
}

// ---- media ----------------------------------------------------------------------------------------------
async function bindUdp () {
  const s = createSocket('udp4')
  await new Promise((resolve, reject) => { s.once('error', reject); s.bind(0, '127.0.0.1', resolve) })
  try { s.setRecvBufferSize(1 << 23); s.setSendBufferSize(1 << 23) } catch {}
  return s
}

let clkTck = 100
try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch {}
/** CPU seconds a process has used (/proc/<pid>/stat utime + stime). */
function cpuSeconds (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / clkTck
}

/** N calls from `caller` to `uri`, RTP from `src` to each call's relay port for SECONDS; `dst` is the callee's media socket. */
async function mediaRun (caller, uri, src, dst, n, daemons) {
  const calls = []
  for (let i = 0; i < n; i++) {
    const c = await caller.call(uri, src.address().port)
    if (c.status !== 200) throw new Error(`media call ${i}: ${c.status}`)
    calls.push(c)
  }
  await sleep(500) // streams bound, relays ready
  const streams = await metric(daemons[0], /^m1node_media_p2p_streams (\d+)/m)
  const lat = new Float64Array(n * PPS * (SECONDS + 2))
  let got = 0
  let received = 0
  const perCall = new Uint32Array(n)
  const onMsg = (msg) => {
    const now = performance.now()
    if (msg.length < 24) return
    const sentAt = msg.readDoubleBE(12)
    const idx = msg.readUInt32BE(20)
    received++
    if (idx < n) perCall[idx]++
    if (got < lat.length) lat[got++] = (now - sentAt) * 1000
  }
  dst.on('message', onMsg)
  const pkt = Buffer.alloc(SIZE)
  pkt[0] = 0x80
  pkt[1] = 8
  let sent = 0
  const start = performance.now()
  const end = start + SECONDS * 1000
  const next = new Float64Array(n)
  for (let i = 0; i < n; i++) next[i] = start + (i / n) * (1000 / PPS) // phases spread over 20 ms
  const seq = new Uint16Array(n)
  const cpu0 = daemons.map(d => cpuSeconds(d.child.pid))
  await new Promise(resolve => {
    const tick = () => {
      const now = performance.now()
      if (now >= end) { resolve(); return }
      for (let i = 0; i < n; i++) {
        if (next[i] > now) continue
        next[i] += 1000 / PPS
        pkt.writeUInt16BE(seq[i]++, 2)
        pkt.writeUInt32BE(i, 8) // SSRC = call index
        pkt.writeDoubleBE(performance.now(), 12)
        pkt.writeUInt32BE(i, 20)
        src.send(pkt, calls[i].media.port, '127.0.0.1')
        sent++
      }
      setImmediate(tick)
    }
    tick()
  })
  const cpu = daemons.map((d, i) => round((cpuSeconds(d.child.pid) - cpu0[i]) / ((performance.now() - start) / 1000) * 100, 1))
  await sleep(1000) // late packets
  dst.off('message', onMsg)
  for (const c of calls) await c.bye()
  const s = stats(lat.subarray(0, got))
  return { calls: n, seconds: SECONDS, sent, received, lossPct: round((1 - received / sent) * 100, 4), callsWithLoss: [...perCall].filter(x => x < (sent / n) * 0.999).length, latencyUs: { p50: round(s.p50, 0), p99: round(s.p99, 0), max: round(s.max, 0) }, cpuPercent: Object.fromEntries(daemons.map((d, i) => [d.name, cpu[i]])), rtpStreams: streams }
}

// ---- CPS with SIPp ---------------------------------------------------------------------------------------
function runProc (cmd, args, timeoutMs) {
  return new Promise(resolve => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    children.add(c)
    let err = ''
    c.stderr.on('data', d => { err += String(d) })
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs)
    c.on('close', (code) => { clearTimeout(t); children.delete(c); resolve({ code, err }) })
  })
}

function lastStats (file) {
  if (!existsSync(file)) return undefined
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  const head = lines[0].split(';')
  const last = lines[lines.length - 1].split(';')
  const get = (name) => Number(last[head.indexOf(name)])
  return { successful: get('SuccessfulCall(C)'), failed: get('FailedCall(C)') }
}

async function cps (a, b, rate) {
  const dir = join(work, `cps-${rate}`)
  mkdirSync(dir, { recursive: true })
  const total = rate * CPS_SECONDS
  // dave at node B: registered by SIPp from the port its uas then listens on
  const uasPort = 45000 + Math.floor(Math.random() * 5000)
  writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\ndave;pw-dave;[authentication username=dave password=pw-dave]\n')
  const reg = await runProc('sipp', [`127.0.0.1:${b.udp}`, '-sf', join(SCEN, 'register-auth.xml'), '-t', 'u1', '-i', '127.0.0.1', '-p', String(uasPort), '-inf', join(dir, 'users.csv'), '-m', '1', '-nostdin', '-set', 'domain', b.name, '-timeout', '10s', '-timeout_error'], 15_000)
  if (reg.code !== 0) throw new Error(`SIPp REGISTER failed: ${reg.err.slice(0, 500)}`)
  const uas = runProc('sipp', [`127.0.0.1:${b.udp}`, '-sf', join(SCEN, 'call-uas.xml'), '-t', 'u1', '-i', '127.0.0.1', '-p', String(uasPort), '-m', String(total), '-nostdin', '-buff_size', '8388608', '-timeout', `${CPS_SECONDS + 40}s`], (CPS_SECONDS + 45) * 1000)
  await sleep(500)
  const stf = join(dir, 'uac.csv')
  const t0 = performance.now()
  const uac = await runProc('sipp', [`127.0.0.1:${a.udp}`, '-sf', join(SCEN, 'call-uac.xml'), '-t', 'u1', '-i', '127.0.0.1', '-p', String(uasPort + 1), '-s', 'bob', '-au', 'bob', '-ap', 'pw-bob',
    '-set', 'callee', 'dave', '-set', 'domain', b.name, '-d', '1000', '-m', String(total), '-r', String(rate), '-nostdin', '-buff_size', '8388608', '-recv_timeout', '10000',
    '-trace_stat', '-stf', stf, '-fd', '1', '-timeout', `${CPS_SECONDS + 30}s`], (CPS_SECONDS + 40) * 1000)
  const wall = (performance.now() - t0) / 1000
  const s = lastStats(stf) ?? { successful: NaN, failed: NaN }
  await uas
  return { offered: rate, calls: total, successful: s.successful, failed: s.failed, wallSeconds: round(wall, 1), achievedCps: round(s.successful / Math.max(CPS_SECONDS, wall - 1), 1), sippExit: uac.code }
}

// ---- main -----------------------------------------------------------------------------------------------
const result = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, loadBefore: loadavg()[0] }
let a, b
try {
  log('starting node-a and node-b')
  a = await startDaemon('node-a', ['bob', 'carol'])
  b = await startDaemon('node-b', ['alice', 'dave'], a.boot)
  await until('node-a resolves node-b', () => { cli(['resolve', 'node-b'], a.dir); return true })
  await until('node-b resolves node-a', () => { cli(['resolve', 'node-a'], b.dir); return true })

  const calleeMedia = await bindUdp()
  const callerMedia = await bindUdp()
  const alice = new Ua('alice', 'pw-alice', b.udp, 'node-b')
  const carol = new Ua('carol', 'pw-carol', a.udp, 'node-a')
  const bob = new Ua('bob', 'pw-bob', a.udp, 'node-a')
  for (const u of [alice, carol, bob]) await u.open()
  alice.answerPort = carol.answerPort = calleeMedia.address().port
  await alice.register()
  await carol.register()

  log(`setup: ${SETUP} warm cross-node calls and ${SETUP} local calls`)
  await setupSeries(bob, 'sip:alice@node-b', 10) // warm-up: connections, caches, JIT
  await setupSeries(bob, 'sip:carol@node-a', 10)
  result.setupWarm = await setupSeries(bob, 'sip:alice@node-b', SETUP)
  result.setupLocal = await setupSeries(bob, 'sip:carol@node-a', SETUP)

  log(`setup: ${COLD} cold callers (a fresh node each, its first call)`)
  const cold180 = []
  const cold200 = []
  let coldFailed = 0
  for (let i = 0; i < COLD; i++) {
    const c = await startDaemon(`node-cold-${i}`, ['bob'], [...a.boot, ...b.boot])
    // its node record stored by a peer: node-b can check the caller's identity
    await until('cold node published', async () => await metric(c, /^m1node_directory_records_published_total\{kind="node",result="stored"\} (\d+)/m) > 0)
    const ua = new Ua('bob', 'pw-bob', c.udp, c.name)
    await ua.open()
    const call = await ua.call('sip:alice@node-b', 40000, 20_000).catch(err => ({ status: String(err.message) }))
    if (call.status === 200) {
      if (call.t180 != null) cold180.push(call.t180 - call.sent)
      cold200.push(call.t200 - call.sent)
      await call.bye()
    } else {
      coldFailed++
      log(`cold call ${i}: ${call.status}`)
    }
    ua.close()
    await stopDaemon(c)
  }
  result.setupCold = { invite180: stats(cold180), invite200: stats(cold200), failed: coldFailed }

  log(`media: ${CALLS} concurrent calls x ${PPS} pkt/s for ${SECONDS} s, local then cross-node`)
  result.mediaLocal = await mediaRun(bob, 'sip:carol@node-a', callerMedia, calleeMedia, CALLS, [a, b])
  result.mediaCross = await mediaRun(bob, 'sip:alice@node-b', callerMedia, calleeMedia, CALLS, [a, b])
  result.mediaAddedUs = { p50: result.mediaCross.latencyUs.p50 - result.mediaLocal.latencyUs.p50, p99: result.mediaCross.latencyUs.p99 - result.mediaLocal.latencyUs.p99 }
  for (const u of [alice, carol, bob]) u.close()
  calleeMedia.close()
  callerMedia.close()

  result.cps = []
  try {
    execFileSync('sipp', ['-v'], { stdio: 'ignore' })
  } catch (err) {
    if (err.code === 'ENOENT') { log('no sipp: CPS skipped'); CPS.length = 0 }
  }
  for (const rate of CPS) {
    log(`cps: ${rate}/s for ${CPS_SECONDS} s (SIPp, 1 s calls)`)
    result.cps.push(await cps(a, b, rate))
  }
  result.loadAfter = loadavg()[0]
} finally {
  for (const d of [a, b]) if (d != null) await stopDaemon(d).catch(() => {})
  for (const c of children) c.kill('SIGKILL')
  rmSync(work, { recursive: true, force: true })
}

// ---- report ---------------------------------------------------------------------------------------------
const ms = (x) => Number.isFinite(x) ? round(x, 2).toFixed(2) : '-'
const R = result
const md = [
  '# Calls across nodes',
  '',
  `Measured by \`node bench/federation.mjs\` on ${R.date.slice(0, 10)}: Node ${R.node}, ${R.cpuModel}, ${R.cpus} CPUs shared with other work (load average ${round(R.loadBefore, 2)} before, ${round(R.loadAfter ?? NaN, 2)} after).`,
  'Two `m1node start` daemons on 127.0.0.1 bootstrapped to each other; phones are the benchmark\'s own UDP user agents (setup and media) and SIPp (calls per second).',
  '',
  '## Call setup (ms, from the authorised INVITE leaving the caller to the response arriving)',
  '',
  '| path | calls | INVITE→180 p50 | p99 | INVITE→200 p50 | p99 | failed |',
  '|---|---:|---:|---:|---:|---:|---:|',
  `| local call on node-a | ${R.setupLocal.invite200.n} | ${ms(R.setupLocal.invite180.p50)} | ${ms(R.setupLocal.invite180.p99)} | ${ms(R.setupLocal.invite200.p50)} | ${ms(R.setupLocal.invite200.p99)} | ${R.setupLocal.failed} |`,
  `| node-a → node-b, warm | ${R.setupWarm.invite200.n} | ${ms(R.setupWarm.invite180.p50)} | ${ms(R.setupWarm.invite180.p99)} | ${ms(R.setupWarm.invite200.p50)} | ${ms(R.setupWarm.invite200.p99)} | ${R.setupWarm.failed} |`,
  `| fresh node → node-b, first call (cold) | ${R.setupCold.invite200.n} | ${ms(R.setupCold.invite180.p50)} | ${ms(R.setupCold.invite180.p99)} (max) | ${ms(R.setupCold.invite200.p50)} | ${ms(R.setupCold.invite200.p99)} (max) | ${R.setupCold.failed} |`,
  '',
  'Goal (warm): p50 < 20 ms, p99 < 50 ms. Cold includes the caller node resolving `node-b` in the DHT and dialling it, and node-b resolving the new caller node\'s record for the identity check.',
  '',
  `## Media at ${R.mediaCross.calls} concurrent calls (${PPS} packets/s per call, ${SIZE}-byte packets, ${R.mediaCross.seconds} s, one direction)`,
  '',
  '| path | packets sent | received | loss % | one-way p50 µs | p99 µs | max µs | node-a CPU % | node-b CPU % |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  `| local: phone → relay A → phone | ${R.mediaLocal.sent} | ${R.mediaLocal.received} | ${R.mediaLocal.lossPct} | ${R.mediaLocal.latencyUs.p50} | ${R.mediaLocal.latencyUs.p99} | ${R.mediaLocal.latencyUs.max} | ${R.mediaLocal.cpuPercent['node-a']} | ${R.mediaLocal.cpuPercent['node-b']} |`,
  `| cross-node: phone → relay A → /m1/rtp/1.0.0 → relay B → phone | ${R.mediaCross.sent} | ${R.mediaCross.received} | ${R.mediaCross.lossPct} | ${R.mediaCross.latencyUs.p50} | ${R.mediaCross.latencyUs.p99} | ${R.mediaCross.latencyUs.max} | ${R.mediaCross.cpuPercent['node-a']} | ${R.mediaCross.cpuPercent['node-b']} |`,
  '',
  `Open \`/m1/rtp/1.0.0\` streams at node-a during the cross-node run: ${R.mediaCross.rtpStreams} (one per pair of nodes, a channel per call).`,
  '',
  `Added by the libp2p path (cross-node minus local): p50 ${R.mediaAddedUs.p50} µs, p99 ${R.mediaAddedUs.p99} µs. This includes the second relay's hop. Goal: p99 < 2 ms, no loss.`,
  '',
  '## Cross-node calls per second (SIPp uac at node-a with proxy auth → SIPp uas registered at node-b, 1 s calls)',
  '',
  '| offered/s | calls | successful | failed | achieved/s | wall s |',
  '|---:|---:|---:|---:|---:|---:|',
  ...R.cps.map(c => `| ${c.offered} | ${c.calls} | ${c.successful} | ${c.failed} | ${c.achievedCps} | ${c.wallSeconds} |`),
  ''
].join('\n')
mkdirSync(join(here, 'results'), { recursive: true })
writeFileSync(join(here, 'results', 'federation.json'), JSON.stringify(R, null, 2) + '\n')
writeFileSync(join(here, 'results', 'federation.md'), md)
process.stdout.write(md)
