import type { Logger, Metrics } from '../core/index.js'
import type { Table } from '../store/index.js'
import type { Binding } from '../registrar/index.js'
import { tryNormalizeLogin } from '../users/index.js'
import { createRequest, createResponse, getHeader, newBranch, newTag, parseUri, type SipRequest, type SipResponse, type SipUri } from '../sip/message/index.js'
import type { ClientTransactionUser } from '../sip/transaction/index.js'
import type { Flow, SendTarget } from '../sip/transport/index.js'
import { MessageIds, idFloor, idTime } from './ids.js'
import { Journal } from './journal.js'
import { InboxFullError, MessageDeniedError, MessageRateLimitError, MessageTooLargeError, UnknownRecipientError } from './errors.js'
import { RateLimiter } from './rate-limit.js'
import { BATCH_BODY_BYTES, MAILBOX_PROTOCOL, MAX_BATCH, MAX_MSG_FRAME_BYTES, MSG_PROTOCOL, readWireMessage, type WireMessage } from './wire.js'
import { imdnBody, IMDN_TYPE } from './imdn.js'

/** Where a message stands (`m1node msg list`). */
export type MessageState = 'accepted' | 'stored' | 'delivered' | 'failed'

/** One message as the node keeps it (sublevel `msgid_message`). */
export interface MessageRecord {
  id: string
  /** sender address: `login@domain` of a local sender, `login@node` of another node's, or an anonymous sender's URI */
  from: string
  /** the local login that sent it (history, delivery notifications) */
  fromLogin?: string
  /** receiver login (at `toNode` when set, else here) */
  to: string
  /** the receiver's node name when the receiver is elsewhere */
  toNode?: string
  type: string
  /** base64; emptied once the message is delivered or failed */
  body: string
  /** accepted at, epoch ms */
  at: number
  state: MessageState
  /** which queue still holds it: `local` (devices of `to`), `remote` (outbox toward `toNode`); absent: none */
  queue?: 'local' | 'remote'
  attempts: number
  nextAttemptAt: number
  /** peer id of the node that handed it to us (received messages): delivery status goes back there */
  origin?: string
  /** the sender asked for a delivery notification (RFC 5438 positive-delivery) */
  notify?: boolean
  /** why it failed, or where it is stored (`mailbox:<peer>`) */
  note?: string
  updatedAt: number
}

/** Outbox state of one destination node (sublevel `node_outbox`). */
export interface NodeQueueState {
  failures: number
  nextAttemptAt: number
}

/** A message held for another node (sublevel `peer_mailbox`, key `<recipient peer>!<id>`). */
export interface MailboxEntry {
  msg: WireMessage
  /** peer that deposited it (it owns the From node) */
  depositor: string
  /** the recipient node's name */
  node: string
  expiresAt: number
}

/** A node record as messaging reads it. */
export interface MessagingNode { name: string, peerId: string, domains: string[], mailboxes?: string[] }

export interface MessagingComponents {
  messages: Table<MessageRecord>
  nodes: Table<NodeQueueState>
  mailbox: Table<MailboxEntry>
  stack: { request: (req: SipRequest, target: SendTarget, user: ClientTransactionUser) => unknown }
  /** proxy authentication (407); returns the login or throws the auth layer's typed errors */
  authenticate: (req: SipRequest, source: string) => Promise<string>
  users: { get: (login: string) => Promise<{ login: string } | undefined> }
  location: { lookup: (aor: string) => Binding[], addEventListener: (type: 'contact:added', listener: (evt: Event) => void) => void, removeEventListener: (type: 'contact:added', listener: (evt: Event) => void) => void }
  isLocalDomain: (host: string) => boolean
  /** other m1 nodes (routing's RemoteTargets); absent when p2p is off */
  remote?: {
    byHost: (host: string, options?: { signal?: AbortSignal }) => Promise<{ name: string, peerId: string, domain: string }>
    byLogin: (login: string, options?: { signal?: AbortSignal }) => Promise<{ name: string, peerId: string, domain: string }>
    owns: (peer: string, host: string, options?: { signal?: AbortSignal }) => Promise<{ name: string } | undefined>
  }
  /** node records with their mailboxes (the directory) */
  directory?: { resolveNode: (name: string, options?: { signal?: AbortSignal }) => Promise<MessagingNode> }
  /** the libp2p node: request/response frames */
  p2p?: {
    readonly peerId: string
    request: (peer: string, protocol: string, frame: Record<string, unknown>, options?: { signal?: AbortSignal, maxFrameBytes?: number }) => Promise<Record<string, unknown>>
    handle: (protocol: string, handler: (frame: Record<string, unknown>, ctx: { peer: string, signal: AbortSignal }) => Promise<Record<string, unknown>>, options?: { maxInboundStreams?: number, timeoutMs?: number, maxFrameBytes?: number }) => Promise<void>
    unhandle: (protocol: string) => Promise<void>
  }
  /** peer ids of the relays this node holds now: they are its mailboxes too (its node record names them) */
  relayMailboxes?: () => string[]
  /** registers a listener for new connections with a peer (libp2p `peer:connect`): a node back online is tried at once */
  onPeerConnect?: (listener: (peer: string) => void) => () => void
  logger?: Logger
  metrics?: Metrics
  now?: () => number
}

export interface MessagingInit {
  /** our SIP domain: local senders are `login@domain` toward local devices */
  domain: string
  /** our node name: local senders are `login@name` toward other nodes @default domain */
  nodeName?: string
  /** senders from other domains may message local users without an account @default true */
  allowAnonymous: boolean
  /** largest MESSAGE body; larger gets 413 @default 65536 */
  maxBodyBytes?: number
  /** messages a sender may send at once before the rate applies @default 50 */
  rateBurst?: number
  /** messages per second a sender may keep sending (0: no limit) @default 10 */
  ratePerSecond?: number
  /** pending messages one receiver (or one destination node) may have; over it senders get 486 @default 1000 */
  inboxMax?: number
  /** seconds a pending message is retried before it fails @default 604800 */
  messageTtl?: number
  /** seconds delivered and failed messages stay listed (and their ids deduplicated) @default 604800 */
  historyTtl?: number
  /** first retry delay, ms; doubles per failure @default 1000 */
  retryBaseMs?: number
  /** longest retry delay, ms @default 300000 */
  retryMaxMs?: number
  /** failed attempts after which a node is assumed offline and its mailboxes get its messages @default 5 */
  offlineAfter?: number
  /** our mailboxes (peer ids or node names): published in the node record, pulled at start and periodically @default [] */
  mailboxes?: string[]
  /** seconds between mailbox pulls @default 300 */
  mailboxPollInterval?: number
  /** seconds a mailbox holds a message for another node @default 604800 */
  mailboxHold?: number
  /** messages a mailbox holds per depositing node @default 1000 */
  mailboxMaxPerDepositor?: number
  /** messages a mailbox holds per receiving node @default 10000 */
  mailboxMaxPerNode?: number
  /** fsync message writes (202 waits for its batch) @default true */
  sync?: boolean
  /** Server / User-Agent value @default 'm1node' */
  userAgent?: string
  /**
   * senders whose messages go to one receiver's devices at once (each sender one message at a time, so order per
   * sender → receiver holds) @default 8
   */
  maxInFlightPerReceiver?: number
}

