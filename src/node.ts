import { networkInterfaces, hostname } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { DestinationStream } from 'pino'
import { createLogger, forComponent, PromMetrics, startAll, stopAll, type Logger, type Startable } from './core/index.js'
import type { M1Config } from './config/index.js'
import { Store } from './store/index.js'
import { NonceManager, FailureLimiter, type DigestAlgorithm } from './sip/auth/index.js'
import { SipStack } from './sip/stack.js'
import { createRequest, newBranch, newCallId, newTag, parseUri, type SipRequest } from './sip/message/index.js'
import { Users, Authenticator, Pbx, parseTrunkUser, type PbxSettings } from './users/index.js'
import { Location, Registrar, Keepalive, type Binding } from './registrar/index.js'
import { Router, B2bua, CallRecords, RemoteTargets, P2pSipTransport, P2pMediaLinks, PbxRouting, UpstreamRegistrations, type CallRecord, type UpstreamStatus } from './routing/index.js'
import { MediaRelay } from './media/index.js'
import { Messaging, type MessageRecord, type NodeQueueState, type MailboxEntry } from './messaging/index.js'
import type { LocalEnd } from './sip/dialog/index.js'
import type { TransportName } from './sip/message/index.js'
import { WebServer } from './web/index.js'
import { P2p, StunServer, ed25519Keys, type P2pInit } from './p2p/index.js'
import { Directory, RecordValidator, type NamePin } from './directory/index.js'
import { FILES, defaultNodeName, ensureDataDir, loadIdentity, loadToken, removeDaemonInfo, writeDaemonInfo, type Identity } from './datadir.js'
import { VERSION } from './version.js'

export interface NodeOptions {
  /** an existing pino root; otherwise one is made from `[log]` */
  logger?: Logger
  /** where logs go when the node makes its own logger (default stdout) */
  logDestination?: DestinationStream
}

export interface NodeInfo {
  name: string
  domain: string
  realm: string
  peerId: string
  dataDir: string
  version: string
  sip: Array<{ transport: string, address: string, port: number }>
  web?: string
  uptimeSeconds: number
  registrations: number
  /** libp2p addresses (each ending in /p2p/<peer id>) when p2p runs */
  p2p?: string[]
  /** registrations to upstream providers (`[[upstream]]`), when any */
  upstream?: UpstreamStatus[]
  /** whether the node counts itself reachable at its own addresses (else it is reached through relays) */
  public?: boolean
  /** relays this node holds a reservation on */
  relays?: string[]
  /** load of this node's relay server, when it is a relay */
  relay?: { reservations: number, circuits: number, bytesPerSecond: number }
}

/**
 * The composition root: the only place that builds every component. Start order: store, users, location,
 * registrar, SIP stack (listeners last, so no request reaches a half-built node), web; stop in reverse.
 */
export class M1Node {
  readonly logger: Logger
  readonly metrics = new PromMetrics({ defaultMetrics: true })
  readonly store: Store
  users!: Users
  pbx!: Pbx
  upstream?: UpstreamRegistrations
  location!: Location
  stack!: SipStack
  calls!: B2bua
  records!: CallRecords
  media?: MediaRelay
  /** `/m1/rtp/1.0.0` streams of calls between nodes */
  mediaLinks?: P2pMediaLinks
  web?: WebServer
  p2p?: P2p
  directory?: Directory
  messaging?: Messaging
  stun?: StunServer
  private identity!: Identity
  private name!: string
  private domain!: string
  private realm!: string
  private localHosts = new Set<string>()
  private started: Startable[] = []
  private ready = false
  private readonly startedAt = Date.now()

  constructor (readonly config: M1Config, readonly dataDir: string, opts: NodeOptions = {}) {
    this.logger = opts.logger ?? createLogger({ level: config.log.level as 'info' }, opts.logDestination)
    this.store = new Store({ logger: forComponent(this.logger, 'store') }, { path: join(dataDir, FILES.store), sync: config.store.sync })
  }

