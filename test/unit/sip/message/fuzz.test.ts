import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { describe, it, expect } from 'vitest'
import {
  parseMessage, serialize, screenMessage, getHeaders, parseContactHeader, parseAuthParams, SipParseError, type SipMessage
} from '../../../../src/sip/message/index.js'
import { INVITE, REGISTER, RESPONSE } from './fixtures.js'

/** mulberry32: a seeded PRNG, so that a failure can be replayed. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const corpusDir = new URL('../../../../../shared/conformance/rfc4475/', import.meta.url)
const seeds: Buffer[] = [REGISTER, INVITE, RESPONSE]
if (existsSync(corpusDir)) {
  for (const f of readdirSync(corpusDir)) if (f.endsWith('.dat')) seeds.push(readFileSync(new URL(f, corpusDir)))
}

const SPECIAL = Buffer.from(';,"<>:[]%\\ \t\r\n\x00@=?/')

function mutate (data: Buffer, rnd: () => number): Buffer {
  const out = Buffer.from(data)
  switch (Math.floor(rnd() * 4)) {
    case 0: return out.subarray(0, Math.floor(rnd() * out.length))
    case 1: {
      const flips = 1 + Math.floor(rnd() * 4)
      for (let k = 0; k < flips; k++) out[Math.floor(rnd() * out.length)]! ^= 1 << Math.floor(rnd() * 8)
      return out
    }
    case 2: {
      const at = Math.floor(rnd() * out.length)
      return Buffer.concat([out.subarray(0, at), SPECIAL.subarray(Math.floor(rnd() * SPECIAL.length)).subarray(0, 1 + Math.floor(rnd() * 3)), out.subarray(at)])
    }
    default: {
      const a = Math.floor(rnd() * out.length)
      const b = Math.min(out.length, a + Math.floor(rnd() * 40))
      return Buffer.concat([out.subarray(0, a), out.subarray(b)])
    }
  }
}

function strip (m: SipMessage): unknown {
  return { ...m, headers: m.headers.filter(h => h.name !== 'Content-Length') }
}

describe('fuzzing the parser', () => {
  it('mutated messages parse (and round-trip) or throw SipParseError, never anything else', () => {
    const rnd = prng(4475)
    let parsed = 0
    let refused = 0
    for (let n = 0; n < 8000; n++) {
      const seed = seeds[n % seeds.length]!
      const data = mutate(seed, rnd)
      let m: SipMessage
      try {
        m = parseMessage(data)
      } catch (err) {
        if (!(err instanceof SipParseError) || err.reason === 'internal parser error') {
          throw new Error(`seed ${n}: ${JSON.stringify(data.toString('latin1'))}`, { cause: err })
        }
        refused++
        continue
      }
      parsed++
      const again = parseMessage(serialize(m))
      expect(strip(again), JSON.stringify(data.toString('latin1'))).toEqual(strip(m))
      // the lazy helpers fail only with SipParseError too
      for (const c of getHeaders(m, 'Contact')) {
        try { parseContactHeader(c) } catch (err) { expect(err).toBeInstanceOf(SipParseError) }
      }
      for (const a of getHeaders(m, 'Authorization')) {
        try { parseAuthParams(a) } catch (err) { expect(err).toBeInstanceOf(SipParseError) }
      }
    }
    // both paths were exercised
    expect(parsed).toBeGreaterThan(500)
    expect(refused).toBeGreaterThan(500)
  }, 30_000)

  it('screenMessage never throws', () => {
    const rnd = prng(5118)
    for (let n = 0; n < 5000; n++) {
      const s = screenMessage(mutate(seeds[n % seeds.length]!, rnd))
      expect(['process', 'reject', 'drop']).toContain(s.action)
      if (s.action === 'reject') expect(s.response.subarray(0, 8).toString()).toBe('SIP/2.0 ')
    }
  }, 30_000)

  it('random bytes are refused cleanly', () => {
    const rnd = prng(1)
    for (let n = 0; n < 2000; n++) {
      const data = Buffer.alloc(Math.floor(rnd() * 300))
      for (let k = 0; k < data.length; k++) data[k] = Math.floor(rnd() * 256)
      try { parseMessage(data) } catch (err) { expect(err).toBeInstanceOf(SipParseError) }
    }
  })
})
