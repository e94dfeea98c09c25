import { SipParseError } from '../errors.js'
import { isAlpha, isDigit, isHeaderChar, isHex, isHostChar, isParamChar, isSchemeChar, isUserChar } from './chars.js'
import { isIpv6Reference, newParams } from './scan.js'
import type { Params, SipUri } from './types.js'

function fail (s: string, msg: string): never {
  throw new SipParseError(`URI ${JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s)}: ${msg}`)
}

/**
 * Parses a URI (RFC 3261 §19.1.1, RFC 3966 tel, RFC 5118 IPv6 references).
 * sip/sips are parsed fully; `tel:` keeps the number in `user` and its `;params`; any other scheme is kept
 * opaquely: everything after `scheme:` goes to `user`, `host` is empty. Throws {@link SipParseError}.
 * Parameter names are lowercased and, like values, have %HH escapes of unreserved characters decoded
 * (RFC 3261 §19.1.4: `%6C%72` is `lr`); other escapes stay as on the wire.
 */
export function parseUri (s: string): SipUri {
  const colon = s.indexOf(':')
  if (colon <= 0) fail(s, 'no scheme')
  if (!isAlpha(s.charCodeAt(0))) fail(s, 'bad scheme')
  for (let i = 1; i < colon; i++) if (!isSchemeChar(s.charCodeAt(i))) fail(s, 'bad scheme')
  const scheme = s.slice(0, colon).toLowerCase()
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(s, scheme, colon + 1)
  if (scheme === 'tel') return parseTelUri(s, colon + 1)
  // RFC 3261 §25.1 absoluteURI: any visible characters but those that delimit it in headers
  if (colon + 1 >= s.length) fail(s, 'empty URI')
  for (let i = colon + 1; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c <= 32 || c === 127 || c === 34 || c === 60 || c === 62) fail(s, 'bad character')
  }
  return { scheme, user: s.slice(colon + 1), host: '', params: newParams(), headers: Object.create(null) as Record<string, string> }
}

function parseSipUri (s: string, scheme: string, start: number): SipUri {
  const len = s.length
  let i = start
  let user: string | undefined
  let password: string | undefined
  // user and password never contain an unescaped "@", nor do host, params or headers: the first "@" ends userinfo
  const at = s.indexOf('@', i)
  if (at >= 0) {
    let pw = -1
    for (let k = i; k < at; k++) {
      const c = s.charCodeAt(k)
      if (!isUserChar(c)) fail(s, 'bad character in user part')
      if (c === 58 && pw < 0) pw = k
    }
    if (pw >= 0) {
      user = s.slice(i, pw)
      password = s.slice(pw + 1, at)
    } else {
      user = s.slice(i, at)
    }
    if (user.length === 0) fail(s, 'empty user part')
    i = at + 1
  }
  let host: string
  if (s.charCodeAt(i) === 91) {
    const end = s.indexOf(']', i)
    if (end < 0 || !isIpv6Reference(s, i, end)) fail(s, 'bad IPv6 reference')
    host = s.slice(i, end + 1).toLowerCase()
    i = end + 1
  } else {
    const hs = i
    while (i < len && isHostChar(s.charCodeAt(i))) i++
    if (i === hs) fail(s, 'missing host')
    host = s.slice(hs, i).toLowerCase()
  }
  let port: number | undefined
  if (s.charCodeAt(i) === 58) {
    i++
    const ps = i
    let p = 0
    while (i < len && isDigit(s.charCodeAt(i))) { p = p * 10 + s.charCodeAt(i) - 48; i++ }
    if (i === ps || i - ps > 5 || p > 65535) fail(s, 'bad port')
    port = p
  }
  const params = newParams()
  while (s.charCodeAt(i) === 59) {
    i++
    const ns = i
    while (i < len && isParamChar(s.charCodeAt(i))) i++
    if (i === ns) fail(s, 'empty parameter')
    const name = normalizeEscapes(s.slice(ns, i)).toLowerCase()
    let value: string | null = null
    if (s.charCodeAt(i) === 61) {
      i++
      const vs = i
      while (i < len && isParamChar(s.charCodeAt(i))) i++
      if (i === vs) fail(s, 'empty parameter value')
      value = normalizeEscapes(s.slice(vs, i))
    }
    params[name] = value
  }
  const headers = Object.create(null) as Record<string, string>
  if (s.charCodeAt(i) === 63) {
    do {
      i++
      const ns = i
      while (i < len && isHeaderChar(s.charCodeAt(i))) i++
      if (i === ns || s.charCodeAt(i) !== 61) fail(s, 'bad header')
      const name = s.slice(ns, i)
      i++
      const vs = i
      while (i < len && isHeaderChar(s.charCodeAt(i))) i++
      headers[name] = s.slice(vs, i)
    } while (s.charCodeAt(i) === 38)
  }
  if (i !== len) fail(s, `unexpected character ${JSON.stringify(s[i])}`)
  const uri: SipUri = { scheme, host, params, headers }
  if (user !== undefined) uri.user = user
  if (password !== undefined) uri.password = password
  if (port !== undefined) uri.port = port
  return uri
}