  async start (): Promise<void> {
    const { config, logger } = this
    await ensureDataDir(this.dataDir)
    this.identity = await loadIdentity(this.dataDir)
    this.name = config.node.name !== '' ? config.node.name : defaultNodeName(this.identity)
    this.domain = (config.sip.domain !== '' ? config.sip.domain : this.name).toLowerCase()
    this.realm = config.auth.realm !== '' ? config.auth.realm : this.domain
    const token = await loadToken(this.dataDir)

    await this.store.start()
    this.started.push(this.store)
    try {
      await this.build(token)
      await startAll(this.started.slice(1))
    } catch (err) {
      await stopAll(this.started)
      this.started = []
      throw err
    }
    for (const a of this.stack.addresses()) this.localHosts.add(a.address)
    if (this.web != null) await writeDaemonInfo(this.dataDir, { pid: process.pid, url: this.web.url, startedAt: this.startedAt })
    this.ready = true
    logger.info({ name: this.name, domain: this.domain, peerId: this.identity.peerId, sip: this.stack.addresses(), web: this.web?.url }, 'node started')
  }

  async stop (): Promise<void> {
    this.ready = false
    const errors = await stopAll(this.started.slice(1))
    await removeDaemonInfo(this.dataDir).catch(() => {})
    errors.push(...await stopAll(this.started.slice(0, 1)))
    this.started = []
    for (const err of errors) this.logger.error({ err }, 'stop failed')
    this.logger.info('node stopped')
  }

