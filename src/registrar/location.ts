import type { Logger } from '../core/index.js'
import type { Metrics } from '../core/index.js'
import type { Table } from '../store/index.js'

/** The flow a binding was registered over: requests to the device go back the same way (NAT, RFC 5626 spirit). */
export interface BindingFlow {
  transport: string
  id: string
  remoteAddress: string
  remotePort: number
  localAddress: string
  localPort: number
}

/** One registered contact of an AOR (Kamailio usrloc ucontact). */
export interface Binding {
  /** identity of the contact within its AOR: +sip.instance/reg-id (RFC 5626) or the canonical URI */
  key: string
  /** the Contact URI exactly as registered: the Request-URI of requests sent to the device */
  contact: string
  /** Contact header parameters other than expires and q (e.g. +sip.instance, reg-id, methods), raw */
  contactParams: Record<string, string | null>
  /** 0..1000, i.e. q × 1000; 1000 when the device gave none */
  q: number
  /** absolute expiry, epoch milliseconds */
  expiresAt: number
  callId: string
  cseq: number
  flow: BindingFlow
  /** Path header values in order (RFC 3327) */
  path: string[]
  /** the Contact's host:port differs from the packet's source: the device sits behind NAT */
  nat: boolean
  instance?: string
  regId?: number
  userAgent?: string
  /** the trunk (PBX, gateway) that registered this contact under the login, when one did (docs/pbx.md) */
  trunk?: string
  updatedAt: number
}

export type RemovalReason = 'unregistered' | 'expired' | 'flow-closed' | 'unreachable'

export interface LocationEvents {
  'contact:added': CustomEvent<{ aor: string, binding: Binding }>
  'contact:refreshed': CustomEvent<{ aor: string, binding: Binding }>
  'contact:removed': CustomEvent<{ aor: string, binding: Binding, reason: RemovalReason }>
}

export interface LocationComponents {
  table: Table<Binding[]>
  /** whether acknowledged writes are fsynced */
  sync: boolean
  logger?: Logger
  metrics?: Metrics
  now?: () => number
}

/**
 * The location service (Kamailio usrloc): bindings per AOR, in memory for lookups and in LevelDB (sublevel
 * `aor_contacts`, one key per AOR) for restarts. Every change of an AOR is one write, made durable before the
 * caller answers, and changes of the same AOR are serialised so that concurrent REGISTERs cannot lose each other.
 */
export class Location extends EventTarget {
  private readonly bindings = new Map<string, Binding[]>()
  /** expiry buckets: second -> AORs whose earliest binding expires in that second; each AOR sits in one bucket */
  private readonly buckets = new Map<number, Set<string>>()
  private readonly bucketOf = new Map<string, number>()
  /** group commit: the writes of one event-loop turn go to LevelDB as one batch */
  private pendingOps: Array<{ type: 'put', key: string, value: Binding[] } | { type: 'del', key: string }> = []
  private pendingWaiters: Array<{ resolve: () => void, reject: (err: unknown) => void }> = []
  private flushScheduled = false
  private readonly queues = new Map<string, Promise<unknown>>()
  private sweepTimer?: ReturnType<typeof setInterval>
  private count = 0
  private readonly now: () => number

  constructor (private readonly components: LocationComponents) {
    super()
    this.now = components.now ?? Date.now
    components.metrics?.gauge('m1node_registrar_bindings', 'Registered contacts', [], () => this.count)
    components.metrics?.gauge('m1node_registrar_aors', 'AORs with at least one contact', [], () => this.bindings.size)
  }

  async start (): Promise<void> {
    const now = this.now()
    const expiredAors: string[] = []
    for await (const [aor, list] of this.components.table.entries()) {
      const live = list.filter(b => b.expiresAt > now)
      if (live.length !== list.length) expiredAors.push(aor)
      if (live.length > 0) this.setMemory(aor, live)
    }
    if (expiredAors.length > 0) {
      await this.components.table.batch(expiredAors.map(aor => {
        const live = this.bindings.get(aor)
        return live != null ? { type: 'put' as const, key: aor, value: live } : { type: 'del' as const, key: aor }
      }))
    }
    this.components.logger?.info({ aors: this.bindings.size, contacts: this.count, expired: expiredAors.length }, 'location loaded')
    this.sweepTimer = setInterval(() => { void this.sweep() }, 1000)
    this.sweepTimer.unref()
  }

  async stop (): Promise<void> {
    if (this.sweepTimer != null) clearInterval(this.sweepTimer)
    await Promise.allSettled([...this.queues.values()])
  }

  /** Number of live bindings. */
  get size (): number { return this.count }

  /** Live bindings of an AOR, highest q first. */
  lookup (aor: string): Binding[] {
    const now = this.now()
    return (this.bindings.get(aor) ?? []).filter(b => b.expiresAt > now)
  }

  /** Every AOR with its live bindings (for the control API and keep-alives). */
  * entries (): IterableIterator<[string, Binding[]]> {
    yield * this.bindings.entries()
  }

