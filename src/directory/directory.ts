import type { Logger, Metrics, MetricCounter } from '../core/index.js'
import { foldName, nameProblem, InvalidInputError } from '../core/index.js'
import type { Table } from '../store/index.js'
import type { Ed25519Keys, P2p } from '../p2p/index.js'
import { NameKeyChangedError, NameNotFoundError, NameTakenError, RecordRejectedError } from './errors.js'
import { decodeRecord, isDomainName, recordKey, selectRecord, signRecord, E164_NAME_RE, type DidRecord, type DirectoryRecord, type DomainRecord, type LoginRecord, type NodeRecord, type RecordKind } from './records.js'
import { DirectorySearch, runLimited, type Listing, type SearchInit, type SearchResult } from './search.js'

const encoder = new TextEncoder()

/** The owner key of a name as this node first saw it (sublevel `name_pin`, key `<kind>!<name>`). */
export interface NamePin {
  peerId: string
  publicKey: string
  /** unix ms of the first resolution */
  firstSeen: number
  /** expiry of the newest record seen under this key; after it the name may change hands */
  expiresAt: number
}

/** A local user as the directory publishes it. */
export interface LocalUser { login: string, displayName?: string, listed?: boolean }

export interface DirectoryComponents {
  p2p: Pick<P2p, 'peerId' | 'putRecord' | 'getRecords' | 'addresses' | 'provide' | 'unprovide' | 'findProviders' | 'request' | 'handle' | 'unhandle'> & Partial<Pick<P2p, 'relayAddresses' | 'learnAddresses'>>
  /** the node key (same as the libp2p identity) */
  keys: Ed25519Keys
  pins: Table<NamePin>
  /** every local user (listed or not): each gets a login record */
  localUsers: () => Promise<LocalUser[]>
  /** every DID this node routes (E.164): each gets a `/m1/did/<number>` record */
  localDids?: () => Promise<string[]>
  logger: Logger
  metrics?: Metrics
}

export interface DirectoryInit {
  /** this node's name (`/m1/node/<name>`) */
  nodeName: string
  /** SIP domains the node serves */
  domains: string[]
  /** e.g. `m1node/0.1.0` */
  version: string
  /** Seconds a published record stays valid. @default 86400 */
  recordTtl?: number
  /** Seconds between republications (well before expiry). @default 14400 */
  republishInterval?: number
  /** Seconds a resolved record is served from memory. @default 60 */
  cacheTtl?: number
  /** Seconds a "not found" is served from memory. @default 10 */
  negativeCacheTtl?: number
  /** Milliseconds one resolution may take. @default 10000 */
  resolveTimeout?: number
  /** Publish login records of local users. @default true */
  publishLogins?: boolean
  /** peer ids or node names that hold messages for this node while it is offline (the record's `mailboxes`) @default [] */
  mailboxes?: string[]
  search?: SearchInit
}

/** The answer to `resolve alice@acme`, `resolve coca-cola` or `resolve acme`. */
export interface Resolution {
  login?: LoginRecord
  node?: NodeRecord
  did?: DidRecord
}

interface CacheEntry { record: DirectoryRecord | null, until: number }

/**
 * Who is where: publishes this node's record and its users' login records into the DHT (and republishes them),
 * resolves names of other nodes and logins (several peers, every record verified, owner keys pinned, TTL cache), and
 * runs directory search.
 */
export class Directory {
  readonly search: DirectorySearch
  private readonly cache = new Map<string, CacheEntry>()
  private readonly inflight = new Map<string, Promise<DirectoryRecord>>()
  private readonly published = new Map<string, { record: LoginRecord, bytes: Uint8Array }>()
  private readonly publishedDids = new Set<string>()
  private nodeRecord?: { record: NodeRecord, bytes: Uint8Array }
  private readonly checkedNames = new Set<string>()
  private readonly pending = new Map<string, LocalUser>()
  private draining?: Promise<void>
  private lastSeq = 0
  private timer?: NodeJS.Timeout
  private republishSoon?: NodeJS.Timeout
  private retryDelay = 2000
  private abort = new AbortController()
  private running: Promise<void> = Promise.resolve()
  private readonly log: Logger
  private readonly m: {
    resolutions?: MetricCounter
    cacheHits?: MetricCounter
    published?: MetricCounter
  }