  private async build (token: string): Promise<void> {
    const { config, logger, metrics } = this
    const settings = this.store.table<string>('setting_value')
    let secret = await settings.get('nonce_secret')
    if (secret == null) {
      secret = randomBytes(32).toString('base64')
      await settings.put('nonce_secret', secret, { sync: true })
    }

    this.collectLocalHosts()
    const isLocalDomain = (host: string): boolean => this.localHosts.has(host.toLowerCase().replace(/^\[|\]$/g, ''))

    const users = this.users = new Users({ store: this.store }, { realm: this.realm })
    const pbx = this.pbx = new Pbx({ store: this.store, userExists: async (login) => await users.get(login) != null }, { realm: this.realm, defaultDistribution: config.pbx.distribution as PbxSettings['distribution'] })
    // a removed login takes its trunks and DIDs with it
    users.addEventListener('user:removed', (evt) => {
      void pbx.forget((evt as CustomEvent<{ login: string }>).detail.login).catch((err: unknown) => { logger.error({ err }, 'cannot remove the trunks and DIDs of a removed user') })
    })
    const location = this.location = new Location({ table: this.store.table<Binding[]>('aor_contacts'), sync: config.store.sync, logger: forComponent(logger, 'registrar:location'), metrics })
    const authenticator = new Authenticator({
      // a trunk's username is `<login>_<name>` (docs/pbx.md)
      users: { credentials: async (principal) => parseTrunkUser(principal) != null ? await pbx.credentials(principal) : await users.credentials(principal) },
      nonces: new NonceManager({ secret: Buffer.from(secret, 'base64'), lifetimeMs: config.auth.nonceLifetime * 1000 }),
      limiter: new FailureLimiter({ maxFailures: config.auth.maxFailures, windowMs: config.auth.failureWindow * 1000, blockMs: config.auth.blockTime * 1000 }),
      logger: forComponent(logger, 'auth'),
      metrics
    }, { realm: this.realm, algorithms: config.auth.algorithms as DigestAlgorithm[] })
    const registrar = new Registrar({
      authenticate: async (req, source) => await authenticator.authenticate(req, source),
      principal: (p) => { const t = parseTrunkUser(p); return t != null ? { login: t.login, trunk: t.name } : { login: p } },
      location,
      isLocalDomain,
      logger: forComponent(logger, 'registrar'),
      metrics
    }, {
      minExpires: config.registrar.minExpires,
      maxExpires: config.registrar.maxExpires,
      defaultExpires: config.registrar.defaultExpires,
      maxContacts: config.registrar.maxContacts
    })

    const sip = config.sip
    const stack = this.stack = new SipStack({ logger, metrics }, {
      transports: {
        udp: sip.transports.includes('udp') ? { host: sip.host, port: sip.udpPort } : false,
        tcp: sip.transports.includes('tcp') ? { host: sip.host, port: sip.tcpPort, idleTimeoutMs: sip.tcpIdleTimeout * 1000, maxConnections: sip.maxConnections } : false,
        ws: sip.transports.includes('ws') ? { host: sip.host, port: sip.wsPort, maxConnections: sip.maxConnections } : false,
        egressAllow: sip.egressAllow
      },
      timers: { t1: sip.t1, t2: sip.t2, t4: sip.t4 },
      forceRport: sip.forceRport
    })
    const advertised = advertisedAddress(sip.advertisedAddress, sip.host)
    const localEnd = (transport: TransportName): LocalEnd => {
      // SIP over libp2p: Via and Contact name the node; answers and in-dialog requests follow the stream, not them
      if (transport === 'P2P') return { transport, host: this.name, port: 5060 }
      const a = stack.addresses().find(x => x.transport === transport) ?? stack.addresses()[0]
      return { transport, host: advertised, port: a?.port ?? 5060 }
    }
    const records = this.records = new CallRecords({ table: this.store.table<CallRecord>('time_cdr') })
    // calls to other nodes are anchored whatever media.anchor says: the relay exists whenever p2p runs
    const media = config.media.anchor === 'never' && !config.p2p.enabled
      ? undefined
      : this.media = new MediaRelay({ allows: (address) => stack.transports.allows(address), logger: forComponent(logger, 'media'), metrics }, {
        host: config.media.host,
        advertisedAddress: advertisedAddress(config.media.advertisedAddress, config.media.host === '0.0.0.0' ? sip.host : config.media.host),
        portMin: config.media.portMin,
        portMax: config.media.portMax,
        timeoutSeconds: config.media.timeout
      })
    // the libp2p node and the directory start after the store and before the SIP stack, and stop after it
    if (config.p2p.enabled) this.buildDirectory(users)
    const p2p = this.p2p
    const directory = this.directory
    // media of calls between nodes rides on libp2p streams (routing opens them, media/ only sees packets)
    const remoteMedia = p2p != null && media != null
      ? this.mediaLinks = new P2pMediaLinks({
        p2p,
        relay: media,
        selfPeerId: () => this.identity.peerId,
        // STUN on the relays we hold tells ICE our public mapping (src/p2p/stun.ts runs on every relay)
        iceServers: () => stunServers(p2p.relayAddresses(), config.p2p.stunPort),
        logger: forComponent(logger, 'routing:p2p-media'),
        metrics
      }, {
        direct: config.p2p.directMedia,
        // a node listening on loopback only (tests, a single host) keeps ICE on loopback too
        directPath: config.p2p.listen.every(a => a.startsWith('/ip4/127.')) ? { bindAddress: '127.0.0.1' } : {}
      })
      : undefined
    const calls = this.calls = new B2bua({
      stack,
      records,
      ...(media != null ? { media } : {}),
      ...(remoteMedia != null ? { remoteMedia } : {}),
      localEnd,
      logger: forComponent(logger, 'routing:b2bua'),
      metrics
    }, {
      domain: this.domain,
      ringTimeoutSeconds: config.routing.ringTimeout,
      maxCalls: config.routing.maxCalls,
      maxCallsPerLogin: config.routing.maxCallsPerLogin,
      anchorMedia: config.media.anchor as 'always',
      t1: sip.t1,
      t2: sip.t2,
      userAgent: `m1node/${VERSION}`
    })
    if (p2p != null) {
      // SIP between nodes: a transport of the stack, built here because it rides on libp2p (sip/ and p2p/ never meet)
      stack.transports.add(hooks => new P2pSipTransport({ p2p, hooks, logger: forComponent(logger, 'routing:p2p-sip') }))
    }
    const remote = directory != null
      ? new RemoteTargets({ directory, selfPeerId: () => this.identity.peerId, logger: forComponent(logger, 'routing:targets') })
      : undefined
    const messaging = config.messaging.enabled ? this.buildMessaging(stack, authenticator, users, location, isLocalDomain, remote) : undefined
    if (messaging != null && p2p != null) {
      // a new relay is a new mailbox (the node record names it): mail held there while the node was away comes in now
      p2p.addEventListener('addresses:changed', () => { void messaging.pullMailboxes().catch((err: unknown) => { logger.warn({ err }, 'mailbox pull failed') }) })
    }
    const upstream = config.upstream.length > 0
      ? this.upstream = new UpstreamRegistrations({ stack, localEnd, logger: forComponent(logger, 'routing:upstream'), metrics }, {
        accounts: config.upstream.map(u => ({
          server: u.server,
          username: u.username,
          password: u.password,
          ...(u.authUsername !== '' ? { authUsername: u.authUsername } : {}),
          ...(u.domain !== '' ? { domain: u.domain } : {}),
          expiry: u.expiry,
          transport: u.transport as 'udp',
          ...(u.contactUser !== '' ? { contactUser: u.contactUser } : {})
        }))
      })
      : undefined
    const providers = new Set(config.pbx.didProviders)
    const pbxRouting = new PbxRouting({
      pbx,
      isProvider: (address) => providers.has(address) || upstream?.isServer(address) === true,
      logger: forComponent(logger, 'routing:pbx')
    }, { domain: this.domain, failoverTimeout: config.pbx.failoverTimeout })
    const router = new Router({
      registrar,
      authenticate: async (req, source) => await authenticator.authenticate(req, source, { proxy: true }),
      users,
      location,
      calls,
      isLocalDomain,
      matchInviteForCancel: (cancel) => stack.transactions.matchInviteForCancel(cancel),
      ...(remote != null ? { remote } : {}),
      ...(messaging != null ? { messages: messaging } : {}),
      pbx: pbxRouting,
      logger: forComponent(logger, 'routing')
    }, { server: `m1node/${VERSION}`, domain: this.domain, nodeName: this.name, allowAnonymous: config.routing.allowAnonymous, sipEgress: config.routing.sipEgress })
    stack.setUser(router)
    stack.transports.addEventListener('flow:closed', (evt) => {
      // a WebSocket client can never be reached again once its connection is gone (RFC 7118 §5)
      if (evt.detail.transport === 'WS') void location.removeByFlow(evt.detail.id).catch(err => logger.error({ err }, 'cannot drop bindings of closed flow'))
    })
    const keepalive = new Keepalive({ location, ping: async (aor, b) => await this.ping(aor, b), logger: forComponent(logger, 'registrar:keepalive') }, {
      intervalSeconds: config.registrar.keepaliveInterval,
      maxFailures: config.registrar.keepaliveFailures
    })

    media?.addEventListener('media:timeout', (evt) => { calls.mediaTimeout((evt as CustomEvent<{ callId: string }>).detail.callId) })
    // a call whose stream to the other node died (its relay went away) and found no other path: BYE to both sides
    remoteMedia?.addEventListener('media:lost', (evt) => { calls.mediaLost((evt as CustomEvent<{ callId: string }>).detail.callId) })
    // calls stop before the stack so that their BYEs and CANCELs still leave; media after the calls it carries
    if (media != null) this.started.push(media)
    if (remoteMedia != null) this.started.push(remoteMedia)
    this.started.push(location, stack, calls, keepalive)
    // messaging after the stack: it sends to devices at start, and stops before the stack goes
    if (messaging != null) this.started.push(messaging)
    this.started.push(pbx, location, stack, calls, keepalive)
    if (upstream != null) this.started.push(upstream)
    if (config.web.enabled) {
      this.web = new WebServer({
        users,
        location,
        pbx: this.pbx,
        records,
        ...(messaging != null ? { messages: messaging } : {}),
        ...(this.directory != null ? { directory: this.directory } : {}),
        ...(this.p2p != null ? { peers: async () => await this.p2p!.peers() } : {}),
        metrics,
        status: () => ({ ...this.info() }),
        ready: () => this.ready,
        logger: forComponent(logger, 'web')
      }, { host: config.web.host, port: config.web.port, token })
      this.started.push(this.web)
    }
  }

