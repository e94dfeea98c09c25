import { afterEach, describe, expect, it } from 'vitest'
import { P2pMediaLinks, RTP_PROTOCOL, tokenOf, withToken, withoutToken, type P2pMediaComponents, type PacketStream } from '../../../src/routing/index.js'
import type { AttachedLink, PacketLink, Side } from '../../../src/media/index.js'

/** One end of an in-memory duplex: what `send` writes, the other end gets as a 'message' event a tick later. */
class FakeStream extends EventTarget implements PacketStream {
  other!: FakeStream
  closed = false
  aborted?: Error

  send (data: Uint8Array): boolean {
    if (this.closed) throw new Error('closed')
    const copy = Uint8Array.from(data)
    setImmediate(() => { this.other.deliver(copy) })
    return true
  }

  deliver (data: Uint8Array): void {
    if (this.closed) return
    const evt = new Event('message') as Event & { data: Uint8Array }
    evt.data = data
    this.dispatchEvent(evt)
  }

  end (): void {
    if (this.closed) return
    this.closed = true
    this.dispatchEvent(new Event('close'))
  }

  async onDrain (): Promise<void> {}
  async close (): Promise<void> { setImmediate(() => { this.other.end() }); this.end() }
  abort (err: Error): void { this.aborted = err; setImmediate(() => { this.other.end() }); this.end() }
}

function pair (): [FakeStream, FakeStream] {
  const x = new FakeStream()
  const y = new FakeStream()
  x.other = y
  y.other = x
  return [x, y]
}

/** A relay stand-in: records what each attached side receives and offers a link per call. */
class FakeRelay {
  readonly links = new Map<string, PacketLink>()
  readonly got: Array<{ callId: string, side: Side, packet: string, stream: number, rtcp: boolean }> = []
  attach (callId: string, side: Side, link: PacketLink): AttachedLink {
    if (callId === 'gone') throw new Error('no media')
    this.links.set(`${callId}/${side}`, link)
    return {
      receive: (packet, stream, rtcp) => { this.got.push({ callId, side, packet: Buffer.from(packet).toString(), stream, rtcp }) },
      detach: () => { this.links.delete(`${callId}/${side}`) }
    }
  }
}

/** Two nodes' links joined by fake streams: node X dials, node Y handles. */
function nodes (recoverMs?: number): { x: P2pMediaLinks, y: P2pMediaLinks, rx: FakeRelay, ry: FakeRelay, opened: FakeStream[], dialAs: { peer: string, fail?: boolean } } {
  let handler: ((stream: PacketStream, peer: string) => void) | undefined
  const opened: FakeStream[] = []
  const dialAs: { peer: string, fail?: boolean } = { peer: 'peer-x' }
  const rx = new FakeRelay()
  const ry = new FakeRelay()
  const x = new P2pMediaLinks({
    p2p: {
      handleStreams: async () => {},
      dialStream: async (_peer, protocol) => {
        expect(protocol).toBe(RTP_PROTOCOL)
        if (dialAs.fail === true) throw new Error('no path to the peer')
        const [mine, theirs] = pair()
        opened.push(mine)
        handler!(theirs, dialAs.peer)
        return mine
      },
      unhandle: async () => {}
    },
    relay: rx
  }, { timeoutMs: 500, ...(recoverMs != null ? { recoverMs } : {}) })
  const y = new P2pMediaLinks({
    p2p: { handleStreams: async (_p, h) => { handler = h }, dialStream: async () => { throw new Error('no') }, unhandle: async () => {} },
    relay: ry
  }, { timeoutMs: 500, maxPacketBytes: 100, ...(recoverMs != null ? { recoverMs } : {}) })
  return { x, y, rx, ry, opened, dialAs }
}

type IceHandler = (frame: Record<string, unknown>, ctx: { peer: string, signal: AbortSignal }) => Promise<Record<string, unknown>>

