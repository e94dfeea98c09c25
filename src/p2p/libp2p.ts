import { AsyncLocalStorage } from 'node:async_hooks'
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { LevelDatastore } from 'datastore-level'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { AbortOptions, Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { toString as u8ToString } from 'uint8arrays/to-string'
import type { Logger, Metrics, MetricCounter } from '../core/index.js'
import { P2pError } from './errors.js'
import { libp2pLogger } from './log.js'
import { RelayCaps, RELAY_HOP_PROTOCOL, RELAY_PROVIDER_TOKEN, type RelayServerInit } from './relay.js'
import { RelayFinder } from './relay-finder.js'
import { isPublicMultiaddr } from './addresses.js'
import { dial, handleRequests, request, type HandleOptions, type RequestHandler, type RequestOptions } from './peers.js'

/** The private Kademlia protocol of the m1 network (not the public IPFS DHT). */
export const KAD_PROTOCOL = '/m1/kad/1.0.0'

/** Where a DHT record is checked: a PUT from a peer, or a value read (our own get, or our local copy). */
export interface ValidationContext {
  /** the peer that sent a PUT; absent when the record came back from a query or from our own datastore */
  from?: string
}

/**
 * The record policy kad-dht calls for keys of the `/m1/` namespace. `validate` throws to refuse a record;
 * `select` returns the index of the best of several values. The policy lives in directory/; p2p only wires it in.
 */
export interface RecordPolicy {
  validate(key: Uint8Array, value: Uint8Array, context: ValidationContext): Promise<void> | void
  select(key: Uint8Array, values: Uint8Array[]): number
}

export interface P2pComponents {
  /** the node identity (an Ed25519 libp2p key from `<data>/identity.key`) */
  privateKey: PrivateKey
  records: RecordPolicy
  logger: Logger
  metrics?: Metrics
}

export interface P2pInit {
  /** TCP multiaddrs to listen on. @default ['/ip4/0.0.0.0/tcp/4001'] */
  listen: string[]
  /** Multiaddrs to announce instead of the listening ones (public address behind a port forward). @default [] */
  announce: string[]
  /** Multiaddrs (with /p2p/<peer id>) dialled at start and whenever the node has no peer. @default [] */
  bootstrap: string[]
  /** Keep loopback and private addresses in DHT peer records (LAN and test networks). @default false */
  allowPrivateAddresses: boolean
  /** Directory of the libp2p LevelDB datastore (DHT records, provider records), apart from the node's store. */
  datastorePath: string
  /** New inbound connections per second from one host; libp2p's 5 is too low for a bootstrap node. @default 100 */
  inboundConnectionThreshold?: number
  /** @default 300 */
  maxConnections?: number
  /** Seconds between bootstrap attempts while the node has no peer. @default 30 */
  bootstrapInterval?: number
  /** Refused DHT records from one peer within a minute after which it is disconnected for ten minutes. @default 20 */
  maxBadRecords?: number
  /**
   * Whether the node is reachable from the internet at its own addresses. `auto`: public when a listen or announce
   * address is a public IP (or the network allows private addresses: a LAN or test network); otherwise the node
   * is behind NAT. A node behind NAT reserves slots on relays, announces `/p2p-circuit` addresses and runs the DHT
   * in client mode. @default 'auto'
   */
  public?: boolean | 'auto'
  /** Relay multiaddrs (with /p2p/<peer id>) to reserve on first when behind NAT. @default [] */
  relays?: string[]
  /** Relays to hold reservations on when behind NAT. @default 2 */
  relayReservations?: number
  /** Run DCUtR so relayed connections move to a direct one when the NATs allow it. @default true */
  holePunching?: boolean
  /** Run a circuit relay v2 server (a volunteer supernode) with these caps; absent: no relay server. */
  relayServer?: RelayServerInit
  /** Extra libp2p options (relay transport, dcutr, ...) merged over the defaults. */
  extra?: Partial<Libp2pOptions<any>>
}

/** One connected peer as `m1node peers` shows it. */
export interface PeerInfo { peerId: string, addrs: string[], direction: string, protocols: string[] }

/** One value of a DHT get, with the peer that held it (ourselves for the local copy). */
export interface DhtValue { from: string, value: Uint8Array }

export interface GetResult {
  values: DhtValue[]
  /** peers a query message was sent to */
  queried: number
}

type Services = { dht: KadDHT, identify: Identify, ping: Ping, relay?: CircuitRelayService, dcutr?: unknown }

/** Events of the libp2p node. */
export interface P2pEvents {
  /** the node's own addresses changed (a relay reservation was made or lost, a new observed address) */
  'addresses:changed': CustomEvent<{ addrs: string[] }>
}

/**
 * The libp2p node: TCP, noise, yamux, identify, ping and kad-dht on `/m1/kad/1.0.0` in server mode, with the record
 * policy injected under the `m1` namespace. Mechanism only: it knows nothing of names or records.
 */
export class P2p extends EventTarget {
  private node?: Libp2p<Services>
  private datastore?: LevelDatastore
  private readonly log: Logger
  private readonly inbound = new AsyncLocalStorage<string>()
  private readonly strikes = new Map<string, { count: number, since: number }>()
  private readonly banned = new Map<string, number>()
  private bootstrapTimer?: NodeJS.Timeout
  private readonly badRecords?: MetricCounter
  private relayCaps?: RelayCaps
  private finder?: RelayFinder
  private provideTimer?: NodeJS.Timeout
  private confirmTimer?: NodeJS.Timeout
  private lastAddrs = ''
  /** whether the node counts itself reachable at its own addresses (decided at start) */
  isPublic = true

  constructor (private readonly components: P2pComponents, private readonly init: P2pInit) {
    super()
    this.log = components.logger
    this.badRecords = components.metrics?.counter('m1node_p2p_peers_disconnected_total', 'Peers disconnected for sending refused records')
  }

  /** The libp2p node itself (tests, and the composition root for protocols not wrapped here). */
  get libp2p (): Libp2p<Services> {
    if (this.node == null) throw new P2pError('p2p is not started')
    return this.node
  }

  get peerId (): string { return this.node?.peerId.toString() ?? '' }

  get started (): boolean { return this.node != null }

  async start (): Promise<void> {
    const { init, components } = this
    const datastore = this.datastore = new LevelDatastore(init.datastorePath)
    try {
      await datastore.open()
    } catch (err) {
      throw new P2pError(`cannot open p2p datastore ${init.datastorePath}`, { cause: err })
    }
    const validate = async (key: Uint8Array, value: Uint8Array): Promise<void> => {
      const from = this.inbound.getStore()
      try {
        await components.records.validate(key, value, from != null ? { from } : {})
      } catch (err) {
        if (from != null) this.strike(from)
        throw err
      }
    }
    const isPublic = this.isPublic = init.public === 'auto' || init.public == null
      ? init.allowPrivateAddresses || [...init.listen, ...init.announce].some(a => isPublicMultiaddr(a))
      : init.public
    const want = init.relayReservations ?? 2
    // Behind NAT the reservations are made by RelayFinder on chosen relays (`<relay>/p2p-circuit` listen addresses),
    // not by listening on a bare '/p2p-circuit': that starts libp2p's relay discovery, whose random walk spins
    // without yielding while the DHT has no peer to ask.
    const listen = init.listen
    const caps = this.relayCaps = init.relayServer != null ? new RelayCaps({ logger: this.log, ...(components.metrics != null ? { metrics: components.metrics } : {}) }, init.relayServer) : undefined
    const options: Libp2pOptions<Services> = {
      privateKey: components.privateKey,
      addresses: { listen, announce: init.announce },
      transports: [tcp(), circuitRelayTransport({ reservationCompletionTimeout: 10_000 })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      datastore,
      logger: libp2pLogger(this.log),
      // libp2p's connection monitor aborts any connection whose ping (every 10 s) is late once: under load that cuts
      // relayed calls. Connections to relays are watched by RelayFinder instead (two missed pings in a row).
      connectionMonitor: { abortConnectionOnPingFailure: false },
      connectionManager: {
        inboundConnectionThreshold: init.inboundConnectionThreshold ?? 100,
        maxIncomingPendingConnections: 100,
        maxConnections: init.maxConnections ?? 300
      },
      connectionGater: {
        denyInboundEncryptedConnection: (peer: PeerId) => this.isBanned(peer.toString()),
        denyDialPeer: (peer: PeerId) => this.isBanned(peer.toString()),
        ...(caps != null ? caps.gater() : {}),
        // loopback and private targets are only dialled when the network is a LAN or test network
        ...(init.allowPrivateAddresses ? { denyDialMultiaddr: () => false } : {})
      },
      services: {
        identify: identify(),
        ping: ping(),
        ...(caps != null ? { relay: circuitRelayServer(caps.serverOptions()) } : {}),
        ...(init.holePunching !== false ? { dcutr: dcutr() } : {}),
        dht: kadDHT({
          protocol: KAD_PROTOCOL,
          // a node behind NAT cannot answer queries from peers that cannot reach it
          clientMode: !isPublic,
          validators: { m1: validate },
          selectors: { m1: (key, values) => components.records.select(key, values) },
          peerInfoMapper: init.allowPrivateAddresses ? passthroughMapper : removePrivateAddressesMapper,
          // the routing table is not persisted: queries must run before the first peer answers
          allowQueryWithZeroPeers: true
        })
      },
      ...init.extra
    }
    try {
      const node = await createLibp2p<Services>(options)
      // Serve the DHT protocol inside an async context naming the remote peer, so a refused PUT can be held against
      // the peer that sent it (kad-dht's validators only see key and value). Stream middleware cannot do this: the
      // handler runs outside the middleware's async context (and libp2p 3.3 appends to the middleware list on every
      // inbound stream).
      const rpc = (node.services.dht as unknown as { rpc?: { onIncomingStream?: (s: Stream, c: Connection) => Promise<void> } }).rpc
      if (typeof rpc?.onIncomingStream === 'function') {
        const serve = rpc.onIncomingStream.bind(rpc)
        await node.handle(KAD_PROTOCOL, async (stream, connection) => {
          await this.inbound.run(connection.remotePeer.toString(), async () => { await serve(stream, connection) })
        }, { force: true, maxInboundStreams: 32, maxOutboundStreams: 64 })
      }
      this.node = node
      caps?.attach(node)
      if (isPublic) this.confirmOwnAddresses()
      node.addEventListener('self:peer:update', () => { this.addressesChanged() })
    } catch (err) {
      await datastore.close().catch(() => {})
      throw new P2pError(`cannot start libp2p: ${(err as Error).message}`, { cause: err })
    }
    this.log.info({ peerId: this.peerId, addrs: this.addresses(), public: isPublic, relay: caps != null }, 'p2p started')
    this.lastAddrs = this.addresses().join(' ')
    if (!isPublic) {
      this.finder = new RelayFinder({ p2p: this, logger: this.log }, { relays: [...(init.relays ?? []), ...init.bootstrap], want })
      this.finder.start()
    }
    if (caps != null) this.advertiseRelay(2000)
    void this.bootstrap()
    const interval = (init.bootstrapInterval ?? 30) * 1000
    this.bootstrapTimer = setInterval(() => {
      if (this.node != null && this.node.getConnections().length === 0) void this.bootstrap()
    }, interval)
    this.bootstrapTimer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.bootstrapTimer)
    clearTimeout(this.provideTimer)
    clearTimeout(this.confirmTimer)
    this.finder?.stop()
    this.finder = undefined
    this.relayCaps?.detach()
    const node = this.node
    this.node = undefined
    if (node != null) await node.stop()
    await this.datastore?.close().catch(() => {})
    this.datastore = undefined
  }

  /** Dials every bootstrap address; returns how many answered. Failures are logged, never thrown. */
  async bootstrap (options: AbortOptions = {}): Promise<number> {
    const node = this.node
    if (node == null) return 0
    let ok = 0
    await Promise.all(this.init.bootstrap.map(async (addr) => {
      try {
        await node.dial(multiaddr(addr), { signal: options.signal ?? AbortSignal.timeout(10_000) })
        ok++
      } catch (err) {
        this.log.warn({ addr, err: (err as Error).message }, 'bootstrap peer unreachable')
      }
    }))
    return ok
  }

  /** Addresses the node listens on, each ending in /p2p/<peer id>. */
  addresses (): string[] {
    return this.node?.getMultiaddrs().map(a => a.toString()) ?? []
  }

  /** Connected peers. */
  async peers (): Promise<PeerInfo[]> {
    const node = this.node
    if (node == null) return []
    const out: PeerInfo[] = []
    for (const c of node.getConnections()) {
      let protocols: string[] = []
      try { protocols = (await node.peerStore.get(c.remotePeer)).protocols } catch {}
      out.push({ peerId: c.remotePeer.toString(), addrs: [c.remoteAddr.toString()], direction: c.direction, protocols })
    }
    return out
  }

  /** Relay server load (reservations, open relayed connections, bytes per second); undefined when not a relay. */
  relayLoad (): { reservations: number, circuits: number, bytesPerSecond: number } | undefined {
    return this.relayCaps?.load()
  }

  /** The relays this node holds a reservation on: their multiaddrs (the part before `/p2p-circuit`), deduplicated. */
  relayAddresses (): string[] {
    const out = new Set<string>()
    for (const a of this.addresses()) {
      const i = a.indexOf('/p2p-circuit')
      if (i > 0) out.add(a.slice(0, i))
    }
    return [...out]
  }

  /** Peer ids of the relays this node holds a reservation on. */
  relayPeers (): string[] {
    return [...new Set(this.relayAddresses().map(a => a.slice(a.lastIndexOf('/p2p/') + 5)))]
  }

  /** Connected peers that speak the circuit relay HOP protocol (as identify told), each with the address we reach it at. */
  async connectedRelays (): Promise<string[]> {
    const node = this.node
    if (node == null) return []
    const out: string[] = []
    for (const c of node.getConnections()) {
      if (c.remoteAddr.toString().includes('/p2p-circuit')) continue
      try {
        if (!(await node.peerStore.get(c.remotePeer)).protocols.includes(RELAY_HOP_PROTOCOL)) continue
      } catch {
        continue
      }
      const a = c.remoteAddr.toString()
      out.push(a.includes('/p2p/') ? a : `${a}/p2p/${c.remotePeer.toString()}`)
    }
    return [...new Set(out)]
  }

  /**
   * Reserves a slot on a relay (a multiaddr ending in /p2p/<relay id>) and listens on its `/p2p-circuit` address;
   * throws when the relay is unreachable or refuses. libp2p refreshes the reservation while the connection lasts.
   */
  async reserveOn (relayAddr: string): Promise<void> {
    const tm = (this.libp2p as unknown as { components: { transportManager: { listen: (addrs: Multiaddr[]) => Promise<void> } } }).components.transportManager
    await tm.listen([multiaddr(`${relayAddr}/p2p-circuit`)])
  }

  /** Connections to a peer: whether any is open, and whether one is direct (not through a relay). */
  connectionTo (peer: string): { connected: boolean, direct: boolean, relayed: boolean } {
    const conns = this.node?.getConnections(peerIdFromString(peer)) ?? []
    const relayed = conns.some(c => c.remoteAddr.toString().includes('/p2p-circuit'))
    return { connected: conns.length > 0, direct: conns.some(c => !c.remoteAddr.toString().includes('/p2p-circuit')), relayed }
  }

  /** Round-trip time of a ping to a connected peer, in milliseconds; throws when it fails or `signal` fires first. */
  async ping (peer: string, options: AbortOptions = {}): Promise<number> {
    return await this.libp2p.services.ping.ping(peerIdFromString(peer), { ...options, runOnLimitedConnection: true } as AbortOptions)
  }

  /** Closes every connection to a peer. */
  async hangUp (peer: string): Promise<void> {
    await this.node?.hangUp(peerIdFromString(peer)).catch(() => {})
  }

  /** Adds addresses of a peer (from its signed node record) to the peer store, so a dial by peer id finds them. */
  async learnAddresses (peer: string, addrs: string[]): Promise<void> {
    const node = this.node
    if (node == null || peer === this.peerId) return
    const list: Multiaddr[] = []
    for (const a of addrs.slice(0, 16)) {
      try { list.push(multiaddr(a)) } catch {}
    }
    if (list.length === 0) return
    try {
      await node.peerStore.merge(peerIdFromString(peer), { multiaddrs: list })
    } catch (err) {
      this.log.debug({ err, peer }, 'cannot store peer addresses')
    }
  }

  /** Announces this relay in the DHT (provider record of `/m1/relay`); again every ten minutes, sooner after a failure. */
  private advertiseRelay (delayMs: number): void {
    this.provideTimer = setTimeout(() => {
      if (this.node == null) return
      void this.provide(RELAY_PROVIDER_TOKEN, { signal: AbortSignal.timeout(30_000) }).then(
        () => { this.advertiseRelay(this.routingTableSize > 0 ? 600_000 : 5000) },
        (err: unknown) => { this.log.debug({ err }, 'relay advertisement failed'); this.advertiseRelay(this.routingTableSize > 0 ? 30_000 : 5000) })
    }, delayMs)
    this.provideTimer.unref()
  }

  /**
   * A public node vouches for its own listen addresses. libp2p 3 announces a public IP address only once something
   * (AutoNAT) has verified it; m1 nodes decide reachability by configuration (`p2p.public`) instead. Again every
   * thirty minutes, within libp2p's verification TTL.
   */
  private confirmOwnAddresses (): void {
    const node = this.node as unknown as { components?: { transportManager?: { getAddrs: () => Multiaddr[] }, addressManager?: { confirmObservedAddr: (a: Multiaddr, o?: { type?: string }) => void } } } | undefined
    const c = node?.components
    if (c?.transportManager == null || c.addressManager == null) return
    for (const a of c.transportManager.getAddrs()) {
      try { c.addressManager.confirmObservedAddr(a, { type: 'transport' }) } catch (err) { this.log.debug({ err }, 'cannot confirm own address') }
    }
    clearTimeout(this.confirmTimer)
    this.confirmTimer = setTimeout(() => { this.confirmOwnAddresses() }, 30 * 60_000)
    this.confirmTimer.unref()
  }

  private addressesChanged (): void {
    const addrs = this.addresses()
    const key = addrs.join(' ')
    if (key === this.lastAddrs) return
    this.lastAddrs = key
    this.log.info({ addrs }, 'own addresses changed')
    this.finder?.nudge()
    this.dispatchEvent(new CustomEvent('addresses:changed', { detail: { addrs } }))
  }

  /** Dials a peer by multiaddr or peer id (used by tests and by `--bootstrap`). */
  async dial (target: string, options: AbortOptions = {}): Promise<void> {
    const t: Multiaddr | PeerId = target.startsWith('/') ? multiaddr(target) : peerIdFromString(target)
    await this.libp2p.dial(t, options)
  }

  /** Number of peers in the DHT routing table. */
  get routingTableSize (): number {
    return (this.node?.services.dht as unknown as { routingTable?: { size: number } } | undefined)?.routingTable?.size ?? 0
  }

  /** Stores a value locally and on the closest peers; returns how many peers accepted it. */
  async putRecord (key: Uint8Array, value: Uint8Array, options: AbortOptions = {}): Promise<number> {
    let accepted = 0
    for await (const e of this.libp2p.services.dht.put(key, value, options)) {
      if (e.name === 'PEER_RESPONSE' && e.messageName === 'PUT_VALUE') accepted++
    }
    return accepted
  }

  /**
   * Every valid value the query met, each with the peer that held it (kad-dht has already run the validator on
   * remote ones). A failed correction of an out-of-date peer does not lose the values gathered.
   */
  async getRecords (key: Uint8Array, options: AbortOptions = {}): Promise<GetResult> {
    const values: DhtValue[] = []
    const seen = new Set<string>()
    let queried = 0
    const self = this.peerId
    try {
      for await (const e of this.libp2p.services.dht.get(key, options)) {
        if (e.name === 'SEND_QUERY') queried++
        else if (e.name === 'PEER_RESPONSE' && e.record != null && e.messageName === 'GET_VALUE') {
          const from = e.from.toString()
          if (!seen.has(from)) { seen.add(from); values.push({ from, value: e.record.value }) }
        } else if (e.name === 'VALUE' && e.from.toString() === self && !seen.has(self)) {
          seen.add(self)
          values.push({ from: self, value: e.value })
        }
      }
    } catch (err) {
      options.signal?.throwIfAborted()
      this.log.debug({ err }, 'dht get ended with an error')
    }
    const local = await this.localRecord(key)
    if (local != null && !seen.has(self)) {
      try {
        await this.components.records.validate(key, local, {})
        values.push({ from: self, value: local })
      } catch {}
    }
    return { values, queried }
  }

  /** The value this node holds for a DHT key in its own datastore, unchecked. */
  async localRecord (key: Uint8Array): Promise<Uint8Array | undefined> {
    const ds = this.datastore
    if (ds == null) return undefined
    let raw: Uint8Array | undefined
    try {
      raw = await ds.db.get(`/dht/record/${u8ToString(key, 'base32')}`)
    } catch {
      return undefined
    }
    return raw == null ? undefined : decodeLibp2pRecordValue(raw)
  }

  /** Announces this node as a provider of a token (any bytes: hashed into a CID). */
  async provide (token: Uint8Array, options: AbortOptions = {}): Promise<void> {
    const cid = await tokenCid(token)
    for await (const _ of this.libp2p.services.dht.provide(cid, options)) { /* drain */ }
  }

  /** Stops re-providing a token. */
  async unprovide (token: Uint8Array, options: AbortOptions = {}): Promise<void> {
    await this.libp2p.services.dht.cancelReprovide(await tokenCid(token), options)
  }

  /** Peers that provide a token, up to `limit`. */
  async findProviders (token: Uint8Array, options: AbortOptions & { limit?: number } = {}): Promise<string[]> {
    const limit = options.limit ?? 20
    const cid = await tokenCid(token)
    const found = new Set<string>()
    const ctl = new AbortController()
    const signal = options.signal != null ? AbortSignal.any([options.signal, ctl.signal]) : ctl.signal
    try {
      for await (const e of this.libp2p.services.dht.findProviders(cid, { signal })) {
        if (e.name !== 'PROVIDER') continue
        for (const p of e.providers) found.add(p.id.toString())
        if (found.size >= limit) { ctl.abort(); break }
      }
    } catch (err) {
      options.signal?.throwIfAborted()
      if (!ctl.signal.aborted) this.log.debug({ err }, 'find providers ended with an error')
    }
    return [...found].slice(0, limit)
  }

  /** One request/response exchange of JSON frames with a peer. */
  async request (peer: string, protocol: string, frame: Record<string, unknown>, options: RequestOptions = {}): Promise<Record<string, unknown>> {
    return await request(this.libp2p, peer, protocol, frame, options)
  }

  /** Serves a request/response protocol; handlers never throw to the stream. */
  async handle (protocol: string, handler: RequestHandler, options: HandleOptions = {}): Promise<void> {
    await handleRequests(this.libp2p, protocol, handler, this.log, options)
  }

  /**
   * Serves a long-lived stream protocol: `handler` gets each inbound stream with the remote peer id (taken from
   * the secured connection). Limited (relayed) connections are accepted. The handler must not throw.
   */
  async handleStreams (protocol: string, handler: (stream: Stream, peer: string) => void, options: { maxInboundStreams?: number, maxOutboundStreams?: number } = {}): Promise<void> {
    await this.libp2p.handle(protocol, (stream: Stream, connection: Connection) => {
      const peer = connection.remotePeer.toString()
      if (this.isBanned(peer)) { stream.abort(new Error('banned')); return }
      handler(stream, peer)
    }, { runOnLimitedConnection: true, maxInboundStreams: options.maxInboundStreams ?? 4, maxOutboundStreams: options.maxOutboundStreams ?? 64 })
  }

  /** Opens a stream to `peer` on `protocol` (limited connections allowed); throws PeerUnreachableError. */
  async dialStream (peer: string, protocol: string, options: AbortOptions = {}): Promise<Stream> {
    return await dial(this.libp2p, peer, protocol, options)
  }

  async unhandle (protocol: string): Promise<void> {
    await this.node?.unhandle(protocol)
  }

  /** Counts a refused record against a peer; too many within a minute disconnects it for ten minutes. */
  private strike (peer: string): void {
    const now = Date.now()
    const s = this.strikes.get(peer)
    if (s == null || now - s.since > 60_000) {
      if (this.strikes.size > 10_000) this.strikes.clear()
      this.strikes.set(peer, { count: 1, since: now })
      return
    }
    s.count++
    if (s.count >= (this.init.maxBadRecords ?? 20)) {
      this.strikes.delete(peer)
      this.banned.set(peer, now + 600_000)
      this.badRecords?.inc()
      this.log.warn({ peer }, 'peer keeps sending refused records: disconnected')
      void this.node?.hangUp(peerIdFromString(peer)).catch(() => {})
    }
  }

  private isBanned (peer: string): boolean {
    const until = this.banned.get(peer)
    if (until == null) return false
    if (until > Date.now()) return true
    this.banned.delete(peer)
    return false
  }
}

/** A token as a CIDv1 (raw codec, sha2-256), the key kad-dht provider records use. */
async function tokenCid (token: Uint8Array): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(token))
}

/** The value field (2) of a serialized libp2p DHT record (protobuf: 1 key, 2 value, 5 timeReceived). */
export function decodeLibp2pRecordValue (buf: Uint8Array): Uint8Array | undefined {
  let i = 0
  const varint = (): number => {
    let v = 0
    for (let shift = 0; shift < 35; shift += 7) {
      if (i >= buf.length) throw new Error('short')
      const b = buf[i++]!
      v += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return v
    }
    throw new Error('varint too long')
  }
  try {
    while (i < buf.length) {
      const tag = varint()
      const field = tag >>> 3
      const wire = tag & 7
      if (wire === 2) {
        const len = varint()
        if (i + len > buf.length) return undefined
        if (field === 2) return buf.subarray(i, i + len)
        i += len
      } else if (wire === 0) {
        varint()
      } else {
        return undefined
      }
    }
  } catch {
    return undefined
  }
  return undefined
}
