import { SipParseError } from '../errors.js'
import { isDigit, isToken, isTokenString, isWs } from './chars.js'
import { parseNameAddr } from './name-addr.js'
import { Scanner, trimWs, unquote } from './scan.js'
import { readVias } from './via.js'
import type { CSeq, SipHeader, SipMessage, Via } from './types.js'

const KNOWN = [
  'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Accept-Resource-Priority', 'Alert-Info', 'Allow',
  'Allow-Events', 'Answer-Mode', 'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact',
  'Content-Disposition', 'Content-Encoding', 'Content-ID', 'Content-Language', 'Content-Length',
  'Content-Transfer-Encoding', 'Content-Type', 'CSeq', 'Date', 'Diversion', 'Error-Info', 'Event', 'Expires',
  'Feature-Caps', 'Flow-Timer', 'From', 'Geolocation', 'History-Info', 'Identity', 'Identity-Info', 'In-Reply-To',
  'Info-Package', 'Join', 'Max-Breadth', 'Max-Forwards', 'MIME-Version', 'Min-Expires', 'Min-SE', 'Organization',
  'P-Access-Network-Info', 'P-Asserted-Identity', 'P-Associated-URI', 'P-Called-Party-ID', 'P-Charging-Vector',
  'P-Preferred-Identity', 'Path', 'Priority', 'Privacy', 'Proxy-Authenticate', 'Proxy-Authorization',
  'Proxy-Require', 'RAck', 'Reason', 'Record-Route', 'Recv-Info', 'Refer-Sub', 'Refer-To', 'Referred-By',
  'Reject-Contact', 'Remote-Party-ID', 'Replaces', 'Reply-To', 'Request-Disposition', 'Require', 'Resource-Priority',
  'Retry-After', 'Route', 'RSeq', 'Security-Client', 'Security-Server', 'Security-Verify', 'Server', 'Service-Route',
  'Session-Expires', 'Session-ID', 'SIP-ETag', 'SIP-If-Match', 'Subject', 'Subscription-State', 'Supported',
  'Suppress-If-Match', 'Target-Dialog', 'Timestamp', 'To', 'Unsupported', 'User-Agent', 'Via', 'Warning',
  'WWW-Authenticate'
] as const

/** RFC 3261 §7.3.3 and later RFCs: compact forms. */
const COMPACT: Record<string, string> = {
  a: 'Accept-Contact',
  b: 'Referred-By',
  c: 'Content-Type',
  d: 'Request-Disposition',
  e: 'Content-Encoding',
  f: 'From',
  i: 'Call-ID',
  j: 'Reject-Contact',
  k: 'Supported',
  l: 'Content-Length',
  m: 'Contact',
  n: 'Identity-Info',
  o: 'Event',
  r: 'Refer-To',
  s: 'Subject',
  t: 'To',
  u: 'Allow-Events',
  v: 'Via',
  x: 'Session-Expires',
  y: 'Identity'
}

const CANONICAL = new Map<string, string>()
for (const name of KNOWN) CANONICAL.set(name.toLowerCase(), name)
for (const [short, long] of Object.entries(COMPACT)) CANONICAL.set(short, long)
const IS_CANONICAL = new Set<string>(KNOWN)
// canonical → the same canonical string constant, so that parsed names compare by identity later
const EXACT = new Map<string, string>(KNOWN.map(n => [n, n]))

/**
 * Headers whose value is a comma-separated list that may be split over several lines (RFC 3261 §7.3.1).
 * Not the auth headers, Date or Retry-After, whose values contain commas of their own.
 */
export const LIST_HEADERS: ReadonlySet<string> = new Set([
  'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Accept-Resource-Priority', 'Alert-Info', 'Allow',
  'Allow-Events', 'Call-Info', 'Contact', 'Content-Encoding', 'Content-Language', 'Error-Info', 'History-Info',
  'In-Reply-To', 'P-Asserted-Identity', 'P-Associated-URI', 'P-Preferred-Identity', 'Path', 'Proxy-Require', 'Reason',
  'Record-Route', 'Recv-Info', 'Reject-Contact', 'Request-Disposition', 'Require', 'Resource-Priority', 'Route',
  'Security-Client', 'Security-Server', 'Security-Verify', 'Service-Route', 'Supported', 'Unsupported', 'Via', 'Warning'
])

/**
 * The canonical long name of a header: compact forms expanded (`v` → `Via`), known names in their usual case
 * (`cseq` → `CSeq`); unknown names are returned as given.
 */
export function canonicalHeaderName (name: string): string {
  return EXACT.get(name) ?? CANONICAL.get(name.toLowerCase()) ?? name
}

/**
 * Header names in messages made by this module are canonical ({@link canonicalHeaderName}), so a known name
 * compares by identity; an unknown one case-insensitively.
 */
function sameName (headerName: string, canonical: string, known: boolean): boolean {
  if (headerName === canonical) return true
  if (known || headerName.length !== canonical.length) return false
  return headerName.toLowerCase() === canonical.toLowerCase()
}

