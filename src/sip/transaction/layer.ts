import type { Logger, Metrics, MetricCounter, Startable } from '../../core/index.js'
import { createResponse, newTag } from '../message/index.js'
import type { SipMessage, SipRequest, SipResponse, TransportName, Via } from '../message/types.js'
import type { Flow, SendTarget } from '../transport/types.js'
import { DuplicateTransactionError, InvalidTransactionRequestError, TransactionLayerStoppedError } from './errors.js'
import { InviteClientTransaction } from './ict.js'
import { InviteServerTransaction } from './ist.js'
import type { Machine, StateBase, TransactionHost, TransactionResult } from './machine.js'
import { NonInviteClientTransaction } from './nict.js'
import { NonInviteServerTransaction } from './nist.js'
import { DEFAULT_TIMER_VALUES, durations, type Durations } from './timers.js'
import type { ClientTransaction, ClientTransactionUser, ServerTransaction, TimerValues, TransactionUser } from './types.js'

export interface TransactionLayerComponents {
  /** Serializes (unless already bytes) and sends a message; rejects on transport error. */
  send(target: SendTarget, msg: SipMessage | Buffer): Promise<void>
  /** Serializes a message; when given, completed non-INVITE server transactions keep only bytes */
  encode?(msg: SipMessage): Buffer
  /** true for TCP/WS/TLS (no retransmissions, zero wait timers) */
  isReliable(transport: TransportName): boolean
  tu: TransactionUser
  logger?: Logger
  metrics?: Metrics
}

/** RFC 3261 timer base values (see {@link TimerValues} for the defaults: T1 500, T2 4000, T4 5000 ms). */
export type TransactionLayerInit = TimerValues

type ServerTx = InviteServerTransaction | NonInviteServerTransaction
type ClientTx = InviteClientTransaction | NonInviteClientTransaction

// RFC 3261 §8.1.1.7: a branch starting with the magic cookie was built by a 3261 element and is unique on its own.
const COOKIE = 'z9hG4bK'

function tagOf (params: Record<string, string | null>): string {
  return params.tag ?? ''
}

/**
 * The key a server transaction is filed under. RFC 3261 §17.2.3: branch + sent-by + method, where an ACK belongs
 * to its INVITE; without the magic cookie (RFC 2543 peers): Request-URI, From tag, Call-ID, CSeq number and
 * top Via (the To tag is checked after lookup, since an ACK carries the tag of our response).
 */
function serverKey (req: SipRequest, via: Via, method: string): string {
  const branch = via.params.branch
  if (typeof branch === 'string' && branch.startsWith(COOKIE)) {
    return `${branch} ${via.host}:${via.port ?? ''} ${method}`
  }
  return `|${req.rawUri}|${tagOf(req.from.params)}|${req.callId}|${req.cseq.seq}|${method}|${via.transport} ${via.host}:${via.port ?? ''};${branch ?? ''}`
}

function isLegacyKey (key: string): boolean {
  return key.charCodeAt(0) === 124 // '|'
}

/**
 * RFC 3261 §17 transaction layer: matches incoming requests and responses to the four machines, creates server
 * transactions for new requests, and runs client transactions for the TU. Messages go out through the injected
 * `send`, so serialization and transport choice stay with the caller.
 */
export class TransactionLayer implements Startable {
  private readonly servers = new Map<string, ServerTx>()
  private readonly clients = new Map<string, ClientTx>()
  private readonly unreliable: Durations
  private readonly reliable: Durations
  private readonly host: TransactionHost
  private readonly ended: MetricCounter | undefined
  private stopped = false

  constructor (private readonly components: TransactionLayerComponents, init: Partial<TransactionLayerInit> = {}) {
    const values: TimerValues = {
      t1: init.t1 ?? DEFAULT_TIMER_VALUES.t1,
      t2: init.t2 ?? DEFAULT_TIMER_VALUES.t2,
      t4: init.t4 ?? DEFAULT_TIMER_VALUES.t4
    }
    this.unreliable = durations(values, false)
    this.reliable = durations(values, true)
    this.host = {
      send: (target, msg) => components.send(target, msg),
      ...(components.encode !== undefined ? { encode: components.encode } : {}),
      terminated: (tx, result) => { this.forget(tx, result) },
      logger: components.logger
    }
    this.ended = components.metrics?.counter('m1node_sip_transactions_total', 'SIP transactions ended, by kind and result', ['kind', 'result'])
    components.metrics?.gauge('m1node_sip_transactions_in_flight', 'SIP transactions alive', [], () => this.size)
  }

  /** Live transactions, server and client. */
  get size (): number { return this.servers.size + this.clients.size }

  start (): void { this.stopped = false }

  /** Terminates every transaction and clears every timer; the TUs hear nothing more. Incoming messages are dropped until start(). */
  stop (): void {
    this.stopped = true
    for (const tx of [...this.servers.values()]) tx.terminate('stopped')
    for (const tx of [...this.clients.values()]) tx.terminate('stopped')
  }

