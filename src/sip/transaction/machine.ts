import type { Logger } from '../../core/index.js'
import type { SipMessage, SipRequest, SipResponse } from '../message/types.js'
import type { Flow, SendTarget } from '../transport/types.js'
import type { Durations } from './timers.js'
import type { ClientTransaction, ClientTransactionUser, ServerTransaction, TransactionState } from './types.js'

/** RFC 3261 §17 states plus RFC 6026 'accepted' (a 2xx was passed: absorb retransmissions until Timer L/M). */
export type MachineState = TransactionState | 'accepted'

export type TransactionKind = 'ict' | 'nict' | 'ist' | 'nist'

/** Why a transaction ended: the class of its final response, or what cut it short. A metrics label. */
export type TransactionResult = '2xx' | '3xx' | '4xx' | '5xx' | '6xx' | 'timeout' | 'transport_error' | 'aborted' | 'stopped'

/** What a machine needs from the layer that owns it. */
export interface TransactionHost {
  /** Hands a message (or its wire form) to the transport; rejects on transport error. */
  send(target: SendTarget, msg: SipMessage | Buffer): Promise<void>
  /** The wire form of a message, when the layer can make it: lets completed transactions drop parsed objects. */
  encode?(msg: SipMessage): Buffer
  /** The machine reached 'terminated': forget it, count it. Called once. */
  terminated(tx: Machine<StateBase<never>>, result: TransactionResult): void
  readonly logger?: Logger
}

/** One state: its name, what happens on entry and on exit. Machines add one optional handler per event. */
export interface StateBase<T> {
  readonly name: MachineState
  enter?(tx: T): void
  leave?(tx: T): void
}

const TERMINATED: StateBase<never> = { name: 'terminated' }

/** '2xx' for 200..299, and so on. */
export function statusClass (status: number): TransactionResult {
  const c = Math.floor(status / 100)
  return c >= 2 && c <= 6 ? `${c}xx` as TransactionResult : '6xx'
}

function toError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/**
 * Shared skeleton of the four §17 machines (kirm's `sip` shape: the current state is an object with enter,
 * leave and one handler per event; an event the state has no handler for is ignored). 'terminated' is final:
 * once there, transitions, timers and sends stop and the TU hears nothing more.
 */
export abstract class Machine<S extends StateBase<never>> {
  abstract readonly kind: TransactionKind
  protected current: S
  private readonly sendFailed = (err: unknown): void => { this.transportFailed(toError(err)) }

  constructor (
    readonly id: string,
    /** the request that created the transaction; a completed NIST keeps only its To (see ServerMachine.compact) */
    public request: SipRequest,
    /** where this transaction's messages go */
    readonly target: SendTarget,
    readonly times: Durations,
    protected readonly host: TransactionHost,
    initial: S
  ) {
    this.current = initial
  }

  /** The exact machine state, 'accepted' included. */
  get phase (): MachineState { return this.current.name }

  /**
   * The state in the vocabulary of {@link TransactionState}, which predates RFC 6026: 'accepted' (final 2xx
   * passed, retransmissions still absorbed) reads as 'completed'.
   */
  get state (): TransactionState {
    const name = this.current.name
    return name === 'accepted' ? 'completed' : name
  }

  get terminated (): boolean { return this.current.name === 'terminated' }

  /** Runs the entry action of the initial state (sends the request, or the 100 Trying). */
  start (): void {
    (this.current.enter as ((tx: this) => void) | undefined)?.(this)
  }

  /** Moves to `next`: leave of the current state, then enter of the next. */
  go (next: S): void {
    const prev = this.current
    if (prev.name === 'terminated') return
    ;(prev.leave as ((tx: this) => void) | undefined)?.(this)
    this.current = next
    ;(next.enter as ((tx: this) => void) | undefined)?.(this)
  }

  /** Ends the transaction: stops every timer and tells the host. Idempotent; the TU is not told (callers do that). */
  terminate (result: TransactionResult): void {
    const prev = this.current
    if (prev.name === 'terminated') return
    this.current = TERMINATED as S // first, so anything re-entered from here sees the end
    ;(prev.leave as ((tx: this) => void) | undefined)?.(this)
    this.stopTimers()
    this.onTerminated()
    this.host.terminated(this as Machine<StateBase<never>>, result)
  }

  /** Sends a message to {@link target}; a rejection comes back as {@link transportFailed}. */
  transmit (msg: SipMessage | Buffer): void {
    if (this.current.name === 'terminated') return
    let p: Promise<void>
    try {
      p = this.host.send(this.target, msg)
    } catch (err) {
      // a send that throws instead of rejecting must not unwind into a socket callback
      queueMicrotask(() => { this.sendFailed(err) })
      return
    }
    p.then(undefined, this.sendFailed)
  }

