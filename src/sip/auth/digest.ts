// HTTP Digest as SIP uses it: RFC 3261 §22.4 over RFC 2617, with SHA-256 from RFC 7616 as RFC 8760 brings it to SIP.
// Pure functions over strings; the only dependency is node:crypto.
import { hash, timingSafeEqual } from 'node:crypto'
import { AuthParameterError } from './errors.js'

/** Digest algorithms we compute. The `-sess` variants are refused: we never offer them in a challenge. */
export type DigestAlgorithm = 'MD5' | 'SHA-256'

/** The `qop` values a client may send; only `auth` is verified (`auth-int` would need the body hashed). */
export type DigestQop = 'auth' | 'auth-int'

/** Digest credentials from an `Authorization` or `Proxy-Authorization` header value, unquoted and unescaped. */
export interface DigestCredentials {
  username: string
  realm: string
  nonce: string
  /** the digest-uri exactly as sent: it enters A2 verbatim */
  uri: string
  /** lowercase hex, 32 digits for MD5, 64 for SHA-256 */
  response: string
  /** `MD5` when the client sent no `algorithm` (RFC 2617 §3.2.2) */
  algorithm: DigestAlgorithm
  qop?: DigestQop
  /** nonce-count as sent (8 hex digits, enters the response verbatim); present whenever `qop` is */
  nc?: string
  /** `nc` as a number, for replay checks */
  ncValue?: number
  /** present whenever `qop` is */
  cnonce?: string
  opaque?: string
}

/** A `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge, as a client reads it. */
export interface DigestChallenge {
  realm: string
  nonce: string
  /** `MD5` when the server sent no `algorithm` */
  algorithm: DigestAlgorithm
  /** the qop options offered, lowercased; empty when the server sent none (RFC 2069 mode) */
  qop: string[]
  stale: boolean
  opaque?: string
  domain?: string
}

/** Options of {@link buildChallenge}. */
export interface ChallengeOptions {
  realm: string
  /** from NonceManager.issue() */
  nonce: string
  algorithm: DigestAlgorithm
  /** true when the previous credentials were right but their nonce had expired (RFC 7616 §3.3) */
  stale?: boolean
  opaque?: string
  /**
   * `false` sends no qop, leaving the client in RFC 2069 mode with no nonce-count to stop replays.
   * @default 'auth'
   */
  qop?: 'auth' | false
}

/** Inputs of {@link computeResponse}. */
export interface ResponseInput {
  algorithm: DigestAlgorithm
  /** hex H(username:realm:password) for `algorithm` */
  ha1: string
  nonce: string
  method: string
  uri: string
  /** absent: RFC 2069 response, H(HA1:nonce:HA2) */
  qop?: 'auth'
  /** nonce-count: a number is written as 8 hex digits; a string is used verbatim */
  nc?: number | string
  cnonce?: string
}

/** Options of {@link verifyResponse}. */
export interface VerifyOptions {
  /**
   * Refuse RFC 2069 credentials (no qop). Without qop there is no nonce-count, so a captured request can be
   * replayed for as long as its nonce lives.
   * @default false
   */
  requireQop?: boolean
}

const HASH_NAME: Record<DigestAlgorithm, string> = { MD5: 'md5', 'SHA-256': 'sha256' }
const HEX_LENGTH: Record<DigestAlgorithm, number> = { MD5: 32, 'SHA-256': 64 }

/** Longest header value we look at; real credentials are a few hundred bytes. */
const MAX_HEADER_LENGTH = 8192

function h (algorithm: DigestAlgorithm, data: string): string {
  // strings hash as UTF-8, which RFC 7616 §4 asks for (and what every SIP client does)
  return hash(HASH_NAME[algorithm], data, 'hex')
}

/** RFC 2617 §3.2.2.2: HA1 = H(username ":" realm ":" password), lowercase hex. What the user store keeps. */
export function computeHa1 (algorithm: DigestAlgorithm, username: string, realm: string, password: string): string {
  return h(algorithm, `${username}:${realm}:${password}`)
}

