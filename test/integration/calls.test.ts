import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createSocket } from 'node:dgram'
import { startNode, type TestNode } from '../helpers/node.js'
import { Phone, sdpFor } from '../helpers/phone.js'
import { waitForRecords } from '../helpers/records.js'
import { getHeader } from '../../src/sip/message/index.js'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

describe('calls between local users (B2BUA)', () => {
  let n: TestNode
  const phones: Phone[] = []
  const phone = async (login: string, password = `pw-${login}`): Promise<Phone> => {
    const p = new Phone(login, password, { port: n.udp, domain: 'test-node' })
    await p.open()
    phones.push(p)
    return p
  }

  beforeEach(async () => {
    n = await startNode({ config: { media: { anchor: 'never' }, routing: { ring_timeout: 5 } } })
    for (const u of ['alice', 'bob', 'carol']) await n.node.users.add({ login: u, password: `pw-${u}` })
  })
  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    await n.stop()
  })

  it('connects alice to bob: 407, 180, 200, ACK, BYE, and writes a call record', async () => {
    const alice = await phone('alice')
    const bob = await phone('bob')
    expect((await bob.register()).status).toBe(200)
    const call = alice.call('bob')
    const res = await call.final
    expect(res.status).toBe(200)
    expect(alice.received.some(m => m.kind === 'response' && m.status === 180)).toBe(true)
    const inv = await bob.waitRequest('INVITE')
    // the callee sees the authenticated caller, on a call-id of the node's own
    expect(inv.from.uri.user).toBe('alice')
    expect(inv.callId).not.toBe(call.callId)
    expect(getHeader(inv, 'P-Asserted-Identity')).toBe('<sip:alice@test-node>')
    await bob.waitRequest('ACK')
    expect((await call.bye()).status).toBe(200)
    await bob.waitRequest('BYE')
    const [rec] = await waitForRecords(n.node, 1)
    expect(rec).toMatchObject({ caller: 'alice@test-node', callee: 'bob@test-node', status: 200, reason: 'caller-bye' })
    expect(rec!.answeredAt).toBeGreaterThan(0)
  })

  it('answers unknown user 404, unregistered user 480, busy 486', async () => {
    const alice = await phone('alice')
    expect((await alice.call('nobody').final).status).toBe(404)
    expect((await alice.call('carol').final).status).toBe(480)
    const bob = await phone('bob')
    bob.behaviour = { kind: 'reject', status: 486 }
    await bob.register()
    expect((await alice.call('bob').final).status).toBe(486)
    const recs = await waitForRecords(n.node, 1)
    expect(recs.map(r => r.status)).toEqual([486])
  })

  it('forks to every device: first answer wins, the other gets CANCEL', async () => {
    const alice = await phone('alice')
    const desk = await phone('bob')
    const soft = await phone('bob')
    desk.behaviour = { kind: 'ring' }
    soft.behaviour = { kind: 'answer', afterMs: 200 }
    await desk.register()
    await soft.register()
    const res = await alice.call('bob').final
    expect(res.status).toBe(200)
    await desk.waitRequest('CANCEL')
    await soft.waitRequest('ACK')
  })

  it('caller CANCEL gets 487 and cancels the callee', async () => {
    const alice = await phone('alice')
    const bob = await phone('bob')
    bob.behaviour = { kind: 'ring' }
    await bob.register()
    const call = alice.call('bob')
    await bob.waitRequest('INVITE')
    await alice.wait(m => m.kind === 'response' && m.status === 180)
    call.cancel()
    expect((await call.final).status).toBe(487)
    await bob.waitRequest('CANCEL')
    expect((await waitForRecords(n.node, 1))[0]).toMatchObject({ status: 487, reason: 'cancelled' })
  })

  it('no answer within ring_timeout gives 480 and cancels the callee', async () => {
    const alice = await phone('alice')
    const bob = await phone('bob')
    bob.behaviour = { kind: 'ring' }
    await bob.register()
    const res = await alice.call('bob').final
    expect(res.status).toBe(480)
    await bob.waitRequest('CANCEL')
  }, 15_000)

  it('passes re-INVITE (hold), INFO and a BYE from the callee', async () => {
    const alice = await phone('alice')
    const bob = await phone('bob')
    await bob.register()
    const call = alice.call('bob')
    expect((await call.final).status).toBe(200)
    const hold = await call.reinvite(sdpFor(alice.mediaPort, { direction: 'sendonly', version: 2 }))
    expect(hold.status).toBe(200)
    const reinv = await bob.wait(m => m.kind === 'request' && m.method === 'INVITE' && m.to.params.tag != null) as import('../../src/sip/message/index.js').SipRequest
    expect(reinv.body.toString()).toMatch(/a=sendonly/)
    expect((await call.info('Signal=5\r\nDuration=160\r\n')).status).toBe(200)
    const info = await bob.waitRequest('INFO')
    expect(info.body.toString()).toMatch(/Signal=5/)
    // callee hangs up: the node BYEs the caller
    const bInvite = await bob.waitRequest('INVITE')
    const byeFromBob = [
      `BYE ${getHeader(bInvite, 'Contact')!.replace(/[<>]/g, '')} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${bob.port};branch=z9hG4bKbye${Date.now()};rport`, 'Max-Forwards: 70',
      `From: ${getHeader(bInvite, 'To')!};tag=${bob.incoming.get(bInvite.callId)!.tag}`, `To: ${getHeader(bInvite, 'From')!}`,
      `Call-ID: ${bInvite.callId}`, 'CSeq: 1 BYE', 'Content-Length: 0', '', ''
    ].join('\r\n')
    expect((await bob.request(byeFromBob)).status).toBe(200)
    await alice.waitRequest('BYE')
    expect((await waitForRecords(n.node, 1))[0]).toMatchObject({ reason: 'callee-bye' })
  })

  it('refuses to relay: unauthenticated INVITE to another domain gets 403 and nothing is sent', async () => {
    const stranger = await phone('mallory')
    const text = [
      'INVITE sip:someone@elsewhere.example SIP/2.0', `Via: SIP/2.0/UDP 127.0.0.1:${stranger.port};branch=z9hG4bKrelay1;rport`,
      'Max-Forwards: 70', 'From: <sip:mallory@evil.example>;tag=1', 'To: <sip:someone@elsewhere.example>',
      'Call-ID: relay1', 'CSeq: 1 INVITE', `Contact: <sip:mallory@127.0.0.1:${stranger.port}>`, 'Content-Length: 0', '', ''
    ].join('\r\n')
    // the caller claims no local identity, so the node asks for credentials it cannot have
    const res = await stranger.request(text)
    expect([403, 407]).toContain(res.status)
    const metrics = await (await fetch(`${n.web}/metrics`)).text()
    expect(metrics).not.toMatch(/m1node_sip_transport_egress_denied_total\{[^}]*\} [1-9]/)
  })

  it('lets a caller from another domain reach a local user without an account', async () => {
    const bob = await phone('bob')
    await bob.register()
    const outsider = await phone('visitor')
    const res = await outsider.call('bob', { from: 'sip:visitor@other.example', auth: false }).final
    expect(res.status).toBe(200)
    const inv = await bob.waitRequest('INVITE')
    expect(inv.from.uri.host).toBe('other.example')
    expect(getHeader(inv, 'P-Asserted-Identity')).toBeUndefined()
  })

  it('sends calls to plain SIP addresses only with routing.sip_egress, for authenticated callers', async () => {
    const alice = await phone('alice')
    // off by default: another domain is no route
    expect((await alice.call('someone', { uri: 'sip:someone@127.0.0.2:5999' }).final).status).toBe(404)
    await n.stop()
    n = await startNode({ config: { media: { anchor: 'never' }, routing: { sip_egress: true } } })
    await n.node.users.add({ login: 'alice', password: 'pw-alice' })
    const far = new Phone('someone', 'x', { port: n.udp, domain: 'test-node' }, '127.0.0.2')
    await far.open()
    phones.push(far)
    const target = `sip:someone@127.0.0.2:${far.port}`
    const alice2 = await phone('alice')
    const res = await alice2.call('someone', { uri: target }).final
    expect(res.status).toBe(200)
    const inv = await far.waitRequest('INVITE')
    expect(inv.rawUri).toBe(target)
    expect(inv.from.uri.user).toBe('alice')
    // an unauthenticated caller still cannot use the node to reach it
    const stranger = await phone('mallory')
    const relay = await stranger.request([
      `INVITE ${target} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${stranger.port};branch=z9hG4bKegress1;rport`,
      'Max-Forwards: 70', 'From: <sip:mallory@evil.example>;tag=1', `To: <${target}>`,
      'Call-ID: egress1', 'CSeq: 1 INVITE', `Contact: <sip:mallory@127.0.0.1:${stranger.port}>`, 'Content-Length: 0', '', ''
    ].join('\r\n'))
    expect([403, 407]).toContain(relay.status)
  })

  it('caps calls per login with 503 and Retry-After', async () => {
    await n.stop()
    n = await startNode({ config: { media: { anchor: 'never' }, routing: { max_calls_per_login: 1 } } })
    for (const u of ['alice', 'bob', 'carol']) await n.node.users.add({ login: u, password: `pw-${u}` })
    const alice = await phone('alice')
    const bob = await phone('bob')
    await bob.register()
    expect((await alice.call('bob').final).status).toBe(200)
    const second = await alice.call('bob').final
    expect(second.status).toBe(503)
    expect(getHeader(second, 'Retry-After')).toBeDefined()
  })
})

