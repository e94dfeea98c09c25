import { describe, it, expect, vi, afterEach } from 'vitest'
import { pino } from 'pino'
import { peerIdFromString } from '@libp2p/peer-id'
import { RelayCaps, RELAY_HOP_PROTOCOL, RELAY_STOP_PROTOCOL } from '../../../src/p2p/index.js'

const logger = pino({ level: 'silent' })
const A = peerIdFromString('12D3KooWCXq48tGvPLKWJGA651djrVqSJxZkjojarQW6ZdXvzxYc')
const B = peerIdFromString('12D3KooWLNYBCS1kuEQBTKP19sE7W1EeGUW3UN86MVT1SdVq8dY1')

class FakeStream extends EventTarget {
  constructor (readonly protocol: string, readonly direction: 'inbound' | 'outbound') { super() }
  data (n: number): void { this.dispatchEvent(Object.assign(new Event('message'), { data: { byteLength: n } })) }
}

/** A relay carrying `circuits` relayed connections from A to B: a HOP stream from A and a STOP stream to B each. */
function relayedNode (circuits: number): { node: any, hop: FakeStream[], stop: FakeStream[] } {
  const hop = Array.from({ length: circuits }, () => new FakeStream(RELAY_HOP_PROTOCOL, 'inbound'))
  const stop = Array.from({ length: circuits }, () => new FakeStream(RELAY_STOP_PROTOCOL, 'outbound'))
  const node = {
    services: { relay: { reservations: { size: 2 } } },
    getConnections: () => [{ remotePeer: A, streams: hop }, { remotePeer: B, streams: [...stop, new FakeStream('/m1/sip/1.0.0', 'outbound')] }]
  }
  return { node, hop, stop }
}

describe('RelayCaps', () => {
  afterEach(() => { vi.useRealTimers() })

  it('turns js-libp2p default limits off', () => {
    const o = new RelayCaps({ logger }, { maxReservations: 7, reservationTtl: 600 }).serverOptions()
    expect(o.reservations).toMatchObject({ maxReservations: 7, applyDefaultLimit: false, reservationTtl: 600_000 })
  })

  it('refuses new relayed connections at max_circuits, counting open STOP streams, and never touches open ones', () => {
    const caps = new RelayCaps({ logger }, { maxCircuits: 3 })
    const { node } = relayedNode(2)
    caps.attach(node)
    const gate = caps.gater()
    expect(gate.denyOutboundRelayedConnection(A, B)).toBe(false) // the third
    expect(gate.denyOutboundRelayedConnection(A, B)).toBe(true) // a fourth, before the sweep sees the third
    expect(caps.circuits).toBe(2)
    expect(caps.load()).toMatchObject({ reservations: 2, circuits: 2 })
    caps.detach()
  })

  it('refuses reservations and circuits while relayed bandwidth is over a cap, and admits again once it falls', () => {
    vi.useFakeTimers()
    const caps = new RelayCaps({ logger }, { maxCircuits: 100, maxTotalBytesPerSecond: 10_000, maxPeerBytesPerSecond: 5_000 })
    const { node, hop, stop } = relayedNode(1)
    caps.attach(node)
    const gate = caps.gater()
    expect(gate.denyInboundRelayReservation(A)).toBe(false)
    for (let s = 0; s < 6; s++) {
      hop[0]!.data(20_000)
      stop[0]!.data(20_000)
      vi.advanceTimersByTime(1000)
    }
    expect(caps.bytesPerSecond).toBeGreaterThan(10_000)
    expect(gate.denyInboundRelayReservation(A)).toBe(true)
    expect(gate.denyOutboundRelayedConnection(A, B)).toBe(true)
    vi.advanceTimersByTime(30_000)
    expect(caps.bytesPerSecond).toBeLessThan(1)
    expect(gate.denyInboundRelayReservation(A)).toBe(false)
    expect(gate.denyOutboundRelayedConnection(A, B)).toBe(false)
    caps.detach()
  })

  it('per-peer bandwidth: a busy peer gets no new circuit while others do', () => {
    vi.useFakeTimers()
    const caps = new RelayCaps({ logger }, { maxCircuits: 100, maxPeerBytesPerSecond: 5_000 })
    const { node, hop } = relayedNode(1)
    caps.attach(node)
    const gate = caps.gater()
    vi.advanceTimersByTime(1000)
    for (let s = 0; s < 6; s++) { hop[0]!.data(20_000); vi.advanceTimersByTime(1000) }
    expect(gate.denyOutboundRelayedConnection(A, B)).toBe(true)
    const C = peerIdFromString('12D3KooWHZhJdPPqFjgDMNN1Har3R9s5nPukT1u2qnfPSZBdtQj5')
    expect(gate.denyOutboundRelayedConnection(C, B)).toBe(false)
    caps.detach()
  })
})