/**
 * RFC 2617 §3.2.2.1 request-digest for qop=auth, or the RFC 2069 form when `qop` is absent.
 * Throws {@link AuthParameterError} when qop=auth lacks nc or cnonce, or nc is out of range.
 */
export function computeResponse (input: ResponseInput): string {
  const { algorithm, nonce, method, uri } = input
  const ha1 = input.ha1.toLowerCase()
  // RFC 2617 §3.2.2.3: A2 = Method ":" digest-uri-value
  const ha2 = h(algorithm, `${method}:${uri}`)
  if (input.qop === undefined) return h(algorithm, `${ha1}:${nonce}:${ha2}`)
  if (input.cnonce === undefined) throw new AuthParameterError('cnonce', 'required with qop=auth')
  return h(algorithm, `${ha1}:${nonce}:${formatNc(input.nc)}:${input.cnonce}:auth:${ha2}`)
}

function formatNc (nc: number | string | undefined): string {
  if (typeof nc === 'string') return nc
  if (nc === undefined) throw new AuthParameterError('nc', 'required with qop=auth')
  if (!Number.isInteger(nc) || nc < 1 || nc > 0xffffffff) throw new AuthParameterError('nc', 'must be 1..0xffffffff')
  return nc.toString(16).padStart(8, '0')
}

/**
 * Checks credentials against the stored HA1 for `creds.algorithm`, in constant time. `method` is the request's
 * method (RFC 3261 §22.4: for ACK and CANCEL, that of the request being acknowledged or cancelled).
 * Returns false for qop=auth-int, an HA1 of the wrong length, or a wrong response. It does not check the nonce,
 * the realm or that `creds.uri` names the request: the caller does.
 */
export function verifyResponse (creds: DigestCredentials, ha1: string, method: string, opts?: VerifyOptions): boolean {
  const algorithm = creds.algorithm
  const length = HEX_LENGTH[algorithm]
  if (length === undefined || typeof ha1 !== 'string' || ha1.length !== length || !isHex(ha1)) return false
  if (typeof creds.response !== 'string' || creds.response.length !== length) return false
  let expected: string
  if (creds.qop === 'auth') {
    if (creds.nc === undefined || creds.cnonce === undefined) return false
    expected = computeResponse({ algorithm, ha1, nonce: creds.nonce, method, uri: creds.uri, qop: 'auth', nc: creds.nc, cnonce: creds.cnonce })
  } else if (creds.qop === undefined) {
    if (opts?.requireQop === true) return false
    expected = computeResponse({ algorithm, ha1, nonce: creds.nonce, method, uri: creds.uri })
  } else {
    return false
  }
  // both are `length` ASCII characters, so the buffers are the same size
  return timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(creds.response.toLowerCase(), 'latin1'))
}

/**
 * Parses an `Authorization` / `Proxy-Authorization` value with the Digest scheme. Returns null for anything
 * malformed or unsupported: another scheme, a duplicated parameter, a missing username/realm/nonce/uri/response,
 * an unknown or `-sess` algorithm, qop without nc or cnonce, userhash=true. Unknown parameters are ignored.
 * Never throws.
 */
export function parseCredentials (headerValue: string): DigestCredentials | null {
  const p = parseDigestParams(headerValue)
  if (p === null) return null
  const username = p.get('username')
  const realm = p.get('realm')
  const nonce = p.get('nonce')
  const uri = p.get('uri')
  let response = p.get('response')
  if (username === undefined || realm === undefined || nonce === undefined || uri === undefined || response === undefined) return null
  if (username === '' || nonce === '' || uri === '') return null
  const algorithm = parseAlgorithm(p.get('algorithm'))
  if (algorithm === null) return null
  response = response.toLowerCase()
  if (response.length !== HEX_LENGTH[algorithm] || !isHex(response)) return null
  // RFC 7616 §3.4.4: the username would be a hash we cannot invert
  const userhash = p.get('userhash')
  if (userhash !== undefined && userhash.toLowerCase() !== 'false') return null

  const creds: DigestCredentials = { username, realm, nonce, uri, response, algorithm }
  const qop = p.get('qop')
  if (qop !== undefined) {
    const q = qop.toLowerCase()
    if (q !== 'auth' && q !== 'auth-int') return null
    // RFC 2617 §3.2.2: cnonce and nc MUST be sent with qop
    const nc = p.get('nc')
    const cnonce = p.get('cnonce')
    if (nc === undefined || cnonce === undefined || cnonce === '') return null
    if (nc.length !== 8 || !isHex(nc)) return null
    creds.qop = q
    creds.nc = nc
    creds.ncValue = Number.parseInt(nc, 16)
    creds.cnonce = cnonce
  }
  const opaque = p.get('opaque')
  if (opaque !== undefined) creds.opaque = opaque
  return creds
}

