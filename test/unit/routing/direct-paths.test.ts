import { afterEach, describe, expect, it } from 'vitest'
import { DirectPaths, ICE_PROTOCOL, type DirectPathsComponents } from '../../../src/routing/index.js'
import { stunServers } from '../../../src/node.js'

type Handler = Parameters<DirectPathsComponents['p2p']['handle']>[1]

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** Two DirectPaths whose `/m1/ice/1.0.0` requests go straight to the other's handler (no libp2p). */
function pair (allowed: { a: boolean, b: boolean } = { a: true, b: true }): { a: DirectPaths, b: DirectPaths, frames: Array<[string, Buffer]>, switches: Array<[string, boolean]>, requests: Array<Record<string, unknown>> } {
  const handlers = new Map<string, Handler>()
  const frames: Array<[string, Buffer]> = []
  const switches: Array<[string, boolean]> = []
  const requests: Array<Record<string, unknown>> = []
  const make = (self: string, other: string, ok: boolean): DirectPaths => new DirectPaths({
    p2p: {
      request: async (peer, protocol, frame) => {
        expect(protocol).toBe(ICE_PROTOCOL)
        requests.push(frame)
        const answer = await handlers.get(peer)!(frame, { peer: self, signal: AbortSignal.timeout(5000) })
        if (answer.type === 'error') throw new Error(String(answer.code))
        return answer
      },
      handle: async (_protocol, h) => { handlers.set(self, h) },
      unhandle: async () => { handlers.delete(self) }
    },
    selfPeerId: () => self,
    iceServers: () => [],
    allowed: () => ok,
    onFrame: (peer, frame) => { frames.push([`${self}<-${peer}`, frame]) },
    onSwitch: (peer, active) => { switches.push([`${self}:${peer}`, active]) }
  }, { bindAddress: '127.0.0.1', lingerMs: 0, probeIntervalMs: 100, quietMs: 600 })
  return { a: make('peer-a', 'peer-b', allowed.a), b: make('peer-b', 'peer-a', allowed.b), frames, switches, requests }
}

describe('DirectPaths', () => {
  const started: DirectPaths[] = []
  afterEach(async () => { await Promise.all(started.splice(0).map(async p => { await p.stop() })) })

  it('the smaller peer id offers; the data channel opens, a probe round trip makes it the carrier, frames cross', async () => {
    const { a, b, frames, switches, requests } = pair()
    started.push(a, b)
    await a.start()
    await b.start()
    b.want('peer-a') // the larger id waits
    await sleep(200)
    expect(requests).toEqual([])
    a.want('peer-b')
    const deadline = Date.now() + 10_000
    while (!(a.isActive('peer-b') && b.isActive('peer-a')) && Date.now() < deadline) await sleep(20)
    expect(a.isActive('peer-b') && b.isActive('peer-a')).toBe(true)
    expect(requests.map(r => r.type)).toEqual(['offer'])
    const frame = Buffer.from([0, 3, 0x40, 0, 7, 1, 2, 3])
    expect(a.send('peer-b', frame)).toBe(true)
    while (frames.length === 0 && Date.now() < deadline) await sleep(10)
    expect(frames[0]![0]).toBe('peer-b<-peer-a')
    expect(frames[0]![1].equals(frame)).toBe(true)
    expect(switches).toContainEqual(['peer-a:peer-b', true])
    // released with linger 0: closed at once, and the far end falls back
    a.release('peer-b')
    expect(a.size).toBe(0)
    while (b.isActive('peer-a') && Date.now() < deadline) await sleep(20)
    expect(b.isActive('peer-a')).toBe(false)
    expect(a.send('peer-b', frame)).toBe(false)
  }, 20_000)

  it('refuses an offer from a peer without a call, keeping no PeerConnection', async () => {
    const { a, b } = pair({ a: true, b: false })
    started.push(a, b)
    await a.start()
    await b.start()
    a.want('peer-b')
    await sleep(300)
    expect(b.size).toBe(0)
    expect(a.isActive('peer-b')).toBe(false)
  }, 10_000)
})

describe('stunServers', () => {
  it('makes stun: URLs of the IPv4 relay addresses, once each', () => {
    expect(stunServers(['/ip4/11.22.33.10/tcp/4001/p2p/12D3KooWA', '/ip4/11.22.33.10/tcp/4002/p2p/12D3KooWB', '/dns4/relay.example/tcp/4001/p2p/12D3KooWC', '/ip6/::1/tcp/1/p2p/x'], 3478))
      .toEqual(['stun:11.22.33.10:3478'])
  })
})
