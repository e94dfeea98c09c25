import { randomBytes } from 'node:crypto'

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ' // Crockford base32, as ULID

/**
 * Message ids: ULID-like, 26 characters of Crockford base32: 48 bits of milliseconds, then 80 bits that are random
 * at the first id of a millisecond and incremented after it (monotonic), so ids sort in the order they were made
 * within one node and by time across nodes.
 */
export class MessageIds {
  private lastMs = -1
  private readonly last = new Uint8Array(10)

  next (now = Date.now()): string {
    if (now <= this.lastMs) {
      // same (or earlier: clock step back) millisecond: increment the random part so order holds
      for (let i = 9; i >= 0; i--) {
        this.last[i] = (this.last[i]! + 1) & 0xff
        if (this.last[i] !== 0) break
      }
    } else {
      this.lastMs = now
      this.last.set(randomBytes(10))
      this.last[0]! &= 0x7f // room to increment without wrapping
    }
    return encodeTime(this.lastMs) + encodeRandom(this.last)
  }
}

function encodeTime (ms: number): string {
  let out = ''
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32]! + out
    ms = Math.floor(ms / 32)
  }
  return out
}

function encodeRandom (bytes: Uint8Array): string {
  let out = ''
  let acc = 0
  let bits = 0
  for (const b of bytes) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(acc >>> bits) & 31]!
    }
    acc &= (1 << bits) - 1
  }
  return out
}

/** Milliseconds encoded in an id (its first 10 characters). */
export function idTime (id: string): number {
  let ms = 0
  for (let i = 0; i < 10; i++) ms = ms * 32 + ALPHABET.indexOf(id[i] ?? '0')
  return ms
}

/** The smallest id of a given millisecond: a key bound for range scans. */
export function idFloor (ms: number): string {
  return encodeTime(Math.max(0, Math.floor(ms))) + '0'.repeat(16)
}

const ID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/

export function isMessageId (v: unknown): v is string {
  return typeof v === 'string' && ID_RE.test(v)
}