/**
 * Parses a `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge (the client side). Returns null for
 * anything malformed, another scheme, or an algorithm we do not compute. Never throws.
 */
export function parseChallenge (headerValue: string): DigestChallenge | null {
  const p = parseDigestParams(headerValue)
  if (p === null) return null
  const realm = p.get('realm')
  const nonce = p.get('nonce')
  if (realm === undefined || nonce === undefined || nonce === '') return null
  const algorithm = parseAlgorithm(p.get('algorithm'))
  if (algorithm === null) return null
  const qop = p.get('qop')
  const challenge: DigestChallenge = {
    realm,
    nonce,
    algorithm,
    // RFC 2617 §3.2.1: qop-options is a quoted, comma-separated list
    qop: qop === undefined ? [] : qop.split(',').map(s => s.trim().toLowerCase()).filter(s => s !== ''),
    stale: p.get('stale')?.toLowerCase() === 'true'
  }
  const opaque = p.get('opaque')
  if (opaque !== undefined) challenge.opaque = opaque
  const domain = p.get('domain')
  if (domain !== undefined) challenge.domain = domain
  return challenge
}

/**
 * Builds a `WWW-Authenticate` / `Proxy-Authenticate` value, e.g.
 * `Digest realm="example.org", nonce="…", algorithm=SHA-256, qop="auth"`.
 * RFC 8760 §2.4: to offer several algorithms, send one header per algorithm, most preferred first (the same nonce
 * may serve all of them). Throws {@link AuthParameterError} for a value that cannot be written as a quoted-string.
 */
export function buildChallenge (opts: ChallengeOptions): string {
  if (HEX_LENGTH[opts.algorithm] === undefined) throw new AuthParameterError('algorithm', 'must be MD5 or SHA-256')
  let out = `Digest realm=${quote('realm', opts.realm)}, nonce=${quote('nonce', opts.nonce)}`
  if (opts.opaque !== undefined) out += `, opaque=${quote('opaque', opts.opaque)}`
  out += `, algorithm=${opts.algorithm}`
  if (opts.qop !== false) out += ', qop="auth"'
  // RFC 7616 §3.3: stale=true asks the client to retry with the new nonce without prompting the user
  if (opts.stale === true) out += ', stale=true'
  return out
}

/**
 * Writes credentials as an `Authorization` / `Proxy-Authorization` value (the client side).
 * Throws {@link AuthParameterError} for a value that cannot be written as a quoted-string.
 */
export function formatCredentials (creds: Omit<DigestCredentials, 'ncValue'>): string {
  let out = `Digest username=${quote('username', creds.username)}, realm=${quote('realm', creds.realm)}` +
    `, nonce=${quote('nonce', creds.nonce)}, uri=${quote('uri', creds.uri)}, response=${quote('response', creds.response)}` +
    `, algorithm=${creds.algorithm}`
  if (creds.qop !== undefined) {
    if (creds.nc === undefined || creds.cnonce === undefined) throw new AuthParameterError('qop', 'needs nc and cnonce')
    if (creds.nc.length !== 8 || !isHex(creds.nc)) throw new AuthParameterError('nc', 'must be 8 hex digits')
    // RFC 2617 §3.2.2: qop and nc are unquoted in credentials
    out += `, qop=${creds.qop}, nc=${creds.nc}, cnonce=${quote('cnonce', creds.cnonce)}`
  }
  if (creds.opaque !== undefined) out += `, opaque=${quote('opaque', creds.opaque)}`
  return out
}