  constructor (private readonly components: DirectoryComponents, private readonly init: DirectoryInit) {
    this.log = components.logger
    const metrics = components.metrics
    this.m = {
      resolutions: metrics?.counter('m1node_directory_resolutions_total', 'Name resolutions, by kind and result', ['kind', 'result']),
      cacheHits: metrics?.counter('m1node_directory_cache_hits_total', 'Resolutions answered from the cache, by kind and result', ['kind', 'result']),
      published: metrics?.counter('m1node_directory_records_published_total', 'Records published into the DHT, by kind and result', ['kind', 'result'])
    }
    this.search = new DirectorySearch({ p2p: components.p2p, listings: () => this.listings(), logger: components.logger, metrics }, init.search ?? {})
  }

  async start (): Promise<void> {
    this.abort = new AbortController()
    await this.search.start()
    this.schedule(0)
  }

  async stop (): Promise<void> {
    clearTimeout(this.timer)
    clearTimeout(this.republishSoon)
    this.republishSoon = undefined
    this.timer = undefined
    this.abort.abort()
    await this.running.catch(() => {})
    await this.draining?.catch(() => {})
    await this.search.stop()
  }

  /** Publishes the node record and every login record now; returns how many peers took the node record. */
  async publishAll (options: { signal?: AbortSignal } = {}): Promise<number> {
    const signal = this.signal(options.signal)
    const peers = await this.publishNode({ signal })
    for (const domain of this.publishedDomains()) {
      try {
        await this.publishDomain(domain, { signal })
      } catch (err) {
        if (err instanceof NameTakenError) this.log.error({ domain, owner: err.ownerPeerId }, 'SIP domain is claimed by another node in the directory: not published')
        else if (!signal.aborted) this.log.warn({ domain, err }, 'cannot publish domain record')
      }
    }
    if (this.init.publishLogins !== false) {
      const users = await this.components.localUsers()
      const logins = new Set(users.map(u => u.login))
      for (const login of this.published.keys()) if (!logins.has(login)) this.published.delete(login)
      await runLimited(users, 4, async (u) => {
        try {
          await this.publishLogin(u, { signal })
        } catch (err) {
          if (err instanceof NameTakenError) this.log.error({ login: u.login, owner: err.ownerPeerId }, 'login is owned by another node in the directory: not published')
          else if (!signal.aborted) this.log.warn({ login: u.login, err }, 'cannot publish login record')
        }
      })
    }
    const dids = await this.components.localDids?.() ?? []
    this.publishedDids.clear()
    await runLimited(dids, 4, async (did) => {
      try {
        await this.publishDid(did, { signal })
      } catch (err) {
        if (err instanceof NameTakenError) this.log.error({ did, owner: err.ownerPeerId }, 'DID is announced by another node in the directory: not published')
        else if (!signal.aborted) this.log.warn({ did, err }, 'cannot publish DID record')
      }
    })
    void this.search.refreshTokens()
    return peers
  }

  /** Signs and stores the record of a DID this node routes (same first-come rule as logins). */
  async publishDid (did: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    if (!E164_NAME_RE.test(did)) throw new InvalidInputError('did', `"${did}" is no E.164 number`)
    const now = Date.now()
    const { record, key, bytes } = signRecord<DidRecord>({
      kind: 'did',
      name: did,
      seq: this.nextSeq(),
      issuedAt: now,
      expiresAt: now + (this.init.recordTtl ?? 86_400) * 1000,
      node: this.init.nodeName
    }, this.components.keys)
    await this.checkNotTaken('did', did, options.signal)
    this.publishedDids.add(did)
    this.remember(key, record)
    return await this.put(key, bytes, 'did', options.signal)
  }

  /** A DID was added: announce it now (in the background). */
  didAdded (did: string): void {
    void this.publishDid(did, { signal: this.abort.signal }).catch((err: unknown) => {
      if (err instanceof NameTakenError) this.log.error({ did, owner: err.ownerPeerId }, 'DID is announced by another node in the directory: not published')
      else if (!this.abort.signal.aborted) this.log.warn({ did, err }, 'cannot publish DID record')
    })
  }

