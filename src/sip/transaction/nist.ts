import type { SipRequest, SipResponse } from '../message/types.js'
import type { Flow } from '../transport/types.js'
import { ServerMachine, statusClass, type StateBase, type TransactionHost } from './machine.js'
import { Timer, type Durations } from './timers.js'

interface NistState extends StateBase<NonInviteServerTransaction> {
  request?(tx: NonInviteServerTransaction): void
  respond?(tx: NonInviteServerTransaction, res: SipResponse): void
  timerJ?(tx: NonInviteServerTransaction): void
}

// RFC 3261 §17.2.2 (Figure 8).
function respond (tx: NonInviteServerTransaction, res: SipResponse): void {
  if (res.status < 200) {
    tx.provisional = res
    tx.transmit(res)
    tx.go(PROCEEDING)
  } else {
    tx.final = res
    tx.finalStatus = res.status
    tx.transmit(res)
    tx.go(COMPLETED)
  }
}

// §17.2.2: "retransmissions of the request ... while in the Trying state MUST be discarded"
const TRYING: NistState = { name: 'trying', respond }

const PROCEEDING: NistState = {
  name: 'proceeding',
  // §17.2.2: a retransmitted request gets the most recent provisional response again
  request (tx) { if (tx.provisional !== undefined) tx.transmit(tx.provisional) },
  respond
}

// Answers request retransmissions with the final response for Timer J (64*T1 unreliable, 0 reliable).
const COMPLETED: NistState = {
  name: 'completed',
  enter (tx) { tx.j.start(tx.times.j); if (tx.times.j > 0) tx.compact() },
  request (tx) { const f = tx.lastFinal; if (f !== undefined) tx.transmit(f) },
  timerJ (tx) { tx.terminate(statusClass(tx.finalStatus ?? 600)) }
}

/** RFC 3261 §17.2.2 non-INVITE server transaction. */
export class NonInviteServerTransaction extends ServerMachine<NistState> {
  readonly kind = 'nist'
  readonly j = new Timer(() => { this.current.timerJ?.(this) })

  constructor (id: string, request: SipRequest, flow: Flow, d: Durations, host: TransactionHost) {
    super(id, request, flow, d, host, TRYING)
  }

  respond (response: SipResponse): void { this.current.respond?.(this, response) }

  receiveRequest (): void { this.current.request?.(this) }

  protected stopTimers (): void { this.j.stop() }
}