  /** Store-and-forward messages: sublevels msgid_message, node_outbox, peer_mailbox; `/m1/msg` and `/m1/mailbox` when p2p runs. */
  private buildMessaging (stack: SipStack, authenticator: Authenticator, users: Users, location: Location, isLocalDomain: (host: string) => boolean, remote: RemoteTargets | undefined): Messaging {
    const { config, logger, metrics } = this
    const m = config.messaging
    return this.messaging = new Messaging({
      messages: this.store.table<MessageRecord>('msgid_message'),
      nodes: this.store.table<NodeQueueState>('node_outbox'),
      mailbox: this.store.table<MailboxEntry>('peer_mailbox'),
      stack,
      authenticate: async (req, source) => await authenticator.authenticate(req, source, { proxy: true }),
      users,
      location,
      isLocalDomain,
      ...(remote != null ? { remote } : {}),
      ...(this.directory != null ? { directory: this.directory } : {}),
      ...(this.p2p != null ? { p2p: this.p2p, relayMailboxes: () => this.p2p!.relayPeers(), onPeerConnect: (listener: (peer: string) => void) => this.onPeerConnect(listener) } : {}),
      logger: forComponent(logger, 'messaging'),
      metrics
    }, {
      domain: this.domain,
      nodeName: this.name,
      allowAnonymous: config.routing.allowAnonymous,
      maxBodyBytes: m.maxBodyBytes,
      rateBurst: m.rateBurst,
      ratePerSecond: m.ratePerSecond,
      inboxMax: m.inboxMax,
      messageTtl: m.messageTtl,
      historyTtl: m.historyTtl,
      offlineAfter: m.offlineAfter,
      mailboxes: [...m.mailboxes],
      mailboxPollInterval: m.mailboxPollInterval,
      mailboxHold: m.mailboxHold,
      mailboxMaxPerDepositor: m.mailboxMaxPerDepositor,
      mailboxMaxPerNode: m.mailboxMaxPerNode,
      userAgent: `m1node/${VERSION}`
    })
  }

