import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startNode, startNodePair, type TestNode } from '../helpers/node.js'
import { eventually, sleep } from '../helpers/wait.js'
import { finalResponse, p2pInvite, sipFrame } from '../helpers/sip-stream.js'
import { waitForRecords } from '../helpers/records.js'
import { Phone } from '../helpers/phone.js'
import { getHeader, type SipResponse } from '../../src/sip/message/index.js'
import { RTP_PROTOCOL, SIP_PROTOCOL, type SipStream } from '../../src/routing/index.js'
import { Peer, openPair, phoneSdp, rtp, rtcpRr, mPorts } from './media/helpers.js'

const CONFIG = {
  media: { anchor: 'always' },
  routing: { ring_timeout: 5 },
  directory: { negative_cache_ttl: 0 }
}

// two nodes in one process over real libp2p (TCP on 127.0.0.1), real UDP phones: calls across nodes
describe('calls across nodes (/m1/sip/1.0.0)', () => {
  let a: TestNode
  let b: TestNode
  const extra: TestNode[] = []
  const phones: Phone[] = []
  let bStopped = false

  const phone = async (n: TestNode, login: string, domain: string): Promise<Phone> => {
    const p = new Phone(login, `pw-${login}`, { port: n.udp, domain })
    await p.open()
    phones.push(p)
    return p
  }

  beforeEach(async () => {
    bStopped = false
    // each resolves the other's node record through the DHT
    const pair = await startNodePair({ config: CONFIG })
    a = pair.a
    b = pair.b
    await a.node.users.add({ login: 'bob', password: 'pw-bob' })
    await b.node.users.add({ login: 'alice', password: 'pw-alice' })
  }, 40_000)

  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    await Promise.all([a.stop(), bStopped ? Promise.resolve() : b.stop(), ...extra.splice(0).map(async n => await n.stop())])
  }, 20_000)

  it('bob@node-a calls alice@node-b: 180, 200, ACK, BYE, call records on both nodes', async () => {
    const alice = await phone(b, 'alice', 'node-b')
    expect((await alice.register()).status).toBe(200)
    const bob = await phone(a, 'bob', 'node-a')
    const call = bob.call('alice', { uri: 'sip:alice@node-b' })
    const res = await call.final
    expect(res.status).toBe(200)
    expect(bob.received.some(m => m.kind === 'response' && m.status === 180)).toBe(true)
    const inv = await alice.waitRequest('INVITE')
    // alice sees the caller as the node that verified it: bob@node-a
    expect(inv.from.uri.user).toBe('bob')
    expect(inv.from.uri.host).toBe('node-a')
    expect(getHeader(inv, 'P-Asserted-Identity')).toBe('<sip:bob@node-a>')
    // media is anchored at each node's relay: the SDP alice gets names node-b's relay
    expect(inv.body.toString()).toMatch(/c=IN IP4 127\.0\.0\.1/)
    await alice.waitRequest('ACK')
    expect((await call.bye()).status).toBe(200)
    await alice.waitRequest('BYE')
    const [recA] = await waitForRecords(a.node, 1)
    expect(recA).toMatchObject({ caller: 'bob@node-a', callee: 'alice@node-b', status: 200, reason: 'caller-bye' })
    expect(recA!.legs.find(l => l.side === 'b')).toMatchObject({ transport: 'P2P', node: 'node-b', remote: b.node.info().peerId })
    const [recB] = await waitForRecords(b.node, 1)
    expect(recB).toMatchObject({ caller: 'sip:bob@node-a', callee: 'alice@node-b', status: 200 })
    expect(recB!.legs.find(l => l.side === 'a')).toMatchObject({ transport: 'P2P', node: 'node-a', remote: a.node.info().peerId })
  }, 20_000)

  it('media crosses the nodes on an /m1/rtp/1.0.0 stream: RTP and RTCP both ways, phones never see a=m1-rtp, nothing leaks', async () => {
    const [bobRtp, bobRtcp] = await openPair(31000, 31400)
    const [aliceRtp, aliceRtcp] = await openPair(31400, 31800)
    const sockets: Peer[] = [bobRtp, bobRtcp, aliceRtp, aliceRtcp]
    try {
      const alice = await phone(b, 'alice', 'node-b')
      alice.behaviour = { kind: 'answer', sdp: phoneSdp(aliceRtp.port) }
      expect((await alice.register()).status).toBe(200)
      const bob = await phone(a, 'bob', 'node-a')
      const call = bob.call('alice', { uri: 'sip:alice@node-b', sdp: phoneSdp(bobRtp.port) })
      const res = await call.final
      expect(res.status).toBe(200)
      const inv = await alice.waitRequest('INVITE')
      expect(inv.body.toString()).not.toMatch(/m1-rtp/)
      expect(res.body.toString()).not.toMatch(/m1-rtp/)
      const [toA] = mPorts(res.body.toString()) // node A's relay port for bob
      const [toB] = mPorts(inv.body.toString()) // node B's relay port for alice
      // one stream each way is one stream: opened by node B, accepted by node A
      await eventually(async () => { if (a.node.mediaLinks!.size !== 1 || b.node.mediaLinks!.size !== 1) throw new Error('no stream yet') }, 5000)
      for (let i = 0; i < 20; i++) {
        bobRtp.send(rtp(i), toA!)
        aliceRtp.send(rtp(1000 + i), toB!)
      }
      bobRtcp.send(rtcpRr(1), toA! + 1)
      aliceRtcp.send(rtcpRr(2), toB! + 1)
      await aliceRtp.waitFor(20, 5000)
      await bobRtp.waitFor(20, 5000)
      await aliceRtcp.waitFor(1, 5000)
      await bobRtcp.waitFor(1, 5000)
      expect(aliceRtp.received.map(p => p.data.readUInt16BE(2))).toEqual([...Array(20).keys()])
      expect(bobRtp.received[0]!.data.equals(rtp(1000))).toBe(true)
      // each phone hears its own node's relay (symmetric RTP)
      expect(aliceRtp.last().from.port).toBe(toB)
      expect(bobRtp.last().from.port).toBe(toA)
      expect(aliceRtcp.last().data.readUInt32BE(4)).toBe(1)
      // the packets went over the stream, not relay to relay by UDP
      expect(a.node.mediaLinks!.totals()).toEqual({ sent: 21, received: 21 })
      expect(b.node.mediaLinks!.totals()).toEqual({ sent: 21, received: 21 })

      expect((await call.bye()).status).toBe(200)
      await alice.waitRequest('BYE')
      const [recA] = await waitForRecords(a.node, 1)
      expect(recA!.media?.packets).toEqual({ a2b: 21, b2a: 21 })
      await eventually(async () => {
        for (const n of [a, b]) {
          if (n.node.mediaLinks!.size !== 0 || n.node.mediaLinks!.legs !== 0 || n.node.media!.calls !== 0 || n.node.media!.ports !== 0) throw new Error('media not freed')
        }
      }, 5000)
    } finally {
      await Promise.all(sockets.map(async s => await s.close()))
    }
  }, 30_000)

  it('refuses an /m1/rtp/1.0.0 stream naming no call of that peer', async () => {
    const peerA = a.node.info().peerId
    const stream = await b.node.p2p!.dialStream(peerA, RTP_PROTOCOL) as unknown as SipStream
    const token = Buffer.from('x'.repeat(24))
    const hello = Buffer.alloc(5 + token.length)
    hello.writeUInt16BE(token.length, 0)
    hello[2] = 0xff
    hello.writeUInt16BE(7, 3)
    token.copy(hello, 5)
    stream.send(hello)
    // the hello binds nothing, and without a valid hello within 5 s node A aborts the stream
    const ended = await Promise.race([
      (async () => { try { for await (const _ of stream) { /* nothing expected */ } } catch {} return true })(),
      sleep(9000).then(() => false)
    ])
    expect(ended).toBe(true)
    expect(a.node.mediaLinks!.size).toBe(0)
  }, 20_000)

  it('a node whose SIP domain is not its name is found by alice@<domain> through its signed domain record', async () => {
    const c = await startNode({ name: 'node-c', config: { ...CONFIG, sip: { domain: 'voice.acme.test' }, p2p: { bootstrap: a.node.p2p!.addresses() } } })
    extra.push(c)
    await c.node.users.add({ login: 'carol', password: 'pw-carol' })
    const carol = await phone(c, 'carol', 'voice.acme.test')
    expect((await carol.register()).status).toBe(200)
    // node A never saw node-c's record: only /m1/domain/voice.acme.test leads there
    await eventually(async () => await a.node.directory!.resolveDomain('voice.acme.test'), 15_000)
    a.node.directory!.clearCache()
    const bob = await phone(a, 'bob', 'node-a')
    const call = bob.call('carol', { uri: 'sip:carol@voice.acme.test' })
    expect((await call.final).status).toBe(200)
    const inv = await carol.waitRequest('INVITE')
    expect(inv.to.uri.host).toBe('voice.acme.test')
    expect(inv.from.uri.host).toBe('node-a')
    expect((await call.bye()).status).toBe(200)
    // a domain nobody claims is still 404
    expect((await bob.call('x', { uri: 'sip:x@voice.nobody.test' }).final).status).toBe(404)
  }, 40_000)

  it('a bare login that is not local is found at its home node through its login record', async () => {
    const alice = await phone(b, 'alice', 'node-b')
    await alice.register()
    await eventually(async () => await a.node.directory!.resolveLogin('alice'), 15_000)
    const bob = await phone(a, 'bob', 'node-a')
    const call = bob.call('alice')
    expect((await call.final).status).toBe(200)
    expect((await alice.waitRequest('INVITE')).to.uri.host).toBe('node-b')
    expect((await call.bye()).status).toBe(200)
    await alice.waitRequest('BYE')
  }, 25_000)

  it('answers 404 for an unknown node and an unknown remote user, and maps remote 486 and 487', async () => {
    const bob = await phone(a, 'bob', 'node-a')
    expect((await bob.call('alice', { uri: 'sip:alice@no-such-node' }).final).status).toBe(404)
    expect((await bob.call('nobody', { uri: 'sip:nobody@node-b' }).final).status).toBe(404)

    const alice = await phone(b, 'alice', 'node-b')
    alice.behaviour = { kind: 'reject', status: 486 }
    await alice.register()
    expect((await bob.call('alice', { uri: 'sip:alice@node-b' }).final).status).toBe(486)

    alice.behaviour = { kind: 'ring' }
    const mark = alice.received.length
    const call = bob.call('alice', { uri: 'sip:alice@node-b' })
    await alice.waitRequest('INVITE', 5000, mark)
    await bob.wait(m => m.kind === 'response' && m.status === 180 && m.callId === call.callId)
    call.cancel()
    expect((await call.final).status).toBe(487)
    await alice.waitRequest('CANCEL')
  }, 25_000)

  it('an unauthenticated caller cannot reach another node (no open relay)', async () => {
    const alice = await phone(b, 'alice', 'node-b')
    await alice.register()
    const outsider = await phone(a, 'visitor', 'node-a')
    const res = await outsider.call('alice', { uri: 'sip:alice@node-b', from: 'sip:visitor@other.example', auth: false }).final
    expect(res.status).toBe(407)
    await sleep(100)
    expect(alice.received.some(m => m.kind === 'request' && m.method === 'INVITE')).toBe(false)
  }, 10_000)

  it('answers 480 when the remote node is gone', async () => {
    const bob = await phone(a, 'bob', 'node-a')
    await b.stop()
    bStopped = true
    const res = await bob.call('alice', { uri: 'sip:alice@node-b' }).final
    expect(res.status).toBe(480)
  }, 20_000)

  it('refuses (403) an INVITE over /m1/sip/1.0.0 whose From domain the sending peer does not own', async () => {
    const c = await startNode({ name: 'node-c', config: { ...CONFIG, p2p: { bootstrap: a.node.p2p!.addresses() } } })
    extra.push(c)
    const alice = await phone(b, 'alice', 'node-b')
    await alice.register()
    const bAddr = b.node.p2p!.addresses()[0]!
    await c.node.p2p!.dial(bAddr)
    const invite = (n: number, from: string, to: string): string => p2pInvite({ n, from, to, via: 'node-c' })
    const exchange = async (text: string): Promise<SipResponse> => {
      const stream = await c.node.p2p!.dialStream(b.node.info().peerId, SIP_PROTOCOL)
      stream.send(sipFrame(text))
      try { return await finalResponse(stream, 10_000) } finally { stream.abort(new Error('done')) }
    }
    // node-c claims node-a's caller
    expect((await exchange(invite(1, 'sip:bob@node-a', 'sip:alice@node-b'))).status).toBe(403)
    expect(alice.received.some(m => m.kind === 'request' && m.method === 'INVITE')).toBe(false)
    // its own domain is fine, but node-b relays nobody onwards to a third domain
    await eventually(async () => await b.node.directory!.resolveNode('node-c'), 15_000)
    expect((await exchange(invite(2, 'sip:mallory@node-c', 'sip:bob@node-a'))).status).toBe(403)
    alice.behaviour = { kind: 'reject', status: 603 }
    expect((await exchange(invite(3, 'sip:mallory@node-c', 'sip:alice@node-b'))).status).toBe(603)
    expect((await alice.waitRequest('INVITE')).from.uri.host).toBe('node-c')
  }, 30_000)

  it('plain SIP ingress: a UDP caller without an account reaches alice@node-b', async () => {
    const alice = await phone(b, 'alice', 'node-b')
    await alice.register()
    const visitor = await phone(b, 'visitor', 'node-b')
    const res = await visitor.call('alice', { from: 'sip:visitor@other.example', auth: false }).final
    expect(res.status).toBe(200)
    const inv = await alice.waitRequest('INVITE')
    expect(inv.from.uri.host).toBe('other.example')
  }, 15_000)
})