/** records kept in memory between their hand-over to another node and its status report (~100 bytes each) */
const HANDED_OVER_MAX = 100_000

/** RFC 5438 §4.2 / RFC 3428: statuses after which retrying the same device cannot help. */
const PERMANENT = (s: number): boolean => s >= 400 && s < 500 && ![408, 429, 480, 486, 491].includes(s) || s === 604 || s === 603

const MESSAGE_ID_HEADER = 'M1-Message-ID'

/** Refusals of a receiving node that retrying cannot change; any other code (forbidden while the sender's record cannot be read yet, inbox-full, ...) is retried. */
const FINAL_CODES = new Set(['unknown-user', 'bad-message', 'conflict'])

type Outcome = { kind: 'delivered' } | { kind: 'retry' } | { kind: 'failed', note: string }

/**
 * Store-and-forward text messages (RFC 3428 MESSAGE). Every accepted message is written durably before its 202; a
 * per-receiver queue delivers it, in id order, to every device of the receiver; a per-node outbox carries messages
 * for other nodes over `/m1/msg/1.0.0` (at-least-once, deduplicated by id at the receiver) and, once a node is
 * assumed offline, to its mailboxes (`/m1/mailbox/1.0.0`). Records stay listed for `historyTtl` after they end.
 */
export class Messaging {
  private readonly journal: Journal<MessageRecord>
  private readonly ids = new MessageIds()
  private readonly limiter: RateLimiter
  /** pending records by id (bodies included): what the queues hold */
  private readonly pending = new Map<string, MessageRecord>()
  private readonly localQueues = new Map<string, string[]>()
  private readonly remoteQueues = new Map<string, string[]>()
  private readonly nodeStates = new Map<string, NodeQueueState>()
  private readonly draining = new Set<string>()
  /** receivers kicked while their dispatcher was busy */
  private readonly rekick = new Set<string>()
  /** receiver login -> senders that have a message with the receiver's devices now */
  private readonly inFlight = new Map<string, Set<string>>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly mailboxCounts = { byDepositor: new Map<string, number>(), byNode: new Map<string, number>() }
  private interval?: ReturnType<typeof setInterval>
  private offPeerConnect?: () => void
  /** peer id of each destination node, as last resolved */
  private readonly nodePeers = new Map<string, string>()
  /** every message id on record -> the peer it came from ('' for ours): the dedup window, kept in memory */
  private readonly known = new Map<string, string>()
  /**
   * records handed to another node (`stored`, bodies emptied), newest last, until that node reports their status:
   * a status report then needs no store read. Bounded; what falls out is read from the store.
   */
  private readonly handedOver = new Map<string, MessageRecord>()
  /** delivery status gathered per origin peer before it is sent */
  private readonly statusQueue = new Map<string, Array<{ id: string, state: string }>>()
  private running = false
  private readonly now: () => number
  private readonly cfg: Required<Omit<MessagingInit, 'nodeName'>> & { nodeName: string }
  private readonly onContact = (evt: Event): void => {
    const aor = (evt as CustomEvent<{ aor: string }>).detail.aor
    const q = this.localQueues.get(aor)
    if (q == null || q.length === 0) return
    // a device came: try now, whatever the backoff said (only the oldest message of each sender can be waiting)
    for (const id of q) {
      const rec = this.pending.get(id)
      if (rec != null && rec.nextAttemptAt > 0) rec.nextAttemptAt = 0
    }
    this.kickLocal(aor)
  }

  private readonly counters: Record<'accepted' | 'refused' | 'delivered' | 'failed', { inc: (labels?: Record<string, string>, value?: number) => void } | undefined>

  constructor (private readonly components: MessagingComponents, init: MessagingInit) {
    this.now = components.now ?? Date.now
    this.cfg = {
      domain: init.domain,
      nodeName: init.nodeName ?? init.domain,
      allowAnonymous: init.allowAnonymous,
      maxBodyBytes: init.maxBodyBytes ?? 65_536,
      rateBurst: init.rateBurst ?? 50,
      ratePerSecond: init.ratePerSecond ?? 10,
      inboxMax: init.inboxMax ?? 1000,
      messageTtl: init.messageTtl ?? 604_800,
      historyTtl: init.historyTtl ?? 604_800,
      retryBaseMs: init.retryBaseMs ?? 1000,
      retryMaxMs: init.retryMaxMs ?? 300_000,
      offlineAfter: init.offlineAfter ?? 5,
      mailboxes: init.mailboxes ?? [],
      mailboxPollInterval: init.mailboxPollInterval ?? 300,
      mailboxHold: init.mailboxHold ?? 604_800,
      mailboxMaxPerDepositor: init.mailboxMaxPerDepositor ?? 1000,
      mailboxMaxPerNode: init.mailboxMaxPerNode ?? 10_000,
      sync: init.sync ?? true,
      userAgent: init.userAgent ?? 'm1node',
      maxInFlightPerReceiver: Math.max(1, init.maxInFlightPerReceiver ?? 8)
    }
    this.journal = new Journal(components.messages, this.cfg.sync)
    this.limiter = new RateLimiter({ burst: this.cfg.rateBurst, perSecond: this.cfg.ratePerSecond, now: this.now })
    const m = components.metrics
    this.counters = {
      accepted: m?.counter('m1node_messaging_accepted_total', 'MESSAGE requests accepted (202) or messages received from other nodes', ['from']),
      refused: m?.counter('m1node_messaging_refused_total', 'MESSAGE requests refused, by status', ['status']),
      delivered: m?.counter('m1node_messaging_delivered_total', 'messages delivered: to a local device, or handed to the receiving node or a mailbox', ['to']),
      failed: m?.counter('m1node_messaging_failed_total', 'messages that failed for good', ['to'])
    }
    m?.gauge('m1node_messaging_outbox_depth', 'messages waiting for another node', [], () => sum(this.remoteQueues))
    m?.gauge('m1node_messaging_inbox_depth', 'messages waiting for a local device', [], () => sum(this.localQueues))
  }