  /** Calls `listener` with the peer id of each new libp2p connection; returns the unsubscribe. */
  private onPeerConnect (listener: (peer: string) => void): () => void {
    const libp2p = this.p2p!.libp2p
    const handler = (evt: CustomEvent<{ toString: () => string }>): void => { listener(evt.detail.toString()) }
    libp2p.addEventListener('peer:connect', handler)
    return () => { libp2p.removeEventListener('peer:connect', handler) }
  }

  /** The libp2p node (own datastore under <data>/p2p) and the directory; login records follow user changes. */
  private buildDirectory (users: Users): void {
    const { config, logger, metrics } = this
    let p2p: P2p | undefined
    const validator = new RecordValidator({ localRecord: async (key) => await p2p?.localRecord(key), metrics, logger: forComponent(logger, 'directory:records') })
    p2p = this.p2p = new P2p({ privateKey: this.identity.privateKey, records: validator, logger: forComponent(logger, 'p2p'), metrics }, {
      listen: [...config.p2p.listen],
      announce: [...config.p2p.announce],
      bootstrap: [...config.p2p.bootstrap],
      allowPrivateAddresses: config.p2p.allowPrivateAddresses,
      datastorePath: join(this.dataDir, 'p2p'),
      ...natInit(config)
    })
    const directory = this.directory = new Directory({
      p2p,
      keys: ed25519Keys(this.identity.privateKey),
      pins: this.store.table<NamePin>('name_pin'),
      localUsers: async () => [
        ...(await users.list()).map(u => ({ login: u.login, ...(u.displayName != null ? { displayName: u.displayName } : {}), listed: u.listed === true })),
        // PBX aliases with entries of their own (docs/pbx.md): `sales.acme` is then found and called across the network
        ...(await this.pbx.listedAliases()).map(login => ({ login, listed: true }))
      ],
      ...(config.pbx.announceDids ? { localDids: async () => (await this.pbx.listDids()).map(d => d.did) } : {}),
      logger: forComponent(logger, 'directory'),
      metrics
    }, {
      nodeName: this.name,
      domains: [...new Set([this.domain, ...config.sip.aliases.map(a => a.toLowerCase())])].filter(d => d !== ''),
      version: `m1node/${VERSION}`,
      recordTtl: config.directory.recordTtl,
      republishInterval: config.directory.republishInterval,
      cacheTtl: config.directory.cacheTtl,
      negativeCacheTtl: config.directory.negativeCacheTtl,
      publishLogins: config.directory.publishLogins,
      mailboxes: [...config.messaging.mailboxes]
    })
    const changed = (evt: Event): void => {
      const u = (evt as CustomEvent<{ user: { login: string, displayName?: string, listed?: boolean } }>).detail.user
      directory.userChanged({ login: u.login, ...(u.displayName != null ? { displayName: u.displayName } : {}), listed: u.listed === true })
    }
    users.addEventListener('user:added', changed)
    users.addEventListener('user:changed', changed)
    users.addEventListener('user:removed', (evt) => { directory.userRemoved((evt as CustomEvent<{ login: string }>).detail.login) })
    this.pbx.addEventListener('alias:changed', (evt) => {
      const { name, listed, removed } = (evt as CustomEvent<{ name: string, listed: boolean, removed: boolean }>).detail
      if (listed && !removed) directory.userChanged({ login: name, listed: true })
      else directory.userRemoved(name)
    })
    if (config.pbx.announceDids) {
      this.pbx.addEventListener('did:added', (evt) => { directory.didAdded((evt as CustomEvent<{ did: { did: string } }>).detail.did.did) })
      this.pbx.addEventListener('did:removed', (evt) => { directory.didRemoved((evt as CustomEvent<{ did: string }>).detail.did) })
    }
    // a relay reservation made or lost changes where the node is reached: its node record follows
    p2p.addEventListener('addresses:changed', () => { directory.addressesChanged() })
    this.started.push(p2p, directory)
    if (config.relay.enabled && config.relay.stun) {
      this.stun = new StunServer({ logger: forComponent(logger, 'p2p:stun'), metrics }, { host: '0.0.0.0', port: config.relay.stunPort })
      this.started.push(this.stun)
    }
  }

