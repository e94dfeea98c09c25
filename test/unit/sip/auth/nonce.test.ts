import { describe, it, expect } from 'vitest'
import { AuthParameterError, NonceManager } from '../../../../src/sip/auth/index.js'

const SECRET = new Uint8Array(32).fill(7)
const T0 = 1_700_000_000_000

describe('NonceManager: issue/check', () => {
  it('issues distinct 40-character base64url nonces', () => {
    const m = new NonceManager({ secret: SECRET })
    const seen = new Set<string>()
    for (let i = 0; i < 2000; i++) {
      const n = m.issue(T0)
      expect(n).toMatch(/^[A-Za-z0-9_-]{40}$/)
      seen.add(n)
    }
    expect(seen.size).toBe(2000)
  })

  it('is valid within its lifetime and stale after it', () => {
    const m = new NonceManager({ secret: SECRET, lifetimeMs: 1000 })
    const n = m.issue(T0)
    expect(m.check(n, T0)).toBe('valid')
    expect(m.check(n, T0 + 1000)).toBe('valid')
    expect(m.check(n, T0 + 1001)).toBe('stale')
    expect(m.check(n, T0 + 86_400_000)).toBe('stale')
  })

  it('defaults to a five-minute lifetime', () => {
    const m = new NonceManager({ secret: SECRET })
    expect(m.lifetimeMs).toBe(300_000)
    const n = m.issue(T0)
    expect(m.check(n, T0 + 299_999)).toBe('valid')
    expect(m.check(n, T0 + 300_001)).toBe('stale')
  })

  it('answers stale for a nonce from the future (clock moved back)', () => {
    const m = new NonceManager({ secret: SECRET })
    const n = m.issue(T0)
    expect(m.check(n, T0 - 1000)).toBe('valid')
    expect(m.check(n, T0 - 3_600_000)).toBe('stale')
  })

  it('survives a restart with the same secret, not with another', () => {
    const n = new NonceManager({ secret: SECRET }).issue(T0)
    expect(new NonceManager({ secret: SECRET }).check(n, T0 + 10)).toBe('valid')
    expect(new NonceManager({ secret: new Uint8Array(32).fill(8) }).check(n, T0 + 10)).toBe('invalid')
  })

  it('rejects forged and corrupted nonces', () => {
    const m = new NonceManager({ secret: SECRET })
    const n = m.issue(T0)
    const raw = Buffer.from(n, 'base64url')
    // move the issue time forward by one ms: the MAC no longer matches
    const later = Buffer.from(raw)
    later.writeUIntBE(raw.readUIntBE(1, 6) + 1, 1, 6)
    expect(m.check(later.toString('base64url'), T0)).toBe('invalid')
    for (let i = 0; i < raw.length; i++) {
      const flipped = Buffer.from(raw)
      flipped[i] = flipped[i]! ^ 0x01
      expect(m.check(flipped.toString('base64url'), T0)).toBe('invalid')
    }
    for (const bad of ['', 'x', n.slice(1), n + 'A', n.slice(0, 39) + '=', n.slice(0, 39) + '+', n.replace(/./, '/'), 'dcd98b7102dd2f0e8b11d0f600bfb0c093', ' '.repeat(40), undefined as unknown as string]) {
      expect(m.check(bad, T0)).toBe('invalid')
    }
  })

  it('validates its init with a named error', () => {
    expect(() => new NonceManager({ secret: new Uint8Array(16) })).toThrow(AuthParameterError)
    expect(() => new NonceManager({ secret: SECRET, lifetimeMs: 0 })).toThrow(AuthParameterError)
    expect(() => new NonceManager({ secret: SECRET, maxTracked: -1 })).toThrow(AuthParameterError)
  })

  it('copies the secret', () => {
    const secret = new Uint8Array(32).fill(1)
    const m = new NonceManager({ secret })
    const n = m.issue(T0)
    secret.fill(2)
    expect(m.check(n, T0)).toBe('valid')
  })
})

