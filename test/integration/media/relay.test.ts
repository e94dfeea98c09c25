import { createSocket } from 'node:dgram'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { AbortError, PromMetrics } from '../../../src/core/index.js'
import { InvalidSdpError, MediaRelay, MediaRelayStoppedError, NoPortsError, type MediaRelayComponents, type MediaRelayInit } from '../../../src/media/index.js'
import { mPorts, openPair, Peer, phoneSdp, rtcpRr, rtp } from './helpers.js'

const relays: MediaRelay[] = []
const peers: Peer[] = []

afterEach(async () => {
  for (const r of relays.splice(0)) await r.stop()
  for (const p of peers.splice(0)) await p.close()
})

// each test gets its own port range so a slow close in one never shows up in another
let nextRange = 40000 + (process.pid % 50) * 100
async function relay (init: Partial<MediaRelayInit> = {}, components: Partial<MediaRelayComponents> = {}): Promise<MediaRelay> {
  const portMin = init.portMin ?? nextRange
  nextRange += 40
  const r = new MediaRelay({ allows: () => true, ...components }, {
    host: '127.0.0.1', advertisedAddress: '127.0.0.1', portMin, portMax: portMin + 39, timeoutSeconds: 60, ...init
  })
  await r.start()
  relays.push(r)
  return r
}

async function peer (address?: string): Promise<Peer> {
  const p = await Peer.open(address)
  peers.push(p)
  return p
}

/** offer from A, answer from B; returns the relay port each side sends to. */
async function call (r: MediaRelay, a: Peer, b: Peer, callId = 'call-1', offerExtra: string[] = [], answerExtra: string[] = []): Promise<{ toA: string, toB: string, pa: number, pb: number }> {
  const toB = await r.offer(callId, 'a', phoneSdp(a.port, { extra: offerExtra }))
  const toA = await r.answer(callId, 'b', phoneSdp(b.port, { extra: answerExtra }))
  return { toA, toB, pa: mPorts(toA)[0]!, pb: mPorts(toB)[0]! }
}

