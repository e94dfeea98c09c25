// Stateless digest nonces: the nonce carries its issue time and an HMAC, so any nonce we issued (even before a
// restart, with the same secret) can be checked without a table. Only nonce-counts need memory.
import { hash, randomFillSync, timingSafeEqual } from 'node:crypto'
import { AuthParameterError } from './errors.js'
import { TwoGenerationMap } from './lru.js'

/** Options of {@link NonceManager}. */
export interface NonceManagerInit {
  /** 32 secret bytes, kept in the node's data dir so nonces survive a restart */
  secret: Uint8Array
  /**
   * How long a nonce is accepted after it is issued; older ones are answered with stale=true.
   * @default 300000
   */
  lifetimeMs?: number
  /**
   * About how many nonces have their highest nonce-count remembered (least recently used forgotten first).
   * @default 100000
   */
  maxTracked?: number
}

/** Result of {@link NonceManager.check}. */
export type NonceStatus = 'valid' | 'stale' | 'invalid'

const VERSION = 1
// layout: version (1) | issue time ms, big-endian (6) | random (8) | HMAC-SHA256 truncated (15) = 30 bytes = 40 base64url
const TIME_OFFSET = 1
const RANDOM_OFFSET = 7
const MAC_OFFSET = 15
const MAC_LENGTH = 15
const RAW_LENGTH = MAC_OFFSET + MAC_LENGTH
const NONCE_LENGTH = 40
/** a nonce issued this far in our future is authentic but unusable (the clock went back): answer stale */
const FUTURE_SKEW_MS = 60_000
const RANDOM_POOL = 8 * 512

/**
 * Issues and checks HMAC-signed nonces (RFC 7616 §3.3 suggests time-stamp plus a private-key hash), and tracks
 * the highest nonce-count seen per nonce so that a qop=auth request cannot be replayed (RFC 7616 §5.5).
 */
export class NonceManager {
  readonly lifetimeMs: number
  /** HMAC-SHA256 key pads (RFC 2104), precomputed: createHmac prepares a key object per call, which costs more than the hashing */
  private readonly ipad: Buffer
  private readonly opad: Buffer
  /** nonce -> highest nc seen and the nonce's issue time */
  private readonly nc: TwoGenerationMap<{ nc: number, issuedAt: number }>
  /** newest issue time among nonces whose count was dropped while still alive: older unknown nonces are suspect */
  private evictedIssuedAt = -1
  /** the time of the checkNc call that is inserting, for the drop callback */
  private lastNow = 0
  private readonly pool = Buffer.alloc(RANDOM_POOL)
  private poolOffset = RANDOM_POOL

