import type { TimerValues } from './types.js'

/** RFC 3261 §17.1.1.1 defaults: T1 500 ms (RTT estimate), T2 4 s (cap on non-INVITE and response retransmits), T4 5 s. */
export const DEFAULT_TIMER_VALUES: Readonly<TimerValues> = Object.freeze({ t1: 500, t2: 4000, t4: 5000 })

/**
 * The §17 timer durations for one kind of transport, derived once from {@link TimerValues}
 * (RFC 3261 Table 4, RFC 6026 §8.4). Milliseconds; 0 means "fire at once".
 */
export interface Durations {
  /** TCP/WS/TLS: no A/E/G retransmissions, D/I/J/K are zero */
  readonly reliable: boolean
  readonly t1: number
  readonly t2: number
  /** INVITE client timeout: 64*T1 */
  readonly b: number
  /** ICT wait for final-response retransmissions: at least 32 s unreliable, 0 reliable */
  readonly d: number
  /** non-INVITE client timeout: 64*T1 */
  readonly f: number
  /** IST wait for ACK: 64*T1 */
  readonly h: number
  /** IST wait for ACK retransmissions: T4 unreliable, 0 reliable */
  readonly i: number
  /** NIST wait for request retransmissions: 64*T1 unreliable, 0 reliable */
  readonly j: number
  /** NICT wait for response retransmissions: T4 unreliable, 0 reliable */
  readonly k: number
  /** RFC 6026 IST 'accepted': 64*T1 */
  readonly l: number
  /** RFC 6026 ICT 'accepted': 64*T1 */
  readonly m: number
}

/** Computes the durations for a reliable or an unreliable transport. */
export function durations (values: TimerValues, reliable: boolean): Durations {
  const long = 64 * values.t1
  return Object.freeze({
    reliable,
    t1: values.t1,
    t2: values.t2,
    b: long,
    // RFC 3261 §17.1.1.2: "at least 32 seconds for unreliable transports"; never shorter than the server's H window
    d: reliable ? 0 : Math.max(32_000, long),
    f: long,
    h: long,
    i: reliable ? 0 : values.t4,
    j: reliable ? 0 : long,
    k: reliable ? 0 : values.t4,
    l: long,
    m: long
  })
}

/**
 * One named RFC timer of one transaction: a thin wrapper over setTimeout/clearTimeout (so fake timers drive it).
 * Starting it again replaces the pending run. A zero duration fires synchronously, which is how the RFC's
 * "Timer K = 0 for reliable transports" becomes an immediate transition.
 */
export class Timer {
  private handle: ReturnType<typeof setTimeout> | undefined
  private readonly fire = (): void => {
    this.handle = undefined
    this.callback()
  }

  constructor (private readonly callback: () => void) {}

  start (ms: number): void {
    this.stop()
    if (ms <= 0) {
      this.callback()
      return
    }
    const handle = setTimeout(this.fire, ms)
    // a pending retransmission must not keep a stopping process alive
    if (typeof handle === 'object' && typeof handle.unref === 'function') handle.unref()
    this.handle = handle
  }

  stop (): void {
    if (this.handle !== undefined) {
      clearTimeout(this.handle)
      this.handle = undefined
    }
  }

  get running (): boolean { return this.handle !== undefined }
}
