import { SipParseError } from '../errors.js'
import { isParamValueChar, isToken, isWs, isHex, isAlpha } from './chars.js'
import type { Params } from './types.js'

const DQUOTE = 34
const SEMI = 59
const EQUAL = 61
const BACKSLASH = 92
const LBRACKET = 91

/** A cursor over one header value; every failure is a {@link SipParseError} naming what was being read. */
export class Scanner {
  i: number
  readonly s: string
  readonly what: string

  constructor (s: string, what: string, start = 0) {
    this.s = s
    this.what = what
    this.i = start
  }

  get eof (): boolean { return this.i >= this.s.length }

  /** char code at the cursor, NaN at the end */
  peek (): number { return this.s.charCodeAt(this.i) }

  skipWs (): void {
    const s = this.s
    let i = this.i
    while (i < s.length && isWs(s.charCodeAt(i))) i++
    this.i = i
  }

  /** 1*token-char */
  token (): string {
    const s = this.s
    const start = this.i
    let i = start
    while (i < s.length && isToken(s.charCodeAt(i))) i++
    if (i === start) this.fail(this.eof ? 'unexpected end' : `unexpected character ${JSON.stringify(s[i])}`)
    this.i = i
    return s.slice(start, i)
  }

  expect (code: number): void {
    if (this.s.charCodeAt(this.i) !== code) {
      this.fail(`expected ${JSON.stringify(String.fromCharCode(code))}${this.eof ? ' before end' : ` at ${JSON.stringify(this.s[this.i])}`}`)
    }
    this.i++
  }

  /** A quoted-string, returned with its quotes and escapes as on the wire. */
  quoted (): string {
    const s = this.s
    const start = this.i
    let i = start + 1
    while (i < s.length) {
      const c = s.charCodeAt(i)
      if (c === BACKSLASH) { i += 2; continue }
      if (c === DQUOTE) {
        this.i = i + 1
        return s.slice(start, i + 1)
      }
      i++
    }
    return this.fail('unterminated quoted string')
  }

  fail (msg: string): never {
    throw new SipParseError(`${this.what}: ${msg}`)
  }
}

/** Removes the quotes of a quoted-string and resolves its quoted-pairs (RFC 3261 §25.1). */
export function unquote (raw: string): string {
  const inner = raw.slice(1, -1)
  if (inner.indexOf('\\') < 0) return inner
  let out = ''
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i]
    if (ch === '\\' && i + 1 < inner.length) { out += inner[i + 1]; i++ } else out += ch
  }
  return out
}

/** Wraps `s` in quotes, escaping `"` and `\`. */
export function quote (s: string): string {
  // quoted-pair cannot carry CR or LF (RFC 3261 §25.1): they become spaces rather than break the message
  return '"' + s.replace(/[\r\n]/g, ' ').replace(/["\\]/g, '\\$&') + '"'
}

/** A params object without prototype, so that names like `__proto__` or `constructor` are plain keys. */
export function newParams (): Params {
  return Object.create(null) as Params
}

export function cloneParams (p: Params): Params {
  return Object.assign(newParams(), p)
}

/**
 * `*( SEMI generic-param )` of a header (RFC 3261 §25.1: SEMI and EQUAL allow LWS on both sides).
 * Names are lowercased; bare names get null; quoted values keep their quotes; IPv6 references keep brackets.
 */
export function readHeaderParams (sc: Scanner, params: Params): void {
  const s = sc.s
  for (;;) {
    sc.skipWs()
    if (s.charCodeAt(sc.i) !== SEMI) return
    sc.i++
    sc.skipWs()
    const name = sc.token().toLowerCase()
    sc.skipWs()
    if (s.charCodeAt(sc.i) === EQUAL) {
      sc.i++
      sc.skipWs()
      params[name] = readParamValue(sc)
    } else {
      params[name] = null
    }
  }
}

function readParamValue (sc: Scanner): string {
  const s = sc.s
  const c = s.charCodeAt(sc.i)
  if (c === DQUOTE) return sc.quoted()
  const start = sc.i
  let i = start
  if (c === LBRACKET) {
    const end = s.indexOf(']', i)
    if (end < 0) sc.fail('unterminated IPv6 reference')
    i = end + 1
  }
  while (i < s.length && isParamValueChar(s.charCodeAt(i))) i++
  if (i === start) sc.fail(sc.eof ? 'parameter value missing' : `bad parameter value at ${JSON.stringify(s[i])}`)
  sc.i = i
  return s.slice(start, i)
}

/** `;name=value;flag` with quotes where the value needs them (params as produced by {@link readHeaderParams}). */
export function formatParams (params: Params): string {
  let out = ''
  for (const name in params) {
    const v = params[name]
    out += v === null || v === undefined ? ';' + name : ';' + name + '=' + v
  }
  return out
}

/** Validates the inside of an IPv6 reference (`[...]`); RFC 5118 §4.10: tolerate the three-colon form too. */
export function isIpv6Reference (s: string, start: number, end: number): boolean {
  // s[start] === '[' and s[end] === ']'
  if (end - start < 3 || end - start > 64) return false
  let colons = 0
  let i = start + 1
  for (; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c === 58) colons++
    else if (c === 37) break // RFC 6874 zone id: %25eth0
    else if (c !== 46 && !isHex(c)) return false
  }
  for (i++; i < end; i++) {
    const c = s.charCodeAt(i)
    if (!isAlpha(c) && !isHex(c) && c !== 95 && c !== 45 && c !== 46 && c !== 37) return false
  }
  return colons >= 2
}

/** Trims SP/HTAB/CR/LF on both ends. */
export function trimWs (s: string): string {
  let a = 0
  let b = s.length
  while (a < b && isWs(s.charCodeAt(a))) a++
  while (b > a && isWs(s.charCodeAt(b - 1))) b--
  return a === 0 && b === s.length ? s : s.slice(a, b)
}

