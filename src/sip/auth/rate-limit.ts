// Authentication failure counting, Kamailio pike/htable style: too many failures for a key within a window
// blocks that key for a while. Pure: time is passed in, memory is bounded.
import { hash } from 'node:crypto'
import { AuthParameterError } from './errors.js'
import { TwoGenerationMap } from './lru.js'

/** Options of {@link FailureLimiter}. */
export interface FailureLimiterInit {
  /**
   * Failures within one window that block the key.
   * @default 10
   */
  maxFailures?: number
  /**
   * Length of the counting window, which opens at a key's first failure.
   * @default 60000
   */
  windowMs?: number
  /**
   * How long a key stays blocked.
   * @default 300000
   */
  blockMs?: number
  /**
   * Most keys tracked at once (counting and blocked together); the least recently touched are forgotten first.
   * @default 100000
   */
  maxKeys?: number
}

interface Counter { count: number, windowStart: number }

/** Keys longer than this are stored as a hash, so an attacker-chosen login cannot make one entry large. */
const MAX_KEY_LENGTH = 128

/**
 * Counts authentication failures per key (the registrar uses `ip:<addr>` and `login:<login>`) and blocks a key
 * after `maxFailures` failures within `windowMs`, for `blockMs`.
 *
 * Memory stays within `maxKeys` entries: counting keys and blocked keys each get half, and the least recently
 * touched are forgotten first. A flood of fresh keys can therefore reset counters, but lifting a block needs
 * about `maxKeys / 4` other keys blocked after it.
 */
export class FailureLimiter {
  readonly maxFailures: number
  readonly windowMs: number
  readonly blockMs: number
  readonly maxKeys: number
  private readonly counters: TwoGenerationMap<Counter>
  /** key -> blocked until */
  private readonly blocked: TwoGenerationMap<number>

  constructor (init: FailureLimiterInit = {}) {
    this.maxFailures = positive('maxFailures', init.maxFailures ?? 10)
    this.windowMs = positive('windowMs', init.windowMs ?? 60_000)
    this.blockMs = positive('blockMs', init.blockMs ?? 300_000)
    this.maxKeys = positive('maxKeys', init.maxKeys ?? 100_000)
    const generation = Math.max(1, Math.floor(this.maxKeys / 4))
    this.counters = new TwoGenerationMap(generation)
    this.blocked = new TwoGenerationMap(generation)
  }

  /** Keys currently tracked, counting or blocked (expired entries linger until pruned or pushed out). */
  get size (): number { return this.counters.size + this.blocked.size }

  /** True while `key` is blocked: refuse without checking credentials. */
  isBlocked (key: string, now: number = Date.now()): boolean {
    const k = normalize(key)
    const until = this.blocked.peek(k)
    if (until === undefined) return false
    if (until > now) return true
    this.blocked.delete(k)
    return false
  }

  /**
   * Counts one failure for `key`. Returns true when this failure blocks the key; false otherwise, including when
   * the key is already blocked (the block is not extended, so a blocked client is not kept out for ever).
   */
  fail (key: string, now: number = Date.now()): boolean {
    const k = normalize(key)
    if (this.isBlocked(k, now)) return false
    let c = this.counters.get(k)
    if (c === undefined || now - c.windowStart >= this.windowMs) {
      c = { count: 0, windowStart: now }
      this.counters.set(k, c)
    }
    c.count++
    if (c.count < this.maxFailures) return false
    this.counters.delete(k)
    this.blocked.set(k, now + this.blockMs)
    return true
  }

  /** Clears the failure count of `key` after a successful authentication. An active block stays. */
  succeed (key: string): void {
    this.counters.delete(normalize(key))
  }

  /** Forgets expired windows and blocks. O(size): for a periodic sweep, not the hot path. */
  prune (now: number = Date.now()): void {
    this.counters.sweep(c => now - c.windowStart >= this.windowMs)
    this.blocked.sweep(until => until <= now)
  }
}

function positive (field: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new AuthParameterError(field, 'must be a positive integer')
  return v
}

function normalize (key: string): string {
  return key.length <= MAX_KEY_LENGTH ? key : `#${hash('sha256', key, 'base64url')}`
}