/** The first value of a header (case-insensitive, compact forms included), or undefined. */
export function getHeader (msg: Pick<SipMessage, 'headers'>, name: string): string | undefined {
  const canon = canonicalHeaderName(name)
  const known = IS_CANONICAL.has(canon)
  const hs = msg.headers
  for (let k = 0; k < hs.length; k++) {
    const h = hs[k]!
    if (sameName(h.name, canon, known)) return h.value
  }
  return undefined
}

/**
 * Every value of a header across its lines. For list headers ({@link LIST_HEADERS}) each line is split into its
 * comma-separated values, respecting quoted strings and `<...>`; empty elements are dropped.
 */
export function getHeaders (msg: Pick<SipMessage, 'headers'>, name: string): string[] {
  const canon = canonicalHeaderName(name)
  const known = IS_CANONICAL.has(canon)
  const split = LIST_HEADERS.has(canon)
  const out: string[] = []
  for (const h of msg.headers) {
    if (!sameName(h.name, canon, known)) continue
    if (split) splitList(h.value, out)
    else out.push(h.value)
  }
  return out
}

/** Splits a comma-separated header value, not inside quotes or angle brackets; pushes trimmed, non-empty items. */
export function splitList (value: string, out: string[] = []): string[] {
  let start = 0
  let inQuote = false
  let inAngle = false
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (inQuote) {
      if (c === 92) i++
      else if (c === 34) inQuote = false
    } else if (c === 34) inQuote = true
    else if (c === 60) inAngle = true
    else if (c === 62) inAngle = false
    else if (c === 44 && !inAngle) {
      const item = trimWs(value.slice(start, i))
      if (item.length > 0) out.push(item)
      start = i + 1
    }
  }
  const item = trimWs(value.slice(start))
  if (item.length > 0) out.push(item)
  return out
}

/**
 * Replaces every line of a header by one line with `value`, where the first one was (appended when absent).
 * The parsed fields (`vias`, `from`, `to`, `callId`, `cseq`, `maxForwards`) are kept in step.
 * Throws {@link SipParseError} when `value` is not valid for one of those.
 */
export function setHeader (msg: SipMessage, name: string, value: string): void {
  const canon = canonicalHeaderName(name)
  const known = IS_CANONICAL.has(canon)
  const hs = msg.headers
  const first = hs.findIndex(h => sameName(h.name, canon, known))
  const lines = linesFor(canon, value)
  if (first < 0) {
    hs.push(...lines)
  } else {
    const kept = hs.filter((h, k) => k < first || !sameName(h.name, canon, known))
    kept.splice(first, 0, ...lines)
    hs.length = 0
    hs.push(...kept)
  }
  syncField(msg, canon)
}

/**
 * Adds a header line: at the end, or with `position: 'first'` before the first line of the same name (at the
 * top of the header section when there is none), as a proxy inserts its Via.
 */
export function addHeader (msg: SipMessage, name: string, value: string, position: 'first' | 'last' = 'last'): void {
  const canon = canonicalHeaderName(name)
  const lines = linesFor(canon, value)
  const hs = msg.headers
  if (position === 'first') {
    const known = IS_CANONICAL.has(canon)
    const at = hs.findIndex(h => sameName(h.name, canon, known))
    hs.splice(at < 0 ? 0 : at, 0, ...lines)
  } else {
    hs.push(...lines)
  }
  syncField(msg, canon)
}

/**
 * Removes every line of a header. Removing Via updates `vias`; removing a header that `SipMessageBase` requires
 * (From, To, Call-ID, CSeq) leaves its parsed field as it was, and the serialized message without it.
 */
export function removeHeader (msg: SipMessage, name: string): void {
  const canon = canonicalHeaderName(name)
  const known = IS_CANONICAL.has(canon)
  const kept = msg.headers.filter(h => !sameName(h.name, canon, known))
  msg.headers.length = 0
  msg.headers.push(...kept)
  if (canon === 'Via') msg.vias = []
  else if (canon === 'Max-Forwards' && msg.kind === 'request') msg.maxForwards = undefined
}

function linesFor (canon: string, value: string): SipHeader[] {
  if (/[\r\n]/.test(value)) throw new SipParseError(`${canon}: value contains CR or LF`)
  if (!isTokenString(canon)) throw new SipParseError(`bad header name ${JSON.stringify(canon)}`)
  if (canon !== 'Via') return [{ name: canon, value }]
  // one line per Via value, so that the top one can be stamped alone
  const raws: string[] = []
  readVias(value, [], raws)
  return raws.map(v => ({ name: 'Via', value: v }))
}

function syncField (msg: SipMessage, canon: string): void {
  switch (canon) {
    case 'Via': {
      const vias: Via[] = []
      for (const h of msg.headers) if (h.name === 'Via') readVias(h.value, vias)
      msg.vias = vias
      break
    }
    case 'From': msg.from = parseNameAddr(getHeader(msg, 'From')!, 'From'); break
    case 'To': msg.to = parseNameAddr(getHeader(msg, 'To')!, 'To'); break
    case 'Call-ID': msg.callId = parseCallId(getHeader(msg, 'Call-ID')!); break
    case 'CSeq': msg.cseq = parseCSeq(getHeader(msg, 'CSeq')!); break
    case 'Max-Forwards': if (msg.kind === 'request') msg.maxForwards = parseMaxForwards(getHeader(msg, 'Max-Forwards')!); break
  }
}