describe('MediaRelay over UDP on 127.0.0.1', () => {
  it('rewrites offer and answer to the relay and forwards RTP both ways from the relay ports', async () => {
    const r = await relay()
    const a = await peer()
    const b = await peer()
    const { toA, toB, pa, pb } = await call(r, a, b)
    expect(toB).toContain('c=IN IP4 127.0.0.1\r\n')
    expect(toB).toContain('a=rtpmap:101 telephone-event/8000')
    expect(pa).not.toBe(pb)
    expect(pa % 2).toBe(0)
    expect(pb % 2).toBe(0)
    expect(toA).not.toContain(`m=audio ${b.port}`)

    a.send(rtp(1), pa)
    await b.waitFor(1)
    expect(b.last().from.port).toBe(pb) // B hears A from the port B sends to (symmetric)
    expect(b.last().data.equals(rtp(1))).toBe(true)
    b.send(rtp(2), pb)
    await a.waitFor(1)
    expect(a.last().from.port).toBe(pa)
    for (let i = 3; i < 13; i++) a.send(rtp(i), pa)
    await b.waitFor(11)
    const stats = r.stats('call-1')!
    expect(stats.packets).toEqual({ a2b: 11, b2a: 1 })
    expect(stats.bytes.a2b).toBe(11 * 172)
    expect(stats.startedAt).toBeGreaterThan(0)
    expect(stats.lastPacketAt).toBeGreaterThanOrEqual(stats.startedAt!)
    expect(r.calls).toBe(1)
    expect(r.ports).toBe(4)
  })

  it('latches to the real source (NAT), re-latches on a new port from the same IP, ignores other IPs', async () => {
    const r = await relay()
    const sdpSide = await peer() // what A's SDP says: never used to send
    const a = await peer()
    const b = await peer()
    const { pa, pb } = await call(r, sdpSide, b)
    b.send(rtp(1), pb)
    await sdpSide.waitFor(1) // before A sends, the SDP address is all the relay knows
    a.send(rtp(2), pa) // A's NAT: another source port
    await b.waitFor(1)
    b.send(rtp(3), pb)
    await a.waitFor(1) // latched: B's media now goes to A's real source
    expect(sdpSide.received).toHaveLength(1)

    // NAT rebinding: same IP, new port -> follows
    const rebound = await peer()
    rebound.send(rtp(4), pa)
    await b.waitFor(2)
    b.send(rtp(5), pb)
    await rebound.waitFor(1)

    // another IP cannot take the stream over (RTP injection)
    const intruder = await peer('127.0.0.2')
    intruder.send(rtp(6), pa)
    expect(await b.quiet(150)).toBe(0)
    b.send(rtp(7), pb)
    await rebound.waitFor(2)
    expect(r.totals().dropped.source).toBe(1)
  })

  it('relays RTCP on RTP + 1 and on a=rtcp ports', async () => {
    const r = await relay()
    const a = await peer()
    const aRtcp = await peer()
    const [b, bRtcp] = await openPair(45000 + (process.pid % 40) * 50, 65000)
    peers.push(b, bRtcp)
    const { toB, toA, pa, pb } = await call(r, a, b, 'call-rtcp', [`a=rtcp:${aRtcp.port}`])
    expect(toB).toContain(`a=rtcp:${pb + 1}\r\n`)
    expect(toA).not.toContain('a=rtcp:')
    aRtcp.send(rtcpRr(1), pa + 1)
    await bRtcp.waitFor(1)
    expect(bRtcp.last().from.port).toBe(pb + 1)
    bRtcp.send(rtcpRr(2), pb + 1)
    await aRtcp.waitFor(1)
    expect(aRtcp.last().from.port).toBe(pa + 1)
    expect(a.received).toHaveLength(0)
    expect(b.received).toHaveLength(0)
  })

  it('rtcp-mux: RTCP shares the RTP port; demuxed to a side that does not multiplex', async () => {
    const r = await relay()
    const a = await peer()
    const b = await peer()
    const { toB, toA, pa, pb } = await call(r, a, b, 'mux', ['a=rtcp-mux'], ['a=rtcp-mux'])
    expect(toB).toContain('a=rtcp-mux')
    expect(toA).toContain('a=rtcp-mux')
    a.send(rtcpRr(), pa)
    await b.waitFor(1)
    expect(b.last().data[1]).toBe(201)
    expect(b.last().from.port).toBe(pb)
    b.send(rtcpRr(), pb)
    await a.waitFor(1)

    // A multiplexes, C (a second call) does not: A's RTCP goes to C's RTCP port
    const a2 = await peer()
    const [c, cRtcp] = await openPair(47000 + (process.pid % 40) * 50, 65000)
    peers.push(c, cRtcp)
    const toC = await r.offer('mixed', 'a', phoneSdp(a2.port, { extra: ['a=rtcp-mux'] }))
    const toA2 = await r.answer('mixed', 'b', phoneSdp(c.port))
    const pa2 = mPorts(toA2)[0]!
    const pc = mPorts(toC)[0]!
    a2.send(rtcpRr(), pa2)
    await cRtcp.waitFor(1)
    expect(cRtcp.last().from.port).toBe(pc + 1)
    a2.send(rtp(1), pa2)
    await c.waitFor(1)
    expect(cRtcp.received).toHaveLength(1)
    // and C's RTCP (on its RTCP port) reaches A on A's one port
    cRtcp.send(rtcpRr(), pc + 1)
    await a2.waitFor(1)
    expect(a2.last().from.port).toBe(pa2)
    expect(a2.last().data[1]).toBe(201)
  })

  it('re-INVITE from either side keeps the ports, follows a moved endpoint and bumps o= only on change', async () => {
    const r = await relay()
    const a = await peer()
    const b = await peer()
    const { toA, toB, pa, pb } = await call(r, a, b)
    expect(toB).toContain('o=- 1000 1 IN IP4 127.0.0.1')
    // the same offer again (session refresh): same SDP, same version
    expect(await r.offer('call-1', 'a', phoneSdp(a.port))).toBe(toB)
    // A puts B on hold: ports kept, direction passes through, version grows
    const hold = await r.offer('call-1', 'a', phoneSdp(a.port, { version: 2, extra: ['a=sendonly'] }))
    expect(mPorts(hold)).toEqual([pb])
    expect(hold).toContain('a=sendonly')
    expect(hold).toContain('o=- 1000 2 IN IP4 127.0.0.1')
    await r.answer('call-1', 'b', phoneSdp(b.port, { extra: ['a=recvonly'] }))

    // B re-INVITEs from a new port (offer from b, answer from a)
    const b2 = await peer()
    const reoffer = await r.offer('call-1', 'b', phoneSdp(b2.port, { version: 7 }))
    expect(mPorts(reoffer)).toEqual([pa])
    // A saw version 1 (answer), then 2 (the recvonly answer to its hold): this change makes 3
    expect(reoffer).toContain('o=- 1000 3 IN IP4 127.0.0.1')
    expect(toA).toContain('o=- 1000 1 IN IP4 127.0.0.1')
    const reanswer = await r.answer('call-1', 'a', phoneSdp(a.port, { version: 3 }))
    expect(mPorts(reanswer)).toEqual([pb])
    expect(reanswer).toContain('o=- 1000 3 IN IP4 127.0.0.1')
    a.send(rtp(1), pa)
    await b2.waitFor(1)
    expect(b.received).toHaveLength(0)
    expect(r.ports).toBe(4)
  })

  it('hold with c=0.0.0.0 stops media to that side; port 0 disables the stream', async () => {
    const r = await relay()
    const a = await peer()
    const b = await peer()
    const { pa, pb } = await call(r, a, b)
    const held = await r.offer('call-1', 'b', phoneSdp(b.port, { address: '0.0.0.0', version: 2 }).replace('o=- 1000 2 IN IP4 0.0.0.0', 'o=- 1000 2 IN IP4 127.0.0.1'))
    expect(held).toContain('c=IN IP4 0.0.0.0')
    expect(mPorts(held)).toEqual([pa])
    a.send(rtp(1), pa)
    expect(await b.quiet(100)).toBe(0)
    expect(r.totals().dropped['no-endpoint']).toBe(1)

    const removed = await r.offer('call-1', 'a', phoneSdp(0, { version: 2 }))
    expect(mPorts(removed)).toEqual([0])
    b.send(rtp(2), pb)
    expect(await a.quiet(100)).toBe(0)
    expect(r.totals().dropped.disabled).toBe(1)
  })

  it('relays several m-lines on their own ports and passes DTLS m-lines through', async () => {
    const r = await relay()
    const a = await peer()
    const av = await peer()
    const b = await peer()
    const bv = await peer()
    const offer = phoneSdp(a.port) + [`m=video ${av.port} RTP/AVP 96`, 'a=rtpmap:96 H264/90000', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', ''].join('\r\n')
    const toB = await r.offer('multi', 'a', offer)
    const [pbAudio, pbVideo, dc] = mPorts(toB)
    expect(dc).toBe(9)
    expect(toB).toContain('m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 127.0.0.1') // its own c= kept
    const answer = phoneSdp(b.port) + [`m=video ${bv.port} RTP/AVP 96`, 'a=rtpmap:96 H264/90000', 'm=application 0 UDP/DTLS/SCTP webrtc-datachannel', ''].join('\r\n')
    const toA = await r.answer('multi', 'b', answer)
    const [paAudio, paVideo] = mPorts(toA)
    expect(new Set([pbAudio, pbVideo, paAudio, paVideo]).size).toBe(4)
    av.send(rtp(1, 'video'), paVideo!)
    await bv.waitFor(1)
    a.send(rtp(1), paAudio!)
    await b.waitFor(1)
    expect(bv.received).toHaveLength(1)
    expect(r.ports).toBe(8)
  })

  it('delete frees the ports (they bind again), returns final stats and is idempotent', async () => {
    const r = await relay()
    const a = await peer()
    const b = await peer()
    const { pa, pb } = await call(r, a, b)
    a.send(rtp(1), pa)
    await b.waitFor(1)
    const stats = r.delete('call-1')
    expect(stats?.packets.a2b).toBe(1)
    expect(r.delete('call-1')).toBeUndefined()
    expect(r.stats('call-1')).toBeUndefined()
    expect(r.calls).toBe(0)
    expect(r.ports).toBe(0)
    for (const port of [pa, pa + 1, pb, pb + 1]) {
      const s = createSocket('udp4')
      await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(port, '127.0.0.1', resolve) })
      await new Promise<void>(resolve => { s.close(resolve) })
    }
  })

  it('skips ports in use and throws NoPortsError when the range is exhausted', async () => {
    const base = 44000 + (process.pid % 40) * 20
    const squatter = await Peer.open('127.0.0.1', base + 2) // an RTCP port of the second pair is taken
    peers.push(squatter)
    const r = await relay({ portMin: base, portMax: base + 7 }) // four pairs, one unusable
    const a = await peer()
    const toB = await r.offer('one', 'a', phoneSdp(a.port))
    expect(mPorts(toB)[0]).not.toBe(base + 2)
    await expect(r.offer('two', 'a', phoneSdp(a.port))).rejects.toBeInstanceOf(NoPortsError)
    expect(r.calls).toBe(1) // the failed call holds nothing
    r.delete('one')
    await r.offer('three', 'a', phoneSdp(a.port))
    expect(r.calls).toBe(1)
  })

  it('refuses bad SDP before allocating anything; refuses to work when stopped', async () => {
    const r = await relay()
    await expect(r.offer('bad', 'a', 'not sdp')).rejects.toBeInstanceOf(InvalidSdpError)
    expect(r.calls).toBe(0)
    await r.stop()
    await expect(r.offer('x', 'a', phoneSdp(5000))).rejects.toBeInstanceOf(MediaRelayStoppedError)
  })

  it('sends media:timeout when no packet flows after the answer', async () => {
    const r = await relay({ timeoutSeconds: 1 })
    const a = await peer()
    const b = await peer()
    const started = Date.now()
    const fired = new Promise<string>((resolve) => {
      r.addEventListener('media:timeout', (e) => { resolve((e as CustomEvent<{ callId: string }>).detail.callId) }, { once: true })
    })
    await r.offer('quiet', 'a', phoneSdp(a.port))
    // offered but not answered: no timeout
    await new Promise(resolve => setTimeout(resolve, 1200))
    await r.answer('quiet', 'b', phoneSdp(b.port))
    const callId = await Promise.race([fired, new Promise<string>((_resolve, reject) => setTimeout(() => { reject(new Error('no timeout event')) }, 4000))])
    expect(callId).toBe('quiet')
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000)
  })

  it('times out a call on hold only after holdTimeoutSeconds, and again after media resumed and stopped', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    try {
      const r = await relay({ timeoutSeconds: 60, holdTimeoutSeconds: 600 })
      const a = await peer()
      const b = await peer()
      const events: string[] = []
      r.addEventListener('media:timeout', (e) => { events.push((e as CustomEvent<{ callId: string }>).detail.callId) })
      const { pa } = await call(r, a, b, 'held')
      await r.offer('held', 'a', phoneSdp(a.port, { version: 2, extra: ['a=inactive'] }))
      await r.answer('held', 'b', phoneSdp(b.port, { extra: ['a=inactive'] }))
      vi.advanceTimersByTime(120_000)
      expect(events).toEqual([])
      vi.advanceTimersByTime(500_000)
      expect(events).toEqual(['held'])
      vi.advanceTimersByTime(5_000)
      expect(events).toEqual(['held']) // once per silence

      // off hold, media flows again, then stops: 60 s later a second event
      await r.offer('held', 'a', phoneSdp(a.port, { version: 3 }))
      await r.answer('held', 'b', phoneSdp(b.port))
      a.send(rtp(1), pa)
      await b.waitFor(1)
      vi.advanceTimersByTime(30_000)
      expect(events).toHaveLength(1)
      vi.advanceTimersByTime(31_000)
      expect(events).toEqual(['held', 'held'])
    } finally {
      vi.useRealTimers()
    }
  })

  it('honours an aborted signal and keeps ports unique under concurrent offers', async () => {
    const r = await relay({ portMin: nextRange, portMax: nextRange + 199 })
    nextRange += 200
    await expect(r.offer('x', 'a', phoneSdp(5000), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError)
    expect(r.calls).toBe(0)
    const sdps = await Promise.all(Array.from({ length: 20 }, async (_, i) => await r.offer(`c${i}`, 'a', phoneSdp(5000 + 2 * i))))
    const ports = sdps.map(s => mPorts(s)[0]!)
    expect(new Set(ports).size).toBe(20)
    expect(r.calls).toBe(20)
    expect(r.ports).toBe(80)
    // deleting while an offer binds: the offer fails, nothing leaks
    const pending = r.offer('gone', 'a', phoneSdp(6000))
    r.delete('gone')
    await expect(pending).rejects.toThrow(/deleted/)
    expect(r.ports).toBe(80)
  })

  it('never sends to an address the egress policy refuses; counts the drop in metrics', async () => {
    const metrics = new PromMetrics()
    const r = await relay({}, { allows: (address) => address !== '127.0.0.3', metrics })
    const a = await peer()
    const b = await peer('127.0.0.3')
    const pb = mPorts(await r.offer('egress', 'a', phoneSdp(a.port)))[0]!
    const pa = mPorts(await r.answer('egress', 'b', phoneSdp(b.port, { address: '127.0.0.3' })))[0]!
    a.send(rtp(1), pa)
    expect(await b.quiet(150)).toBe(0)
    // a packet from the refused address reaches A, but does not make that address a target (latching checks too)
    b.send(rtp(2), pb)
    await a.waitFor(1)
    a.send(rtp(3), pa)
    expect(await b.quiet(150)).toBe(0)
    expect(r.totals().dropped.egress).toBe(2)
    await r.stop()
    const text = await metrics.render()
    expect(text).toMatch(/m1node_media_dropped_total\{reason="egress"\} 2/)
    expect(text).toMatch(/m1node_media_packets_total\{direction="b2a"\} 1/)
    expect(text).toMatch(/m1node_media_calls 0/)
  })
})