  protected abstract stopTimers (): void
  protected abstract transportFailed (err: Error): void
  /** Hook for subclasses to release what they hold (abort listeners). */
  protected onTerminated (): void {}
}

/** A client machine (ICT, NICT): reports to its {@link ClientTransactionUser}, can be aborted. */
export abstract class ClientMachine<S extends StateBase<never>> extends Machine<S> implements ClientTransaction {
  private detach: (() => void) | undefined

  constructor (
    id: string, request: SipRequest, target: SendTarget, d: Durations, host: TransactionHost, initial: S,
    private readonly user: ClientTransactionUser
  ) {
    super(id, request, target, d, host, initial)
  }

  /** Abort = stop retransmitting and terminate; the TU hears nothing more. */
  watch (signal: AbortSignal): void {
    const onAbort = (): void => { this.terminate('aborted') }
    signal.addEventListener('abort', onAbort, { once: true })
    this.detach = () => { signal.removeEventListener('abort', onAbort) }
  }

  /** A response arrived for this transaction (the layer matched it, §17.1.3). */
  abstract receiveResponse (res: SipResponse, flow: Flow): void

  protected override onTerminated (): void {
    this.detach?.()
    this.detach = undefined
  }

  /** Passes a response to the TU. */
  deliver (res: SipResponse, flow: Flow): void {
    try {
      this.user.onResponse(res, flow)
    } catch (err) {
      this.host.logger?.error({ err, tx: this.id }, 'transaction user failed on a response')
    }
  }

  /** Timer B or F: terminate, then tell the TU. */
  timedOut (): void {
    this.terminate('timeout')
    try {
      this.user.onTimeout()
    } catch (err) {
      this.host.logger?.error({ err, tx: this.id }, 'transaction user failed on a timeout')
    }
  }

  /** RFC 3261 §17.1.1.2 / §17.1.2.2: a transport failure terminates the transaction and is reported to the TU. */
  failed (err: Error): void {
    this.terminate('transport_error')
    try {
      this.user.onTransportError(err)
    } catch (e) {
      this.host.logger?.error({ err: e, tx: this.id }, 'transaction user failed on a transport error')
    }
  }
}

/** Where a server transaction answers: the flow the request came in on (the transport applies rport/received). */
export function targetOf (flow: Flow): SendTarget {
  return { transport: flow.transport, address: flow.remoteAddress, port: flow.remotePort, flowId: flow.id }
}

/** A server machine (IST, NIST): answers on the request's flow. */
export abstract class ServerMachine<S extends StateBase<never>> extends Machine<S> implements ServerTransaction {
  /** the last provisional sent (re-sent on request retransmissions in 'proceeding') */
  provisional: SipResponse | undefined
  /** the final response sent, once there is one (undefined again after compact()) */
  final: SipResponse | undefined
  /** wire form of the final response, kept instead of the parsed objects after compact() */
  finalWire: Buffer | undefined
  /** status of the final response, kept across compact() */
  finalStatus: number | undefined

  constructor (id: string, request: SipRequest, readonly flow: Flow, d: Durations, host: TransactionHost, initial: S) {
    super(id, request, targetOf(flow), d, host, initial)
  }

  /** Sends a response through the machine. Ignored once the machine no longer accepts it (e.g. a second final). */
  abstract respond (response: SipResponse): void

  /** A retransmission of the request that created this transaction arrived. */
  abstract receiveRequest (): void

  /**
   * Once only retransmissions remain to be answered, keeps the final response's bytes and drops the parsed
   * request and response: a registrar under load holds 64*T1 (32 s) of completed transactions.
   */
  compact (): void {
    const final = this.final
    if (final === undefined || this.host.encode === undefined) return
    this.finalWire = this.host.encode(final)
    this.finalStatus = final.status
    this.final = undefined
    // RFC 2543 matching still compares the To tag
    this.request = { to: this.request.to, method: this.request.method } as SipRequest
  }

  /** The final response to retransmit. */
  get lastFinal (): SipResponse | Buffer | undefined { return this.finalWire ?? this.final }

  /** RFC 3261 §17.2.4: a transport failure on a response terminates the server transaction. */
  protected transportFailed (err: Error): void {
    if (this.terminated) return
    this.host.logger?.debug({ err, tx: this.id }, 'response could not be sent; transaction terminated')
    this.terminate('transport_error')
  }
}
