// What the shape of writes costs on a libp2p connection (TCP + noise + yamux, no m1node code): 5,000 RTP-sized
// packets/s from one process to another, either one write per packet spread over N streams (what /m1/rtp/1.0.0 does
// today: one stream per call) or every packet of one event-loop turn in one write on one stream (the candidate
// design: one stream per pair of nodes). Prints and writes bench/results/rtp-writes.md. Run: node bench/rtp-writes.mjs
// [--streams 100] [--seconds 5] [--rounds 2]. Receiver and sender are child processes on 127.0.0.1.
import { spawn } from 'node:child_process'
import { writeFileSync, mkdirSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'

const here = dirname(fileURLToPath(import.meta.url))
const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i === -1 ? fallback : process.argv[i + 1] }
const SIZE = 175 // 3-byte /m1/rtp frame header + 172-byte G.711 RTP packet
const PPS = 5000
const clock = () => performance.timeOrigin + performance.now()
const libp2p = () => createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux({ maxInboundStreams: 8192, maxOutboundStreams: 8192 })] })

const role = process.argv[2]
if (role === 'recv') {
  const node = await libp2p()
  const lat = []
  await node.handle('/bench/rtp', (stream) => {
    let buf = Buffer.alloc(0)
    stream.addEventListener('message', (evt) => {
      const t = clock()
      const d = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      buf = buf.length === 0 ? Buffer.from(d) : Buffer.concat([buf, d])
      while (buf.length >= SIZE) { lat.push(t - buf.readDoubleBE(3)); buf = buf.subarray(SIZE) }
    })
  }, { maxInboundStreams: 8192 })
  process.stdout.write(node.getMultiaddrs()[0].toString() + '\n')
  process.on('message', () => {
    const xs = Float64Array.from(lat, x => x * 1000).sort()
    process.send({ got: xs.length, p50: xs[xs.length >> 1], p99: xs[Math.floor(xs.length * 0.99)] }, () => process.exit(0))
  })
} else if (role === 'send') {
  const [addr, streamsArg, coalesce, seconds] = process.argv.slice(3)
  const node = await libp2p()
  const streams = []
  for (let i = 0; i < Number(streamsArg); i++) streams.push(await node.dialProtocol(multiaddr(addr), '/bench/rtp', { maxOutboundStreams: 8192 }))
  const pending = []
  let scheduled = false
  const flush = () => { scheduled = false; streams[0].send(Buffer.concat(pending.splice(0))) }
  const start = performance.now()
  let sent = 0
  await new Promise(resolve => {
    const tick = () => {
      const t = performance.now()
      if (t - start > Number(seconds) * 1000) { resolve(); return }
      const due = Math.floor((t - start) / 1000 * PPS)
      while (sent < due) {
        const p = Buffer.alloc(SIZE)
        p.writeDoubleBE(clock(), 3)
        if (coalesce === '1') {
          pending.push(p)
          if (!scheduled) { scheduled = true; setImmediate(flush) }
        } else streams[sent % streams.length].send(p)
        sent++
      }
      setImmediate(tick)
    }
    tick()
  })
  process.send({ sent }, () => process.exit(0))
} else {
  const STREAMS = Number(arg('streams', 100))
  const SECONDS = Number(arg('seconds', 5))
  const ROUNDS = Number(arg('rounds', 2))
  const self = fileURLToPath(import.meta.url)
  const run = async (streams, coalesce) => {
    const recv = spawn(process.execPath, [self, 'recv'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
    const addr = await new Promise(resolve => recv.stdout.once('data', d => resolve(String(d).trim())))
    const send = spawn(process.execPath, [self, 'send', addr, String(streams), coalesce ? '1' : '0', String(SECONDS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const { sent } = await new Promise(resolve => send.once('message', resolve))
    await new Promise(resolve => setTimeout(resolve, 1000))
    const r = await new Promise(resolve => { recv.once('message', resolve); recv.send('done') })
    return { streams, coalesce, sent, received: r.got, p50: Math.round(r.p50), p99: Math.round(r.p99) }
  }
  const rows = []
  const load = [loadavg()[0]]
  for (let i = 0; i < ROUNDS; i++) {
    rows.push(await run(STREAMS, false))
    rows.push(await run(1, true))
  }
  load.push(loadavg()[0])
  const md = [
    '# Write shape on a libp2p connection',
    '',
    `Measured by \`node bench/rtp-writes.mjs\` on ${new Date().toISOString().slice(0, 10)}: Node ${process.version}, ${cpus()[0]?.model}, ${cpus().length} CPUs shared with other work (load average ${load.map(x => x.toFixed(1)).join(' → ')}).`,
    `${PPS} packets/s of ${SIZE} bytes for ${SECONDS} s between two processes over TCP + noise + yamux on 127.0.0.1; latency is receive time minus send time (same host clock).`,
    '',
    '| writes | streams | sent | received by the end | p50 µs | p99 µs |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(r => `| ${r.coalesce ? 'one per event-loop turn' : 'one per packet'} | ${r.streams} | ${r.sent} | ${r.received} | ${r.p50} | ${r.p99} |`),
    ''
  ].join('\n')
  mkdirSync(join(here, 'results'), { recursive: true })
  writeFileSync(join(here, 'results', 'rtp-writes.md'), md)
  process.stdout.write(md)
}
