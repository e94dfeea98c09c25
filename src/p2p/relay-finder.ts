import type { Logger } from '../core/index.js'
import { RELAY_PROVIDER_TOKEN } from './relay.js'

/** The part of the P2p node the finder uses. */
export interface RelayFinderComponents {
  p2p: {
    relayPeers: () => string[]
    dial: (target: string, options?: { signal?: AbortSignal }) => Promise<void>
    findProviders: (token: Uint8Array, options?: { signal?: AbortSignal, limit?: number }) => Promise<string[]>
    connectionTo: (peer: string) => { connected: boolean }
    readonly peerId: string
  }
  logger: Logger
}

export interface RelayFinderInit {
  /** configured relay multiaddrs, tried first */
  relays: string[]
  /** reservations wanted. @default 2 */
  want?: number
  /** Milliseconds between checks while short of relays. @default 3000 */
  shortIntervalMs?: number
  /** Milliseconds between checks while enough relays are held. @default 30000 */
  intervalMs?: number
}

/**
 * Keeps a node behind NAT supplied with relay candidates. libp2p's circuit relay transport makes the reservations
 * (one per `/p2p-circuit` listen address) on connected peers that speak the HOP protocol, and looks for another
 * when one is lost or refuses; this finder connects it to candidates while it holds fewer than wanted: the
 * configured relays first, then relays that announce themselves in the DHT (providers of `/m1/relay`). Bootstrap
 * peers are connected anyway, and those that are relays are used the same way.
 */
export class RelayFinder {
  private timer?: NodeJS.Timeout
  private abort = new AbortController()
  private running = false
  private readonly log: Logger

  constructor (private readonly components: RelayFinderComponents, private readonly init: RelayFinderInit) {
    this.log = components.logger
  }

  start (): void {
    this.abort = new AbortController()
    this.schedule(0)
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.abort.abort()
  }

  private schedule (ms: number): void {
    if (this.abort.signal.aborted) return
    this.timer = setTimeout(() => { void this.check() }, ms)
    this.timer.unref()
  }

  /** One round: when short of relays, connect to candidates not yet connected. Never throws. */
  async check (): Promise<void> {
    if (this.running) return
    this.running = true
    const { p2p } = this.components
    const want = this.init.want ?? 2
    try {
      const held = new Set(p2p.relayPeers())
      if (held.size >= want) return
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(15_000)])
      const candidates: string[] = []
      for (const addr of this.init.relays) {
        const id = addr.slice(addr.lastIndexOf('/p2p/') + 5)
        if (!held.has(id) && !p2p.connectionTo(id).connected) candidates.push(addr)
      }
      if (held.size + candidates.length < want + 1) {
        try {
          for (const id of await p2p.findProviders(RELAY_PROVIDER_TOKEN, { signal, limit: 20 })) {
            if (id !== p2p.peerId && !held.has(id) && !p2p.connectionTo(id).connected) candidates.push(id)
          }
        } catch (err) {
          if (!this.abort.signal.aborted) this.log.debug({ err }, 'relay lookup in the DHT failed')
        }
      }
      await Promise.all(candidates.map(async (c) => {
        try {
          await p2p.dial(c, { signal })
        } catch (err) {
          if (!this.abort.signal.aborted) this.log.debug({ relay: c, err: (err as Error).message }, 'relay candidate unreachable')
        }
      }))
    } catch (err) {
      this.log.debug({ err }, 'relay check failed')
    } finally {
      this.running = false
      const short = p2p.relayPeers().length < want
      if (short) this.log.debug({ held: p2p.relayPeers().length, want }, 'short of relays')
      this.schedule(short ? (this.init.shortIntervalMs ?? 3000) : (this.init.intervalMs ?? 30_000))
    }
  }
}