describe('calls with media anchored at the node', () => {
  let n: TestNode
  const phones: Phone[] = []
  const sockets: Array<import('node:dgram').Socket> = []

  beforeEach(async () => {
    n = await startNode({ config: { media: { anchor: 'always', host: '127.0.0.1', port_min: 41000, port_max: 41999 } } })
    for (const u of ['alice', 'bob']) await n.node.users.add({ login: u, password: `pw-${u}` })
  })
  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    for (const s of sockets.splice(0)) s.close()
    await n.stop()
  })

  async function rtpSocket (): Promise<{ sock: import('node:dgram').Socket, port: number, got: Buffer[] }> {
    const sock = createSocket('udp4')
    const got: Buffer[] = []
    sock.on('message', (m) => { got.push(m) })
    await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
    sockets.push(sock)
    return { sock, port: sock.address().port, got }
  }

  /** alice and bob phones on the current node (it is restarted by some tests) */
  async function pair (): Promise<{ alice: Phone, bob: Phone }> {
    const alice = new Phone('alice', 'pw-alice', { port: n.udp, domain: 'test-node' })
    const bob = new Phone('bob', 'pw-bob', { port: n.udp, domain: 'test-node' })
    phones.push(alice, bob)
    await alice.open()
    await bob.open()
    return { alice, bob }
  }

  const portOf = (sdp: string): number => Number(/m=audio (\d+)/.exec(sdp)?.[1])
  const rtp = (seq: number): Buffer => { const b = Buffer.alloc(172); b[0] = 0x80; b.writeUInt16BE(seq, 2); return b }

  it('rewrites SDP to the relay and carries RTP both ways; the call record counts it', async () => {
    const aMedia = await rtpSocket()
    const bMedia = await rtpSocket()
    const { alice, bob } = await pair()
    bob.behaviour = { kind: 'answer', sdp: sdpFor(bMedia.port) }
    await bob.register()
    const call = alice.call('bob', { sdp: sdpFor(aMedia.port) })
    const ok = await call.final
    expect(ok.status).toBe(200)
    const inv = await bob.waitRequest('INVITE')
    const toBob = portOf(inv.body.toString())
    const toAlice = portOf(ok.body.toString())
    // each phone sends to the relay, never straight to the other
    expect(toBob).toBeGreaterThanOrEqual(41000)
    expect(toAlice).toBeGreaterThanOrEqual(41000)
    expect(toBob).not.toBe(aMedia.port)
    for (let i = 0; i < 20; i++) {
      aMedia.sock.send(rtp(i), toAlice, '127.0.0.1')
      bMedia.sock.send(rtp(1000 + i), toBob, '127.0.0.1')
      await sleep(5)
    }
    await sleep(100)
    expect(bMedia.got.length).toBeGreaterThanOrEqual(19)
    expect(aMedia.got.length).toBeGreaterThanOrEqual(19)
    expect(bMedia.got[0]!.readUInt16BE(2)).toBeLessThan(20)
    expect((await call.bye()).status).toBe(200)
    const [rec] = await waitForRecords(n.node, 1)
    expect(rec!.media!.packets.a2b).toBeGreaterThanOrEqual(19)
    expect(rec!.media!.packets.b2a).toBeGreaterThanOrEqual(19)
  })

  it('answers an offer it cannot relay with 488, and the call leaves no state behind', async () => {
    const { alice, bob } = await pair()
    await bob.register()
    expect((await alice.call('bob', { sdp: 'this is no SDP\r\n' }).final).status).toBe(488)
    expect(n.node.calls.size).toBe(0)
    expect(bob.received.some(m => m.kind === 'request' && m.method === 'INVITE')).toBe(false)
  })

  it('ends a call whose media stops', async () => {
    await n.stop()
    n = await startNode({ config: { media: { anchor: 'always', host: '127.0.0.1', port_min: 42000, port_max: 42999, timeout: 5 } } })
    for (const u of ['alice', 'bob']) await n.node.users.add({ login: u, password: `pw-${u}` })
    const { alice, bob } = await pair()
    await bob.register()
    expect((await alice.call('bob').final).status).toBe(200)
    await alice.waitRequest('BYE', 9000)
    await bob.waitRequest('BYE', 2000)
    expect((await waitForRecords(n.node, 1))[0]).toMatchObject({ reason: 'media-timeout' })
  }, 15_000)
})