  /** A DID was removed: no more republication; its record expires. */
  didRemoved (did: string): void {
    this.publishedDids.delete(did)
    this.cache.delete(recordKey('did', did))
  }

  async resolveDid (did: string, options: { signal?: AbortSignal } = {}): Promise<DidRecord> {
    if (!E164_NAME_RE.test(did)) throw new InvalidInputError('did', `"${did}" is no E.164 number`)
    return await this.resolveKind('did', did, options) as DidRecord
  }

  /** Signs and stores this node's record; returns how many peers accepted it. */
  async publishNode (options: { signal?: AbortSignal } = {}): Promise<number> {
    const { init, components } = this
    const now = Date.now()
    const { record, bytes, key } = signRecord<NodeRecord>({
      kind: 'node',
      name: init.nodeName,
      seq: this.nextSeq(),
      issuedAt: now,
      expiresAt: now + (init.recordTtl ?? 86_400) * 1000,
      domains: init.domains.slice(0, 8),
      addrs: components.p2p.addresses().filter(a => a.length <= 256).slice(0, 16),
      relays: (components.p2p.relayAddresses?.() ?? []).filter(a => a.length <= 256).slice(0, 8),
      // configured mailboxes, then the relays the node holds: they are up while it is not (docs/messaging.md)
      mailboxes: [...new Set([...(init.mailboxes ?? []), ...relayPeersOf(components.p2p.relayAddresses?.() ?? [])])].slice(0, 8),
      version: init.version.slice(0, 64)
    }, components.keys)
    await this.checkNotTaken('node', init.nodeName, options.signal)
    const peers = await this.put(key, bytes, 'node', options.signal)
    this.nodeRecord = { record, bytes }
    this.remember(key, record)
    return peers
  }

  /** The SIP domains that get a domain record: those of the node record that are domain names other than the node name. */
  publishedDomains (): string[] {
    return [...new Set(this.init.domains.slice(0, 8).map(d => d.toLowerCase()))].filter(d => d !== this.init.nodeName && isDomainName(d))
  }

  /** Signs and stores `/m1/domain/<domain>` naming this node; returns how many peers accepted it. */
  async publishDomain (domain: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    const now = Date.now()
    const { record, bytes, key } = signRecord<DomainRecord>({
      kind: 'domain',
      name: domain,
      seq: this.nextSeq(),
      issuedAt: now,
      expiresAt: now + (this.init.recordTtl ?? 86_400) * 1000,
      node: this.init.nodeName
    }, this.components.keys)
    await this.checkNotTaken('domain', domain, options.signal)
    this.remember(key, record)
    return await this.put(key, bytes, 'domain', options.signal)
  }

  /** Signs and stores the login record of a local user; returns how many peers accepted it. */
  async publishLogin (user: LocalUser, options: { signal?: AbortSignal } = {}): Promise<number> {
    const now = Date.now()
    const { record, bytes, key } = signRecord<LoginRecord>({
      kind: 'login',
      name: user.login,
      seq: this.nextSeq(),
      issuedAt: now,
      expiresAt: now + (this.init.recordTtl ?? 86_400) * 1000,
      node: this.init.nodeName,
      displayName: (user.displayName ?? '').slice(0, 128),
      listed: user.listed === true
    }, this.components.keys)
    await this.checkNotTaken('login', user.login, options.signal)
    this.published.set(user.login, { record, bytes })
    this.remember(key, record)
    return await this.put(key, bytes, 'login', options.signal)
  }

  /** A local user was added or changed: publish its record again (queued, a few at a time, in the background). */
  userChanged (user: LocalUser): void {
    if (this.init.publishLogins === false) return
    this.pending.set(user.login, user)
    if (this.draining == null) this.draining = this.drain().finally(() => { this.draining = undefined })
  }

  private async drain (): Promise<void> {
    const signal = this.abort.signal
    while (this.pending.size > 0 && !signal.aborted) {
      const batch = [...this.pending.values()].slice(0, 64)
      for (const u of batch) this.pending.delete(u.login)
      await runLimited(batch, 4, async (user) => {
        try {
          await this.publishLogin(user, { signal })
        } catch (err) {
          if (err instanceof NameTakenError) this.log.error({ login: user.login, owner: err.ownerPeerId }, 'login is owned by another node in the directory: not published')
          else if (!signal.aborted) this.log.warn({ login: user.login, err }, 'cannot publish login record')
        }
      })
    }
    if (!signal.aborted) await this.search.refreshTokens()
  }