describe('MediaRelay: a side bound to a packet link', () => {
  it('sends that side\'s packets to the link (RTCP marked, muxed RTCP recognised), relays what the link receives, and goes back to UDP on detach', async () => {
    const r = await relay()
    const [a, aRtcp] = await openPair(nextRange + 2000, nextRange + 2400)
    peers.push(a, aRtcp)
    const b = await peer()
    const { pa, pb } = await call(r, a, b)
    const sent: Array<{ data: Buffer, stream: number, rtcp: boolean }> = []
    const link = r.attach('call-1', 'b', { send: (packet, stream, rtcp) => { sent.push({ data: Buffer.from(packet), stream, rtcp }) } })
    expect(() => r.attach('call-1', 'b', { send: () => {} })).toThrow(/already linked/)
    expect(() => r.attach('nope', 'b', { send: () => {} })).toThrow(/no media/)

    a.send(rtp(1), pa)
    aRtcp.send(rtcpRr(), pa + 1)
    await vi.waitFor(() => { expect(sent).toHaveLength(2) })
    expect(sent[0]).toMatchObject({ stream: 0, rtcp: false })
    expect(sent[0]!.data.equals(rtp(1))).toBe(true)
    expect(sent[1]).toMatchObject({ stream: 0, rtcp: true })
    expect(await b.quiet(100)).toBe(0)

    link.receive(rtp(7), 0, false)
    link.receive(rtcpRr(9), 0, true)
    link.receive(rtp(8), 5, false) // no such m-line: dropped
    await a.waitFor(1)
    await aRtcp.waitFor(1)
    expect(a.last().data.equals(rtp(7))).toBe(true)
    expect(a.last().from.port).toBe(pa)
    expect(aRtcp.last().data.readUInt32BE(4)).toBe(9)
    // UDP to the linked side's relay port is not that side: dropped
    b.send(rtp(3), pb)
    expect(await a.quiet(100)).toBe(0)
    expect(r.stats('call-1')!.packets).toEqual({ a2b: 2, b2a: 2 })

    link.detach()
    a.send(rtp(2), pa)
    await b.waitFor(1)
    expect(sent).toHaveLength(2)
    r.delete('call-1')
    link.receive(rtp(10), 0, false) // after delete: nothing, no throw
  })
})
