import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { M1Node } from '../../src/node.js'
import { validate } from '../../src/config/index.js'
import { createLogger } from '../../src/core/index.js'
import { eventually } from './wait.js'

export interface TestNode {
  node: M1Node
  dataDir: string
  udp: number
  tcp: number
  ws: number
  web: string
  stop: () => Promise<void>
}

/**
 * Starts a node on 127.0.0.1 with free ports, a fresh data dir (or the given one), egress limited to loopback and
 * logs silenced (M1NODE_TEST_LOG=debug shows them).
 */
export async function startNode (opts: { name?: string, dataDir?: string, config?: Record<string, Record<string, unknown>> } = {}): Promise<TestNode> {
  const dataDir = opts.dataDir ?? await mkdtemp(join(tmpdir(), 'm1node-test-'))
  const name = opts.name ?? 'test-node'
  const cfg = opts.config ?? {}
  const config = validate({
    ...cfg,
    node: { name, ...cfg.node },
    sip: { host: '127.0.0.1', domain: name, udp_port: 0, tcp_port: 0, ws_port: 0, egress_allow: ['127.0.0.0/8'], ...cfg.sip },
    web: { port: 0, ...cfg.web },
    p2p: { listen: ['/ip4/127.0.0.1/tcp/0'], allow_private_addresses: true, ...cfg.p2p },
    log: { level: 'silent', ...cfg.log }
  })
  const logger = createLogger({ level: (process.env.M1NODE_TEST_LOG ?? 'silent') as 'silent', name })
  const node = new M1Node(config, dataDir, { logger })
  await node.start()
  const port = (t: string): number => node.stack.addresses().find(a => a.transport === t)?.port ?? 0
  return {
    node,
    dataDir,
    udp: port('UDP'),
    tcp: port('TCP'),
    ws: port('WS'),
    web: node.web?.url ?? '',
    stop: async () => {
      await node.stop()
      if (opts.dataDir == null) await rm(dataDir, { recursive: true, force: true })
    }
  }
}

/**
 * Two nodes in one process over real libp2p (TCP on 127.0.0.1): `b` bootstraps from `a`, and both are returned once
 * each resolves the other's node record through the DHT. Both get `config`; on a failure both are stopped.
 */
export async function startNodePair (opts: { names?: [string, string], config?: Record<string, Record<string, unknown>>, timeoutMs?: number } = {}): Promise<{ a: TestNode, b: TestNode }> {
  const [nameA, nameB] = opts.names ?? ['node-a', 'node-b']
  const config = opts.config ?? {}
  const a = await startNode({ name: nameA, config })
  let b: TestNode | undefined
  try {
    b = await startNode({ name: nameB, config: { ...config, p2p: { ...config.p2p, bootstrap: a.node.p2p!.addresses() } } })
    const timeoutMs = opts.timeoutMs ?? 15_000
    await eventually(async () => await a.node.directory!.resolveNode(nameB), timeoutMs)
    await eventually(async () => await b!.node.directory!.resolveNode(nameA), timeoutMs)
    return { a, b }
  } catch (err) {
    await Promise.all([a.stop(), b?.stop()])
    throw err
  }
}