/** RFC 3261 §8.1.1.5: "The sequence number value MUST be expressible as a 32-bit unsigned integer". */
export function parseCSeq (value: string): CSeq {
  const s = value
  let i = 0
  while (i < s.length && isWs(s.charCodeAt(i))) i++
  const ds = i
  let seq = 0
  while (i < s.length && isDigit(s.charCodeAt(i))) { seq = seq * 10 + s.charCodeAt(i) - 48; i++ }
  if (i === ds) throw new SipParseError('CSeq: missing sequence number')
  if (seq > 0xffffffff) throw new SipParseError('CSeq: sequence number exceeds 2^32-1')
  const ws = i
  while (i < s.length && isWs(s.charCodeAt(i))) i++
  if (i === ws) throw new SipParseError('CSeq: expected LWS before method')
  const ms = i
  while (i < s.length && isToken(s.charCodeAt(i))) i++
  if (i === ms) throw new SipParseError('CSeq: missing method')
  const method = s.slice(ms, i)
  while (i < s.length && isWs(s.charCodeAt(i))) i++
  if (i !== s.length) throw new SipParseError('CSeq: unexpected text after method')
  return { seq, method }
}

/** `Max-Forwards: 1*DIGIT` (leading zeros allowed); range checks belong to the sanity checks. */
export function parseMaxForwards (value: string): number {
  const v = trimWs(value)
  if (v.length === 0 || v.length > 12) throw new SipParseError('Max-Forwards: not a number')
  let n = 0
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (!isDigit(c)) throw new SipParseError('Max-Forwards: not a number')
    n = n * 10 + c - 48
  }
  return n
}

/** `Content-Length: 1*DIGIT`; a negative or non-numeric value is refused (RFC 4475 §3.1.2.3). */
export function parseContentLength (value: string): number {
  const v = trimWs(value)
  if (v.length === 0) throw new SipParseError('Content-Length: empty')
  if (v.length > 9) throw new SipParseError('Content-Length: too large')
  let n = 0
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (!isDigit(c)) throw new SipParseError('Content-Length: not a number')
    n = n * 10 + c - 48
  }
  return n
}

/** `Call-ID: word ["@" word]`: non-empty, no whitespace (its characters are otherwise opaque: % is no escape). */
export function parseCallId (value: string): string {
  const v = trimWs(value)
  if (v.length === 0) throw new SipParseError('Call-ID: empty')
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c <= 32 || c === 127) throw new SipParseError('Call-ID: whitespace or control character')
  }
  return v
}

/** Parsed credentials or challenge: `Digest realm="x", nonce="y"` → `{ scheme: 'Digest', params: { realm: 'x', nonce: 'y' } }`. */
export interface AuthParams {
  scheme: string
  /** names lowercased, values unquoted */
  params: Record<string, string>
  /** the token68 form (`Bearer abc.def==`) when the scheme is followed by one instead of params */
  token68?: string
}

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/

/**
 * Parses an Authorization / Proxy-Authorization / WWW-Authenticate / Proxy-Authenticate value
 * (RFC 3261 §25.1 credentials and challenge, RFC 7235 §2.1). Throws {@link SipParseError};
 * a parameter given twice is refused (RFC 7235 §2.1: each name only once).
 */
export function parseAuthParams (s: string): AuthParams {
  const sc = new Scanner(s, 'auth')
  sc.skipWs()
  const scheme = sc.token()
  const params = Object.create(null) as Record<string, string>
  const start = sc.i
  sc.skipWs()
  if (sc.eof) return { scheme, params }
  if (sc.i === start) sc.fail('expected LWS after scheme')
  const rest = trimWs(s.slice(sc.i))
  if (TOKEN68.test(rest) && !/^[^=]+=[^=]/.test(rest)) return { scheme, params, token68: rest }
  for (;;) {
    sc.skipWs()
    if (sc.eof) break
    if (sc.peek() === 44) { sc.i++; continue }
    const name = sc.token().toLowerCase()
    sc.skipWs()
    sc.expect(61)
    sc.skipWs()
    let value: string
    if (sc.peek() === 34) {
      value = unquote(sc.quoted())
    } else {
      const vs = sc.i
      while (!sc.eof && sc.peek() !== 44 && !isWs(sc.peek())) sc.i++
      value = s.slice(vs, sc.i)
    }
    if (name in params) sc.fail(`parameter ${name} given twice`)
    params[name] = value
    sc.skipWs()
    if (sc.eof) break
    if (sc.peek() !== 44) sc.fail(`unexpected character ${JSON.stringify(s[sc.i])}`)
  }
  return { scheme, params }
}

