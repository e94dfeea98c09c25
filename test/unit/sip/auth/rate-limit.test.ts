import { describe, it, expect } from 'vitest'
import { AuthParameterError, FailureLimiter } from '../../../../src/sip/auth/index.js'

const T0 = 1_000_000

describe('FailureLimiter', () => {
  it('has the documented defaults', () => {
    const l = new FailureLimiter()
    expect([l.maxFailures, l.windowMs, l.blockMs, l.maxKeys]).toEqual([10, 60_000, 300_000, 100_000])
  })

  it('blocks on the maxFailures-th failure within the window, for blockMs', () => {
    const l = new FailureLimiter({ maxFailures: 3, windowMs: 1000, blockMs: 5000 })
    expect(l.fail('ip:10.0.0.1', T0)).toBe(false)
    expect(l.fail('ip:10.0.0.1', T0 + 100)).toBe(false)
    expect(l.isBlocked('ip:10.0.0.1', T0 + 100)).toBe(false)
    expect(l.fail('ip:10.0.0.1', T0 + 200)).toBe(true)
    expect(l.isBlocked('ip:10.0.0.1', T0 + 200)).toBe(true)
    expect(l.isBlocked('ip:10.0.0.2', T0 + 200)).toBe(false)
    // failures while blocked neither re-trigger nor extend the block
    expect(l.fail('ip:10.0.0.1', T0 + 300)).toBe(false)
    expect(l.isBlocked('ip:10.0.0.1', T0 + 5199)).toBe(true)
    expect(l.isBlocked('ip:10.0.0.1', T0 + 5200)).toBe(false)
    expect(l.size).toBe(0)
    // a fresh start after the block
    expect(l.fail('ip:10.0.0.1', T0 + 5300)).toBe(false)
  })

  it('starts a new window once windowMs has passed since the first failure', () => {
    const l = new FailureLimiter({ maxFailures: 3, windowMs: 1000, blockMs: 5000 })
    l.fail('login:alice', T0)
    l.fail('login:alice', T0 + 900)
    expect(l.fail('login:alice', T0 + 1000)).toBe(false) // new window: count 1
    expect(l.fail('login:alice', T0 + 1500)).toBe(false)
    expect(l.fail('login:alice', T0 + 1999)).toBe(true)
  })

  it('succeed() clears the counter but not an active block', () => {
    const l = new FailureLimiter({ maxFailures: 2, windowMs: 1000, blockMs: 5000 })
    l.fail('login:alice', T0)
    l.succeed('login:alice')
    expect(l.fail('login:alice', T0 + 1)).toBe(false)
    expect(l.fail('login:alice', T0 + 2)).toBe(true)
    l.succeed('login:alice')
    expect(l.isBlocked('login:alice', T0 + 3)).toBe(true)
    l.succeed('login:unknown')
  })

  it('bounds memory; a flood of counting keys does not lift a block', () => {
    const l = new FailureLimiter({ maxFailures: 2, windowMs: 60_000, blockMs: 60_000, maxKeys: 8 })
    l.fail('login:alice', T0)
    expect(l.fail('login:alice', T0)).toBe(true) // blocked
    for (let i = 0; i < 1000; i++) l.fail(`login:x${i}`, T0 + i)
    expect(l.size).toBeLessThanOrEqual(8)
    expect(l.isBlocked('login:alice', T0 + 1000)).toBe(true)
    // recent counting keys are kept, old ones forgotten
    expect(l.fail('login:x999', T0 + 1001)).toBe(true)
    expect(l.fail('login:x0', T0 + 1001)).toBe(false)
  })

  it('forgets the oldest blocks once blocked keys fill their half', () => {
    const l = new FailureLimiter({ maxFailures: 1, windowMs: 1000, blockMs: 60_000, maxKeys: 8 })
    for (const k of ['a', 'b', 'c', 'd', 'e']) expect(l.fail(k, T0)).toBe(true)
    expect(l.size).toBeLessThanOrEqual(8)
    expect(l.isBlocked('a', T0 + 1)).toBe(false)
    for (const k of ['c', 'd', 'e']) expect(l.isBlocked(k, T0 + 1)).toBe(true)
    for (let i = 0; i < 100; i++) l.fail(`k${i}`, T0)
    expect(l.size).toBeLessThanOrEqual(8)
  })

  it('prune() forgets expired windows and blocks', () => {
    const l = new FailureLimiter({ maxFailures: 2, windowMs: 1000, blockMs: 100 })
    for (let i = 0; i < 5; i++) { l.fail(`k${i}`, T0); l.fail(`k${i}`, T0) }
    l.fail('counting', T0 + 500)
    l.fail('old', T0)
    expect(l.size).toBe(7)
    l.prune(T0 + 1000)
    expect(l.size).toBe(1)
    expect(l.fail('counting', T0 + 1001)).toBe(true)
  })

  it('stores long keys compactly and still tells them apart', () => {
    const l = new FailureLimiter({ maxFailures: 1 })
    const a = 'login:' + 'a'.repeat(100_000)
    const b = 'login:' + 'a'.repeat(99_999) + 'b'
    expect(l.fail(a, T0)).toBe(true)
    expect(l.isBlocked(a, T0)).toBe(true)
    expect(l.isBlocked(b, T0)).toBe(false)
  })

  it('validates its init with a named error', () => {
    expect(() => new FailureLimiter({ maxFailures: 0 })).toThrow(AuthParameterError)
    expect(() => new FailureLimiter({ windowMs: -1 })).toThrow(AuthParameterError)
    expect(() => new FailureLimiter({ blockMs: 1.5 })).toThrow(AuthParameterError)
    expect(() => new FailureLimiter({ maxKeys: Number.NaN })).toThrow(AuthParameterError)
  })
})
