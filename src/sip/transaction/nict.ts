import type { SipRequest, SipResponse } from '../message/types.js'
import type { Flow, SendTarget } from '../transport/types.js'
import { ClientMachine, statusClass, type StateBase, type TransactionHost } from './machine.js'
import { Timer, type Durations } from './timers.js'
import type { ClientTransactionUser } from './types.js'

interface NictState extends StateBase<NonInviteClientTransaction> {
  response?(tx: NonInviteClientTransaction, res: SipResponse, flow: Flow): void
  timerE?(tx: NonInviteClientTransaction): void
  timerF?(tx: NonInviteClientTransaction): void
  timerK?(tx: NonInviteClientTransaction): void
  transportError?(tx: NonInviteClientTransaction, err: Error): void
}

// RFC 3261 §17.1.2.2 (Figure 6). Timer E retransmits on unreliable transports only; F bounds the whole exchange.
const TRYING: NictState = {
  name: 'trying',
  enter (tx) {
    tx.transmit(tx.request)
    if (!tx.times.reliable) tx.e.start(tx.interval = tx.times.t1)
    tx.f.start(tx.times.f)
  },
  // §17.1.2.2: "the interval doubles ... until it reaches T2"
  timerE (tx) { tx.retransmit(Math.min(2 * tx.interval, tx.times.t2)) },
  timerF (tx) { tx.timedOut() },
  response (tx, res, flow) {
    if (res.status >= 200) tx.final = res
    tx.go(res.status < 200 ? PROCEEDING : COMPLETED)
    tx.deliver(res, flow)
  },
  transportError (tx, err) { tx.failed(err) }
}

const PROCEEDING: NictState = {
  name: 'proceeding',
  // §17.1.2.2: in Proceeding, Timer E is reset to T2
  timerE (tx) { tx.retransmit(tx.times.t2) },
  timerF (tx) { tx.timedOut() },
  response (tx, res, flow) {
    if (res.status >= 200) {
      tx.final = res
      tx.go(COMPLETED)
    }
    tx.deliver(res, flow)
  },
  transportError (tx, err) { tx.failed(err) }
}

// Absorbs response retransmissions for Timer K (T4 unreliable, 0 reliable).
const COMPLETED: NictState = {
  name: 'completed',
  enter (tx) { tx.e.stop(); tx.f.stop(); tx.k.start(tx.times.k) },
  timerK (tx) { tx.terminate(statusClass(tx.final?.status ?? 600)) }
}

/** RFC 3261 §17.1.2 non-INVITE client transaction. */
export class NonInviteClientTransaction extends ClientMachine<NictState> {
  readonly kind = 'nict'
  /** current Timer E interval */
  interval = 0
  final: SipResponse | undefined
  readonly e = new Timer(() => { this.current.timerE?.(this) })
  readonly f = new Timer(() => { this.current.timerF?.(this) })
  readonly k = new Timer(() => { this.current.timerK?.(this) })

  constructor (id: string, request: SipRequest, target: SendTarget, d: Durations, host: TransactionHost, user: ClientTransactionUser) {
    super(id, request, target, d, host, TRYING, user)
  }

  retransmit (next: number): void {
    this.transmit(this.request)
    this.e.start(this.interval = next)
  }

  receiveResponse (res: SipResponse, flow: Flow): void { this.current.response?.(this, res, flow) }

  protected transportFailed (err: Error): void { this.current.transportError?.(this, err) }

  protected stopTimers (): void { this.e.stop(); this.f.stop(); this.k.stop() }
}
