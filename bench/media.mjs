// RTP relay throughput and added latency: N concurrent calls x 50 packets/s each way (172-byte G.711 packets),
// through a MediaRelay running in its own process (bench/media-runner.mjs), against a baseline of the same traffic
// sent socket to socket. Reports packets/s relayed, relay CPU % (over the run and its drain), packets per relay CPU-second, added latency p50/p99, loss.
// Build first: npx tsc -p tsconfig.build.json; then: node bench/media.mjs [--seconds 10] [--calls 100,500,1000]
import { fork, execSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const seconds = Number(arg('seconds', 10))
const baselineSeconds = Number(arg('baseline-seconds', 5))
const callCounts = String(arg('calls', '100,500,1000')).split(',').map(Number)
const PPS = 50 // per direction per call (20 ms ptime)
const INTERVAL = 1000 / PPS
const SIZE = 172 // 12-byte RTP header + 160 bytes of G.711
const PORT_MIN = 30000
const PORT_MAX = 39999

let clkTck = 100
try { clkTck = Number(execSync('getconf CLK_TCK').toString().trim()) || 100 } catch {}

// ---- the relay process -------------------------------------------------------------------------------------
const child = fork(join(here, 'media-runner.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
let nextId = 1
const pending = new Map()
child.on('message', (msg) => {
  const p = pending.get(msg.id)
  if (p == null) return
  pending.delete(msg.id)
  msg.error != null ? p.reject(new Error(msg.error)) : p.resolve(msg.result)
})
child.on('exit', (code) => { for (const p of pending.values()) p.reject(new Error(`relay exited ${code}`)) })
const rpc = (op, body = {}) => new Promise((resolve, reject) => {
  const id = nextId++
  pending.set(id, { resolve, reject })
  child.send({ id, op, ...body })
})

function cpuTicks (pid) {
  // /proc/<pid>/stat: fields after the ')' of comm; utime and stime are fields 14 and 15
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12])
}

/** [busy, total] jiffies of the whole machine (/proc/stat), to show how much else was running. */
function machineTicks () {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  return [total - f[3] - (f[4] ?? 0), total]
}
const busyPercent = (a, b) => (b[0] - a[0]) / Math.max(1, b[1] - a[1]) * 100 * cpus().length

// ---- the generator ---------------------------------------------------------------------------------------
async function bind () {
  const s = createSocket('udp4')
  await new Promise((resolve, reject) => { s.once('error', reject); s.bind(0, '127.0.0.1', resolve) })
  try { s.setRecvBufferSize(1 << 20) } catch {}
  return s
}

/**
 * Sends for `secs` seconds: each endpoint e sends every 20 ms to targets[e] (phase spread over the 20 ms),
 * and records latency of what it receives. Endpoint 2i is call i's A, 2i+1 its B.
 */
async function run (sockets, targets, secs) {
  const n = sockets.length
  const capacity = Math.ceil(n * PPS * (secs + 2))
  const samples = new Float64Array(capacity)
  let count = 0
  let received = 0
  let sent = 0
  let measuring = true
  const buffers = sockets.map((_, e) => {
    const b = Buffer.alloc(SIZE)
    b[0] = 0x80 // RTP v2
    b[1] = 0 // PCMU
    b.writeUInt32BE(e, 8) // SSRC: the endpoint
    return b
  })
  const onMessage = (msg) => {
    const now = performance.now()
    received++
    if (measuring && msg.length >= 20 && count < capacity) samples[count++] = now - msg.readDoubleLE(12)
  }
  for (const s of sockets) s.on('message', onMessage)

  const seq = new Uint16Array(n)
  const GROUPS = 20
  const start = performance.now() + 5
  const due = new Float64Array(GROUPS)
  for (let g = 0; g < GROUPS; g++) due[g] = start + g * (INTERVAL / GROUPS)
  const end = start + secs * 1000
  const sendGroup = (g, at) => {
    for (let e = g; e < n; e += GROUPS) {
      const b = buffers[e]
      seq[e]++
      b.writeUInt16BE(seq[e], 2)
      b.writeUInt32BE((seq[e] * 160) >>> 0, 4)
      b.writeDoubleLE(at, 12)
      const t = targets[e]
      sockets[e].send(b, t.port, '127.0.0.1')
      sent++
    }
  }
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now()
      if (now >= end) { clearInterval(timer); resolve(); return }
      for (let g = 0; g < GROUPS; g++) {
        while (due[g] <= now && due[g] < end) {
          // stamp the real send time: lateness of the generator's timers is not the relay's latency
          sendGroup(g, performance.now())
          due[g] += INTERVAL
        }
      }
    }
    const timer = setInterval(tick, 1)
  })
  // drain: until nothing has arrived for 300 ms (at most 15 s), so late packets count as late, not lost
  const drainEnd = performance.now() + 15000
  for (let last = -1; received !== last && received < sent && performance.now() < drainEnd;) {
    last = received
    await new Promise(resolve => setTimeout(resolve, 300))
  }
  measuring = false
  for (const s of sockets) s.off('message', onMessage)
  const lat = samples.subarray(0, count).sort()
  const q = (p) => lat.length === 0 ? NaN : lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]
  return { sent, received, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: lat[lat.length - 1] ?? NaN }
}