function quote (field: string, value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new AuthParameterError(field, 'contains a control character')
  }
  return `"${value.replace(/[\\"]/g, '\\$&')}"`
}

function parseAlgorithm (value: string | undefined): DigestAlgorithm | null {
  if (value === undefined) return 'MD5'
  const v = value.toUpperCase()
  if (v === 'MD5') return 'MD5'
  if (v === 'SHA-256') return 'SHA-256'
  return null
}

function isHex (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))) return false
  }
  return true
}

// RFC 3261 §25.1 token characters: alphanum and -.!%*_+`'~
const TOKEN = new Uint8Array(128)
for (const ch of '-.!%*_+`\'~') TOKEN[ch.charCodeAt(0)] = 1
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1
for (let c = 0x41; c <= 0x5a; c++) { TOKEN[c] = 1; TOKEN[c + 0x20] = 1 }

function isToken (c: number): boolean { return c < 128 && TOKEN[c] === 1 }
// LWS after unfolding; CR and LF too in case a caller hands over a raw folded value
function isWs (c: number): boolean { return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a }

/**
 * `Digest` SP auth-param *("," auth-param) into a map of lowercased names to unquoted values (RFC 3261 §25.1,
 * RFC 7235 §2.1): LWS allowed around "=" and ",", empty list elements skipped, values a token-ish run or a
 * quoted-string with quoted-pairs. Null when malformed or when a parameter appears twice.
 */
function parseDigestParams (value: string): Map<string, string> | null {
  if (typeof value !== 'string' || value.length > MAX_HEADER_LENGTH) return null
  const n = value.length
  let i = 0
  while (i < n && isWs(value.charCodeAt(i))) i++
  const schemeStart = i
  while (i < n && isToken(value.charCodeAt(i))) i++
  if (i - schemeStart !== 6 || value.slice(schemeStart, i).toLowerCase() !== 'digest') return null
  if (i >= n || !isWs(value.charCodeAt(i))) return null
  const params = new Map<string, string>()
  for (;;) {
    // skip LWS and empty list elements
    while (i < n) {
      const c = value.charCodeAt(i)
      if (c !== 0x2c && !isWs(c)) break
      i++
    }
    if (i >= n) break
    const nameStart = i
    while (i < n && isToken(value.charCodeAt(i))) i++
    if (i === nameStart) return null
    const name = value.slice(nameStart, i).toLowerCase()
    while (i < n && isWs(value.charCodeAt(i))) i++
    if (i >= n || value.charCodeAt(i) !== 0x3d /* = */) return null
    i++
    while (i < n && isWs(value.charCodeAt(i))) i++
    if (i >= n) return null
    let v: string
    if (value.charCodeAt(i) === 0x22 /* " */) {
      i++
      let runStart = i
      v = ''
      let closed = false
      while (i < n) {
        const c = value.charCodeAt(i)
        if (c === 0x22) { closed = true; break }
        if (c === 0x5c /* \ */) {
          // RFC 3261 §25.1 quoted-pair: the backslash is dropped, the next character kept
          if (i + 1 >= n) return null
          const next = value.charCodeAt(i + 1)
          if ((next < 0x20 && next !== 0x09) || next === 0x7f) return null
          v += value.slice(runStart, i)
          runStart = i + 1
          i += 2
          continue
        }
        if ((c < 0x20 && c !== 0x09) || c === 0x7f) return null
        i++
      }
      if (!closed) return null
      v += value.slice(runStart, i)
      i++ // closing quote
    } else {
      // a token by the grammar; accept any printable run so that lenient clients (uri=sip:a@b) still parse
      const start = i
      while (i < n) {
        const c = value.charCodeAt(i)
        if (c === 0x2c || c === 0x22 || c <= 0x20 || c === 0x7f) break
        i++
      }
      if (i === start) return null
      if (i < n && value.charCodeAt(i) === 0x22) return null
      v = value.slice(start, i)
    }
    if (params.has(name)) return null
    params.set(name, v)
    while (i < n && isWs(value.charCodeAt(i))) i++
    if (i < n && value.charCodeAt(i) !== 0x2c) return null
  }
  return params.size === 0 ? null : params
}