  /** Names and addresses that mean "this node" in a Request-URI or To. */
  private collectLocalHosts (): void {
    const hosts = this.localHosts
    for (const h of [this.domain, this.name, ...this.config.sip.aliases, 'localhost', hostname()]) hosts.add(h.toLowerCase())
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) hosts.add(a.address.toLowerCase())
    }
    if (this.config.sip.host !== '0.0.0.0' && this.config.sip.host !== '::') hosts.add(this.config.sip.host)
  }

  /** OPTIONS keep-alive to a device over the flow it registered on. */
  private async ping (aor: string, b: Binding): Promise<boolean> {
    const uri = parseUri(b.contact)
    const flow = b.flow
    const req: SipRequest = createRequest({
      method: 'OPTIONS',
      uri,
      from: { uri: parseUri(`sip:${this.domain}`), rawUri: `sip:${this.domain}`, params: { tag: newTag() } },
      to: { uri: parseUri(`sip:${aor}@${this.domain}`), rawUri: `sip:${aor}@${this.domain}`, params: {} },
      callId: newCallId(),
      cseq: 1,
      via: { protocol: 'SIP/2.0', transport: flow.transport, host: flow.localAddress, port: flow.localPort, params: { branch: newBranch(), rport: null } },
      maxForwards: 70
    })
    return await new Promise<boolean>(resolve => {
      this.stack.request(req, { transport: flow.transport as 'UDP', address: flow.remoteAddress, port: flow.remotePort, flowId: flow.id }, {
        onResponse: (res) => { if (res.status >= 200) resolve(true) },
        onTimeout: () => { resolve(false) },
        onTransportError: () => { resolve(false) }
      })
    })
  }

  info (): NodeInfo {
    return {
      name: this.name,
      domain: this.domain,
      realm: this.realm,
      peerId: this.identity?.peerId ?? '',
      dataDir: this.dataDir,
      version: VERSION,
      sip: this.stack?.addresses() ?? [],
      ...(this.web != null ? { web: this.web.url } : {}),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      registrations: this.location?.size ?? 0,
      ...(this.p2p?.started === true ? { p2p: this.p2p.addresses(), public: this.p2p.isPublic, relays: this.p2p.relayAddresses() } : {}),
      ...(this.p2p?.relayLoad() != null ? { relay: this.p2p.relayLoad()! } : {}),
      ...(this.upstream != null ? { upstream: this.upstream.status() } : {})
    }
  }
}

/** The NAT traversal part of the p2p init: reachability, relays to reserve on, hole punching, relay server caps. */
function natInit (config: M1Config): Pick<P2pInit, 'public' | 'relays' | 'relayReservations' | 'holePunching' | 'relayServer'> {
  const p = config.p2p
  const r = config.relay
  return {
    public: p.public === 'auto' ? 'auto' : p.public === 'true',
    relays: [...p.relays],
    relayReservations: p.relayReservations,
    holePunching: p.holePunching,
    ...(r.enabled
      ? {
          relayServer: {
            maxReservations: r.maxReservations,
            maxCircuits: r.maxCircuits,
            maxPeerBytesPerSecond: r.maxPeerKbps * 125,
            maxTotalBytesPerSecond: r.maxTotalKbps * 125,
            reservationTtl: r.reservationTtl
          }
        }
      : {})
  }
}

/** The address put in Via and Contact: configured, else the bound host, else the first non-loopback IPv4. */
export function advertisedAddress (configured: string, host: string): string {
  if (configured !== '') return configured
  if (host !== '0.0.0.0' && host !== '::') return host
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address
  }
  return '127.0.0.1'
}

/** `stun:<ip>:<port>` for each relay multiaddr with an IPv4 address (`/ip4/<ip>/tcp/...`). */
export function stunServers (relayAddrs: string[], port: number): string[] {
  const out = new Set<string>()
  for (const a of relayAddrs) {
    const m = /^\/ip4\/(\d{1,3}(?:\.\d{1,3}){3})\//.exec(a)
    if (m != null) out.add(`stun:${m[1]!}:${port}`)
  }
  return [...out]
}