function parseTelUri (s: string, start: number): SipUri {
  const semi = s.indexOf(';', start)
  const end = semi < 0 ? s.length : semi
  if (end === start) fail(s, 'empty number')
  for (let k = start; k < end; k++) {
    const c = s.charCodeAt(k)
    if (!isParamChar(c) && c !== 35 && c !== 61) fail(s, 'bad character in number')
  }
  const params: Params = newParams()
  let i = end
  while (i < s.length) {
    // s[i] === ';'
    i++
    const ns = i
    while (i < s.length && isParamChar(s.charCodeAt(i))) i++
    if (i === ns) fail(s, 'empty parameter')
    const name = s.slice(ns, i).toLowerCase()
    let value: string | null = null
    if (s.charCodeAt(i) === 61) {
      i++
      const vs = i
      while (i < s.length && isParamChar(s.charCodeAt(i))) i++
      value = s.slice(vs, i)
    }
    params[name] = value
    if (i < s.length && s.charCodeAt(i) !== 59) fail(s, `unexpected character ${JSON.stringify(s[i])}`)
  }
  return { scheme: 'tel', user: s.slice(start, end), host: '', params, headers: Object.create(null) as Record<string, string> }
}

// RFC 3986 §2.3 unreserved, the only escapes decoding may resolve without changing meaning
const UNRESERVED = /^[A-Za-z0-9\-._~!*'()]$/

/** Decodes %HH escapes of unreserved characters (so `%6C%72` compares equal to `lr`); leaves the others. */
function normalizeEscapes (v: string): string {
  if (v.indexOf('%') < 0) return v
  let out = ''
  for (let k = 0; k < v.length; k++) {
    const c = v.charCodeAt(k)
    if (c === 37 && k + 2 < v.length && isHex(v.charCodeAt(k + 1)) && isHex(v.charCodeAt(k + 2))) {
      const ch = String.fromCharCode(parseInt(v.slice(k + 1, k + 3), 16))
      if (UNRESERVED.test(ch)) { out += ch; k += 2; continue }
      out += v.slice(k, k + 3).toUpperCase()
      k += 2
      continue
    }
    out += v[k]
  }
  return out
}

/** Writes a URI back (the inverse of {@link parseUri}, up to case and escape normalisation). */
export function formatUri (u: SipUri): string {
  if (u.scheme === 'sip' || u.scheme === 'sips') {
    let out = u.scheme + ':'
    if (u.user !== undefined) {
      out += u.user
      if (u.password !== undefined) out += ':' + u.password
      out += '@'
    }
    out += u.host
    if (u.port !== undefined) out += ':' + u.port
    for (const name in u.params) {
      const v = u.params[name]
      out += v === null || v === undefined ? ';' + name : ';' + name + '=' + v
    }
    let sep = '?'
    for (const name in u.headers) {
      out += sep + name + '=' + u.headers[name]
      sep = '&'
    }
    return out
  }
  if (u.scheme === 'tel') {
    let out = 'tel:' + (u.user ?? '')
    for (const name in u.params) {
      const v = u.params[name]
      out += v === null || v === undefined ? ';' + name : ';' + name + '=' + v
    }
    return out
  }
  return u.scheme + ':' + (u.user ?? '')
}
