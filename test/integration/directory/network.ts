import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { createLogger, PromMetrics } from '../../../src/core/index.js'
import { P2p, ed25519Keys } from '../../../src/p2p/index.js'
import { Store } from '../../../src/store/index.js'
import { Directory, RecordValidator, type LocalUser, type NamePin, type DirectoryInit } from '../../../src/directory/index.js'

/** One in-process m1 directory node: its own data dir, LevelDB store, libp2p datastore, real TCP on 127.0.0.1. */
export interface DirNode {
  name: string
  dir: string
  privateKey: PrivateKey
  p2p: P2p
  directory: Directory
  store: Store
  users: LocalUser[]
  validator: RecordValidator
  metrics: PromMetrics
  stop: () => Promise<void>
}

export interface DirNodeOptions {
  name: string
  dir?: string
  privateKey?: PrivateKey
  bootstrap?: string[]
  users?: LocalUser[]
  init?: Partial<DirectoryInit>
}

const logger = createLogger({ level: (process.env.M1NODE_TEST_LOG ?? 'silent') as 'silent' })

export async function startDirNode (opts: DirNodeOptions): Promise<DirNode> {
  const dir = opts.dir ?? await mkdtemp(join(tmpdir(), 'm1node-dir-'))
  const privateKey = opts.privateKey ?? await generateKeyPair('Ed25519')
  const log = logger.child({ node: opts.name })
  const store = new Store({}, { path: join(dir, 'store'), sync: false })
  await store.start()
  const users = opts.users ?? []
  let p2p: P2p | undefined
  const metrics = new PromMetrics()
  const validator = new RecordValidator({ localRecord: async (k) => await p2p?.localRecord(k), logger: log, metrics })
  p2p = new P2p({ privateKey, records: validator, logger: log }, {
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    bootstrap: opts.bootstrap ?? [],
    allowPrivateAddresses: true,
    datastorePath: join(dir, 'p2p')
  })
  await p2p.start()
  const directory = new Directory({
    p2p,
    keys: ed25519Keys(privateKey),
    pins: store.table<NamePin>('name_pin'),
    localUsers: async () => users,
    logger: log,
    metrics
  }, { nodeName: opts.name, domains: [opts.name], version: 'm1node/test', cacheTtl: 60, negativeCacheTtl: 1, resolveTimeout: 8000, ...opts.init })
  await directory.start()
  const node: DirNode = {
    name: opts.name,
    dir,
    privateKey,
    p2p,
    directory,
    store,
    users,
    validator,
    metrics,
    stop: async () => {
      await directory.stop()
      await p2p!.stop()
      await store.stop()
    }
  }
  return node
}

/** Starts `n` nodes; every node bootstraps to the first; waits until routing tables hold a few peers. */
export async function startNetwork (n: number, opts: { users?: (i: number) => LocalUser[], init?: Partial<DirectoryInit> } = {}): Promise<DirNode[]> {
  const first = await startDirNode({ name: 'node-0', users: opts.users?.(0) ?? [], init: { republishInterval: 3600, ...opts.init } })
  const boot = first.p2p.addresses()
  const rest = await Promise.all(Array.from({ length: n - 1 }, async (_, i) => await startDirNode({ name: `node-${i + 1}`, bootstrap: boot, users: opts.users?.(i + 1) ?? [], init: { republishInterval: 3600, ...opts.init } })))
  const nodes = [first, ...rest]
  // full mesh-ish: each node dials a few others so lookups have somewhere to go before self-queries fill the tables
  await Promise.all(nodes.map(async (node, i) => {
    for (let j = 1; j <= 3; j++) {
      const other = nodes[(i + j * 7) % nodes.length]!
      if (other !== node) await node.p2p.dial(other.p2p.addresses()[0]!).catch(() => {})
    }
  }))
  await waitFor(() => nodes.every(x => x.p2p.routingTableSize >= Math.min(4, n - 1)), 10_000)
  return nodes
}

export async function stopAllNodes (nodes: DirNode[], removeDirs = true): Promise<void> {
  await Promise.all(nodes.map(async n => { await n.stop().catch(() => {}); if (removeDirs) await rm(n.dir, { recursive: true, force: true }) }))
}

export async function waitFor (check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error('condition not met in time')
}