  /**
   * An incoming request (RFC 3261 §17.2.3). A retransmission goes to its transaction; an ACK for a non-2xx final is
   * absorbed by its IST; any other ACK goes to `tu.onAck`; a new request creates an IST or NIST and goes to
   * `tu.onRequest`. Never throws.
   */
  receiveRequest (req: SipRequest, flow: Flow): void {
    if (this.stopped) return
    const via = req.vias[0]
    if (via === undefined) return // parse() rejects these; nothing to match or answer on
    const { tu, logger } = this.components
    if (req.method === 'ACK') {
      const key = serverKey(req, via, 'INVITE')
      const tx = this.servers.get(key)
      if (tx instanceof InviteServerTransaction &&
        // §17.2.3: an RFC 2543 ACK matches on the To tag of the response it acknowledges
        (!isLegacyKey(key) || tagOf(req.to.params) === (tx.finalToTag ?? '')) &&
        tx.receiveAck()) return
      try {
        tu.onAck(req, flow)
      } catch (err) {
        logger?.error({ err, callId: req.callId }, 'transaction user failed on an ACK')
      }
      return
    }
    const key = serverKey(req, via, req.method)
    const existing = this.servers.get(key)
    if (existing !== undefined) {
      if (isLegacyKey(key) && tagOf(req.to.params) !== tagOf(existing.request.to.params)) {
        logger?.debug({ callId: req.callId, tx: key }, 'RFC 2543 request collides with a transaction; dropped')
        return
      }
      existing.receiveRequest()
      return
    }
    const d = this.components.isReliable(flow.transport) ? this.reliable : this.unreliable
    const tx: ServerTx = req.method === 'INVITE'
      ? new InviteServerTransaction(key, req, flow, d, this.host)
      : new NonInviteServerTransaction(key, req, flow, d, this.host)
    this.servers.set(key, tx)
    try {
      tx.start()
      tu.onRequest(req, tx)
    } catch (err) {
      // a TU bug must not leave the peer retransmitting into the void
      logger?.error({ err, callId: req.callId, tx: key }, 'transaction user failed on a request')
      if (tx.finalStatus === undefined && tx.final === undefined && !tx.terminated) {
        try {
          tx.respond(createResponse(req, 500, 'Server Internal Error', { toTag: newTag() }))
        } catch {
          tx.terminate('stopped')
        }
      }
    }
  }

  /** An incoming response (RFC 3261 §17.1.3: top Via branch + CSeq method); unmatched ones go to `tu.onStrayResponse`. Never throws. */
  receiveResponse (res: SipResponse, flow: Flow): void {
    if (this.stopped) return
    if (!(res.status >= 100 && res.status <= 699)) return
    const branch = res.vias[0]?.params.branch
    const tx = typeof branch === 'string' ? this.clients.get(`${branch} ${res.cseq.method}`) : undefined
    if (tx !== undefined) {
      tx.receiveResponse(res, flow)
      return
    }
    try {
      this.components.tu.onStrayResponse(res, flow)
    } catch (err) {
      this.components.logger?.error({ err, callId: res.callId }, 'transaction user failed on a stray response')
    }
  }

  /**
   * Starts a client transaction (ICT for INVITE, NICT otherwise) sending `req` to `target`. The request's top Via
   * branch (RFC 3261 §8.1.1.7, `newBranch()`) identifies it. Aborting `signal` stops retransmissions and
   * terminates the transaction; `user` hears nothing more.
   *
   * @throws InvalidTransactionRequestError for an ACK (§17.1.1.3: ACK for 2xx is sent by the TU outside any transaction) or a request without branch
   * @throws DuplicateTransactionError when a live client transaction has the same branch and method
   * @throws TransactionLayerStoppedError after stop()
   */
  request (req: SipRequest, target: SendTarget, user: ClientTransactionUser, opts: { signal?: AbortSignal } = {}): ClientTransaction {
    if (this.stopped) throw new TransactionLayerStoppedError()
    if (req.method === 'ACK') throw new InvalidTransactionRequestError('ACK is not sent through a client transaction')
    const branch = req.vias[0]?.params.branch
    if (typeof branch !== 'string' || branch === '') throw new InvalidTransactionRequestError('the top Via has no branch')
    const key = `${branch} ${req.method}`
    if (this.clients.has(key)) throw new DuplicateTransactionError(key)
    const d = this.components.isReliable(target.transport) ? this.reliable : this.unreliable
    const tx: ClientTx = req.method === 'INVITE'
      ? new InviteClientTransaction(key, req, target, d, this.host, user)
      : new NonInviteClientTransaction(key, req, target, d, this.host, user)
    const signal = opts.signal
    if (signal?.aborted === true) {
      tx.terminate('aborted')
      return tx
    }
    this.clients.set(key, tx)
    if (signal !== undefined) tx.watch(signal)
    tx.start()
    return tx
  }

  /**
   * The INVITE server transaction a CANCEL refers to (RFC 3261 §9.2: same top Via branch and sent-by, or for
   * RFC 2543 peers the same Request-URI, tags, Call-ID, CSeq number and top Via).
   */
  matchInviteForCancel (cancel: SipRequest): ServerTransaction | undefined {
    const via = cancel.vias[0]
    if (via === undefined) return undefined
    const key = serverKey(cancel, via, 'INVITE')
    const tx = this.servers.get(key)
    if (!(tx instanceof InviteServerTransaction)) return undefined
    if (isLegacyKey(key) && tagOf(cancel.to.params) !== tagOf(tx.request.to.params)) return undefined
    return tx
  }

  /** The server transaction a request belongs to (same matching as {@link receiveRequest}, ACK included). */
  findServerTransaction (req: SipRequest): ServerTransaction | undefined {
    const via = req.vias[0]
    if (via === undefined) return undefined
    return this.servers.get(serverKey(req, via, req.method === 'ACK' ? 'INVITE' : req.method))
  }

  private forget (tx: Machine<StateBase<never>>, result: TransactionResult): void {
    const map: Map<string, unknown> = tx.kind === 'ist' || tx.kind === 'nist' ? this.servers : this.clients
    if (map.get(tx.id) === tx) map.delete(tx.id)
    this.ended?.inc({ kind: tx.kind, result })
  }
}