  /** A local user was removed: stop republishing it and withdraw its search tokens; its record expires. */
  userRemoved (login: string): void {
    this.pending.delete(login)
    this.published.delete(login)
    this.cache.delete(recordKey('login', login))
    void this.search.refreshTokens()
  }

  /** The signed login records of listed local users (for search answers). */
  listings (): Listing[] {
    return [...this.published.values()].filter(p => p.record.listed)
  }

  /**
   * Resolves `login@node`, `login` or a node name. `login@node`: the node record of `node`, plus the login record
   * when the login's home is that node. A bare name: its login record and home node record, else a node record.
   */
  async resolve (query: string, options: { signal?: AbortSignal } = {}): Promise<Resolution> {
    const at = query.lastIndexOf('@')
    if (at >= 0) {
      const login = checkName(query.slice(0, at), 'login')
      const node = await this.resolveNode(checkName(query.slice(at + 1), 'node'), options)
      let rec: LoginRecord | undefined
      try {
        const r = await this.resolveLogin(login, options)
        if (r.node === node.name && r.peerId === node.peerId) rec = r
      } catch (err) {
        if (!(err instanceof NameNotFoundError)) throw err
      }
      return { node, ...(rec != null ? { login: rec } : {}) }
    }
    if (E164_NAME_RE.test(query.trim())) {
      const did = await this.resolveDid(query.trim(), options)
      let node: NodeRecord | undefined
      try {
        node = await this.resolveNode(did.node, options)
        if (node.peerId !== did.peerId) node = undefined
      } catch (err) {
        if (!(err instanceof NameNotFoundError)) throw err
      }
      return { did, ...(node != null ? { node } : {}) }
    }
    const name = checkName(query, 'name')
    try {
      const login = await this.resolveLogin(name, options)
      let node: NodeRecord | undefined
      try {
        node = await this.resolveNode(login.node, options)
        if (node.peerId !== login.peerId) node = undefined
      } catch (err) {
        if (!(err instanceof NameNotFoundError)) throw err
      }
      return { login, ...(node != null ? { node } : {}) }
    } catch (err) {
      if (!(err instanceof NameNotFoundError)) throw err
      return { node: await this.resolveNode(name, options) }
    }
  }

  async resolveLogin (login: string, options: { signal?: AbortSignal } = {}): Promise<LoginRecord> {
    return await this.resolveKind('login', checkName(login, 'login'), options) as LoginRecord
  }

  async resolveNode (name: string, options: { signal?: AbortSignal } = {}): Promise<NodeRecord> {
    const record = await this.resolveKind('node', checkName(name, 'node'), options) as NodeRecord
    // a node behind NAT is dialled at the /p2p-circuit addresses of its signed record
    await this.components.p2p.learnAddresses?.(record.peerId, record.addrs)
    return record
  }

  /**
   * This node's addresses changed (a relay reservation made or lost): publish the node record again soon, so
   * callers find the new `/p2p-circuit` addresses. Several changes within a second make one publication.
   */
  addressesChanged (): void {
    if (this.abort.signal.aborted || this.republishSoon != null) return
    this.republishSoon = setTimeout(() => {
      this.republishSoon = undefined
      void this.publishNode({ signal: this.abort.signal }).catch((err: unknown) => {
        if (!this.abort.signal.aborted) this.log.warn({ err }, 'cannot republish node record')
      })
    }, 1000)
    this.republishSoon.unref()
  }

  /**
   * The node serving SIP domain `domain`: its domain record names a node whose node record is signed by the same key
   * and lists the domain (both checked on every read). Throws NameNotFoundError('domain') otherwise.
   */
  async resolveDomain (domain: string, options: { signal?: AbortSignal } = {}): Promise<NodeRecord> {
    const name = checkName(domain, 'domain')
    if (!isDomainName(name)) throw new InvalidInputError('domain', `"${domain}" is not a domain name`)
    const rec = await this.resolveKind('domain', name, options) as DomainRecord
    const node = await this.resolveNode(rec.node, options)
    if (node.peerId !== rec.peerId || !node.domains.some(d => d.toLowerCase() === name)) {
      this.log.warn({ domain: name, node: rec.node, peer: rec.peerId }, 'domain record and node record disagree')
      throw new NameNotFoundError('domain', name)
    }
    return node
  }