/** Like {@link nodes}, with the direct path on: `/m1/ice/1.0.0` requests go straight to the other's handler. */
function directNodes (recoverMs: number): ReturnType<typeof nodes> {
  let handler: ((stream: PacketStream, peer: string) => void) | undefined
  const ice = new Map<string, IceHandler>()
  const opened: FakeStream[] = []
  const dialAs: { peer: string, fail?: boolean } = { peer: 'peer-x' }
  const rx = new FakeRelay()
  const ry = new FakeRelay()
  const iceOf = (self: string): Pick<Required<P2pMediaComponents['p2p']>, 'request' | 'handle'> => ({
    request: async (peer, _protocol, frame) => {
      const answer = await ice.get(peer)!(frame, { peer: self, signal: AbortSignal.timeout(5000) })
      if (answer.type === 'error') throw new Error(String(answer.code))
      return answer
    },
    handle: async (_protocol, h) => { ice.set(self, h) }
  })
  const init = { timeoutMs: 500, recoverMs, directPath: { bindAddress: '127.0.0.1', lingerMs: 0, probeIntervalMs: 100, quietMs: 600 } }
  const x = new P2pMediaLinks({
    p2p: {
      handleStreams: async () => {},
      dialStream: async () => {
        if (dialAs.fail === true) throw new Error('no path to the peer')
        const [mine, theirs] = pair()
        opened.push(mine)
        handler!(theirs, dialAs.peer)
        return mine
      },
      unhandle: async () => {},
      ...iceOf('peer-x')
    },
    selfPeerId: () => 'peer-x',
    relay: rx
  }, init)
  const y = new P2pMediaLinks({
    p2p: { handleStreams: async (_p, h) => { handler = h }, dialStream: async () => { throw new Error('no') }, unhandle: async () => {}, ...iceOf('peer-y') },
    selfPeerId: () => 'peer-y',
    relay: ry
  }, init)
  return { x, y, rx, ry, opened, dialAs }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
async function until (fn: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await sleep(5)
  }
}