const fmt = (x, d = 0) => Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a'

// what the machine does without us: 2 s before the first run
const idle0 = machineTicks()
await new Promise(resolve => setTimeout(resolve, 2000))
const background = busyPercent(idle0, machineTicks())
console.log(`background load before the runs: ${background.toFixed(0)} % CPU busy (of ${cpus().length * 100} %)`)

const { pid } = await rpc('start', { init: { host: '127.0.0.1', advertisedAddress: '127.0.0.1', portMin: PORT_MIN, portMax: PORT_MAX, timeoutSeconds: 60 } })
const rows = []
for (const calls of callCounts) {
  const sockets = []
  for (let i = 0; i < calls * 2; i++) sockets.push(await bind())
  const ports = sockets.map(s => s.address().port)

  // baseline: A <-> B directly
  const direct = ports.map((_, e) => ({ port: ports[e ^ 1] }))
  const base = await run(sockets, direct, baselineSeconds)

  // through the relay
  const setup = []
  for (let i = 0; i < calls; i++) setup.push({ id: `bench-${calls}-${i}`, a: ports[2 * i], b: ports[2 * i + 1] })
  const { ports: relayPorts, sockets: relaySockets } = await rpc('setup', { calls: setup })
  const viaRelay = []
  for (let i = 0; i < calls; i++) {
    viaRelay.push({ port: relayPorts[i].pa }, { port: relayPorts[i].pb })
  }
  const before = await rpc('totals')
  const t0 = performance.now()
  const cpu0 = cpuTicks(pid)
  const gen0 = process.cpuUsage()
  const machine0 = machineTicks()
  const res = await run(sockets, viaRelay, seconds)
  // CPU over the sending window plus the drain second, packets likewise
  const elapsed = (performance.now() - t0) / 1000
  const cpuSeconds = (cpuTicks(pid) - cpu0) / clkTck
  const cpu = cpuSeconds / elapsed * 100
  const gen = process.cpuUsage(gen0)
  const genCpu = (gen.user + gen.system) / 1e6 / elapsed * 100
  const machine = busyPercent(machine0, machineTicks())
  const after = await rpc('totals')
  const relayed = (after.packets.a2b + after.packets.b2a) - (before.packets.a2b + before.packets.b2a)
  const dropped = Object.values(after.dropped).reduce((a, b) => a + b, 0) - Object.values(before.dropped).reduce((a, b) => a + b, 0)
  const pps = relayed / seconds
  const row = {
    calls,
    offered: calls * PPS * 2,
    generated: res.sent / seconds,
    pps,
    cpu,
    perCore: cpuSeconds > 0 ? relayed / cpuSeconds : NaN,
    addedP50: (res.p50 - base.p50) * 1000,
    addedP99: (res.p99 - base.p99) * 1000,
    relayP50: res.p50 * 1000,
    relayP99: res.p99 * 1000,
    relayP999: res.p999 * 1000,
    baseP50: base.p50 * 1000,
    baseP99: base.p99 * 1000,
    loss: res.sent === 0 ? NaN : (res.sent - res.received) / res.sent * 100,
    baseLoss: base.sent === 0 ? NaN : (base.sent - base.received) / base.sent * 100,
    dropped,
    genCpu,
    machine,
    relaySockets
  }
  rows.push(row)
  console.log(`N=${calls}: ${fmt(pps)} pkt/s relayed (offered ${fmt(row.offered)}, generated ${fmt(row.generated)}), relay CPU ${fmt(cpu, 1)} %, ` +
    `${fmt(row.perCore)} pkt/s per core, added latency p50 ${fmt(row.addedP50)} µs p99 ${fmt(row.addedP99)} µs, ` +
    `loss ${fmt(row.loss, 3)} % (baseline ${fmt(row.baseLoss, 3)} %), generator CPU ${fmt(genCpu, 1)} %, machine busy ${fmt(machine)} %`)
  await rpc('teardown', { ids: setup.map(c => c.id) })
  for (const s of sockets) s.close()
  await new Promise(resolve => setTimeout(resolve, 500))
}
const load = loadavg()[0]
await rpc('stop')

