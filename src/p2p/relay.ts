import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { CircuitRelayServerInit } from '@libp2p/circuit-relay-v2'
import type { Logger, Metrics, MetricCounter } from '../core/index.js'

/** Circuit relay v2 protocol ids (libp2p specs relay/circuit-v2.md). */
export const RELAY_HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'
export const RELAY_STOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/stop'
/** The DHT provider token relays announce themselves under (a CID of these bytes). */
export const RELAY_PROVIDER_TOKEN = new TextEncoder().encode('/m1/relay')

export interface RelayServerInit {
  /** Reservations held at once; at the cap new ones are refused (RESERVATION_REFUSED). @default 128 */
  maxReservations?: number
  /** Relayed connections at once; at the cap new ones are refused, open ones are never touched. @default 256 */
  maxCircuits?: number
  /** Bytes per second relayed for one peer (both directions) above which that peer gets no new circuit (0: no cap). @default 0 */
  maxPeerBytesPerSecond?: number
  /** Bytes per second relayed in total above which no new reservation or circuit is accepted (0: no cap). @default 0 */
  maxTotalBytesPerSecond?: number
  /** Seconds a reservation lasts before the client must refresh it. @default 3600 */
  reservationTtl?: number
}

export interface RelayCapsComponents {
  logger: Logger
  metrics?: Metrics
}

/** The part of the libp2p node the relay accounting reads. */
export interface RelayedNode {
  getConnections: () => Connection[]
  services: { relay?: unknown }
}

interface PeerRate { bytes: number, rate: number }

/**
 * Our own caps on a circuit relay v2 server. js-libp2p's default per-reservation limits (2 minutes, 128 KiB per
 * relayed connection) would cut a call after about 13 s of G.711, so they are off (`applyDefaultLimit: false`) and
 * replaced by admission control: a reservation or a new relayed connection is refused when a cap is reached; one
 * already relayed is never throttled or cut. Bandwidth is measured by counting the bytes of every HOP and STOP
 * stream (a relayed connection is one of each), averaged over a few seconds.
 */
export class RelayCaps {
  private readonly log: Logger
  private readonly counted = new WeakSet<Stream>()
  private readonly perPeer = new Map<string, PeerRate>()
  private totalBytes = 0
  private totalRate = 0
  private circuitCount = 0
  /** times of admitted relayed connections whose STOP stream has not been seen yet */
  private pending: number[] = []
  private timer?: NodeJS.Timeout
  private node?: RelayedNode
  private readonly refused?: MetricCounter

  constructor (components: RelayCapsComponents, private readonly init: RelayServerInit = {}) {
    this.log = components.logger
    const m = components.metrics
    this.refused = m?.counter('m1node_relay_refused_total', 'Reservations and relayed connections refused at a cap, by reason', ['reason'])
    m?.gauge('m1node_relay_reservations', 'Reservations this relay holds', [], () => this.reservations)
    m?.gauge('m1node_relay_circuits', 'Relayed connections open through this relay', [], () => this.circuits)
    m?.gauge('m1node_relay_bytes_per_second', 'Bytes per second relayed, both directions, averaged over a few seconds', [], () => Math.round(this.totalRate))
  }

  /** Options for `circuitRelayServer()`: default limits off, our reservation cap and TTL. */
  serverOptions (): CircuitRelayServerInit {
    return {
      reservations: {
        maxReservations: this.init.maxReservations ?? 128,
        applyDefaultLimit: false,
        reservationTtl: (this.init.reservationTtl ?? 3600) * 1000
      },
      maxInboundHopStreams: Math.max(64, (this.init.maxCircuits ?? 256) + 32),
      maxOutboundStopStreams: Math.max(64, (this.init.maxCircuits ?? 256) + 32)
    }
  }

