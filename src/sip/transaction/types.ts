import type { SipRequest, SipResponse } from '../message/types.js'
import type { Flow, SendTarget } from '../transport/types.js'

/** RFC 3261 §17.1.1.1 / §17.1.2.2 timer base values, milliseconds. */
export interface TimerValues {
  /** @default 500 */
  t1: number
  /** @default 4000 */
  t2: number
  /** @default 5000 */
  t4: number
}

export type TransactionState = 'calling' | 'trying' | 'proceeding' | 'completed' | 'confirmed' | 'terminated'

/** What a server transaction offers the transaction user (TU). */
export interface ServerTransaction {
  readonly id: string
  readonly request: SipRequest
  readonly flow: Flow
  readonly state: TransactionState
  /** Sends a response through the machine (retransmitted by it on UDP where §17.2 says so). */
  respond(response: SipResponse): void
}

/** What a client transaction offers its TU. */
export interface ClientTransaction {
  readonly id: string
  readonly request: SipRequest
  readonly state: TransactionState
}

/** Callbacks of a client transaction: every response, then one of 'timeout' or 'transportError' or a final response. */
export interface ClientTransactionUser {
  onResponse(response: SipResponse, flow: Flow): void
  /** Timer B or F fired: the TU answers 408 upstream */
  onTimeout(): void
  onTransportError(err: Error): void
}

export interface TransactionUser {
  /** A new request (not a retransmission, not an ACK). The TU must eventually respond (or the machine times out). */
  onRequest(request: SipRequest, tx: ServerTransaction): void
  /** ACK to a 2xx (end-to-end, no transaction) or any ACK matching no IST. */
  onAck(request: SipRequest, flow: Flow): void
  /** A response matching no client transaction (e.g. a 2xx retransmission for an INVITE). */
  onStrayResponse(response: SipResponse, flow: Flow): void
}

export type { SendTarget }
