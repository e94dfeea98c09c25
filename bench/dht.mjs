// Directory DHT benchmark: N = 25, 50, 100 m1 nodes in one process over real TCP on 127.0.0.1.
// Measures publish time, cold resolution (a node holding no copy, empty cache) p50/p99, peers contacted per lookup
// against ceil(log2 N), cached resolution, search latency and memory per node. Writes bench/results/dht.md.
// Run: npx tsc -p tsconfig.build.json && node bench/dht.mjs   (BENCH_SIZES=25,50 to choose sizes)
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLogger } from '../dist/core/index.js'
import { P2p, ed25519Keys } from '../dist/p2p/index.js'
import { Store } from '../dist/store/index.js'
import { Directory, RecordValidator } from '../dist/directory/index.js'

const SIZES = (process.env.BENCH_SIZES ?? '25,50,100').split(',').map(Number)
const LOOKUPS = Number(process.env.BENCH_LOOKUPS ?? 40)
const logger = createLogger({ level: 'silent' })
const enc = new TextEncoder()

async function startNode (name, users, bootstrap) {
  const dir = await mkdtemp(join(tmpdir(), 'm1-bench-'))
  const privateKey = await generateKeyPair('Ed25519')
  const store = new Store({}, { path: join(dir, 'store'), sync: false })
  await store.start()
  let p2p
  const validator = new RecordValidator({ localRecord: async (k) => await p2p?.localRecord(k) })
  p2p = new P2p({ privateKey, records: validator, logger }, { listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], bootstrap, allowPrivateAddresses: true, datastorePath: join(dir, 'p2p') })
  await p2p.start()
  const directory = new Directory({ p2p, keys: ed25519Keys(privateKey), pins: store.table('name_pin'), localUsers: async () => users, logger }, { nodeName: name, domains: [name], version: 'bench', republishInterval: 86_400 / 2, cacheTtl: 60, negativeCacheTtl: 1 })
  await directory.search.start() // the /m1/dir handler; publication is driven by the benchmark
  return { name, dir, p2p, directory, store, users, async stop () { await directory.stop(); await p2p.stop(); await store.stop(); await rm(dir, { recursive: true, force: true }) } }
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] }
const ms = (x) => x.toFixed(x < 1 ? 3 : 1)

async function run (n) {
  const heapBefore = process.memoryUsage().rss
  const first = await startNode('node-0', [{ login: 'user-0', displayName: 'User Zero', listed: true }], [])
  const boot = first.p2p.addresses()
  const nodes = [first]
  for (let i = 1; i < n; i += 10) {
    nodes.push(...await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, j) => startNode(`node-${i + j}`, [{ login: `user-${i + j}`, displayName: `User ${i + j} Company`, listed: true }], boot))))
  }
  // warm routing tables: each node looks itself up a few times (kad self-queries do the same, slower)
  for (let round = 0; round < 3; round++) {
    await Promise.all(nodes.map(async (x, i) => { await x.p2p.dial(nodes[(i * 7 + round * 13 + 1) % n].p2p.addresses()[0]).catch(() => {}) }))
    await Promise.all(nodes.map(async (x) => { for await (const _ of x.p2p.libp2p.services.dht.getClosestPeers(enc.encode(x.p2p.peerId))) {} }))
  }
  const rss = process.memoryUsage().rss
  const tables = nodes.map(x => x.p2p.routingTableSize)

  // publish: every node publishes its node record and one login record (a lookup + put each)
  const publish = []
  const failed = []
  const publishers = nodes.slice(0, Math.min(n, 30))
  for (const x of publishers) {
    const t = performance.now()
    try {
      await x.directory.publishAll()
      publish.push(performance.now() - t)
    } catch (err) {
      failed.push(`publish: ${err.message}`)
    }
  }
  await Promise.all(publishers.map(async x => await x.directory.search.refreshTokens()))
  await new Promise(resolve => setTimeout(resolve, 300))

  // cold resolution from a node that holds no copy (checked) with an empty cache
  const cold = []
  const contacted = []
  let skipped = 0
  for (let k = 0; k < LOOKUPS; k++) {
    const target = publishers[k % publishers.length]
    const resolver = nodes[(k * 17 + 5) % n]
    if (resolver === target) continue
    const key = enc.encode(`/m1/login/${target.users[0].login}`)
    if (await resolver.p2p.localRecord(key) != null) { skipped++; continue }
    resolver.directory.clearCache()
    const origGet = resolver.p2p.getRecords.bind(resolver.p2p)
    let queried = 0
    resolver.p2p.getRecords = async (kk, o) => { const r = await origGet(kk, o); queried = r.queried; return r }
    const t = performance.now()
    try {
      const rec = await resolver.directory.resolveLogin(target.users[0].login)
      if (rec.peerId !== target.p2p.peerId) throw new Error('wrong owner')
      cold.push(performance.now() - t)
      contacted.push(queried)
    } catch (err) {
      failed.push(`resolve: ${err.message}`)
    }
    resolver.p2p.getRecords = origGet
  }
  // cached resolution
  const cached = []
  const r0 = nodes[n - 1]
  await r0.directory.resolveLogin('user-1')
  for (let k = 0; k < 1000; k++) {
    const t = performance.now()
    await r0.directory.resolveLogin('user-1')
    cached.push(performance.now() - t)
  }
  // search latency (token lookup + query of providers)
  const search = []
  for (let k = 0; k < 10; k++) {
    const who = nodes[(k * 11 + 3) % n]
    const t = performance.now()
    try {
      const res = await who.directory.find('user company')
      if (res.length === 0) throw new Error('found nothing')
      search.push(performance.now() - t)
    } catch (err) {
      failed.push(`search: ${err.message}`)
    }
  }
  await Promise.all(nodes.map(x => x.stop()))
  return {
    n,
    log2: Math.ceil(Math.log2(n)),
    tableP50: pct(tables, 50),
    publishP50: pct(publish, 50),
    publishP99: pct(publish, 99),
    coldP50: pct(cold, 50),
    coldP99: pct(cold, 99),
    coldCount: cold.length,
    skipped,
    contactedP50: pct(contacted, 50),
    contactedMax: Math.max(...contacted),
    cachedP50: pct(cached, 50),
    cachedP99: pct(cached, 99),
    searchP50: pct(search, 50),
    searchP99: pct(search, 99),
    memPerNodeMiB: (rss - heapBefore) / n / 1024 / 1024,
    failed: failed.length
  }
}

