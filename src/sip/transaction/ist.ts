import { createResponse } from '../message/index.js'
import type { SipRequest, SipResponse } from '../message/types.js'
import type { Flow } from '../transport/types.js'
import { ServerMachine, statusClass, type StateBase, type TransactionHost } from './machine.js'
import { Timer, type Durations } from './timers.js'

interface IstState extends StateBase<InviteServerTransaction> {
  request?(tx: InviteServerTransaction): void
  respond?(tx: InviteServerTransaction, res: SipResponse): void
  /** true when the ACK is absorbed; false sends it on to the TU */
  ack?(tx: InviteServerTransaction): boolean
  timerG?(tx: InviteServerTransaction): void
  timerH?(tx: InviteServerTransaction): void
  timerI?(tx: InviteServerTransaction): void
  timerL?(tx: InviteServerTransaction): void
}

// RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1 'accepted'.
const PROCEEDING: IstState = {
  name: 'proceeding',
  // §17.2.1: the 100 Trying goes out at once, so the client stops retransmitting the INVITE
  enter (tx) { tx.transmit(tx.provisional = createResponse(tx.request, 100, 'Trying')) },
  request (tx) { if (tx.provisional !== undefined) tx.transmit(tx.provisional) },
  respond (tx, res) {
    tx.transmit(res)
    if (res.status < 200) {
      tx.provisional = res
    } else {
      tx.final = res
      tx.finalStatus = res.status
      tx.finalTag = res.to.params.tag
      tx.go(res.status < 300 ? ACCEPTED : COMPLETED)
    }
  },
  ack: () => true // an ACK before any final answers nothing
}

// Retransmits the non-2xx final (Timer G, unreliable only) until the ACK comes or Timer H gives up.
const COMPLETED: IstState = {
  name: 'completed',
  enter (tx) {
    tx.compact()
    if (!tx.times.reliable) tx.g.start(tx.interval = tx.times.t1)
    tx.h.start(tx.times.h)
  },
  leave (tx) { tx.g.stop(); tx.h.stop() },
  request (tx) { const f = tx.lastFinal; if (f !== undefined) tx.transmit(f) },
  ack (tx) { tx.go(CONFIRMED); return true },
  // §17.2.1: G doubles up to T2
  timerG (tx) {
    const f = tx.lastFinal
    if (f !== undefined) tx.transmit(f)
    tx.g.start(tx.interval = Math.min(2 * tx.interval, tx.times.t2))
  },
  // §17.2.1: no ACK within 64*T1 is a transaction failure
  timerH (tx) { tx.noAck() }
}

// Absorbs ACK retransmissions for Timer I (T4 unreliable, 0 reliable).
const CONFIRMED: IstState = {
  name: 'confirmed',
  enter (tx) { tx.i.start(tx.times.i) },
  ack: () => true,
  timerI (tx) { tx.terminate(statusClass(tx.finalStatus ?? 600)) }
}

// RFC 6026 §7.1: INVITE retransmissions are absorbed; the TU retransmits its 2xx through respond(); the ACK
// for a 2xx is the TU's business.
const ACCEPTED: IstState = {
  name: 'accepted',
  enter (tx) { tx.compact(); tx.l.start(tx.times.l) },
  respond (tx, res) { if (res.status >= 200 && res.status < 300) tx.transmit(res) },
  ack: () => false,
  timerL (tx) { tx.terminate('2xx') }
}

/** RFC 3261 §17.2.1 INVITE server transaction, with the RFC 6026 'accepted' state. */
export class InviteServerTransaction extends ServerMachine<IstState> {
  readonly kind = 'ist'
  /** current Timer G interval */
  interval = 0
  readonly g = new Timer(() => { this.current.timerG?.(this) })
  readonly h = new Timer(() => { this.current.timerH?.(this) })
  readonly i = new Timer(() => { this.current.timerI?.(this) })
  readonly l = new Timer(() => { this.current.timerL?.(this) })

  constructor (id: string, request: SipRequest, flow: Flow, d: Durations, host: TransactionHost) {
    super(id, request, flow, d, host, PROCEEDING)
  }

  respond (response: SipResponse): void { this.current.respond?.(this, response) }

  receiveRequest (): void { this.current.request?.(this) }

  /** An ACK matched this transaction: true when absorbed here, false when it belongs to the TU (ACK for 2xx). */
  receiveAck (): boolean { return this.current.ack?.(this) ?? false }

  /** The To tag of the final response sent, which an RFC 2543 ACK must carry to match. */
  get finalToTag (): string | null | undefined { return this.finalTag }

  /** the To tag of the final response, kept across compact() */
  finalTag: string | null | undefined

  override compact (): void {
    super.compact()
    if (this.finalWire !== undefined) this.provisional = undefined
  }

  noAck (): void {
    this.host.logger?.debug({ tx: this.id, status: this.finalStatus }, 'no ACK for the final response (Timer H)')
    this.terminate('timeout')
  }

  protected stopTimers (): void { this.g.stop(); this.h.stop(); this.i.stop(); this.l.stop() }
}
