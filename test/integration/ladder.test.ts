import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startNode, type TestNode } from '../helpers/node.js'
import { waitForRecords } from '../helpers/records.js'
import { Phone } from '../helpers/phone.js'
import { Peer, openPair, phoneSdp, rtp, mPorts } from './media/helpers.js'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

async function eventually (check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await sleep(50)
  }
}

const CONFIG = {
  media: { anchor: 'always' },
  routing: { ring_timeout: 5 },
  directory: { negative_cache_ttl: 0 }
}

// two nodes in one process on loopback: the media path ladder (stream first, ICE data channel, back to the stream)
describe('media path ladder between two nodes', () => {
  let a: TestNode
  let b: TestNode
  const phones: Phone[] = []
  const sockets: Peer[] = []

  beforeEach(async () => {
    a = await startNode({ name: 'node-a', config: CONFIG })
    b = await startNode({ name: 'node-b', config: { ...CONFIG, p2p: { bootstrap: a.node.p2p!.addresses() } } })
    await a.node.users.add({ login: 'bob', password: 'pw-bob' })
    await b.node.users.add({ login: 'alice', password: 'pw-alice' })
    const deadline = Date.now() + 15_000
    for (;;) {
      try {
        await a.node.directory!.resolveNode('node-b')
        await b.node.directory!.resolveNode('node-a')
        break
      } catch (err) {
        if (Date.now() > deadline) throw err
        await sleep(200)
      }
    }
  }, 40_000)

  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    await Promise.all(sockets.splice(0).map(async s => await s.close()))
    await Promise.all([a.stop(), b.stop()])
    // every PeerConnection is closed with the node
    expect(a.node.mediaLinks!.direct!.size).toBe(0)
    expect(b.node.mediaLinks!.direct!.size).toBe(0)
  }, 20_000)

  /** A call bob@node-a -> alice@node-b with both phones sending RTP at 50 pps until `stop()`. */
  async function call (base: number): Promise<{ bobRtp: Peer, aliceRtp: Peer, bye: () => Promise<void>, stop: () => void }> {
    const [bobRtp, bobRtcp] = await openPair(base, base + 400)
    const [aliceRtp, aliceRtcp] = await openPair(base + 400, base + 800)
    sockets.push(bobRtp, bobRtcp, aliceRtp, aliceRtcp)
    const alice = new Phone('alice', 'pw-alice', { port: b.udp, domain: 'node-b' })
    const bob = new Phone('bob', 'pw-bob', { port: a.udp, domain: 'node-a' })
    await alice.open()
    await bob.open()
    phones.push(alice, bob)
    alice.behaviour = { kind: 'answer', sdp: phoneSdp(aliceRtp.port) }
    expect((await alice.register()).status).toBe(200)
    const c = bob.call('alice', { uri: 'sip:alice@node-b', sdp: phoneSdp(bobRtp.port) })
    const res = await c.final
    expect(res.status).toBe(200)
    const inv = await alice.waitRequest('INVITE')
    const [toA] = mPorts(res.body.toString())
    const [toB] = mPorts(inv.body.toString())
    let seq = 0
    const timer = setInterval(() => {
      bobRtp.send(rtp(seq), toA!)
      aliceRtp.send(rtp(seq), toB!)
      seq = (seq + 1) % 65536
    }, 20)
    return {
      bobRtp,
      aliceRtp,
      stop: () => { clearInterval(timer) },
      bye: async () => {
        clearInterval(timer)
        expect((await c.bye()).status).toBe(200)
        await alice.waitRequest('BYE')
      }
    }
  }

  it('media starts on the stream and moves to the data channel; the call records say datachannel', async () => {
    const peerA = a.node.info().peerId
    const peerB = b.node.info().peerId
    const c = await call(32000)
    try {
      // the first packets cross on the stream, from the first one
      await c.aliceRtp.waitFor(5, 5000)
      await c.bobRtp.waitFor(5, 5000)
      await eventually(() => a.node.mediaLinks!.direct!.isActive(peerB) && b.node.mediaLinks!.direct!.isActive(peerA), 15_000, 'data channel carries media')
      // packets keep arriving over the data channel
      const before = [c.aliceRtp.received.length, c.bobRtp.received.length]
      await sleep(600)
      expect(c.aliceRtp.received.length - before[0]!).toBeGreaterThan(15)
      expect(c.bobRtp.received.length - before[1]!).toBeGreaterThan(15)
    } finally {
      await c.bye()
    }
    const [recA] = await waitForRecords(a.node, 1)
    const [recB] = await waitForRecords(b.node, 1)
    for (const rec of [recA!, recB!]) {
      expect(rec.mediaPath).toBe('datachannel')
      expect(rec.mediaPaths!.map(p => p.path)).toEqual(['stream-direct', 'datachannel'])
    }
    // the last call with the peer ended: the PeerConnection closes
    await eventually(() => a.node.mediaLinks!.direct!.size === 0 && b.node.mediaLinks!.direct!.size === 0, 8000, 'PeerConnections closed (after the linger)')
    expect(await a.node.metrics.render()).toMatch(/m1node_calls_by_media_path_total\{path="datachannel"\} 1/)
  }, 60_000)

  it('the data channel closes mid-call: media falls back to the stream and the call goes on', async () => {
    const peerA = a.node.info().peerId
    const peerB = b.node.info().peerId
    const c = await call(33000)
    try {
      await eventually(() => a.node.mediaLinks!.direct!.isActive(peerB) && b.node.mediaLinks!.direct!.isActive(peerA), 15_000, 'data channel carries media')
      a.node.mediaLinks!.direct!.drop(peerB)
      await eventually(() => !a.node.mediaLinks!.direct!.isActive(peerB) && !b.node.mediaLinks!.direct!.isActive(peerA), 5000, 'back on the stream')
      const before = [c.aliceRtp.received.length, c.bobRtp.received.length]
      await sleep(1000)
      // about 50 packets a second each way: all on the stream now
      expect(c.aliceRtp.received.length - before[0]!).toBeGreaterThan(30)
      expect(c.bobRtp.received.length - before[1]!).toBeGreaterThan(30)
    } finally {
      await c.bye()
    }
    const [recA] = await waitForRecords(a.node, 1)
    expect(recA).toMatchObject({ status: 200, reason: 'caller-bye', mediaPath: 'stream-direct' })
    expect(recA!.mediaPaths!.map(p => p.path)).toEqual(['stream-direct', 'datachannel', 'stream-direct'])
  }, 60_000)

  it('the data channel goes quiet without closing: media falls back to the stream within about 3 s', async () => {
    const peerA = a.node.info().peerId
    const peerB = b.node.info().peerId
    const c = await call(34000)
    try {
      await eventually(() => a.node.mediaLinks!.direct!.isActive(peerB) && b.node.mediaLinks!.direct!.isActive(peerA), 15_000, 'data channel carries media')
      // a black hole: both ends' data channels swallow what they are given (as a NAT that forgot its mapping)
      for (const [n, peer] of [[a, peerB], [b, peerA]] as const) {
        const path = (n.node.mediaLinks!.direct as unknown as { paths: Map<string, { dc: { close: () => void } }> }).paths.get(peer)!
        const real = path.dc
        path.dc = { sendMessageBinary: () => true, close: () => { real.close() } } as unknown as typeof real
      }
      const t0 = Date.now()
      await eventually(() => !a.node.mediaLinks!.direct!.isActive(peerB) && !b.node.mediaLinks!.direct!.isActive(peerA), 6000, 'back on the stream')
      expect(Date.now() - t0).toBeLessThan(4500)
      const before = [c.aliceRtp.received.length, c.bobRtp.received.length]
      await sleep(1000)
      expect(c.aliceRtp.received.length - before[0]!).toBeGreaterThan(30)
      expect(c.bobRtp.received.length - before[1]!).toBeGreaterThan(30)
    } finally {
      await c.bye()
    }
    const [recA] = await waitForRecords(a.node, 1)
    expect(recA!.mediaPath).toBe('stream-direct')
  }, 60_000)
})
