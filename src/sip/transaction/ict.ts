import type { SipRequest, SipResponse } from '../message/types.js'
import type { Flow, SendTarget } from '../transport/types.js'
import { ackForNon2xx } from './ack.js'
import { ClientMachine, statusClass, type StateBase, type TransactionHost } from './machine.js'
import { Timer, type Durations } from './timers.js'
import type { ClientTransactionUser } from './types.js'

interface IctState extends StateBase<InviteClientTransaction> {
  response?(tx: InviteClientTransaction, res: SipResponse, flow: Flow): void
  timerA?(tx: InviteClientTransaction): void
  timerB?(tx: InviteClientTransaction): void
  timerD?(tx: InviteClientTransaction): void
  timerM?(tx: InviteClientTransaction): void
  transportError?(tx: InviteClientTransaction, err: Error): void
}

// RFC 3261 §17.1.1.2 (Figure 5) with RFC 6026 §8.4 'accepted'.
function classify (tx: InviteClientTransaction, res: SipResponse, flow: Flow): void {
  if (res.status < 200) {
    tx.go(PROCEEDING)
  } else if (res.status < 300) {
    tx.go(ACCEPTED)
  } else {
    tx.final = res
    tx.go(COMPLETED)
  }
  tx.deliver(res, flow)
}

const CALLING: IctState = {
  name: 'calling',
  enter (tx) {
    tx.transmit(tx.request)
    if (!tx.times.reliable) tx.a.start(tx.interval = tx.times.t1)
    tx.b.start(tx.times.b)
  },
  leave (tx) { tx.a.stop(); tx.b.stop() },
  // §17.1.1.2: Timer A doubles on each retransmission (no T2 cap for INVITE)
  timerA (tx) { tx.transmit(tx.request); tx.a.start(tx.interval *= 2) },
  timerB (tx) { tx.timedOut() },
  response: classify,
  transportError (tx, err) { tx.failed(err) }
}

const PROCEEDING: IctState = {
  name: 'proceeding',
  response (tx, res, flow) { if (res.status < 200) tx.deliver(res, flow); else classify(tx, res, flow) },
  transportError (tx, err) { tx.failed(err) }
}

// §17.1.1.3: the transaction itself ACKs a non-2xx final, and again for each retransmission of it, for Timer D.
const COMPLETED: IctState = {
  name: 'completed',
  enter (tx) {
    tx.transmit(tx.ack = ackForNon2xx(tx.request, tx.final as SipResponse))
    tx.d.start(tx.times.d)
  },
  response (tx, res) { if (res.status >= 300 && tx.ack !== undefined) tx.transmit(tx.ack) },
  timerD (tx) { tx.terminate(statusClass(tx.final?.status ?? 600)) },
  // the TU already has its final response: nothing more to report
  transportError (tx) { tx.terminate('transport_error') }
}

// RFC 6026 §8.4: 2xx retransmissions (and 2xx from other forks) go to the TU, which ACKs them, until Timer M.
const ACCEPTED: IctState = {
  name: 'accepted',
  enter (tx) { tx.m.start(tx.times.m) },
  response (tx, res, flow) { if (res.status >= 200 && res.status < 300) tx.deliver(res, flow) },
  timerM (tx) { tx.terminate('2xx') }
}

/** RFC 3261 §17.1.1 INVITE client transaction, with the RFC 6026 'accepted' state. */
export class InviteClientTransaction extends ClientMachine<IctState> {
  readonly kind = 'ict'
  /** current Timer A interval */
  interval = 0
  final: SipResponse | undefined
  ack: SipRequest | undefined
  readonly a = new Timer(() => { this.current.timerA?.(this) })
  readonly b = new Timer(() => { this.current.timerB?.(this) })
  readonly d = new Timer(() => { this.current.timerD?.(this) })
  readonly m = new Timer(() => { this.current.timerM?.(this) })

  constructor (id: string, request: SipRequest, target: SendTarget, d: Durations, host: TransactionHost, user: ClientTransactionUser) {
    super(id, request, target, d, host, CALLING, user)
  }

  receiveResponse (res: SipResponse, flow: Flow): void { this.current.response?.(this, res, flow) }

  protected transportFailed (err: Error): void { this.current.transportError?.(this, err) }

  protected stopTimers (): void { this.a.stop(); this.b.stop(); this.d.stop(); this.m.stop() }
}