  constructor (init: NonceManagerInit) {
    if (!(init.secret instanceof Uint8Array) || init.secret.length !== 32) throw new AuthParameterError('secret', 'must be 32 bytes')
    const lifetimeMs = init.lifetimeMs ?? 300_000
    if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs <= 0) throw new AuthParameterError('lifetimeMs', 'must be a positive integer')
    const maxTracked = init.maxTracked ?? 100_000
    if (!Number.isSafeInteger(maxTracked) || maxTracked <= 0) throw new AuthParameterError('maxTracked', 'must be a positive integer')
    this.ipad = Buffer.alloc(64 + MAC_OFFSET)
    this.opad = Buffer.alloc(64 + 32)
    for (let i = 0; i < 64; i++) {
      const k = i < 32 ? init.secret[i]! : 0
      this.ipad[i] = k ^ 0x36
      this.opad[i] = k ^ 0x5c
    }
    this.lifetimeMs = lifetimeMs
    this.nc = new TwoGenerationMap(Math.max(1, Math.floor(maxTracked / 2)), dropped => { this.dropped(dropped) })
  }

  /** How many nonces have a nonce-count remembered. */
  get tracked (): number { return this.nc.size }

  /** A fresh nonce: 40 base64url characters, safe inside a quoted-string and as a token. */
  issue (now: number = Date.now()): string {
    const raw = Buffer.allocUnsafe(RAW_LENGTH)
    raw[0] = VERSION
    raw.writeUIntBE(Math.max(0, Math.min(Math.floor(now), 0xffffffffffff)), TIME_OFFSET, 6)
    if (this.poolOffset >= RANDOM_POOL) { randomFillSync(this.pool); this.poolOffset = 0 }
    this.pool.copy(raw, RANDOM_OFFSET, this.poolOffset, this.poolOffset + 8)
    this.poolOffset += 8
    this.mac(raw).copy(raw, MAC_OFFSET, 0, MAC_LENGTH)
    return raw.toString('base64url')
  }

  /**
   * 'valid': ours and alive; 'stale': ours but expired (answer 401/407 with stale=true and a new nonce);
   * 'invalid': not ours (forged, corrupted, or from another secret). Never throws.
   */
  check (nonce: string, now: number = Date.now()): NonceStatus {
    const raw = this.decode(nonce)
    if (raw === null) return 'invalid'
    if (!timingSafeEqual(this.mac(raw).subarray(0, MAC_LENGTH), raw.subarray(MAC_OFFSET))) return 'invalid'
    const issuedAt = raw.readUIntBE(TIME_OFFSET, 6)
    if (issuedAt > now + FUTURE_SKEW_MS || now - issuedAt > this.lifetimeMs) return 'stale'
    return 'valid'
  }

  /**
   * Records nonce-count `nc` for a nonce that {@link check} found valid and whose response verified; call it only
   * then, or a forged request could raise the count and lock out the real client. Returns false when `nc` does
   * not exceed the highest count seen for this nonce (a replay, RFC 7616 §3.4: the client MUST increase it), or
   * when the nonce's count was forgotten under memory pressure; answer either with a new nonce and stale=true.
   */
  checkNc (nonce: string, nc: number, now: number = Date.now()): boolean {
    if (!Number.isInteger(nc) || nc < 1 || nc > 0xffffffff) return false
    const seen = this.nc.get(nonce)
    if (seen !== undefined) {
      if (nc <= seen.nc) return false
      seen.nc = nc
      return true
    }
    const raw = this.decode(nonce)
    if (raw === null) return false
    const issuedAt = raw.readUIntBE(TIME_OFFSET, 6)
    // its count may have been dropped: we can no longer tell a first use from a replay
    if (issuedAt <= this.evictedIssuedAt) return false
    this.lastNow = now
    this.nc.set(nonce, { nc, issuedAt })
    return true
  }

  /** Forgets the counts of expired nonces (they are refused as stale anyway). O(tracked): for a periodic sweep. */
  prune (now: number = Date.now()): void {
    this.nc.sweep(seen => now - seen.issuedAt > this.lifetimeMs)
  }

  private dropped (entries: Map<string, { nc: number, issuedAt: number }>): void {
    for (const seen of entries.values()) {
      if (this.lastNow - seen.issuedAt <= this.lifetimeMs && seen.issuedAt > this.evictedIssuedAt) this.evictedIssuedAt = seen.issuedAt
    }
  }

  /** HMAC-SHA256(secret, raw[0..MAC_OFFSET)) = H(K^opad || H(K^ipad || m)), with one-shot hashes. Not reentrant. */
  private mac (raw: Buffer): Buffer {
    raw.copy(this.ipad, 64, 0, MAC_OFFSET)
    hash('sha256', this.ipad, 'buffer').copy(this.opad, 64)
    return hash('sha256', this.opad, 'buffer')
  }

  private decode (nonce: string): Buffer | null {
    if (typeof nonce !== 'string' || nonce.length !== NONCE_LENGTH) return null
    // Buffer.from(…, 'base64url') skips bad characters silently; insist on the alphabet
    for (let i = 0; i < NONCE_LENGTH; i++) {
      const c = nonce.charCodeAt(i)
      if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return null
    }
    const raw = Buffer.from(nonce, 'base64url')
    if (raw.length !== RAW_LENGTH || raw[0] !== VERSION) return null
    return raw
  }
}