const rows = []
for (const n of SIZES) {
  const r = await run(n)
  rows.push(r)
  console.log(JSON.stringify(r))
  await write()
}
process.exit(0)

async function write () {
const lines = [
  '# Directory DHT benchmark',
  '',
  `Generated by \`node bench/dht.mjs\` on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}.`,
  'All nodes run in one process over real TCP (noise, yamux) on 127.0.0.1; routing tables are warmed by three rounds of self-lookups before measuring.',
  '',
  '- **publish**: `publishAll()` of one node (ownership check + put of its node record and one login record, to the 20 closest peers).',
  '- **cold resolution**: `resolveLogin()` from a node that holds no copy of the record and has an empty cache (a full Kademlia GET, every record verified, owner pinned).',
  '- **peers contacted**: GET_VALUE messages sent by that lookup; kad-dht runs α = 10 disjoint paths and asks until the 20 closest peers answered, so it is well above ⌈log2 N⌉ hops.',
  '- **cached**: a repeated resolution (answered from the TTL cache).',
  '- **search**: `find()` of two words (provider lookup of the longest token, then `/m1/dir/1.0.0` queries, every answer verified).',
  '- **memory/node**: process RSS growth divided by N (libp2p, kad-dht, two LevelDBs per node).',
  '',
  '| N | ⌈log2 N⌉ | routing table p50 | publish p50 / p99 (ms) | cold resolve p50 / p99 (ms) | peers contacted p50 / max | cached p50 / p99 (ms) | search p50 / p99 (ms) | memory/node (MiB) | failed lookups |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(r => `| ${r.n} | ${r.log2} | ${r.tableP50} | ${ms(r.publishP50)} / ${ms(r.publishP99)} | ${ms(r.coldP50)} / ${ms(r.coldP99)} (${r.coldCount} lookups) | ${r.contactedP50} / ${r.contactedMax} | ${ms(r.cachedP50)} / ${ms(r.cachedP99)} | ${ms(r.searchP50)} / ${ms(r.searchP99)} | ${r.memPerNodeMiB.toFixed(1)} | ${r.failed} |`),
  '',
  ...(process.env.BENCH_NOTE != null ? [process.env.BENCH_NOTE, ''] : [])
]
await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(new URL('./results/dht.md', import.meta.url), lines.join('\n'))
console.log(lines.join('\n'))
}