  /** Directory search (see search.ts). */
  async find (query: string, options: { signal?: AbortSignal } = {}): Promise<SearchResult[]> {
    return await this.search.search(query, options)
  }

  /** Drops every cached resolution. */
  clearCache (): void {
    this.cache.clear()
  }

  private async resolveKind (kind: RecordKind, name: string, options: { signal?: AbortSignal }): Promise<DirectoryRecord> {
    const key = recordKey(kind, name)
    const now = Date.now()
    const hit = this.cache.get(key)
    if (hit != null && hit.until > now) {
      this.m.cacheHits?.inc({ kind, result: hit.record != null ? 'positive' : 'negative' })
      if (hit.record == null) throw new NameNotFoundError(kind, name)
      if (hit.record.expiresAt > now) return hit.record
    }
    let p = this.inflight.get(key)
    if (p == null) {
      p = this.lookup(kind, name, key, options).finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return await p
  }

  private async lookup (kind: RecordKind, name: string, key: string, options: { signal?: AbortSignal }): Promise<DirectoryRecord> {
    const signal = AbortSignal.any([this.signal(options.signal), AbortSignal.timeout(this.init.resolveTimeout ?? 10_000)])
    let result: 'found' | 'not-found' | 'refused' | 'error' = 'error'
    try {
      const { values } = await this.components.p2p.getRecords(encoder.encode(key), { signal })
      const byBytes = new Map<string, { record: DirectoryRecord, holders: number }>()
      for (const { from, value } of values) {
        const id = Buffer.from(value).toString('base64')
        const known = byBytes.get(id)
        if (known != null) { known.holders++; continue }
        try {
          byBytes.set(id, { record: decodeRecord(key, value), holders: 1 })
        } catch (err) {
          if (!(err instanceof RecordRejectedError)) throw err
          this.log.debug({ peer: from, key, reason: err.reason }, 'ignoring invalid record')
        }
      }
      const candidates = [...byBytes.values()]
      const pinKey = `${kind}!${name}`
      const pin = await this.components.pins.get(pinKey)
      const now = Date.now()
      const pinLive = pin != null && pin.expiresAt > now
      const i = selectRecord(candidates, pinLive ? pin.publicKey : undefined)
      if (i < 0) {
        result = 'not-found'
        this.cacheSet(key, null, (this.init.negativeCacheTtl ?? 10) * 1000)
        throw new NameNotFoundError(kind, name)
      }
      const chosen = candidates[i]!.record
      if (pinLive && chosen.publicKey !== pin.publicKey) {
        result = 'refused'
        this.log.warn({ kind, name, pinned: pin.peerId, offered: chosen.peerId }, 'owner key of a name changed while the pinned owner is live: refused')
        throw new NameKeyChangedError(kind, name, pin.peerId, chosen.peerId)
      }
      if (pin == null || pin.publicKey !== chosen.publicKey || pin.expiresAt < chosen.expiresAt) {
        if (pin != null && pin.publicKey !== chosen.publicKey) this.log.warn({ kind, name, previous: pin.peerId, now: chosen.peerId }, 'name changed owner after the previous owner let it expire')
        const firstSeen = pin != null && pin.publicKey === chosen.publicKey ? pin.firstSeen : now
        await this.components.pins.put(pinKey, { peerId: chosen.peerId, publicKey: chosen.publicKey, firstSeen, expiresAt: chosen.expiresAt })
      }
      result = 'found'
      this.remember(key, chosen)
      return chosen
    } finally {
      this.m.resolutions?.inc({ kind, result })
    }
  }

  /** Refuses to publish a name that a live record under another key holds (first-come, as remote peers enforce). */
  private async checkNotTaken (kind: RecordKind, name: string, signal?: AbortSignal): Promise<void> {
    const key = recordKey(kind, name)
    if (this.checkedNames.has(key)) return
    let owner: DirectoryRecord | undefined
    try {
      owner = await this.resolveKind(kind, name, signal != null ? { signal } : {})
    } catch (err) {
      if (err instanceof NameKeyChangedError) throw new NameTakenError(kind, name, err.offeredPeerId)
      if (signal?.aborted === true) throw err
      if (!(err instanceof NameNotFoundError)) {
        // the network did not answer in time: publish anyway (storing peers enforce ownership) and check next time
        this.log.debug({ kind, name, err: (err as Error).message }, 'ownership check inconclusive')
        return
      }
    }
    if (owner != null && owner.publicKey !== Buffer.from(this.components.keys.publicKey).toString('base64url')) throw new NameTakenError(kind, name, owner.peerId)
    this.checkedNames.add(key)
  }

  private async put (key: string, bytes: Uint8Array, kind: RecordKind, signal?: AbortSignal): Promise<number> {
    try {
      const peers = await this.components.p2p.putRecord(encoder.encode(key), bytes, signal != null ? { signal } : {})
      this.m.published?.inc({ kind, result: peers > 0 ? 'stored' : 'local-only' })
      return peers
    } catch (err) {
      this.m.published?.inc({ kind, result: 'error' })
      throw err
    }
  }

  private remember (key: string, record: DirectoryRecord): void {
    this.cacheSet(key, record, Math.min((this.init.cacheTtl ?? 60) * 1000, record.expiresAt - Date.now()))
  }

  private cacheSet (key: string, record: DirectoryRecord | null, ttlMs: number): void {
    if (ttlMs <= 0) return
    if (this.cache.size >= 10_000) {
      const oldest = this.cache.keys().next().value
      if (oldest != null) this.cache.delete(oldest)
    }
    this.cache.delete(key)
    this.cache.set(key, { record, until: Date.now() + ttlMs })
  }

  /** Strictly increasing, and above any seq published before a restart as long as the clock does not go back. */
  private nextSeq (): number {
    this.lastSeq = Math.max(this.lastSeq + 1, Date.now())
    return this.lastSeq
  }

  /** Publishes now and then every republishInterval; retries sooner while no peer took the node record. */
  private schedule (delayMs: number): void {
    if (this.abort.signal.aborted) return
    this.timer = setTimeout(() => {
      this.running = this.publishAll({ signal: this.abort.signal }).then((peers) => {
        const interval = (this.init.republishInterval ?? 14_400) * 1000
        if (peers > 0) {
          this.retryDelay = 2000
          this.schedule(interval)
        } else {
          this.schedule(Math.min(this.retryDelay, interval))
          this.retryDelay = Math.min(this.retryDelay * 2, interval)
        }
      }, (err: unknown) => {
        if (this.abort.signal.aborted) return
        if (err instanceof NameTakenError) this.log.error({ name: this.init.nodeName, owner: err.ownerPeerId }, 'node name is owned by another node: choose another node.name')
        else this.log.warn({ err }, 'cannot publish directory records')
        this.schedule(Math.min(this.retryDelay, (this.init.republishInterval ?? 14_400) * 1000))
        this.retryDelay = Math.min(this.retryDelay * 2, (this.init.republishInterval ?? 14_400) * 1000)
      })
    }, delayMs)
    this.timer.unref()
  }

  private signal (extra?: AbortSignal): AbortSignal {
    return extra != null ? AbortSignal.any([this.abort.signal, extra]) : this.abort.signal
  }

  /** This node's current record, if published. */
  get ownRecord (): NodeRecord | undefined { return this.nodeRecord?.record }
}

function checkName (raw: string, field: string): string {
  const name = foldName(raw.trim())
  const problem = nameProblem(name)
  if (problem != null) throw new InvalidInputError(field, `"${raw}" ${problem}`)
  return name
}

/**
 * Peer ids of the relays in relay addresses: `/…/p2p/<relay>` as `relayAddresses()` gives them (the part before
 * `/p2p-circuit`), or whole `/…/p2p/<relay>/p2p-circuit/…` addresses.
 */
export function relayPeersOf (addrs: string[]): string[] {
  const peers: string[] = []
  for (const a of addrs) {
    const i = a.indexOf('/p2p-circuit')
    const m = /\/p2p\/([^/]+)$/.exec(i >= 0 ? a.slice(0, i) : a)
    if (m != null) peers.push(m[1]!)
  }
  return peers
}