  /** Loads pending messages and node states, pulls our mailboxes, then serves the protocols and drains the queues. */
  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    for await (const [, rec] of this.components.messages.entries()) {
      if (rec.queue != null) this.enqueue(rec)
      this.known.set(rec.id, rec.origin ?? '')
    }
    for await (const [name, st] of this.components.nodes.entries()) this.nodeStates.set(name, st)
    for await (const [, e] of this.components.mailbox.entries()) this.countMailbox(e, 1)
    const p2p = this.components.p2p
    if (p2p != null) {
      await p2p.handle(MAILBOX_PROTOCOL, async (frame, ctx) => await this.serveMailbox(frame, ctx.peer, ctx.signal), { maxInboundStreams: 16, timeoutMs: 10_000, maxFrameBytes: MAX_MSG_FRAME_BYTES })
      // mail held while we were away comes first, so that it is not overtaken by what senders deliver directly
      await this.pullMailboxes({ signal: AbortSignal.timeout(10_000) }).catch(err => this.components.logger?.warn({ err }, 'mailbox pull failed'))
      await p2p.handle(MSG_PROTOCOL, async (frame, ctx) => await this.serveMsg(frame, ctx.peer, ctx.signal), { maxInboundStreams: 32, timeoutMs: 10_000, maxFrameBytes: MAX_MSG_FRAME_BYTES })
    }
    this.components.location.addEventListener('contact:added', this.onContact)
    this.offPeerConnect = this.components.onPeerConnect?.((peer) => { this.peerConnected(peer) })
    for (const login of this.localQueues.keys()) this.kickLocal(login)
    for (const node of this.remoteQueues.keys()) this.kickRemote(node)
    this.interval = setInterval(() => { void this.housekeeping() }, Math.min(this.cfg.mailboxPollInterval, 60) * 1000)
    this.interval.unref()
  }

  async stop (): Promise<void> {
    this.running = false
    this.components.location.removeEventListener('contact:added', this.onContact)
    this.offPeerConnect?.()
    if (this.interval != null) clearInterval(this.interval)
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    await this.components.p2p?.unhandle(MSG_PROTOCOL).catch(() => {})
    await this.components.p2p?.unhandle(MAILBOX_PROTOCOL).catch(() => {})
    // writes already queued finish before the store closes
    await this.journal.write([{ type: 'del', key: '~' }]).catch(() => {})
  }

  /**
   * A MESSAGE out of dialog (RFC 3428). Who may send to whom follows calls: a sender claiming one of our users (From
   * in our domain) must authenticate (407); senders from elsewhere reach local users only when anonymous senders are
   * allowed; only authenticated local users reach other nodes. 202 once the message is durably stored.
   */
  async accept (req: SipRequest, flow: Flow): Promise<SipResponse> {
    try {
      return await this.acceptOrThrow(req, flow)
    } catch (err) {
      this.counters.refused?.inc({ status: statusOf(err) })
      throw err
    }
  }

  private async acceptOrThrow (req: SipRequest, flow: Flow): Promise<SipResponse> {
    const { isLocalDomain } = this.components
    // RFC 3428 §7: a body too large gets 413
    if (req.body.length > this.cfg.maxBodyBytes) throw new MessageTooLargeError(`body of ${req.body.length} bytes`)
    const targetLogin = localLoginOf(req.uri, isLocalDomain)
    const fromLocal = isLocalDomain(req.from.uri.host)
    let login: string | undefined
    if (fromLocal || !this.cfg.allowAnonymous || targetLogin === undefined) {
      login = await this.components.authenticate(req, flow.remoteAddress)
    }
    const wait = this.limiter.take(login ?? `ip:${flow.remoteAddress}`)
    if (wait > 0) throw new MessageRateLimitError(Math.ceil(wait / 1000))
    const type = getHeader(req, 'Content-Type') ?? 'text/plain'
    const notify = /positive-delivery/i.test(getHeader(req, 'Disposition-Notification') ?? '')
    const at = this.now()
    const base = { type: type.slice(0, 256), body: Buffer.from(req.body).toString('base64'), at, attempts: 0, nextAttemptAt: 0, updatedAt: at, ...(notify ? { notify } : {}) }

    // one read of the receiver's account serves both questions: is it ours, and may this sender reach it
    const user = targetLogin != null ? await this.components.users.get(targetLogin) : undefined
    if (targetLogin === undefined || (targetLogin !== null && login != null && user == null)) {
      // not ours (or a bare login another node publishes): only an authenticated local sender reaches other nodes
      if (login == null) throw new MessageDeniedError('relaying denied')
      const remote = this.components.remote
      if (remote == null) throw new UnknownRecipientError(`no route to ${req.uri.host}`)
      let node: { name: string }
      let to: string | undefined
      if (targetLogin === undefined) {
        to = req.uri.user != null ? tryNormalizeLogin(safeDecode(req.uri.user) ?? '') : undefined
        if (to == null) throw new UnknownRecipientError('not a login')
        node = await remote.byHost(req.uri.host).catch(err => { throw new UnknownRecipientError(`no m1 node serves ${req.uri.host}`, { cause: err }) })
      } else {
        to = targetLogin
        node = await remote.byLogin(targetLogin).catch(err => { throw new UnknownRecipientError(`no login ${targetLogin}`, { cause: err }) })
      }
      if ((this.remoteQueues.get(node.name)?.length ?? 0) >= this.cfg.inboxMax) throw new InboxFullError(`outbox to ${node.name} is full`)
      const rec: MessageRecord = { ...base, id: this.ids.next(at), from: `${login}@${this.cfg.nodeName}`, fromLogin: login, to, toNode: node.name, state: 'accepted', queue: 'remote' }
      return await this.store(req, rec)
    }
    if (targetLogin === null) throw new UnknownRecipientError('not a login')
    if (user == null) throw new UnknownRecipientError(`no user ${targetLogin}`)
    if ((this.localQueues.get(user.login)?.length ?? 0) >= this.cfg.inboxMax) throw new InboxFullError(`inbox of ${user.login} is full`)
    const from = login != null ? `${login}@${this.cfg.domain}` : addressOf(req.from.uri)
    const rec: MessageRecord = { ...base, id: this.ids.next(at), from, ...(login != null ? { fromLogin: login } : {}), to: user.login, state: 'accepted', queue: 'local' }
    return await this.store(req, rec)
  }

  private async store (req: SipRequest, rec: MessageRecord): Promise<SipResponse> {
    this.known.set(rec.id, '')
    await this.journal.write([{ type: 'put', key: rec.id, value: rec }])
    this.counters.accepted?.inc({ from: 'sip' })
    this.components.logger?.debug({ id: rec.id, from: rec.from, to: rec.to, node: rec.toNode }, 'message accepted')
    this.enqueue(rec)
    if (rec.queue === 'local') this.kickLocal(rec.to)
    else this.kickRemote(rec.toNode!)
    // RFC 3428 §7: 202, the message is stored and will be forwarded
    return createResponse(req, 202, 'Accepted', { toTag: newTag(), headers: [{ name: MESSAGE_ID_HEADER, value: rec.id }] })
  }

  /** Recent messages sent or received by `login`, oldest first. */
  async list (opts: { login?: string, since?: number, limit?: number } = {}): Promise<MessageRecord[]> {
    return await listMessages(this.components.messages, opts)
  }

  /** Messages waiting in the queues (local devices, other nodes). */
  get depth (): { local: number, remote: number } {
    return { local: sum(this.localQueues), remote: sum(this.remoteQueues) }
  }

  // ---- queues

  private enqueue (rec: MessageRecord): void {
    this.pending.set(rec.id, rec)
    const map = rec.queue === 'local' ? this.localQueues : this.remoteQueues
    const key = rec.queue === 'local' ? rec.to : rec.toNode!
    let q = map.get(key)
    if (q == null) map.set(key, q = [])
    // id order is acceptance order: a message arriving late (a mailbox) takes its place
    if (q.length === 0 || q[q.length - 1]! < rec.id) q.push(rec.id)
    else if (!q.includes(rec.id)) q.splice(sortedIndex(q, rec.id), 0, rec.id)
  }

  private dequeue (rec: MessageRecord, key: string, map: Map<string, string[]>): void {
    this.pending.delete(rec.id)
    const q = map.get(key)
    if (q == null) return
    // nearly always the head: the queues are drained in order
    if (q[0] === rec.id) q.shift()
    else {
      const i = q.indexOf(rec.id)
      if (i >= 0) q.splice(i, 1)
    }
    if (q.length === 0) map.delete(key)
  }

  private schedule (key: string, at: number, run: () => void): void {
    const old = this.timers.get(key)
    if (old != null) clearTimeout(old)
    const t = setTimeout(() => { this.timers.delete(key); run() }, Math.max(0, at - this.now()))
    t.unref()
    this.timers.set(key, t)
  }

  private backoff (attempts: number): number {
    return Math.min(this.cfg.retryMaxMs, this.cfg.retryBaseMs * 2 ** Math.min(attempts - 1, 30))
  }

  private kickLocal (login: string): void {
    if (!this.running) return
    // a kick while the dispatcher is in one of its writes runs it again after, so no message waits for a timer
    if (this.draining.has(`l:${login}`)) { this.rekick.add(login); return }
    this.draining.add(`l:${login}`)
    this.dispatchLocal(login)
      .catch(err => { this.components.logger?.error({ err, aor: login }, 'local delivery failed') })
      .finally(() => {
        this.draining.delete(`l:${login}`)
        if (this.rekick.delete(login)) this.kickLocal(login)
      })
  }

  /**
   * Starts deliveries of a receiver's queue: order is promised per sender → receiver, so each sender has at most one
   * message with the devices (the oldest of its own still queued), and up to `maxInFlightPerReceiver` senders are
   * served at once. A sender whose oldest message waits for its retry time holds back its later ones.
   */
  private async dispatchLocal (login: string): Promise<void> {
    if (!this.running) return
    const now = this.now()
    let busy = this.inFlight.get(login)
    // ids sort by acceptance time: expired messages are at the head
    for (let q = this.localQueues.get(login); q != null && q.length > 0; q = this.localQueues.get(login)) {
      const head = this.pending.get(q[0]!)!
      if (now - head.at <= this.cfg.messageTtl * 1000 || busy?.has(head.from) === true) break
      await this.finish(head, 'failed', 'expired')
    }
    const q = this.localQueues.get(login)
    if (q == null || q.length === 0) return
    const bindings = this.components.location.lookup(login)
    if (bindings.length === 0) {
      if ((busy?.size ?? 0) > 0) return
      // held until a device registers (contact:added)
      const held = q.map(i => this.pending.get(i)!).filter(r => r.state === 'accepted')
      for (const r of held) { r.state = 'stored'; r.updatedAt = now }
      if (held.length > 0) await this.journal.write(held.map(r => ({ type: 'put', key: r.id, value: r })))
      return
    }
    if (busy == null) this.inFlight.set(login, busy = new Set())
    const blocked = new Set(busy)
    let wake = Infinity
    // the scan is bounded: a queue of thousands from one sender needs no more than its head looked at
    const limit = Math.min(q.length, 64 + this.cfg.maxInFlightPerReceiver * 8)
    for (let i = 0; i < limit && busy.size < this.cfg.maxInFlightPerReceiver; i++) {
      const rec = this.pending.get(q[i]!)!
      if (blocked.has(rec.from)) continue
      blocked.add(rec.from)
      if (rec.nextAttemptAt > now) { wake = Math.min(wake, rec.nextAttemptAt); continue }
      busy.add(rec.from)
      void this.deliverLocal(login, rec, bindings, busy)
    }
    if (busy.size === 0) this.inFlight.delete(login)
    if (wake !== Infinity) this.schedule(`l:${login}`, wake, () => { this.kickLocal(login) })
  }

  /** One message to the receiver's devices; the sender's next message may go once this one is settled. */
  private async deliverLocal (login: string, rec: MessageRecord, bindings: Binding[], busy: Set<string>): Promise<void> {
    try {
      const outcome = await this.toDevices(rec, bindings)
      // the state write is queued in order and not awaited: the next message goes out meanwhile (a crash before it
      // lands means this one is delivered again, with the same id); finish() takes it off the queue at once
      if (outcome.kind === 'delivered') this.finish(rec, 'delivered').catch(err => this.components.logger?.error({ err, id: rec.id }, 'cannot record delivery'))
      else if (outcome.kind === 'failed') this.finish(rec, 'failed', outcome.note).catch(err => this.components.logger?.error({ err, id: rec.id }, 'cannot record failure'))
      else {
        rec.attempts++
        rec.nextAttemptAt = this.now() + this.backoff(rec.attempts)
        rec.updatedAt = this.now()
        await this.journal.write([{ type: 'put', key: rec.id, value: rec }])
        this.components.logger?.debug({ id: rec.id, aor: login, attempts: rec.attempts }, 'delivery failed, will retry')
      }
    } catch (err) {
      this.components.logger?.error({ err, id: rec.id, aor: login }, 'local delivery failed')
    } finally {
      busy.delete(rec.from)
      if (busy.size === 0 && this.inFlight.get(login) === busy) this.inFlight.delete(login)
      this.kickLocal(login)
    }
  }

  /** One MESSAGE to each device; delivered as soon as one answers 2xx. */
  private async toDevices (rec: MessageRecord, bindings: Binding[]): Promise<Outcome> {
    const body = Buffer.from(rec.body, 'base64')
    return await new Promise<Outcome>(resolve => {
      let left = bindings.length
      let permanent = 0
      let done = false
      const end = (status: number): void => {
        if (done) return
        if (status >= 200 && status < 300) { done = true; resolve({ kind: 'delivered' }); return }
        if (PERMANENT(status)) permanent++
        if (--left === 0) {
          done = true
          resolve(permanent === bindings.length ? { kind: 'failed', note: `device answered ${status}` } : { kind: 'retry' })
        }
      }
      for (const b of bindings) {
        let req: SipRequest
        try {
          req = this.deviceRequest(rec, b, body)
        } catch {
          end(400)
          continue
        }
        const flow = b.flow
        this.components.stack.request(req, { transport: flow.transport as 'UDP', address: flow.remoteAddress, port: flow.remotePort, flowId: flow.id }, {
          onResponse: (res) => { if (res.status >= 200) end(res.status) },
          onTimeout: () => { end(408) },
          onTransportError: () => { end(503) }
        })
      }
    })
  }

  private deviceRequest (rec: MessageRecord, b: Binding, body: Buffer): SipRequest {
    const flow = b.flow
    const fromUri = `sip:${rec.from}`
    const toUri = `sip:${rec.to}@${this.cfg.domain}`
    return createRequest({
      method: 'MESSAGE',
      uri: parseUri(b.contact),
      from: { uri: parseUri(fromUri), rawUri: fromUri, params: { tag: newTag() } },
      to: { uri: parseUri(toUri), rawUri: toUri, params: {} },
      // one Call-ID per message: a device that saw it already can tell (RFC 3428 §8 leaves duplicates to the UA)
      callId: `${rec.id}@${this.cfg.nodeName}`,
      cseq: rec.attempts + 1,
      via: { protocol: 'SIP/2.0', transport: flow.transport as 'UDP', host: flow.localAddress, port: flow.localPort, params: { branch: newBranch(), rport: null } },
      maxForwards: 70,
      headers: [
        ...b.path.map(p => ({ name: 'Route', value: p })),
        { name: 'Content-Type', value: rec.type },
        { name: MESSAGE_ID_HEADER, value: rec.id },
        { name: 'Date', value: new Date(rec.at).toUTCString() },
        { name: 'User-Agent', value: this.cfg.userAgent }
      ],
      body
    })
  }

  /** A message leaves its queue for good: delivered (or handed over) or failed; status goes to whoever waits for it. */
  private async finish (rec: MessageRecord, state: 'delivered' | 'failed', note?: string, stored = false): Promise<void> {
    const map = rec.queue === 'local' ? this.localQueues : this.remoteQueues
    const key = rec.queue === 'local' ? rec.to : rec.toNode!
    const wasLocal = rec.queue === 'local'
    this.dequeue(rec, key, map)
    const done: MessageRecord = { ...rec, state: stored ? 'stored' : state, body: '', updatedAt: this.now(), ...(note != null ? { note } : {}) }
    delete done.queue
    if (stored && !wasLocal && note == null) {
      this.handedOver.set(rec.id, done)
      if (this.handedOver.size > HANDED_OVER_MAX) this.handedOver.delete(this.handedOver.keys().next().value!)
    }
    await this.journal.write([{ type: 'put', key: rec.id, value: done }])
    if (state === 'delivered') this.counters.delivered?.inc({ to: wasLocal ? 'device' : stored ? 'mailbox' : 'node' })
    else this.counters.failed?.inc({ to: wasLocal ? 'device' : 'node' })
    this.components.logger?.debug({ id: rec.id, to: rec.to, node: rec.toNode, state: done.state, note }, 'message left its queue')
    if (wasLocal && rec.origin != null) this.reportToOrigin(rec.origin, [{ id: rec.id, state }])
    else if (wasLocal || state === 'failed') await this.notifySender(done, state)
  }

  /** A delivery notification (RFC 5438 message/imdn+xml) to the local sender, when it asked for one. */
  private async notifySender (rec: MessageRecord, state: 'delivered' | 'failed'): Promise<void> {
    if (rec.notify !== true || rec.fromLogin == null) return
    const at = this.now()
    const recipient = rec.toNode != null ? `${rec.to}@${rec.toNode}` : `${rec.to}@${this.cfg.domain}`
    const body = imdnBody({ messageId: rec.id, datetime: new Date(at).toISOString(), recipient: `sip:${recipient}`, status: state })
    const n: MessageRecord = { id: this.ids.next(at), from: recipient, to: rec.fromLogin, type: IMDN_TYPE, body: Buffer.from(body).toString('base64'), at, state: 'accepted', queue: 'local', attempts: 0, nextAttemptAt: 0, updatedAt: at }
    this.known.set(n.id, '')
    await this.journal.write([{ type: 'put', key: n.id, value: n }])
    this.enqueue(n)
    this.kickLocal(n.to)
  }

  // ---- other nodes: /m1/msg/1.0.0

  /** A connection with a node we hold messages for: its backoff ends now. */
  private peerConnected (peer: string): void {
    for (const [node, p] of this.nodePeers) {
      if (p !== peer || !this.remoteQueues.has(node)) continue
      const st = this.nodeStates.get(node)
      if (st != null) this.nodeStates.set(node, { ...st, nextAttemptAt: 0 })
      const t = this.timers.get(`r:${node}`)
      if (t != null) { clearTimeout(t); this.timers.delete(`r:${node}`) }
      this.kickRemote(node)
    }
  }

  private kickRemote (node: string): void {
    if (!this.running || this.draining.has(`r:${node}`)) return
    this.draining.add(`r:${node}`)
    this.drainRemote(node)
      .catch(err => { this.components.logger?.error({ err, node }, 'remote delivery failed') })
      .finally(() => { this.draining.delete(`r:${node}`) })
  }

  /** Sends a node's messages in id order, in batches; backoff per node, persisted; mailboxes once it seems offline. */
  private async drainRemote (node: string): Promise<void> {
    const { remote, p2p } = this.components
    for (;;) {
      if (!this.running) return
      const q = this.remoteQueues.get(node)
      if (q == null || q.length === 0) return
      const now = this.now()
      // ids sort by acceptance time: the expired ones are at the head
      for (let head = this.pending.get(q[0]!); head != null && now - head.at > this.cfg.messageTtl * 1000; head = this.pending.get(this.remoteQueues.get(node)?.[0] ?? '')) {
        await this.finish(head, 'failed', 'expired')
      }
      const st = this.nodeStates.get(node) ?? { failures: 0, nextAttemptAt: 0 }
      if (st.nextAttemptAt > now) return this.schedule(`r:${node}`, st.nextAttemptAt, () => { this.kickRemote(node) })
      const batch = this.batchOf(this.remoteQueues.get(node) ?? [])
      if (batch.length === 0) return
      try {
        if (remote == null || p2p == null) throw new Error('p2p is off')
        const target = await remote.byHost(node, { signal: AbortSignal.timeout(10_000) })
        this.nodePeers.set(node, target.peerId)
        const answer = await p2p.request(target.peerId, MSG_PROTOCOL, { type: 'deliver', messages: batch.map(wireOf) }, { signal: AbortSignal.timeout(15_000), maxFrameBytes: MAX_MSG_FRAME_BYTES })
        await this.applyResults(batch, answer, 'node')
        if (st.failures > 0 || st.nextAttemptAt > 0) await this.setNodeState(node, { failures: 0, nextAttemptAt: 0 })
      } catch (err) {
        const failures = st.failures + 1
        await this.setNodeState(node, { failures, nextAttemptAt: this.now() + this.backoff(failures) })
        this.components.logger?.debug({ err, node, failures }, 'node unreachable, will retry')
        if (failures >= this.cfg.offlineAfter) await this.deposit(node).catch(e => this.components.logger?.debug({ err: e, node }, 'no mailbox took the messages'))
      }
    }
  }

  private async setNodeState (node: string, st: NodeQueueState): Promise<void> {
    this.nodeStates.set(node, st)
    if (st.failures === 0) await this.components.nodes.del(node)
    else await this.components.nodes.put(node, st)
  }

  /** The first messages of a queue that fit one frame. */
  private batchOf (ids: string[]): MessageRecord[] {
    const out: MessageRecord[] = []
    let bytes = 0
    for (const id of ids) {
      const rec = this.pending.get(id)!
      if (out.length >= MAX_BATCH || (out.length > 0 && bytes + rec.body.length > BATCH_BODY_BYTES)) break
      out.push(rec)
      bytes += rec.body.length
    }
    return out
  }

  /** `{accepted: [id], rejected: [{id, code}]}`: accepted ones leave the outbox; permanent refusals fail. */
  private async applyResults (batch: MessageRecord[], answer: Record<string, unknown>, to: 'node' | 'mailbox', mailbox?: string): Promise<number> {
    const accepted = new Set(Array.isArray(answer.accepted) ? answer.accepted.filter((x): x is string => typeof x === 'string') : [])
    const rejected = new Map<string, string>()
    if (Array.isArray(answer.rejected)) {
      for (const r of answer.rejected) {
        if (r != null && typeof r === 'object' && typeof (r as { id?: unknown }).id === 'string') rejected.set((r as { id: string }).id, String((r as { code?: unknown }).code ?? 'rejected'))
      }
    }
    let n = 0
    const writes: Array<Promise<void>> = []
    for (const rec of batch) {
      if (accepted.has(rec.id)) {
        n++
        writes.push(this.finish(rec, 'delivered', to === 'mailbox' ? `mailbox:${mailbox ?? ''}` : undefined, true))
      } else {
        const code = rejected.get(rec.id)
        // a full inbox, or a sender the receiver could not verify yet, is a reason to wait, not to give up
        if (code != null && FINAL_CODES.has(code) && to === 'node') writes.push(this.finish(rec, 'failed', code))
      }
    }
    // one group commit for the whole batch
    await Promise.all(writes)
    return n
  }

  /** The receiving side of `/m1/msg/1.0.0`. */
  private async serveMsg (frame: Record<string, unknown>, peer: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (frame.type === 'deliver') return await this.receive(frame.messages, peer, peer, signal)
    if (frame.type === 'status') return await this.statusFrom(frame.updates, peer, signal)
    return { type: 'error', code: 'bad-request', message: 'unknown frame type' }
  }

  /**
   * Messages from `sender` (the peer that owns their From node: the connection's peer, or the depositor a mailbox
   * names). Each is accepted (stored durably, or already known: a duplicate) or rejected with a code.
   */
  private async receive (messages: unknown, sender: string, via: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (!Array.isArray(messages) || messages.length > MAX_BATCH) return { type: 'error', code: 'bad-request', message: 'messages must be a list of at most 100' }
    const accepted: string[] = []
    const rejected: Array<{ id: string, code: string }> = []
    const writes: MessageRecord[] = []
    const owners = new Map<string, boolean>()
    for (const raw of messages) {
      const m = readWireMessage(raw, this.cfg.maxBodyBytes)
      const id = typeof (raw as { id?: unknown })?.id === 'string' ? (raw as { id: string }).id.slice(0, 64) : ''
      if (typeof m === 'string') { rejected.push({ id, code: 'bad-message' }); continue }
      const host = m.from.slice(m.from.lastIndexOf('@') + 1).toLowerCase()
      let owned = owners.get(host)
      if (owned == null) {
        // the sender's identity: the peer must own the From node, as for calls
        owned = await this.components.remote?.owns(sender, host, { signal }) != null
        owners.set(host, owned)
      }
      if (!owned) {
        this.components.logger?.warn({ peer: sender, via, from: m.from }, 'message from a node that does not own its From domain')
        rejected.push({ id: m.id, code: 'forbidden' })
        continue
      }
      const origin = this.known.get(m.id) ?? writes.find(w => w.id === m.id)?.origin
      if (origin != null) {
        // at-least-once: a message seen before is acknowledged again, never delivered twice
        if (origin === sender) accepted.push(m.id)
        else rejected.push({ id: m.id, code: 'conflict' })
        continue
      }
      const login = tryNormalizeLogin(m.to)
      const user = login != null ? await this.components.users.get(login) : undefined
      if (user == null) { rejected.push({ id: m.id, code: 'unknown-user' }); continue }
      if ((this.localQueues.get(user.login)?.length ?? 0) + writes.filter(w => w.to === user.login).length >= this.cfg.inboxMax) {
        rejected.push({ id: m.id, code: 'inbox-full' })
        continue
      }
      const now = this.now()
      writes.push({ id: m.id, from: m.from, to: user.login, type: m.type, body: m.body, at: m.at, state: 'accepted', queue: 'local', attempts: 0, nextAttemptAt: 0, origin: sender, updatedAt: now, ...(m.notify === true ? { notify: true } : {}) })
      accepted.push(m.id)
    }
    await this.journal.write(writes.map(r => ({ type: 'put', key: r.id, value: r })))
    for (const r of writes) this.known.set(r.id, sender)
    for (const r of writes) {
      this.counters.accepted?.inc({ from: sender === via ? 'node' : 'mailbox' })
      this.enqueue(r)
    }
    for (const login of new Set(writes.map(r => r.to))) this.kickLocal(login)
    return { type: 'stored', accepted, rejected }
  }

  /** Delivery status from the node that received our messages: only that node may report on them. */
  private async statusFrom (updates: unknown, peer: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (!Array.isArray(updates) || updates.length > 1000) return { type: 'error', code: 'bad-request', message: 'updates must be a list' }
    const nodes = new Map<string, string | undefined>()
    const done: MessageRecord[] = []
    for (const u of updates) {
      const id = (u as { id?: unknown })?.id
      const state = (u as { state?: unknown })?.state
      if (typeof id !== 'string' || (state !== 'delivered' && state !== 'failed')) continue
      const rec = this.pending.get(id) ?? this.handedOver.get(id) ?? await this.components.messages.get(id)
      if (rec?.toNode == null || rec.state === 'delivered' || rec.state === 'failed') continue
      if (!nodes.has(rec.toNode)) nodes.set(rec.toNode, await this.components.remote?.byHost(rec.toNode, { signal }).then(n => n.peerId, () => undefined))
      if (nodes.get(rec.toNode) !== peer) continue
      done.push({ ...rec, state, updatedAt: this.now() })
      this.handedOver.delete(id)
    }
    await this.journal.write(done.map(r => ({ type: 'put', key: r.id, value: r })))
    for (const r of done) await this.notifySender(r, r.state as 'delivered' | 'failed')
    return { type: 'ok' }
  }

  /** Best effort: tells the sending node what became of its messages, gathered for 20 ms per peer (a few tries). */
  private reportToOrigin (peer: string, updates: Array<{ id: string, state: string }>): void {
    const p2p = this.components.p2p
    if (p2p == null) return
    const queued = this.statusQueue.get(peer)
    if (queued != null) { queued.push(...updates); return }
    this.statusQueue.set(peer, [...updates])
    setTimeout(() => {
      const all = this.statusQueue.get(peer) ?? []
      this.statusQueue.delete(peer)
      void (async () => {
        for (let from = 0; from < all.length; from += 1000) {
          const part = all.slice(from, from + 1000)
          for (let i = 0; i < 3 && this.running; i++) {
            try {
              await p2p.request(peer, MSG_PROTOCOL, { type: 'status', updates: part }, { signal: AbortSignal.timeout(10_000) })
              break
            } catch {
              await new Promise(resolve => setTimeout(resolve, 2000 * (i + 1)).unref())
            }
          }
        }
      })()
    }, 20).unref()
  }

  // ---- mailboxes: /m1/mailbox/1.0.0

  /** Hands a node's pending messages to the mailboxes its node record names. */
  private async deposit (node: string): Promise<void> {
    const { directory, p2p } = this.components
    if (directory == null || p2p == null) return
    const record = await directory.resolveNode(node, { signal: AbortSignal.timeout(10_000) })
    this.components.logger?.debug({ node, mailboxes: record.mailboxes ?? [] }, 'node assumed offline: its mailboxes get its messages')
    for (const mb of record.mailboxes ?? []) {
      const peer = await this.peerOf(mb)
      if (peer == null || peer === p2p.peerId) continue
      try {
        for (;;) {
          const batch = this.batchOf(this.remoteQueues.get(node) ?? [])
          if (batch.length === 0) return
          const answer = await p2p.request(peer, MAILBOX_PROTOCOL, { type: 'deposit', node, peer: record.peerId, messages: batch.map(wireOf) }, { signal: AbortSignal.timeout(15_000), maxFrameBytes: MAX_MSG_FRAME_BYTES })
          const n = await this.applyResults(batch, answer, 'mailbox', peer)
          this.components.logger?.info({ node, mailbox: peer, messages: n }, 'messages deposited in a mailbox')
          if (n === 0) break
        }
      } catch (err) {
        this.components.logger?.debug({ err, node, mailbox: peer }, 'mailbox unreachable')
      }
    }
  }

  private async peerOf (nameOrPeer: string): Promise<string | undefined> {
    if (/^(12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]+$/.test(nameOrPeer)) return nameOrPeer
    try {
      return (await this.components.directory?.resolveNode(nameOrPeer, { signal: AbortSignal.timeout(10_000) }))?.peerId
    } catch {
      return undefined
    }
  }

  /** The mailbox side: deposits from senders, pulls and acks from the owner. */
  private async serveMailbox (frame: Record<string, unknown>, peer: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    const { mailbox } = this.components
    if (frame.type === 'pull') {
      // only the owner pulls: entries are keyed by the recipient's peer id, the authenticated connection's
      const limit = typeof frame.limit === 'number' && frame.limit > 0 ? Math.min(frame.limit, MAX_BATCH) : MAX_BATCH
      const messages: Array<WireMessage & { depositor: string }> = []
      let bytes = 0
      for await (const [, e] of mailbox.entries({ gte: `${peer}!`, lt: `${peer}!~`, limit })) {
        if (messages.length > 0 && bytes + e.msg.body.length > BATCH_BODY_BYTES) break
        messages.push({ ...e.msg, depositor: e.depositor })
        bytes += e.msg.body.length
      }
      return { type: 'messages', messages }
    }
    if (frame.type === 'ack') {
      if (!Array.isArray(frame.ids) || frame.ids.length > 1000) return { type: 'error', code: 'bad-request', message: 'ids must be a list' }
      for (const id of frame.ids) {
        if (typeof id !== 'string') continue
        const e = await mailbox.get(`${peer}!${id}`)
        if (e == null) continue
        await mailbox.del(`${peer}!${id}`, { sync: this.cfg.sync })
        this.countMailbox(e, -1)
      }
      return { type: 'ok' }
    }
    if (frame.type !== 'deposit') return { type: 'error', code: 'bad-request', message: 'unknown frame type' }
    if (typeof frame.node !== 'string' || !Array.isArray(frame.messages) || frame.messages.length > MAX_BATCH) return { type: 'error', code: 'bad-request', message: 'deposit needs node and messages' }
    // we hold mail only for nodes that name us as their mailbox in their signed record
    let record: MessagingNode
    try {
      record = await this.components.directory!.resolveNode(frame.node, { signal })
    } catch {
      return { type: 'error', code: 'unknown-node', message: 'no such node' }
    }
    const self = this.components.p2p!.peerId
    if (!(record.mailboxes ?? []).some(m => m === self || m === this.cfg.nodeName)) return { type: 'error', code: 'not-a-mailbox', message: 'this node is no mailbox of that node' }
    const accepted: string[] = []
    const rejected: Array<{ id: string, code: string }> = []
    const owners = new Map<string, boolean>()
    for (const raw of frame.messages) {
      const m = readWireMessage(raw, this.cfg.maxBodyBytes)
      if (typeof m === 'string') continue
      const host = m.from.slice(m.from.lastIndexOf('@') + 1).toLowerCase()
      let owned = owners.get(host)
      if (owned == null) owners.set(host, owned = await this.components.remote?.owns(peer, host, { signal }) != null)
      if (!owned) { rejected.push({ id: m.id, code: 'forbidden' }); continue }
      const key = `${record.peerId}!${m.id}`
      if (await mailbox.get(key) != null) { accepted.push(m.id); continue }
      if ((this.mailboxCounts.byDepositor.get(peer) ?? 0) >= this.cfg.mailboxMaxPerDepositor || (this.mailboxCounts.byNode.get(record.peerId) ?? 0) >= this.cfg.mailboxMaxPerNode) {
        rejected.push({ id: m.id, code: 'mailbox-full' })
        continue
      }
      const e: MailboxEntry = { msg: m, depositor: peer, node: record.name, expiresAt: this.now() + this.cfg.mailboxHold * 1000 }
      await mailbox.put(key, e, { sync: this.cfg.sync })
      this.countMailbox({ ...e, node: record.peerId }, 1)
      accepted.push(m.id)
    }
    return { type: 'held', accepted, rejected }
  }

  private countMailbox (e: Pick<MailboxEntry, 'depositor' | 'node'>, delta: number): void {
    const add = (m: Map<string, number>, k: string): void => { const v = (m.get(k) ?? 0) + delta; if (v <= 0) m.delete(k); else m.set(k, v) }
    add(this.mailboxCounts.byDepositor, e.depositor)
    add(this.mailboxCounts.byNode, e.node)
  }

  /** Pulls what our mailboxes hold for us, stores it, then acks so they delete it. */
  async pullMailboxes (options: { signal?: AbortSignal } = {}): Promise<number> {
    const p2p = this.components.p2p
    if (p2p == null) return 0
    let total = 0
    for (const mb of new Set([...this.cfg.mailboxes, ...this.components.relayMailboxes?.() ?? []])) {
      const peer = await this.peerOf(mb)
      if (peer == null || peer === p2p.peerId) continue
      try {
        for (let round = 0; round < 100; round++) {
          const answer = await p2p.request(peer, MAILBOX_PROTOCOL, { type: 'pull', limit: MAX_BATCH }, { ...options, maxFrameBytes: MAX_MSG_FRAME_BYTES })
          const messages = Array.isArray(answer.messages) ? answer.messages as Array<Record<string, unknown>> : []
          this.components.logger?.debug({ mailbox: peer, messages: messages.length }, 'mailbox pulled')
          if (messages.length === 0) break
          const ids: string[] = []
          const byDepositor = new Map<string, unknown[]>()
          for (const m of messages) {
            if (typeof m?.depositor !== 'string') continue
            const list = byDepositor.get(m.depositor) ?? []
            list.push(m)
            byDepositor.set(m.depositor, list)
          }
          for (const [depositor, list] of byDepositor) {
            const res = await this.receive(list, depositor, peer, options.signal ?? AbortSignal.timeout(10_000))
            for (const id of Array.isArray(res.accepted) ? res.accepted as string[] : []) ids.push(id)
            // refused for good: reported to their sender, then dropped from the mailbox; the rest stays for the next pull
            const refused = (Array.isArray(res.rejected) ? res.rejected as Array<{ id: string, code: string }> : []).filter(r => FINAL_CODES.has(r.code))
            if (refused.length > 0) this.reportToOrigin(depositor, refused.map(r => ({ id: r.id, state: 'failed' })))
            for (const r of refused) ids.push(r.id)
          }
          total += ids.length
          if (ids.length === 0) break
          await p2p.request(peer, MAILBOX_PROTOCOL, { type: 'ack', ids }, options)
          // what was not taken would come back at once: leave it for the next pull
          if (ids.length < messages.length) break
        }
      } catch (err) {
        this.components.logger?.debug({ err, mailbox: peer }, 'mailbox pull failed')
      }
    }
    if (total > 0) this.components.logger?.info({ messages: total }, 'messages pulled from mailboxes')
    return total
  }

  /** Periodic: pull mailboxes, drop expired mailbox entries and old history. */
  private async housekeeping (): Promise<void> {
    try {
      const now = this.now()
      // configured mailboxes and, behind NAT, the relays held (the node record names both)
      if (this.cfg.mailboxes.length > 0 || (this.components.relayMailboxes?.().length ?? 0) > 0) await this.pullMailboxes({ signal: AbortSignal.timeout(30_000) })
      const expired: string[] = []
      for await (const [k, e] of this.components.mailbox.entries()) if (e.expiresAt < now) { expired.push(k); this.countMailbox({ depositor: e.depositor, node: k.slice(0, k.indexOf('!')) }, -1) }
      if (expired.length > 0) await this.components.mailbox.batch(expired.map(key => ({ type: 'del', key })))
      const old: string[] = []
      for await (const [k, rec] of this.components.messages.entries({ lt: idFloor(now - this.cfg.historyTtl * 1000) })) {
        if (rec.queue == null && idTime(k) < now - this.cfg.historyTtl * 1000) old.push(k)
      }
      if (old.length > 0) await this.journal.write(old.map(key => ({ type: 'del', key })))
      for (const key of old) this.known.delete(key)
    } catch (err) {
      this.components.logger?.warn({ err }, 'messaging housekeeping failed')
    }
  }
}