describe('NonceManager: nonce-count replay protection', () => {
  it('requires nc to increase per nonce', () => {
    const m = new NonceManager({ secret: SECRET })
    const a = m.issue(T0)
    const b = m.issue(T0)
    expect(m.checkNc(a, 1, T0)).toBe(true)
    expect(m.checkNc(a, 1, T0)).toBe(false)
    expect(m.checkNc(a, 2, T0)).toBe(true)
    expect(m.checkNc(a, 5, T0)).toBe(true)
    expect(m.checkNc(a, 4, T0)).toBe(false)
    expect(m.checkNc(b, 1, T0)).toBe(true)
    expect(m.tracked).toBe(2)
  })

  it('refuses out-of-range counts and undecodable nonces', () => {
    const m = new NonceManager({ secret: SECRET })
    const a = m.issue(T0)
    expect(m.checkNc(a, 0, T0)).toBe(false)
    expect(m.checkNc(a, 0x1_0000_0000, T0)).toBe(false)
    expect(m.checkNc(a, 1.5, T0)).toBe(false)
    expect(m.checkNc(a, Number.NaN, T0)).toBe(false)
    expect(m.checkNc('garbage', 1, T0)).toBe(false)
    expect(m.tracked).toBe(0)
    expect(m.checkNc(a, 0xffffffff, T0)).toBe(true)
  })

  it('stays bounded, and refuses older unknown nonces once a live count was dropped', () => {
    const m = new NonceManager({ secret: SECRET, maxTracked: 4 })
    const old = m.issue(T0)
    const nonces = [1, 2, 3, 4, 5, 6].map(i => m.issue(T0 + i))
    for (const n of nonces) expect(m.checkNc(n, 1, T0 + 10)).toBe(true)
    expect(m.tracked).toBe(4)
    // nonces[0] was forgotten while alive: a replay of its nc=1 must not pass
    expect(m.checkNc(nonces[0]!, 1, T0 + 10)).toBe(false)
    expect(m.checkNc(nonces[1]!, 2, T0 + 10)).toBe(false)
    // an untracked nonce issued before it cannot be told from a replay either
    expect(m.checkNc(old, 1, T0 + 10)).toBe(false)
    // tracked ones keep their counts
    expect(m.checkNc(nonces[2]!, 1, T0 + 10)).toBe(false)
    expect(m.checkNc(nonces[2]!, 2, T0 + 10)).toBe(true)
    // newer nonces still work
    expect(m.checkNc(m.issue(T0 + 20), 1, T0 + 20)).toBe(true)
    for (let i = 0; i < 1000; i++) m.checkNc(m.issue(T0 + 100 + i), 1, T0 + 100 + i)
    expect(m.tracked).toBeLessThanOrEqual(4)
  })

  it('keeps recently used nonces', () => {
    const m = new NonceManager({ secret: SECRET, maxTracked: 4, lifetimeMs: 1000 })
    const [a, b, c, d] = [0, 1, 2, 3].map(i => m.issue(T0 + i)) as [string, string, string, string]
    expect(m.checkNc(a, 1, T0 + 10)).toBe(true)
    expect(m.checkNc(b, 1, T0 + 10)).toBe(true)
    expect(m.checkNc(c, 1, T0 + 10)).toBe(true)
    expect(m.checkNc(a, 2, T0 + 11)).toBe(true) // a used again: kept over b
    expect(m.checkNc(d, 1, T0 + 12)).toBe(true) // b forgotten
    expect(m.checkNc(a, 3, T0 + 13)).toBe(true)
    expect(m.checkNc(a, 3, T0 + 13)).toBe(false)
    expect(m.checkNc(b, 1, T0 + 13)).toBe(false)
  })

  it('forgets expired counts without refusing other nonces', () => {
    const m = new NonceManager({ secret: SECRET, maxTracked: 2, lifetimeMs: 1000 })
    const x = m.issue(T0)
    const pending = m.issue(T0 + 4999)
    expect(m.checkNc(x, 1, T0)).toBe(true)
    expect(m.checkNc(m.issue(T0 + 5000), 1, T0 + 5000)).toBe(true)
    expect(m.checkNc(m.issue(T0 + 5001), 1, T0 + 5001)).toBe(true) // x, expired, is dropped here
    expect(m.checkNc(pending, 1, T0 + 5002)).toBe(true)
  })

  it('prune() drops counts of expired nonces', () => {
    const m = new NonceManager({ secret: SECRET, lifetimeMs: 1000 })
    const a = m.issue(T0)
    const b = m.issue(T0 + 900)
    m.checkNc(a, 1, T0)
    m.checkNc(b, 1, T0 + 900)
    m.prune(T0 + 1500)
    expect(m.tracked).toBe(1)
    expect(m.checkNc(b, 1, T0 + 1500)).toBe(false)
  })
})

describe('nonce MAC', () => {
  it('is HMAC-SHA256 of the first 15 bytes under the secret, truncated to 15 bytes (documented layout)', async () => {
    const { createHmac, randomBytes } = await import('node:crypto')
    const { NonceManager } = await import('../../../../src/sip/auth/index.js')
    const secret = randomBytes(32)
    const m = new NonceManager({ secret })
    for (let i = 0; i < 5; i++) {
      const raw = Buffer.from(m.issue(), 'base64url')
      const mac = createHmac('sha256', secret).update(raw.subarray(0, 15)).digest().subarray(0, 15)
      expect(raw.subarray(15).equals(mac)).toBe(true)
    }
  })
})
