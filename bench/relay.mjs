// Relay benchmark: one relay daemon (`m1node start --relay`, its own process) on 127.0.0.1 carries N concurrent
// "calls" between two nodes that have no address of their own (p2p.public = false, reachable only through the relay).
// Each call is one libp2p stream carrying 172-byte packets (G.711 RTP, 20 ms) at 50 packets per second each way.
// Measures loss, the relay process's CPU per 100 calls, one-way latency through the relay against the same traffic
// over a direct connection (the added latency), and the time from a node's start to its first relay reservation.
// Writes bench/results/relay.json and relay.md.
// Run: npm run build && node bench/relay.mjs   (BENCH_CALLS=25,50,100  BENCH_SECONDS=10)
import { mkdtemp, rm, writeFile, mkdir, readFile } from 'node:fs/promises'
import { spawn, spawnSync } from 'node:child_process'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLogger } from '../dist/core/index.js'
import { P2p } from '../dist/p2p/index.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'bin', 'm1node.js')
const CALLS = (process.env.BENCH_CALLS ?? '25,50,100').split(',').map(Number)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const PROTOCOL = '/m1/bench-rtp/1.0.0'
const PKT = 172
const logger = createLogger({ level: 'silent' })
const records = { validate () {}, select () { return 0 } }
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))
const pct = (xs, p) => { const s = Float64Array.from(xs).sort(); return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] }

