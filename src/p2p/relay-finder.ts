import type { Logger } from '../core/index.js'
import { RELAY_PROVIDER_TOKEN } from './relay.js'

/** The part of the P2p node the finder uses. */
export interface RelayFinderComponents {
  p2p: {
    readonly peerId: string
    relayPeers: () => string[]
    connectedRelays: () => Promise<string[]>
    reserveOn: (relayAddr: string) => Promise<void>
    dial: (target: string, options?: { signal?: AbortSignal }) => Promise<void>
    findProviders: (token: Uint8Array, options?: { signal?: AbortSignal, limit?: number }) => Promise<string[]>
    ping: (peer: string, options?: { signal?: AbortSignal }) => Promise<number>
    hangUp: (peer: string) => Promise<void>
  }
  logger: Logger
}

export interface RelayFinderInit {
  /** candidate relay multiaddrs (with /p2p/<id>), tried first in this order: configured relays, then bootstrap peers */
  relays: string[]
  /** reservations wanted. @default 2 */
  want?: number
  /** Milliseconds between checks while short of relays. @default 2000 */
  shortIntervalMs?: number
  /** Milliseconds between checks while enough relays are held. @default 15000 */
  intervalMs?: number
  /** Milliseconds a relay that failed or refused is left alone. @default 60000 */
  retryAfterMs?: number
}

const idOf = (addr: string): string => addr.slice(addr.lastIndexOf('/p2p/') + 5)

/**
 * Keeps a node behind NAT holding reservations on `want` relays. While short it tries, in order, the configured
 * relays (and bootstrap peers), connected peers that speak the relay HOP protocol, and relays that announce
 * themselves in the DHT (providers of `/m1/relay`). A relay that goes away drops its reservation and addresses
 * (libp2p notices the closed connection); one that refuses is left alone for a minute; the next check replaces
 * either. The node record follows through P2p's `addresses:changed` event.
 */
export class RelayFinder {
  private timer?: NodeJS.Timeout
  private abort = new AbortController()
  private running = false
  private readonly failed = new Map<string, number>()
  private shortDelay = 0
  private readonly missed = new Map<string, number>()
  private lastHeld = 0
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

  /** The node's addresses changed: when a reservation was lost, look for a replacement now. */
  nudge (): void {
    if (this.components.p2p.relayPeers().length < (this.init.want ?? 2) && !this.running) this.schedule(0)
  }

  private schedule (ms: number): void {
    if (this.abort.signal.aborted) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.check() }, ms)
    this.timer.unref()
  }

  /**
   * Pings every relay held. A relay that misses two pings in a row (10 s each) is hung up on: its reservation and
   * addresses go, and the node reserves elsewhere. (libp2p's own connection monitor would abort any connection on
   * one late ping, which cuts relayed calls on a busy machine; it is told not to.)
   */
  private async watchRelays (): Promise<void> {
    const { p2p } = this.components
    const held = p2p.relayPeers()
    for (const id of this.missed.keys()) if (!held.includes(id)) this.missed.delete(id)
    await Promise.all(held.map(async (id) => {
      try {
        await p2p.ping(id, { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(10_000)]) })
        this.missed.delete(id)
      } catch {
        if (this.abort.signal.aborted) return
        const n = (this.missed.get(id) ?? 0) + 1
        this.missed.set(id, n)
        if (n >= 2) {
          this.missed.delete(id)
          this.failed.set(id, Date.now() + (this.init.retryAfterMs ?? 60_000))
          this.log.warn({ relay: id }, 'relay stopped answering: using another')
          await p2p.hangUp(id)
        }
      }
    }))
  }

  /** One round: while short of relays, reserve on candidates one after another. Never throws. */
  async check (): Promise<void> {
    if (this.running) return
    this.running = true
    const { p2p } = this.components
    const want = this.init.want ?? 2
    const now = Date.now()
    const usable = (id: string): boolean => id !== p2p.peerId && !p2p.relayPeers().includes(id) && (this.failed.get(id) ?? 0) <= now
    try {
      await this.watchRelays()
      if (p2p.relayPeers().length >= want) return
      const tried = new Set<string>()
      const attempt = async (addr: string): Promise<void> => {
        const id = idOf(addr)
        if (tried.has(id) || !usable(id) || p2p.relayPeers().length >= want || this.abort.signal.aborted) return
        tried.add(id)
        try {
          await p2p.reserveOn(addr)
          this.log.info({ relay: addr }, 'relay reservation made')
        } catch (err) {
          this.failed.set(id, Date.now() + (this.init.retryAfterMs ?? 60_000))
          this.log.info({ relay: addr, err: (err as Error).message.split('\n')[0] }, 'relay unreachable or refused a reservation')
        }
      }
      for (const addr of this.init.relays) await attempt(addr)
      for (const addr of await p2p.connectedRelays()) await attempt(addr)
      if (p2p.relayPeers().length < want && !this.abort.signal.aborted) {
        const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(15_000)])
        let providers: string[] = []
        try {
          providers = (await p2p.findProviders(RELAY_PROVIDER_TOKEN, { signal, limit: 20 })).filter(usable)
        } catch (err) {
          if (!this.abort.signal.aborted) this.log.debug({ err }, 'relay lookup in the DHT failed')
        }
        for (const id of providers) {
          if (p2p.relayPeers().length >= want) break
          try {
            await p2p.dial(id, { signal })
          } catch {
            this.failed.set(id, Date.now() + (this.init.retryAfterMs ?? 60_000))
          }
        }
        for (const addr of await p2p.connectedRelays()) await attempt(addr)
      }
    } catch (err) {
      this.log.debug({ err }, 'relay check failed')
    } finally {
      this.running = false
      const held = p2p.relayPeers().length
      const slow = this.init.intervalMs ?? 15_000
      // short of relays: look again soon, then less often while none turns up (each look may query the DHT)
      if (held >= want || held < this.lastHeld) this.shortDelay = 0
      this.shortDelay = held < want ? Math.min(slow, this.shortDelay === 0 ? (this.init.shortIntervalMs ?? 2000) : this.shortDelay * 2) : 0
      this.lastHeld = held
      if (held < want) this.log.debug({ held, want }, 'short of relays')
      this.schedule(held < want ? this.shortDelay : slow)
    }
  }
}
