import { afterEach, describe, expect, it } from 'vitest'
import { startNode, type TestNode } from '../../helpers/node.js'
import { Phone } from '../../helpers/phone.js'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

async function until (what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(200)
  }
}

const BASE = { media: { anchor: 'always' }, routing: { ring_timeout: 5 }, directory: { negative_cache_ttl: 0, cache_ttl: 0 } }

/** A relay (supernode) on loopback; no STUN port, so tests do not fight over 3478. */
async function relay (name: string, caps: Record<string, unknown> = {}, bootstrap: string[] = []): Promise<TestNode> {
  return await startNode({ name, config: { ...BASE, relay: { enabled: true, stun: false, ...caps }, p2p: { bootstrap } } })
}

/**
 * A node "behind NAT": no listen address at all, so nobody can dial it except through a relay it holds a
 * reservation on (`p2p.public = false`).
 */
async function natted (name: string, relays: string[], bootstrap: string[], reservations = 2): Promise<TestNode> {
  return await startNode({ name, config: { ...BASE, p2p: { listen: [], public: 'false', relays, bootstrap, relay_reservations: reservations } } })
}

const addr = (n: TestNode): string => n.node.p2p!.addresses().find(a => !a.includes('/p2p-circuit'))!
const peerOf = (n: TestNode): string => n.node.info().peerId