async function startRelay (dir) {
  const child = spawn(process.execPath, [BIN, 'start', '--relay', '--data', dir], {
    env: { ...process.env, M1NODE_SIP_HOST: '127.0.0.1', M1NODE_SIP_UDP_PORT: '0', M1NODE_SIP_TCP_PORT: '0', M1NODE_SIP_WS_PORT: '0', M1NODE_WEB_PORT: '0', M1NODE_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0', M1NODE_P2P_ALLOW_PRIVATE_ADDRESSES: 'true', M1NODE_RELAY_STUN: 'false', M1NODE_RELAY_MAX_CIRCUITS: '10000', M1NODE_RELAY_MAX_RESERVATIONS: '1000', M1NODE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  for (let i = 0; i < 100; i++) {
    const r = spawnSync(process.execPath, [BIN, 'status', '--json', '--data', dir], { encoding: 'utf8' })
    if (r.status === 0) return { child, addr: JSON.parse(r.stdout).p2p[0] }
    await sleep(200)
  }
  child.kill('SIGKILL')
  throw new Error('relay did not start')
}

async function node (dir, init) {
  const p2p = new P2p({ privateKey: await generateKeyPair('Ed25519'), records, logger }, { announce: [], bootstrap: [], allowPrivateAddresses: true, datastorePath: join(dir, String(Math.random())), holePunching: false, ...init })
  return p2p
}

/** CPU seconds (user + system) of a process so far. */
async function cpuSeconds (pid) {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/** N streams from a to b, 50 pps of 172-byte packets each way for `seconds`; returns loss and one-way latencies. */
async function traffic (a, b, n, seconds) {
  const lat = []
  let sent = 0
  let received = 0
  const stamp = (buf) => { new DataView(buf.buffer, buf.byteOffset).setFloat64(0, performance.now()) }
  const reader = (stream) => (async () => {
    let pending = new Uint8Array(0)
    for await (const chunk of stream) {
      const c = chunk instanceof Uint8Array ? chunk : chunk.subarray()
      const buf = new Uint8Array(pending.length + c.length); buf.set(pending); buf.set(c, pending.length)
      let i = 0
      for (; i + PKT <= buf.length; i += PKT) {
        lat.push(performance.now() - new DataView(buf.buffer, buf.byteOffset + i).getFloat64(0))
        received++
      }
      pending = buf.slice(i)
    }
  })().catch(() => {})
  const bSide = []
  await b.libp2p.handle(PROTOCOL, (stream) => { bSide.push(stream); reader(stream) }, { runOnLimitedConnection: true, maxInboundStreams: 10_000 })
  const aSide = []
  for (let i = 0; i < n; i++) {
    const s = await a.dialStream(b.peerId, PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    aSide.push(s)
    reader(s)
  }
  while (bSide.length < n) await sleep(10)
  const streams = [...aSide, ...bSide]
  const cut = new Set()
  const t0 = performance.now()
  let tick = 0
  // 20 ms ticks, each stream sends one packet per tick, spread over the tick
  while (performance.now() - t0 < seconds * 1000) {
    const due = t0 + tick * 20
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    for (const s of streams) {
      if (s.writeStatus !== 'writable') { if (cut.size === 0) console.error(`first stream cut ${((performance.now() - t0) / 1000).toFixed(2)} s into the traffic; connections a: ${a.libp2p.getConnections().map(c => c.remoteAddr.toString().slice(-20) + ' ' + c.status).join(', ')}`); cut.add(s); continue }
      const pkt = new Uint8Array(PKT)
      stamp(pkt)
      try { s.send(pkt); sent++ } catch { cut.add(s) }
    }
    tick++
  }
  // packets still in flight are not lost: wait until every one arrived, or nothing arrived for 3 s
  const sentAt = performance.now()
  let last = received
  let quietSince = performance.now()
  while (received < sent && performance.now() - quietSince < 3000 && performance.now() - sentAt < 30_000) {
    await sleep(100)
    if (received !== last) { last = received; quietSince = performance.now() }
  }
  for (const s of streams) s.abort(new Error('done'))
  await b.libp2p.unhandle(PROTOCOL)
  return { sent, received, lost: sent - received, cut: cut.size, cutReasons: [...cut].slice(0, 3).map(s => `${s.status}/${s.writeStatus}/${s.remoteReadStatus ?? ''}`), p50: pct(lat, 50), p99: pct(lat, 99) }
}

const work = await mkdtemp(join(tmpdir(), 'm1-relay-bench-'))
const results = { date: new Date().toISOString(), loadAverage: loadavg()[0], cpus: cpus().length, cpuModel: cpus()[0]?.model, seconds: SECONDS, packetBytes: PKT, pps: 50, runs: [] }
const relayDir = join(work, 'relay')
await mkdir(relayDir)
const relay = await startRelay(relayDir)
try {
  // time from start of a node that has no address of its own to its first relay reservation (reachable)
  const starts = []
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    const n = await node(work, { listen: [], public: false, relays: [relay.addr], relayReservations: 1 })
    await n.start()
    while (n.relayPeers().length === 0 && performance.now() - t < 20_000) await sleep(5)
    starts.push(performance.now() - t)
    await n.stop()
  }
  results.reachableMs = { p50: pct(starts, 50), max: Math.max(...starts) }
  console.log(`start -> reachable through the relay: p50 ${results.reachableMs.p50.toFixed(0)} ms, max ${results.reachableMs.max.toFixed(0)} ms`)

  for (const n of CALLS) {
    // relayed: a and b have no listen address; a dials b's /p2p-circuit address
    const a = await node(work, { listen: [], public: false, relays: [relay.addr], relayReservations: 1 })
    const b = await node(work, { listen: [], public: false, relays: [relay.addr], relayReservations: 1 })
    await a.start(); await b.start()
    while (b.relayPeers().length === 0 || a.relayPeers().length === 0) await sleep(20)
    await a.learnAddresses(b.peerId, b.addresses())
    const cpu0 = await cpuSeconds(relay.child.pid)
    const w0 = performance.now()
    const r = await traffic(a, b, n, SECONDS)
    const cpu = (await cpuSeconds(relay.child.pid) - cpu0) / ((performance.now() - w0) / 1000)
    const path = a.connectionTo(b.peerId)
    await a.stop(); await b.stop()
    // direct: the same traffic over a direct loopback connection, for the latency the relay adds
    const c = await node(work, { listen: ['/ip4/127.0.0.1/tcp/0'], public: true })
    const d = await node(work, { listen: ['/ip4/127.0.0.1/tcp/0'], public: true })
    await c.start(); await d.start()
    await c.learnAddresses(d.peerId, d.addresses())
    const direct = await traffic(c, d, n, Math.min(SECONDS, 5))
    await c.stop(); await d.stop()
    const run = {
      calls: n,
      relayed: path.relayed && !path.direct,
      packets: r.sent,
      lost: r.lost,
      streamsCut: r.cut,
      lossPercent: 100 * r.lost / r.sent,
      relayCpuPercent: 100 * cpu,
      relayCpuPercentPer100Calls: 100 * cpu * 100 / n,
      latencyMs: { relayedP50: r.p50, relayedP99: r.p99, directP50: direct.p50, directP99: direct.p99, addedP50: r.p50 - direct.p50, addedP99: r.p99 - direct.p99 }
    }
    results.runs.push(run)
    console.log(`${n} calls: ${r.sent} packets, lost ${r.lost}, streams cut ${r.cut} ${r.cutReasons.join(' ')}; relay CPU ${run.relayCpuPercent.toFixed(1)}% (${run.relayCpuPercentPer100Calls.toFixed(1)}% per 100 calls); one-way p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms (direct ${direct.p50.toFixed(2)} / ${direct.p99.toFixed(2)} ms)`)
  }
} finally {
  relay.child.kill('SIGTERM')
  await sleep(500)
  await rm(work, { recursive: true, force: true })
}

await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
await writeFile(join(ROOT, 'bench', 'results', 'relay.json'), JSON.stringify(results, null, 2) + '\n')
const f = (x) => Number.isFinite(x) ? x.toFixed(2) : 'n/a'
const md = [
  '# Relay benchmark (bench/relay.mjs)',
  '',
  `${results.date}, ${results.cpus} CPUs (${results.cpuModel}), shared with other work (load average ${results.loadAverage.toFixed(1)} at the start). One relay daemon (its own process) on 127.0.0.1;`,
  `both ends in the benchmark process, each with no address of its own, so every packet crosses the relay. Each call:`,
  `one stream, ${PKT}-byte packets at 50 pps each way, ${SECONDS} s. Added latency: relayed minus the same traffic over a`,
  'direct loopback connection (both ends share the benchmark process, whose own load is in both figures).',
  '',
  `Start of a node behind NAT to its first relay reservation: p50 ${f(results.reachableMs.p50)} ms, max ${f(results.reachableMs.max)} ms.`,
  '',
  '| calls | packets | lost | streams cut | relay CPU | CPU per 100 calls | one-way p50 / p99 relayed (ms) | direct p50 / p99 (ms) | added p50 / p99 (ms) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.runs.map(r => `| ${r.calls} | ${r.packets} | ${r.lost} | ${r.streamsCut} | ${f(r.relayCpuPercent)}% | ${f(r.relayCpuPercentPer100Calls)}% | ${f(r.latencyMs.relayedP50)} / ${f(r.latencyMs.relayedP99)} | ${f(r.latencyMs.directP50)} / ${f(r.latencyMs.directP99)} | ${f(r.latencyMs.addedP50)} / ${f(r.latencyMs.addedP99)} |`),
  ''
].join('\n')
await writeFile(join(ROOT, 'bench', 'results', 'relay.md'), md)
console.log('wrote bench/results/relay.json and relay.md')
process.exit(0)
