import { SipParseError } from '../errors.js'
import { isToken, isWs } from './chars.js'
import { parseUri, formatUri } from './uri.js'
import { Scanner, formatParams, newParams, quote, readHeaderParams, unquote, trimWs } from './scan.js'
import type { NameAddr } from './types.js'

const DQUOTE = 34
const LT = 60
const COMMA = 44
const SEMI = 59

/**
 * Reads one name-addr or addr-spec at the cursor (RFC 3261 §20.10, §25.1):
 * `"Display" <uri>;p=v`, `Display <uri>`, `<uri>`, or `uri;p=v` where the params belong to the header.
 */
function readNameAddr (sc: Scanner): NameAddr {
  const s = sc.s
  sc.skipWs()
  let displayName: string | undefined
  let rawUri: string
  const c = s.charCodeAt(sc.i)
  if (c === DQUOTE) {
    displayName = unquote(sc.quoted())
    sc.skipWs()
    if (s.charCodeAt(sc.i) !== LT) sc.fail('expected "<" after display name')
    rawUri = readAngle(sc)
  } else if (c === LT) {
    rawUri = readAngle(sc)
  } else {
    const start = sc.i
    let j = start
    while (j < s.length) {
      const cj = s.charCodeAt(j)
      if (!isToken(cj) && !isWs(cj)) break
      j++
    }
    if (j > start && s.charCodeAt(j) === LT) {
      // RFC 4475 §3.1.1.6: accept a token display name with no LWS before "<"
      displayName = trimWs(s.slice(start, j))
      sc.i = j
      rawUri = readAngle(sc)
    } else {
      j = start
      while (j < s.length) {
        const cj = s.charCodeAt(j)
        if (cj === SEMI || cj === COMMA || isWs(cj)) break
        j++
      }
      rawUri = s.slice(start, j)
      if (rawUri.length === 0) sc.fail('missing URI')
      // RFC 3261 §20.10: a URI with a comma, question mark or semicolon must be enclosed in <>
      if (rawUri.indexOf('?') >= 0) sc.fail('URI with headers must be enclosed in <>')
      sc.i = j
    }
  }
  let uri
  try {
    uri = parseUri(rawUri)
  } catch (err) {
    sc.fail((err as SipParseError).reason ?? 'bad URI')
  }
  const params = newParams()
  readHeaderParams(sc, params)
  const na: NameAddr = { uri, rawUri, params }
  if (displayName !== undefined) na.displayName = displayName
  return na
}

function readAngle (sc: Scanner): string {
  const s = sc.s
  // s[sc.i] === '<'
  const end = s.indexOf('>', sc.i + 1)
  if (end < 0) sc.fail('missing ">"')
  const raw = s.slice(sc.i + 1, end)
  sc.i = end + 1
  return raw
}

/** Parses a From/To/Reply-To style value (exactly one name-addr or addr-spec). Throws {@link SipParseError}. */
export function parseNameAddr (s: string, what = 'name-addr'): NameAddr {
  const sc = new Scanner(s, what)
  const na = readNameAddr(sc)
  sc.skipWs()
  if (!sc.eof) sc.fail(`unexpected character ${JSON.stringify(s[sc.i])}`)
  return na
}

/** Parses a comma-separated list of name-addr / addr-spec (Contact, Route, Record-Route, Path). */
export function parseNameAddrList (s: string, what = 'name-addr list'): NameAddr[] {
  const sc = new Scanner(s, what)
  const out: NameAddr[] = []
  for (;;) {
    out.push(readNameAddr(sc))
    sc.skipWs()
    if (sc.eof) return out
    if (s.charCodeAt(sc.i) !== COMMA) sc.fail(`unexpected character ${JSON.stringify(s[sc.i])}`)
    sc.i++
  }
}

/** A Contact header value: `*` (RFC 3261 §10.2.2, remove all bindings) or a list of contacts. */
export function parseContactHeader (value: string): NameAddr[] | '*' {
  const v = trimWs(value)
  if (v === '*') return '*'
  return parseNameAddrList(v, 'Contact')
}

/** Writes a name-addr, always with `<>` so that URI and header parameters stay apart; display names are quoted. */
export function formatNameAddr (na: NameAddr): string {
  const uri = formatUri(na.uri)
  const head = na.displayName !== undefined && na.displayName.length > 0
    ? quote(na.displayName) + ' <' + uri + '>'
    : '<' + uri + '>'
  return head + formatParams(na.params)
}

