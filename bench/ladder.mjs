// Media path ladder benchmark, on loopback: N calls between two nodes (two libp2p nodes in this process, TCP on
// 127.0.0.1, each with the real P2pMediaLinks and a stand-in media relay), 172-byte packets (G.711 RTP, 20 ms) at 50
// packets per second each way per call. Run twice: media on the /m1/rtp/1.0.0 stream only (p2p.direct_media off),
// then with the direct path on, measured once the data channel carries the media. Reports one-way latency p50/p99,
// loss, and how long the data channel took to carry media after the call's channel was bound.
// Writes bench/results/ladder.json and ladder.md.
// Run: npm run build && node bench/ladder.mjs   (BENCH_CALLS=10,50  BENCH_SECONDS=10)
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLogger } from '../dist/core/index.js'
import { P2p } from '../dist/p2p/index.js'
import { P2pMediaLinks } from '../dist/routing/index.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const CALLS = (process.env.BENCH_CALLS ?? '10,50').split(',').map(Number)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const PKT = 172
const logger = createLogger({ level: 'silent' })
const records = { validate () {}, select () { return 0 } }
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))
const pct = (xs, p) => { const s = Float64Array.from(xs).sort(); return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] }
const r1 = (x) => Math.round(x * 100) / 100

/** A stand-in for the media relay: remembers each side's link, timestamps what comes in. */
function stubRelay (lat) {
  const links = new Map()
  return {
    links,
    counts: { received: 0 },
    attach (callId, side, link) {
      links.set(callId, link)
      const counts = this.counts
      return {
        receive (packet) {
          counts.received++
          lat.push(performance.now() - new DataView(packet.buffer, packet.byteOffset).getFloat64(0))
        },
        detach () { links.delete(callId) }
      }
    }
  }
}

async function pair (dir, direct) {
  const mk = async (listen) => new P2p({ privateKey: await generateKeyPair('Ed25519'), records, logger }, { listen, announce: [], bootstrap: [], allowPrivateAddresses: true, datastorePath: join(dir, String(Math.random())), holePunching: false })
  const pa = await mk(['/ip4/127.0.0.1/tcp/0'])
  const pb = await mk(['/ip4/127.0.0.1/tcp/0'])
  await pa.start()
  await pb.start()
  await pa.libp2p.dial((await import('@multiformats/multiaddr')).multiaddr(pb.addresses()[0]))
  const lat = []
  const ra = stubRelay(lat)
  const rb = stubRelay(lat)
  const links = (p2p, relay) => new P2pMediaLinks({ p2p, relay, selfPeerId: () => p2p.peerId, iceServers: () => [], logger }, { direct, directPath: { bindAddress: '127.0.0.1' } })
  const la = links(pa, ra)
  const lb = links(pb, rb)
  await la.start()
  await lb.start()
  return { pa, pb, la, lb, ra, rb, lat, idA: pa.peerId, idB: pb.peerId }
}

async function run (n, direct, dir) {
  const p = await pair(dir, direct)
  const ids = []
  for (let i = 0; i < n; i++) {
    const callId = `bench-${i}`
    const token = p.la.expect(callId, 'b', p.idB)
    p.lb.connect(callId, 'a', p.idA, token)
    ids.push(callId)
  }
  const t0 = performance.now()
  const bound = async () => { while (ids.some(id => !p.ra.links.has(id) || !p.rb.links.has(id))) await sleep(5) }
  await bound()
  const boundMs = performance.now() - t0
  let switchMs = NaN
  if (direct) {
    const deadline = Date.now() + 20_000
    while (!(p.la.direct.isActive(p.idB) && p.lb.direct.isActive(p.idA)) && Date.now() < deadline) await sleep(5)
    switchMs = performance.now() - t0 - boundMs
    if (!p.la.direct.isActive(p.idB)) throw new Error('data channel never carried media')
  }
  // warm up one second, then measure
  let sent = 0
  const buf = () => { const b = Buffer.alloc(PKT); b[0] = 0x80; return b }
  const tick = () => {
    for (const id of ids) {
      for (const relay of [p.ra, p.rb]) {
        const link = relay.links.get(id)
        if (link == null) continue
        const b = buf()
        new DataView(b.buffer, b.byteOffset).setFloat64(0, performance.now())
        link.send(b, 0, false)
        sent++
      }
    }
  }
  const timer = setInterval(tick, 20)
  await sleep(1000)
  p.lat.length = 0
  sent = 0
  p.ra.counts.received = p.rb.counts.received = 0
  const cpu0 = process.cpuUsage()
  await sleep(SECONDS * 1000)
  clearInterval(timer)
  const cpu = process.cpuUsage(cpu0)
  await sleep(300)
  const received = p.ra.counts.received + p.rb.counts.received
  const activeAtEnd = direct ? p.la.direct.isActive(p.idB) && p.lb.direct.isActive(p.idA) : false
  for (const id of ids) { p.la.end(id); p.lb.end(id) }
  await p.la.stop(); await p.lb.stop()
  await p.pa.stop(); await p.pb.stop()
  return {
    calls: n,
    carrier: direct ? 'datachannel' : 'stream',
    sent,
    received,
    lost: Math.max(0, sent - received),
    p50: r1(pct(p.lat, 50)),
    p99: r1(pct(p.lat, 99)),
    boundMs: r1(boundMs),
    switchMs: r1(switchMs),
    activeAtEnd,
    processCpu: r1((cpu.user + cpu.system) / 1e6 / SECONDS * 100)
  }
}

const dir = await mkdtemp(join(tmpdir(), 'm1-ladder-'))
const rows = []
try {
  for (const n of CALLS) {
    for (const direct of [false, true]) {
      const r = await run(n, direct, dir)
      rows.push(r)
      console.log(`${n} calls, ${r.carrier}: sent ${r.sent}, lost ${r.lost}, one-way p50 ${r.p50} ms, p99 ${r.p99} ms, process CPU ${r.processCpu}%${direct ? `, data channel carrying media ${r.switchMs} ms after the channels were bound` : ''}`)
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true })
}
const env = { cpus: cpus().length, load: loadavg().map(x => Math.round(x * 10) / 10), node: process.version, seconds: SECONDS, packetBytes: PKT, date: new Date().toISOString() }
await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
await writeFile(join(ROOT, 'bench', 'results', 'ladder.json'), JSON.stringify({ env, rows }, null, 2) + '\n')
const md = [
  '# Media path ladder: stream vs data channel on loopback',
  '',
  `${env.date}, ${env.cpus} CPU cores shared with other work (load average ${env.load.join(' / ')}), Node ${env.node}; ${SECONDS} s per run, ${PKT}-byte packets at 50 pps each way per call; both nodes and the packet source in one process.`,
  '',
  '| calls | carrier | packets sent | lost | one-way p50 | one-way p99 | process CPU | data channel carrying media after |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(r => `| ${r.calls} | ${r.carrier} | ${r.sent} | ${r.lost} | ${r.p50} ms | ${r.p99} ms | ${r.processCpu}% | ${r.carrier === 'datachannel' ? `${r.switchMs} ms` : ''} |`),
  ''
].join('\n')
await writeFile(join(ROOT, 'bench', 'results', 'ladder.md'), md)
console.log(md)
// libdatachannel's threads would keep the process alive
const ndc = await import('node-datachannel')
ndc.default.cleanup()
process.exit(0)