/** Recent messages sent or received by `login` (every one without it), oldest first, bodies left out. */
export async function listMessages (table: Pick<Table<MessageRecord>, 'entries'>, opts: { login?: string, since?: number, limit?: number } = {}): Promise<MessageRecord[]> {
  const out: MessageRecord[] = []
  const limit = opts.limit ?? 1000
  for await (const [, rec] of table.entries({ gte: idFloor(opts.since ?? 0) })) {
    if (opts.login != null && rec.fromLogin !== opts.login && !(rec.to === opts.login && rec.toNode == null)) continue
    out.push({ ...rec, body: '' })
    if (out.length > limit * 2) out.splice(0, out.length - limit)
  }
  return out.slice(-limit)
}

function wireOf (rec: MessageRecord): WireMessage {
  return { id: rec.id, from: rec.from, to: rec.to, type: rec.type, body: rec.body, at: rec.at, ...(rec.notify === true ? { notify: true } : {}) }
}

function sum (m: Map<string, string[]>): number {
  let n = 0
  for (const q of m.values()) n += q.length
  return n
}

function sortedIndex (q: string[], id: string): number {
  let lo = 0
  let hi = q.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (q[mid]! < id) lo = mid + 1
    else hi = mid
  }
  return lo
}

function statusOf (err: unknown): string {
  if (err instanceof MessageTooLargeError) return '413'
  if (err instanceof MessageRateLimitError) return '429'
  if (err instanceof InboxFullError) return '486'
  if (err instanceof UnknownRecipientError) return '404'
  if (err instanceof MessageDeniedError) return '403'
  return 'other'
}

/** The local login a Request-URI names: undefined when the host is not ours, null when the user part is no login. */
function localLoginOf (uri: SipUri, isLocalDomain: (host: string) => boolean): string | null | undefined {
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips') return undefined
  if (!isLocalDomain(uri.host)) return undefined
  if (uri.user == null) return null
  const user = safeDecode(uri.user)
  return user != null ? tryNormalizeLogin(user) ?? null : null
}

function addressOf (uri: SipUri): string {
  return `${uri.user ?? ''}@${uri.host}`.replace(/^@/, '')
}

function safeDecode (s: string): string | undefined {
  try { return decodeURIComponent(s) } catch { return undefined }
}
