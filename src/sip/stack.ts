import { forComponent, type Logger } from '../core/index.js'
import type { Metrics, MetricCounter } from '../core/index.js'
import { SipParseError } from './errors.js'
import { createParseErrorResponse, parseMessage, serialize, stampVia, type SipRequest, type SipResponse } from './message/index.js'
import { TransactionLayer, type ClientTransaction, type ClientTransactionUser, type TimerValues, type TransactionUser } from './transaction/index.js'
import { Transports, type Flow, type SendTarget, type TransportsInit } from './transport/index.js'
import type { TransportName } from './message/types.js'

export interface SipStackComponents {
  /** the node's root logger: the stack names its children sip:transport, sip:transaction, sip:stack */
  logger?: Logger
  metrics?: Metrics
}

export interface SipStackInit {
  transports: TransportsInit
  timers: TimerValues
  /**
   * Add rport to every request's top Via even when the client did not ask (RFC 3581 behaviour for all), so that
   * responses always go to the packet's source address and port.
   * @default true
   */
  forceRport: boolean
}

/**
 * The SIP stack: transports -> parse -> transactions -> the transaction user (routing). Knows nothing of users,
 * the DHT or calls. Malformed input gets 400 when a response can be addressed, otherwise it is dropped; either
 * way it is counted and nothing throws out of a socket callback.
 */
export class SipStack {
  readonly transports: Transports
  readonly transactions: TransactionLayer
  private tu?: TransactionUser
  private readonly log?: Logger
  private readonly parseErrors?: MetricCounter
  private readonly requests?: MetricCounter
  private readonly responses?: MetricCounter

  constructor (private readonly components: SipStackComponents, private readonly init: SipStackInit) {
    const logger = components.logger
    this.log = logger != null ? forComponent(logger, 'sip:stack') : undefined
    this.transports = new Transports({
      onMessage: (data, flow) => { this.receive(data, flow) },
      ...(logger != null ? { logger: forComponent(logger, 'sip:transport') } : {}),
      ...(components.metrics != null ? { metrics: components.metrics } : {})
    }, init.transports)
    this.transactions = new TransactionLayer({
      send: async (target, msg) => { await this.sendMessage(target, msg) },
      encode: serialize,
      isReliable: (t) => this.transports.isReliable(t),
      tu: {
        onRequest: (req, tx) => { this.requireTu().onRequest(req, tx) },
        onAck: (req, flow) => { this.requireTu().onAck(req, flow) },
        onStrayResponse: (res, flow) => { this.requireTu().onStrayResponse(res, flow) }
      },
      ...(logger != null ? { logger: forComponent(logger, 'sip:transaction') } : {}),
      ...(components.metrics != null ? { metrics: components.metrics } : {})
    }, init.timers)
    const m = components.metrics
    this.parseErrors = m?.counter('m1node_sip_parse_errors_total', 'SIP messages that could not be parsed', ['action'])
    this.requests = m?.counter('m1node_sip_requests_total', 'SIP requests received', ['method'])
    this.responses = m?.counter('m1node_sip_responses_total', 'SIP responses sent', ['method', 'class'])
  }

  /** The routing layer that receives requests; set once before start. */
  setUser (tu: TransactionUser): void {
    this.tu = tu
  }

  async start (): Promise<void> {
    this.requireTu()
    await this.transactions.start()
    await this.transports.start()
  }

  async stop (): Promise<void> {
    await this.transports.stop()
    await this.transactions.stop()
  }

  /** Starts a client transaction (OPTIONS pings now; INVITE/MESSAGE legs later). */
  request (req: SipRequest, target: SendTarget, user: ClientTransactionUser, opts?: { signal?: AbortSignal }): ClientTransaction {
    return this.transactions.request(req, target, user, opts)
  }

  /**
   * Sends a message outside any transaction: the ACK to a 2xx and the 2xx retransmissions a UAS core owes on
   * unreliable transports (RFC 3261 §13.3.1.4, §17.1.1.3).
   */
  async send (target: SendTarget, msg: SipRequest | SipResponse): Promise<void> {
    await this.sendMessage(target, msg)
  }

  addresses (): Array<{ transport: TransportName, address: string, port: number }> {
    return this.transports.addresses()
  }

  private requireTu (): TransactionUser {
    if (this.tu == null) throw new Error('SipStack has no transaction user')
    return this.tu
  }

  private async sendMessage (target: SendTarget, msg: SipRequest | SipResponse | Buffer): Promise<void> {
    if (Buffer.isBuffer(msg)) {
      // a retransmission from a completed transaction: counted when first sent
      await this.transports.send(target, msg)
      return
    }
    if (msg.kind === 'response') this.responses?.inc({ method: msg.cseq.method, class: CLASS[Math.floor(msg.status / 100)] ?? 'other' })
    await this.transports.send(target, serialize(msg))
  }

  /** One complete message from a transport. Never throws. */
  private receive (data: Buffer, flow: Flow): void {
    let msg
    try {
      msg = parseMessage(data)
    } catch (err) {
      this.rejectMalformed(err, flow)
      return
    }
    try {
      if (msg.kind === 'request') {
        this.requests?.inc({ method: KNOWN_METHODS.has(msg.method) ? msg.method : 'other' })
        // RFC 3261 §18.2.1 + RFC 3581 §4: record where the request really came from
        stampVia(msg, flow.remoteAddress, flow.remotePort, this.init.forceRport)
        this.transactions.receiveRequest(msg, flow)
      } else {
        this.transactions.receiveResponse(msg, flow)
      }
    } catch (err) {
      this.log?.error({ err, flow: flow.id }, 'request handling failed')
    }
  }

  private rejectMalformed (err: unknown, flow: Flow): void {
    const parseError = err instanceof SipParseError ? err : undefined
    // RFC 4475 §3.1.2: a malformed request is answered (400, or 505), echoing what could be read; responses and
    // ACKs never are. The answer goes to the packet's source only.
    const answer = parseError != null ? createParseErrorResponse(parseError) : null
    this.parseErrors?.inc({ action: answer != null ? 'answered' : 'dropped' })
    this.log?.debug({ flow: flow.id, reason: parseError?.reason ?? String(err) }, answer != null ? 'malformed request: answered' : 'malformed message dropped')
    if (answer == null) return
    const target = { transport: flow.transport, address: flow.remoteAddress, port: flow.remotePort, flowId: flow.id }
    this.transports.send(target, answer).catch((e: unknown) => { this.log?.debug({ err: e }, 'cannot send 400') })
  }
}

const CLASS: Record<number, string> = { 1: '1xx', 2: '2xx', 3: '3xx', 4: '4xx', 5: '5xx', 6: '6xx' }
const KNOWN_METHODS = new Set(['REGISTER', 'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'MESSAGE', 'INFO', 'UPDATE', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'REFER', 'PUBLISH'])