  /** Connection gater hooks that enforce the caps (merged into the libp2p connectionGater). */
  gater (): { denyInboundRelayReservation: (peer: PeerId) => boolean, denyOutboundRelayedConnection: (src: PeerId, dst: PeerId) => boolean } {
    return {
      denyInboundRelayReservation: (peer) => {
        if (this.overTotal()) return this.refuse('bandwidth', { peer: peer.toString() })
        return false
      },
      denyOutboundRelayedConnection: (src, dst) => {
        this.sweep()
        const max = this.init.maxCircuits ?? 256
        if (max > 0 && this.circuitCount + this.pending.length >= max) return this.refuse('circuits', { src: src.toString(), dst: dst.toString() })
        if (this.overTotal()) return this.refuse('bandwidth', { src: src.toString(), dst: dst.toString() })
        const perPeer = this.init.maxPeerBytesPerSecond ?? 0
        if (perPeer > 0) {
          for (const p of [src, dst]) {
            if ((this.perPeer.get(p.toString())?.rate ?? 0) > perPeer) return this.refuse('peer-bandwidth', { peer: p.toString() })
          }
        }
        // counted as pending until a sweep sees its STOP stream (or it failed: forgotten after the hop timeout)
        this.pending.push(Date.now())
        return false
      }
    }
  }

  /** Starts accounting on a started libp2p node that runs the relay server. */
  attach (node: RelayedNode): void {
    this.node = node
    this.timer = setInterval(() => { this.tick() }, 1000)
    this.timer.unref()
  }

  detach (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.node = undefined
  }

  /** Reservations held now. */
  get reservations (): number {
    const relay = this.node?.services.relay as { reservations?: { size: number } } | undefined
    return relay?.reservations?.size ?? 0
  }

  /** Relayed connections open now. */
  get circuits (): number { return this.circuitCount }

  /** Relayed bytes per second, both directions. */
  get bytesPerSecond (): number { return this.totalRate }

  /** Load as `m1node status` and /metrics show it. */
  load (): { reservations: number, circuits: number, bytesPerSecond: number } {
    return { reservations: this.reservations, circuits: this.circuits, bytesPerSecond: Math.round(this.totalRate) }
  }

  private overTotal (): boolean {
    const cap = this.init.maxTotalBytesPerSecond ?? 0
    return cap > 0 && this.totalRate > cap
  }

  private refuse (reason: string, fields: Record<string, string>): true {
    this.refused?.inc({ reason })
    this.log.info({ ...fields, reason }, 'relay at capacity: refused')
    return true
  }

  /** Finds relay streams not yet counted and counts open circuits (outbound STOP streams). */
  private sweep (): void {
    const node = this.node
    if (node == null) return
    let circuits = 0
    for (const conn of node.getConnections()) {
      for (const stream of conn.streams) {
        const hop = stream.protocol === RELAY_HOP_PROTOCOL && stream.direction === 'inbound'
        const stop = stream.protocol === RELAY_STOP_PROTOCOL && stream.direction === 'outbound'
        if (!hop && !stop) continue
        if (stop) circuits++
        if (this.counted.has(stream)) continue
        this.counted.add(stream)
        const peer = conn.remotePeer.toString()
        stream.addEventListener('message', (evt) => {
          const n = (evt as unknown as { data: { byteLength: number } }).data.byteLength
          this.totalBytes += n
          let r = this.perPeer.get(peer)
          if (r == null) { r = { bytes: 0, rate: 0 }; this.perPeer.set(peer, r) }
          r.bytes += n
        })
      }
    }
    const opened = Math.max(0, circuits - this.circuitCount)
    this.pending.splice(0, opened)
    const stale = Date.now() - 30_000
    while (this.pending.length > 0 && this.pending[0]! < stale) this.pending.shift()
    this.circuitCount = circuits
  }

  /** Once a second: rates as an exponential average (about 3 s), idle peers forgotten. */
  private tick (): void {
    try {
      this.sweep()
      const a = 1 / 3
      this.totalRate += a * (this.totalBytes - this.totalRate)
      this.totalBytes = 0
      for (const [peer, r] of this.perPeer) {
        r.rate += a * (r.bytes - r.rate)
        r.bytes = 0
        if (r.rate < 1) this.perPeer.delete(peer)
      }
    } catch (err) {
      this.log.debug({ err }, 'relay accounting failed')
    }
  }
}
