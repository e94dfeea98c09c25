// Hole punching in the NAT lab: BENCH_TRIES (default 20) ICE attempts per NAT type between a node in LAN 1 and one
// in LAN 2, each end the real DirectPaths (bench/lib/ice-peer.mjs) with relay-1's STUN responder as ICE server, the
// routers' conntrack flushed before each try. Counts the attempts whose data channel carried a probe round trip,
// and the time from start to that. Needs root and the lab tools; run under the lab lock:
//   npm run build && flock /tmp/m1lab.lock node bench/ladder-lab.mjs
// Writes bench/results/ladder-lab.json and ladder-lab.md. Brings the lab up and always takes it down.
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { spawn, spawnSync } from 'node:child_process'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const LAB = join(ROOT, 'test', 'nat', 'lab.sh')
const PEER = join(ROOT, 'bench', 'lib', 'ice-peer.mjs')
const TRIES = Number(process.env.BENCH_TRIES ?? 20)
const TIMEOUT = Number(process.env.BENCH_TIMEOUT_MS ?? 8000)
const STUN = 'stun:11.22.33.10:3478'
const pct = (xs, p) => { const s = Float64Array.from(xs).sort(); return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] }

const lab = (...args) => {
  const r = spawnSync('bash', [LAB, ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`lab.sh ${args.join(' ')}: ${r.stderr}`)
}

const inNs = (ns, args) => new Promise((resolve) => {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', d => { out += String(d) })
  child.stderr.on('data', d => { out += String(d) })
  const t = setTimeout(() => child.kill('SIGKILL'), TIMEOUT + 10_000)
  child.on('close', () => { clearTimeout(t); resolve(out) })
})

async function attempt () {
  const dir = await mkdtemp(join(tmpdir(), 'm1-ice-'))
  try {
    lab('flush')
    const [answer, offer] = await Promise.all([
      inNs('m1lab-lan2', [PEER, 'answer', dir, STUN, String(TIMEOUT)]),
      inNs('m1lab-lan1', [PEER, 'offer', dir, STUN, String(TIMEOUT)])
    ])
    const parse = (s) => { try { return JSON.parse(s.trim().split('\n').pop()) } catch { return { ok: false, error: s.slice(-300) } } }
    const a = parse(offer)
    const b = parse(answer)
    return { ok: a.ok === true && b.ok === true, ms: a.ms, pair: a.pair, error: a.error ?? b.error }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const results = {}
let stun
try {
  lab('up', 'eim')
  stun = spawn('ip', ['netns', 'exec', 'm1lab-relay1', process.execPath, '-e',
    `Promise.all([import(${JSON.stringify(join(ROOT, 'dist', 'p2p', 'index.js'))}), import('pino')]).then(async ([m, p]) => { const s = new m.StunServer({ logger: p.default({ level: 'silent' }) }, { host: '0.0.0.0', port: 3478 }); await s.start() })`],
  { stdio: 'ignore', cwd: ROOT })
  await new Promise(resolve => setTimeout(resolve, 1500))
  for (const nat of ['eim', 'symmetric']) {
    lab('nat', nat)
    const tries = []
    for (let i = 0; i < TRIES; i++) {
      const r = await attempt()
      tries.push(r)
      console.log(`${nat} try ${i + 1}: ${r.ok ? `data channel carrying after ${r.ms} ms (${r.pair})` : `no direct path${r.error != null ? `: ${r.error}` : ''}`}`)
    }
    const ok = tries.filter(t => t.ok)
    results[nat] = { tries: TRIES, succeeded: ok.length, p50Ms: pct(ok.map(t => t.ms), 50), maxMs: ok.length > 0 ? Math.max(...ok.map(t => t.ms)) : null, pairs: [...new Set(ok.map(t => t.pair?.replace(/:\d+/g, '')).filter(p => p != null))] }
  }
} finally {
  stun?.kill('SIGKILL')
  lab('down')
}
const env = { cpus: cpus().length, load: loadavg().map(x => Math.round(x * 10) / 10), node: process.version, timeoutMs: TIMEOUT, date: new Date().toISOString() }
await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
await writeFile(join(ROOT, 'bench', 'results', 'ladder-lab.json'), JSON.stringify({ env, results }, null, 2) + '\n')
const md = [
  '# Media path ladder: ICE hole punching in the NAT lab',
  '',
  `${env.date}, ${env.cpus} CPU cores shared with other work (load average ${env.load.join(' / ')}), Node ${env.node}. Each try: conntrack flushed, a fresh DirectPaths at each end (LAN 1 offers), STUN on relay-1, ${TIMEOUT} ms to get a probe round trip on the data channel.`,
  '',
  '| NAT type | tries | data channel carrying media | p50 / max time from start | candidate pair |',
  '| --- | --- | --- | --- | --- |',
  ...Object.entries(results).map(([nat, r]) => `| ${nat} | ${r.tries} | ${r.succeeded} | ${r.succeeded > 0 ? `${r.p50Ms} / ${r.maxMs} ms` : '-'} | ${r.pairs.join(', ') || '-'} |`),
  ''
].join('\n')
await writeFile(join(ROOT, 'bench', 'results', 'ladder-lab.md'), md)
console.log(md)