// ---- report ------------------------------------------------------------------------------------------------
const date = new Date().toISOString().slice(0, 10)
const lines = [
  '# RTP relay throughput and added latency',
  '',
  `Measured by \`node bench/media.mjs\` on ${date}: Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}, ` +
  `${cpus().length} CPUs, ${seconds} s per N through the relay (${baselineSeconds} s baseline); load average ` +
  `${load.toFixed(2)} when it ended.`,
  '',
  `Each call sends ${PPS} packets/s each way (${SIZE}-byte G.711 packets: 12-byte RTP header + 160 bytes, sequence ` +
  'number and send time inside). The relay runs alone in a child process (`bench/media-runner.mjs`, one `MediaRelay` ' +
  'bound to 127.0.0.1); the generator (this process) sends and receives on loopback. Added latency is the ' +
  'receive-minus-send time through the relay minus the same figure measured socket to socket without it. ' +
  '"Generated" is what the generator managed to send (it falls short of "offered" when it is starved of CPU); ' +
  'loss is counted against it, after waiting for late packets.',
  '',
  '| calls | offered pkt/s | generated pkt/s | relayed pkt/s | relay CPU % | pkt/s per core | added p50 µs | added p99 µs | p50 / p99 / p99.9 via relay µs | baseline p50 / p99 µs | loss % | relay drops | generator CPU % | machine busy % |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(r => `| ${r.calls} | ${fmt(r.offered)} | ${fmt(r.generated)} | ${fmt(r.pps)} | ${fmt(r.cpu, 1)} | ${fmt(r.perCore)} | ${fmt(r.addedP50)} | ${fmt(r.addedP99)} | ` +
    `${fmt(r.relayP50)} / ${fmt(r.relayP99)} / ${fmt(r.relayP999)} | ${fmt(r.baseP50)} / ${fmt(r.baseP99)} | ${fmt(r.loss, 3)} | ${fmt(r.dropped)} | ${fmt(r.genCpu)} | ${fmt(r.machine)} |`),
  '',
  `Goal: no loss and under 1 ms added p99 at 500 calls. Before the runs the machine was already ${fmt(background)} % busy ` +
  `(of ${cpus().length * 100} %) with other work; "machine busy" is every process during the run. The relay and the ` +
  'generator each need a core: once the machine runs out, packets wait in socket buffers (nothing is lost, ' +
  'latency grows), so the latency columns measure the machine as much as the relay.',
  ''
]
mkdirSync(join(here, 'results'), { recursive: true })
writeFileSync(join(here, 'results', 'media.md'), lines.join('\n'))
console.log(`\nwritten to ${join('bench', 'results', 'media.md')}`)
