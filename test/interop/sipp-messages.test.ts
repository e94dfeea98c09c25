// SIPp as the devices of text messages (RFC 3428): a registered SIPp receiver gets MESSAGEs while online, after it
// registers (held while offline), and from another node (/m1/msg/1.0.0); a SIPp sender authenticates (407) and
// gets 202; a body over the limit gets 413. sipsak's message mode sends one too.
//
// A receiver is two SIPp runs on one UDP port: register-auth.xml binds the address, then message-uas.xml answers
// the MESSAGEs sent to it. A message the node sends while the port changes hands is retransmitted (RFC 3261
// §17.1.2.2, Timer E) and answered by the second run.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { startNode, type TestNode } from '../helpers/node.js'
import { Children, freePort, has, tempDir, waitFor } from './lib/tools.js'
import { receivedStatuses, runSipp, writeUsersCsv, type SippResult } from './lib/sipp.js'

const ALICE = { login: 'alice', password: 'pw-alice' }
const BOB = { login: 'bob', password: 'pw-bob' }
const CONFIG = { directory: { negative_cache_ttl: 0 }, messaging: { rate_per_second: 0 } }

function expectOk (r: SippResult): void {
  expect({ code: r.code, timedOut: r.timedOut, errors: r.errors.slice(0, 2000) }, `sipp stderr: ${r.stderr.slice(0, 2000)}`)
    .toEqual({ code: 0, timedOut: false, errors: '' })
}

/** Bodies of the MESSAGE requests SIPp received, in arrival order, from a -trace_msg log (retransmissions once). */
function receivedBodies (log: string): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  for (const block of log.split(/^-{10,}.*$/m)) {
    const m = /message received \[\d+\] bytes :\s*\n\s*MESSAGE [^\n]*\n([\s\S]*?)\r?\n\r?\n([\s\S]*)$/.exec(block)
    if (m == null) continue
    const id = /^M1-Message-ID:\s*(\S+)/mi.exec(m[1]!)?.[1] ?? ''
    if (seen.has(id)) continue
    seen.add(id)
    out.push(m[2]!.trim())
  }
  return out
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