describe('relays and nodes behind NAT (in process, loopback)', () => {
  const nodes: TestNode[] = []
  const phones: Phone[] = []
  const start = async (p: Promise<TestNode>): Promise<TestNode> => { const n = await p; nodes.push(n); return n }
  const phone = async (n: TestNode, login: string, domain: string): Promise<Phone> => {
    await n.node.users.add({ login, password: `pw-${login}` }).catch(() => {})
    const p = new Phone(login, `pw-${login}`, { port: n.udp, domain })
    await p.open()
    phones.push(p)
    return p
  }

  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    await Promise.all(nodes.splice(0).map(async n => await n.stop().catch(() => {})))
  }, 30_000)

  it('a node with only relayed addresses holds two reservations, publishes them, and takes a call over the relay', async () => {
    const r1 = await start(relay('relay-1'))
    const r2 = await start(relay('relay-2', {}, [addr(r1)]))
    const a = await start(startNode({ name: 'node-a', config: { ...BASE, p2p: { bootstrap: [addr(r1)] } } }))
    const c = await start(natted('node-c', [addr(r1), addr(r2)], [addr(r1)]))
    const cp2p = c.node.p2p!
    expect(cp2p.isPublic).toBe(false)
    await until('two reservations', () => cp2p.relayPeers().length === 2, 20_000)
    expect(new Set(cp2p.relayPeers())).toEqual(new Set([peerOf(r1), peerOf(r2)]))
    expect(cp2p.addresses().every(x => x.includes('/p2p-circuit'))).toBe(true)
    // the relay reports its load
    await until('relay load', () => (r1.node.p2p!.relayLoad()?.reservations ?? 0) >= 1, 5000)
    expect(await (await fetch(`${r1.web}/metrics`)).text()).toMatch(/m1node_relay_reservations 1/)

    // node-c's signed record names its relays and its /p2p-circuit addresses
    await until('node record with relays', async () => {
      try {
        const rec = await a.node.directory!.resolveNode('node-c')
        return rec.relays.length === 2 && rec.addrs.some(x => x.includes('/p2p-circuit'))
      } catch { return false }
    }, 20_000)

    const alice = await phone(c, 'alice', 'node-c')
    expect((await alice.register()).status).toBe(200)
    const bob = await phone(a, 'bob', 'node-a')
    const t0 = Date.now()
    const call = bob.call('alice', { uri: 'sip:alice@node-c' })
    expect((await call.final).status).toBe(200)
    const setupMs = Date.now() - t0
    await alice.waitRequest('ACK')
    // node-c has no address of its own: the signalling went through a relay
    expect(a.node.p2p!.connectionTo(peerOf(c))).toMatchObject({ connected: true, relayed: true, direct: false })
    expect((await call.bye()).status).toBe(200)
    await alice.waitRequest('BYE')
    expect(setupMs).toBeLessThan(10_000)

    // and the other way: node-c dials out to node-a
    await bob.register()
    const back = alice.call('bob', { uri: 'sip:bob@node-a' })
    expect((await back.final).status).toBe(200)
    expect((await back.bye()).status).toBe(200)
  }, 60_000)

  it('a relayed connection carries more than the js-libp2p default limit (128 KiB) without being cut', async () => {
    const r1 = await start(relay('relay-1'))
    const a = await start(startNode({ name: 'node-a', config: { ...BASE, p2p: { bootstrap: [addr(r1)] } } }))
    const c = await start(natted('node-c', [addr(r1)], [addr(r1)], 1))
    await until('reservation', () => c.node.p2p!.relayPeers().length === 1, 20_000)
    const echo = '/m1/test-echo/1.0.0'
    await c.node.p2p!.libp2p.handle(echo, (stream) => {
      void (async () => {
        for await (const chunk of stream) stream.send(chunk instanceof Uint8Array ? chunk : chunk.subarray())
        await stream.close()
      })().catch(() => {})
    }, { runOnLimitedConnection: true })
    await a.node.p2p!.learnAddresses(peerOf(c), c.node.p2p!.addresses())
    const stream = await a.node.p2p!.dialStream(peerOf(c), echo, { signal: AbortSignal.timeout(10_000) })
    const total = 512 * 1024
    let got = 0
    const reading = (async () => { for await (const chunk of stream) { got += chunk instanceof Uint8Array ? chunk.byteLength : chunk.subarray().byteLength; if (got >= total) break } })()
    const block = new Uint8Array(16 * 1024).fill(7)
    for (let sent = 0; sent < total; sent += block.length) {
      if (!stream.send(block)) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
    }
    await Promise.race([reading, sleep(20_000)])
    expect(got).toBe(total)
    expect(a.node.p2p!.connectionTo(peerOf(c)).relayed).toBe(true)
    stream.abort(new Error('done'))
  }, 60_000)

  it('when its relay goes away the node reserves on another, republishes, and new calls work again', async () => {
    const r1 = await start(relay('relay-1'))
    const r2 = await start(relay('relay-2', {}, [addr(r1)]))
    const r3 = await start(relay('relay-3', {}, [addr(r1)]))
    const a = await start(startNode({ name: 'node-a', config: { ...BASE, p2p: { bootstrap: [addr(r2)] } } }))
    const c = await start(natted('node-c', [addr(r1), addr(r2), addr(r3)], [addr(r2)]))
    const cp2p = c.node.p2p!
    await until('two reservations', () => cp2p.relayPeers().length === 2, 20_000)
    const held = cp2p.relayPeers()
    const victim = [r1, r2, r3].find(r => held.includes(peerOf(r)) && r !== r2) ?? [r1, r2, r3].find(r => held.includes(peerOf(r)))!
    const t0 = Date.now()
    await victim.stop()
    nodes.splice(nodes.indexOf(victim), 1)
    await until('a new reservation elsewhere', () => cp2p.relayPeers().length === 2 && !cp2p.relayPeers().includes(peerOf(victim)), 20_000)
    const recoveredMs = Date.now() - t0
    await until('republished record', async () => {
      try {
        const rec = await a.node.directory!.resolveNode('node-c')
        return rec.relays.length === 2 && !rec.relays.some(x => x.includes(peerOf(victim)))
      } catch { return false }
    }, 20_000)
    const alice = await phone(c, 'alice', 'node-c')
    await alice.register()
    const bob = await phone(a, 'bob', 'node-a')
    const call = bob.call('alice', { uri: 'sip:alice@node-c' })
    expect((await call.final).status).toBe(200)
    expect((await call.bye()).status).toBe(200)
    expect(recoveredMs).toBeLessThan(20_000)
  }, 90_000)

  it('a relay at its reservation cap refuses, and the node uses another relay', async () => {
    const full = await start(relay('relay-full', { max_reservations: 1 }))
    const spare = await start(relay('relay-spare', {}, [addr(full)]))
    const d = await start(natted('node-d', [addr(full)], [addr(full)], 1))
    await until('node-d reserved on the full relay', () => d.node.p2p!.relayPeers().includes(peerOf(full)), 20_000)
    const c = await start(natted('node-c', [addr(full), addr(spare)], [addr(full)], 1))
    await until('node-c reserved on the spare relay', () => c.node.p2p!.relayPeers().length === 1, 20_000)
    expect(c.node.p2p!.relayPeers()).toEqual([peerOf(spare)])
    expect(full.node.p2p!.relayLoad()?.reservations).toBe(1)
    // the node already on the full relay keeps its reservation
    expect(d.node.p2p!.relayPeers()).toEqual([peerOf(full)])
  }, 60_000)
})