  /**
   * Changes an AOR's bindings: `change` gets the current live list and returns the new one (or throws to abort).
   * Serialised per AOR; the new list is durable when the promise resolves.
   */
  async update<T> (aor: string, change: (current: Binding[]) => { bindings: Binding[], result: T }, reason: RemovalReason = 'unregistered'): Promise<T> {
    const prev = this.queues.get(aor) ?? Promise.resolve()
    const run = prev.then(async () => {
      const before = this.bindings.get(aor) ?? []
      const { bindings, result } = change(this.lookup(aor))
      const sorted = [...bindings].sort((a, b) => b.q - a.q || b.updatedAt - a.updatedAt)
      await this.persist(aor, sorted)
      this.setMemory(aor, sorted)
      this.emitChanges(aor, before, sorted, reason)
      return result
    })
    const tail = run.catch(() => {})
    this.queues.set(aor, tail)
    void tail.then(() => { if (this.queues.get(aor) === tail) this.queues.delete(aor) })
    return await run
  }

  /** Removes every binding that relies on a flow which can no longer be used (a closed WebSocket). */
  async removeByFlow (flowId: string): Promise<void> {
    const aors = [...this.bindings.entries()].filter(([, list]) => list.some(b => b.flow.id === flowId)).map(([aor]) => aor)
    for (const aor of aors) {
      await this.update(aor, current => ({ bindings: current.filter(b => b.flow.id !== flowId), result: undefined }), 'flow-closed')
    }
  }

  private emitChanges (aor: string, before: Binding[], after: Binding[], reason: RemovalReason): void {
    const now = this.now()
        const old = new Map(before.map(b => [b.key, b]))
    for (const b of after) {
      const prev = old.get(b.key)
      old.delete(b.key)
      this.dispatchEvent(new CustomEvent(prev == null || prev.expiresAt <= now ? 'contact:added' : 'contact:refreshed', { detail: { aor, binding: b } }))
    }
    for (const b of old.values()) {
      this.dispatchEvent(new CustomEvent('contact:removed', { detail: { aor, binding: b, reason: b.expiresAt <= now ? 'expired' : reason } }))
    }
  }

  /** Resolves once the AOR's new list is in LevelDB, written together with whatever else this turn changed. */
  private async persist (aor: string, list: Binding[]): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.pendingOps.push(list.length > 0 ? { type: 'put', key: aor, value: list } : { type: 'del', key: aor })
      this.pendingWaiters.push({ resolve, reject })
      if (!this.flushScheduled) {
        this.flushScheduled = true
        setImmediate(() => { void this.flush() })
      }
    })
  }

  private async flush (): Promise<void> {
    this.flushScheduled = false
    const ops = this.pendingOps
    const waiters = this.pendingWaiters
    this.pendingOps = []
    this.pendingWaiters = []
    try {
      await this.components.table.batch(ops, { sync: this.components.sync })
      for (const w of waiters) w.resolve()
    } catch (err) {
      for (const w of waiters) w.reject(err)
    }
  }

  private setMemory (aor: string, list: Binding[]): void {
    this.count -= this.bindings.get(aor)?.length ?? 0
    const old = this.bucketOf.get(aor)
    let sec: number | undefined
    if (list.length === 0) this.bindings.delete(aor)
    else {
      this.bindings.set(aor, list)
      this.count += list.length
      sec = Math.ceil(Math.min(...list.map(b => b.expiresAt)) / 1000)
    }
    if (old === sec) return
    if (old != null) {
      const bucket = this.buckets.get(old)
      bucket?.delete(aor)
      if (bucket?.size === 0) this.buckets.delete(old)
      this.bucketOf.delete(aor)
    }
    if (sec != null) {
      let bucket = this.buckets.get(sec)
      if (bucket == null) { bucket = new Set(); this.buckets.set(sec, bucket) }
      bucket.add(aor)
      this.bucketOf.set(aor, sec)
    }
  }

  /** Drops expired bindings, bucket by bucket, so each second costs only what expires in it. */
  private async sweep (): Promise<void> {
    const nowSec = Math.floor(this.now() / 1000)
    const due: string[] = []
    for (const [sec, aors] of this.buckets) {
      if (sec <= nowSec) {
        due.push(...aors)
        this.buckets.delete(sec)
        for (const aor of aors) this.bucketOf.delete(aor)
      }
    }
    const now = this.now()
    await Promise.all([...new Set(due)].map(async (aor) => {
      const list = this.bindings.get(aor)
      if (list == null) return
      // not expired after all (refreshed meanwhile): back into the bucket of its earliest expiry
      if (!list.some(b => b.expiresAt <= now)) { this.setMemory(aor, list); return }
      try {
        await this.update(aor, current => ({ bindings: current, result: undefined }), 'expired')
      } catch (err) {
        this.components.logger?.error({ err, aor }, 'cannot persist expired bindings')
      }
    }))
  }
}