describe.skipIf(!has('sipp'))('SIPp sends and receives text messages', () => {
  const nodes: TestNode[] = []
  let tmp: { dir: string, remove: () => Promise<void> }
  const children = new Children()

  const node = async (name = 'test-node', config: Record<string, Record<string, unknown>> = {}): Promise<TestNode> => {
    const n = await startNode({ name, config: { ...CONFIG, ...config, messaging: { ...CONFIG.messaging, ...config.messaging } } })
    nodes.push(n)
    return n
  }
  /** Registers `user` from SIPp on `port` (UDP), with the node name as domain. */
  const register = async (n: TestNode, user: { login: string, password: string }, port: number, domain: string, sub: string): Promise<void> => {
    const inf = await writeUsersCsv(join(tmp.dir, `${sub}.csv`), [user])
    const r = await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: n.udp, localPort: port, inf, dir: tmp.dir, args: ['-set', 'domain', domain] })
    // held messages go out as soon as the binding exists, to this run, which drops them (no call of its own):
    // the retransmissions reach the receiver run
    const unexpected = r.errors.split(/\n(?=\S+\t)/).filter(e => e.includes('\t') && !/can't be mapped to a known SIPp call:\s*MESSAGE /.test(e))
    expect({ code: r.code, timedOut: r.timedOut, unexpected }, `sipp stderr: ${r.stderr.slice(0, 2000)}`).toEqual({ code: 0, timedOut: false, unexpected: [] })
  }
  /** Sends `count` messages from SIPp as `from` to `to`, one at a time; every one must get 407 then 202. */
  const send = async (n: TestNode, from: { login: string, password: string }, to: string, domain: string, count: number, todomain = domain): Promise<SippResult> => {
    const r = await runSipp(children, {
      scenario: 'message-uac.xml', transport: 'u1', remotePort: n.udp, dir: tmp.dir, calls: count, rate: 50, traceMsg: true, timeoutS: 20,
      args: ['-s', from.login, '-au', from.login, '-ap', from.password, '-set', 'to', to, '-set', 'domain', domain, '-set', 'todomain', todomain, '-l', '1']
    })
    expectOk(r)
    expect(receivedStatuses(r.messages).filter(s => s === 202)).toHaveLength(count)
    return r
  }
  /** A SIPp receiver answering `count` MESSAGEs on `port`, in its own log folder; resolves when it is done. */
  const receive = (n: TestNode, port: number, count: number, sub: string): Promise<SippResult> => {
    const dir = join(tmp.dir, sub)
    return import('node:fs/promises').then(async fs => {
      await fs.mkdir(dir, { recursive: true })
      return await runSipp(children, { scenario: 'message-uas.xml', transport: 'u1', remotePort: n.udp, localPort: port, calls: count, dir, traceMsg: true, timeoutS: 30 })
    })
  }

  beforeEach(async () => {
    tmp = await tempDir('sipp-msg')
  })
  afterEach(async () => {
    await children.killAll()
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
    await tmp.remove()
  }, 30_000)

  it('an online SIPp device receives messages from a SIPp sender, in order', async () => {
    const n = await node()
    await n.node.users.add(ALICE)
    await n.node.users.add(BOB)
    const port = await freePort()
    await register(n, BOB, port, 'test-node', 'bob')
    const rx = receive(n, port, 5, 'rx')
    await sleep(300)
    const tx = await send(n, ALICE, 'bob', 'test-node', 5)
    expect(receivedStatuses(tx.messages)).toEqual([407, 202, 407, 202, 407, 202, 407, 202, 407, 202])
    const r = await rx
    expectOk(r)
    const bodies = receivedBodies(r.messages)
    expect(bodies).toEqual([1, 2, 3, 4, 5].map(i => `hello ${i} from alice`))
    expect(r.messages).toMatch(/^From: <sip:alice@test-node>/m)
    expect(r.messages).toMatch(/^M1-Message-ID: \S+/m)
    // the delivered state is written after the device's 200, without holding the next message back
    let states: string[] = []
    for (let end = Date.now() + 5000; Date.now() < end; await sleep(50)) {
      states = (await n.node.messaging!.list({ login: 'bob' })).map(m => m.state)
      if (states.every(st => st === 'delivered')) break
    }
    expect(states).toEqual(Array(5).fill('delivered'))
  }, 60_000)

  it('an offline SIPp device gets the held messages, in order, once it registers', async () => {
    const n = await node()
    await n.node.users.add(ALICE)
    await n.node.users.add(BOB)
    await send(n, ALICE, 'bob', 'test-node', 4)
    // marked stored (no device) just after the 202s
    let held: string[] = []
    for (let end = Date.now() + 5000; Date.now() < end; await sleep(50)) {
      held = (await n.node.messaging!.list({ login: 'bob' })).map(m => m.state)
      if (held.length === 4 && held.every(st => st === 'stored')) break
    }
    expect(held).toEqual(Array(4).fill('stored'))
    const port = await freePort()
    await register(n, BOB, port, 'test-node', 'bob')
    const r = await receive(n, port, 4, 'rx')
    expectOk(r)
    expect(receivedBodies(r.messages)).toEqual([1, 2, 3, 4].map(i => `hello ${i} from alice`))
    expect(await waitFor(() => n.node.messaging!.depth.local === 0, 5000)).toBe(true)
  }, 90_000)

  it('a SIPp device on another node receives a message sent over /m1/msg/1.0.0', async () => {
    const a = await node('node-a')
    const b = await node('node-b', { p2p: { bootstrap: a.node.p2p!.addresses() } })
    await a.node.users.add(ALICE)
    await b.node.users.add(BOB)
    const deadline = Date.now() + 20_000
    for (;;) {
      const ok = await a.node.directory!.resolveNode('node-b').then(() => true, () => false)
      if (ok) break
      if (Date.now() > deadline) throw new Error('node-b not resolved from node-a')
      await sleep(200)
    }
    const port = await freePort()
    await register(b, BOB, port, 'node-b', 'bob')
    const rx = receive(b, port, 2, 'rx')
    await sleep(300)
    await send(a, ALICE, 'bob', 'node-a', 2, 'node-b')
    const r = await rx
    expectOk(r)
    expect(receivedBodies(r.messages)).toEqual(['hello 1 from alice', 'hello 2 from alice'])
    expect(r.messages).toMatch(/^From: <sip:alice@node-a>/m)
  }, 90_000)

  it('answers 413 to a body over messaging.max_body_bytes', async () => {
    const n = await node('test-node', { messaging: { max_body_bytes: 256 } })
    await n.node.users.add(BOB)
    const r = await runSipp(children, {
      scenario: 'message-too-large.xml', transport: 'u1', remotePort: n.udp, dir: tmp.dir, traceMsg: true,
      args: ['-s', 'alice', '-set', 'to', 'bob', '-set', 'domain', 'test-node']
    })
    expectOk(r)
    expect(receivedStatuses(r.messages)).toEqual([413])
    expect(await n.node.messaging!.list({ login: 'bob' })).toEqual([])
  }, 30_000)
})