describe('/m1/rtp/1.0.0 links', () => {
  const started: P2pMediaLinks[] = []
  afterEach(async () => { for (const l of started.splice(0)) await l.stop() })

  it('carries packets both ways with their m-line index and RTCP flag; end closes the stream', async () => {
    const { x, y, rx, ry } = nodes()
    await x.start(); await y.start()
    started.push(x, y)
    const token = y.expect('call-1', 'b', 'peer-x')
    x.connect('call-1', 'a', 'peer-y', token)
    await until(() => rx.links.has('call-1/a') && ry.links.has('call-1/b'))
    rx.links.get('call-1/a')!.send(Buffer.from('rtp-from-x'), 0, false)
    ry.links.get('call-1/b')!.send(Buffer.from('rtcp-from-y'), 3, true)
    await until(() => rx.got.length === 1 && ry.got.length === 1)
    expect(ry.got[0]).toEqual({ callId: 'call-1', side: 'b', packet: 'rtp-from-x', stream: 0, rtcp: false })
    expect(rx.got[0]).toEqual({ callId: 'call-1', side: 'a', packet: 'rtcp-from-y', stream: 3, rtcp: true })
    expect(x.size).toBe(1)
    expect(y.size).toBe(1)
    y.end('call-1')
    x.end('call-1')
    await until(() => x.size === 0 && y.size === 0)
    expect(x.legs + y.legs).toBe(0)
    expect(rx.links.size + ry.links.size).toBe(0)
  })

  it('a stream that dies under a live call (its relay went away) is opened again by the side that opened it', async () => {
    const { x, y, rx, ry, opened } = nodes(2000)
    await x.start(); await y.start()
    started.push(x, y)
    const lost: string[] = []
    for (const l of [x, y]) l.addEventListener('media:lost', (evt) => { lost.push((evt as CustomEvent<{ callId: string }>).detail.callId) })
    const token = y.expect('call-1', 'b', 'peer-x')
    x.connect('call-1', 'a', 'peer-y', token)
    await until(() => rx.links.has('call-1/a') && ry.links.has('call-1/b'))
    ry.links.get('call-1/b')!.send(Buffer.from('before'), 0, false)
    await until(() => rx.got.length === 1)
    opened[0]!.abort(new Error('connection closed'))
    await until(() => opened.length === 2)
    // the relay sides stay attached meanwhile (packets are dropped until the new stream carries them): media as a
    // phone sends it, a packet every few ms, flows again both ways
    await until(() => {
      rx.links.get('call-1/a')!.send(Buffer.from('after'), 0, false)
      ry.links.get('call-1/b')!.send(Buffer.from('back'), 0, false)
      return ry.got.some(g => g.packet === 'after') && rx.got.some(g => g.packet === 'back')
    })
    await sleep(50)
    expect(lost).toEqual([])
    expect(x.size).toBe(1)
  })

  it('a call whose stream cannot be opened again within recoverMs is reported lost on both sides', async () => {
    const { x, y, rx, ry, opened, dialAs } = nodes(300)
    await x.start(); await y.start()
    started.push(x, y)
    const lost: string[] = []
    x.addEventListener('media:lost', (evt) => { lost.push(`x:${(evt as CustomEvent<{ callId: string }>).detail.callId}`) })
    y.addEventListener('media:lost', (evt) => { lost.push(`y:${(evt as CustomEvent<{ callId: string }>).detail.callId}`) })
    const token = y.expect('call-1', 'b', 'peer-x')
    x.connect('call-1', 'a', 'peer-y', token)
    await until(() => rx.links.has('call-1/a') && ry.links.has('call-1/b'))
    ry.links.get('call-1/b')!.send(Buffer.from('before'), 0, false)
    await until(() => rx.got.length === 1)
    dialAs.fail = true
    opened[0]!.abort(new Error('connection closed'))
    await until(() => lost.length === 2, 3000)
    expect(lost.sort()).toEqual(['x:call-1', 'y:call-1'])
    // the call's end (BYE) clears it; nothing more is reported
    x.end('call-1')
    y.end('call-1')
    await sleep(400)
    expect(lost.length).toBe(2)
  })

  it('a call on the data channel goes on there when its stream is lost, and is reported lost once that carrier goes too', async () => {
    const { x, y, rx, ry, opened, dialAs } = directNodes(400)
    await x.start(); await y.start()
    started.push(x, y)
    const lost: string[] = []
    x.addEventListener('media:lost', (evt) => { lost.push(`x:${(evt as CustomEvent<{ callId: string }>).detail.callId}`) })
    y.addEventListener('media:lost', (evt) => { lost.push(`y:${(evt as CustomEvent<{ callId: string }>).detail.callId}`) })
    const token = y.expect('call-1', 'b', 'peer-x')
    x.connect('call-1', 'a', 'peer-y', token)
    await until(() => rx.links.has('call-1/a') && ry.links.has('call-1/b'))
    await until(() => x.pathOf('call-1') === 'datachannel' && y.pathOf('call-1') === 'datachannel', 10_000)
    // the stream dies and cannot be opened again: media keeps crossing on the data channel, beyond recoverMs
    dialAs.fail = true
    opened[0]!.abort(new Error('connection closed'))
    await until(() => x.size === 0 && y.size === 0)
    rx.got.length = 0
    ry.got.length = 0
    const deadline = Date.now() + 1000
    let n = 0
    while (Date.now() < deadline) {
      rx.links.get('call-1/a')!.send(Buffer.from(`a${n}`), 0, false)
      ry.links.get('call-1/b')!.send(Buffer.from(`b${n}`), 0, false)
      n++
      await sleep(20)
    }
    expect(ry.got.filter(g => g.packet.startsWith('a')).length).toBeGreaterThan(n / 2)
    expect(rx.got.filter(g => g.packet.startsWith('b')).length).toBeGreaterThan(n / 2)
    expect(lost).toEqual([])
    // the data channel goes: no stream comes back either, so the call is reported lost
    x.direct!.drop('peer-y')
    await until(() => lost.includes('x:call-1'), 3000)
    x.end('call-1')
    y.end('call-1')
  })

  it('a stream lost under a call on the data channel is opened again, and the call record shows the carriers', async () => {
    const { x, y, rx, ry, opened } = directNodes(2000)
    await x.start(); await y.start()
    started.push(x, y)
    const token = y.expect('call-1', 'b', 'peer-x')
    x.connect('call-1', 'a', 'peer-y', token)
    await until(() => rx.links.has('call-1/a') && ry.links.has('call-1/b'))
    await until(() => x.pathOf('call-1') === 'datachannel', 10_000)
    // packets on the data channel count as heard: the opener dials again
    await until(() => {
      ry.links.get('call-1/b')!.send(Buffer.from('back'), 0, false)
      return rx.got.some(g => g.packet === 'back')
    })
    opened[0]!.abort(new Error('connection closed'))
    await until(() => opened.length === 2 && x.size === 1 && y.size === 1)
    // media flows under the new channel numbers (the data channel, the stream: whichever carries it)
    rx.got.length = 0
    ry.got.length = 0
    await until(() => {
      rx.links.get('call-1/a')!.send(Buffer.from('after'), 0, false)
      ry.links.get('call-1/b')!.send(Buffer.from('back'), 0, false)
      return ry.got.some(g => g.packet === 'after') && rx.got.some(g => g.packet === 'back')
    })
    const report = x.end('call-1')
    y.end('call-1')
    expect(report?.path).toBe('datachannel')
    expect(report?.switches.map(s => s.path)).toEqual(['stream-direct', 'datachannel'])
  })

  it('two calls between the same nodes share one stream, each on its channel; the stream closes with the last', async () => {
    const { x, y, rx, ry, opened } = nodes()
    await x.start(); await y.start()
    started.push(x, y)
    x.connect('call-5', 'a', 'peer-y', y.expect('call-5', 'b', 'peer-x'))
    x.connect('call-6', 'a', 'peer-y', y.expect('call-6', 'b', 'peer-x'))
    await until(() => ry.links.has('call-5/b') && ry.links.has('call-6/b'))
    expect(opened).toHaveLength(1)
    rx.links.get('call-6/a')!.send(Buffer.from('to-6'), 0, false)
    rx.links.get('call-5/a')!.send(Buffer.from('to-5'), 1, false)
    await until(() => ry.got.length === 2)
    expect(ry.got.map(g => `${g.callId}:${g.packet}:${g.stream}`).sort()).toEqual(['call-5:to-5:1', 'call-6:to-6:0'])
    x.end('call-5'); y.end('call-5')
    await sleep(20)
    expect(x.size).toBe(1)
    x.end('call-6'); y.end('call-6')
    await until(() => x.size === 0 && y.size === 0)
  })

  it('refuses a stream from a peer other than the call leg\'s, and an unknown token', async () => {
    const { x, y, ry, opened, dialAs } = nodes()
    await x.start(); await y.start()
    started.push(x, y)
    const token = y.expect('call-2', 'b', 'peer-z')
    x.connect('call-2', 'a', 'peer-y', token) // x is peer-x: not the peer y expects
    await until(() => opened.length === 1 && opened[0]!.closed)
    expect(ry.links.size).toBe(0)
    dialAs.peer = 'peer-z'
    x.connect('call-3', 'a', 'peer-y', 'A'.repeat(24)) // a token y never minted
    await until(() => opened.length === 2 && opened[1]!.closed)
    expect(ry.links.size).toBe(0)
    expect(y.size).toBe(0)
  })

  it('aborts a stream whose frame exceeds the size cap; the sender drops packets over its cap', async () => {
    const { x, y, rx, ry, opened } = nodes()
    await x.start(); await y.start()
    started.push(x, y)
    const token = y.expect('call-4', 'b', 'peer-x')
    x.connect('call-4', 'a', 'peer-y', token)
    await until(() => rx.links.has('call-4/a') && ry.links.has('call-4/b'))
    // y's cap is 100 bytes: a frame of 101 ends the stream
    rx.links.get('call-4/a')!.send(Buffer.alloc(101), 0, false)
    await until(() => opened[0]!.closed)
    expect(ry.got).toHaveLength(0)
    await until(() => y.size === 0 && x.size === 0)
  })

  it('a call whose media is gone closes the stream at once', async () => {
    const { x, y } = nodes()
    await x.start(); await y.start()
    started.push(x, y)
    const token = y.expect('gone', 'b', 'peer-x')
    x.connect('gone', 'a', 'peer-y', token)
    await until(() => x.size === 0 && y.size === 0)
  })

  it('adds, finds and removes the a=m1-rtp attribute at session level', () => {
    const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n'
    const token = 'abcdefghijklmnopqrstuvwx'
    const out = withToken(sdp, token)
    expect(out).toBe(sdp.replace('m=audio', `a=m1-rtp:${token}\r\nm=audio`))
    expect(tokenOf(out)).toBe(token)
    expect(withToken(out, token)).toBe(out)
    expect(withoutToken(out)).toBe(sdp)
    expect(tokenOf(sdp)).toBeUndefined()
    expect(tokenOf('a=m1-rtp:short\r\n')).toBeUndefined()
  })
})
