import { isDigit, isHostChar } from './chars.js'
import { Scanner, formatParams, isIpv6Reference, newParams, readHeaderParams } from './scan.js'
import type { SipRequest, Via } from './types.js'

const SLASH = 47
const COLON = 58
const COMMA = 44
const LBRACKET = 91

/**
 * Reads the comma-separated Via values of one header line into `out` (RFC 3261 §20.42, §25.1; LWS allowed
 * around "/" and ":"). When `raws` is given, the text of each value is pushed to it, trimmed.
 */
export function readVias (s: string, out: Via[], raws?: string[]): void {
  const sc = new Scanner(s, 'Via')
  for (;;) {
    sc.skipWs()
    const start = sc.i
    const name = sc.token()
    sc.skipWs()
    sc.expect(SLASH)
    sc.skipWs()
    const version = sc.token()
    sc.skipWs()
    sc.expect(SLASH)
    sc.skipWs()
    const transport = sc.token()
    const afterTransport = sc.i
    sc.skipWs()
    if (sc.i === afterTransport) sc.fail('expected LWS before sent-by')
    let host: string
    if (s.charCodeAt(sc.i) === LBRACKET) {
      const end = s.indexOf(']', sc.i)
      if (end < 0 || !isIpv6Reference(s, sc.i, end)) sc.fail('bad IPv6 reference')
      host = s.slice(sc.i, end + 1).toLowerCase()
      sc.i = end + 1
    } else {
      const hs = sc.i
      let i = hs
      while (i < s.length && isHostChar(s.charCodeAt(i))) i++
      if (i === hs) sc.fail('missing sent-by host')
      host = s.slice(hs, i).toLowerCase()
      sc.i = i
    }
    sc.skipWs()
    let port: number | undefined
    if (s.charCodeAt(sc.i) === COLON) {
      sc.i++
      sc.skipWs()
      const ps = sc.i
      let i = ps
      let p = 0
      while (i < s.length && isDigit(s.charCodeAt(i))) { p = p * 10 + s.charCodeAt(i) - 48; i++ }
      if (i === ps || i - ps > 5 || p > 65535) sc.fail('bad port')
      port = p
      sc.i = i
    }
    const params = newParams()
    readHeaderParams(sc, params)
    if (raws !== undefined) {
      let end = sc.i
      while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--
      raws.push(s.slice(start, end))
    }
    // port is always an own property (undefined when absent) so that every Via has one shape
    const protocol = name === 'SIP' && version === '2.0' ? 'SIP/2.0' : name.toUpperCase() + '/' + version
    out.push({ protocol, transport: upperTransport(transport), host, port, params })
    sc.skipWs()
    if (sc.eof) return
    if (s.charCodeAt(sc.i) !== COMMA) sc.fail(`unexpected character ${JSON.stringify(s[sc.i])}`)
    sc.i++
  }
}

function upperTransport (t: string): string {
  switch (t) {
    case 'UDP': return 'UDP'
    case 'TCP': return 'TCP'
    case 'TLS': return 'TLS'
    case 'WS': return 'WS'
    case 'WSS': return 'WSS'
    default: return t.toUpperCase()
  }
}

/** Parses a Via header value (one or more comma-separated values). Throws {@link SipParseError}. */
export function parseVia (s: string): Via[] {
  const out: Via[] = []
  readVias(s, out)
  return out
}

/** Writes one Via value: `SIP/2.0/UDP host:port;branch=...`. */
export function formatVia (v: Via): string {
  return v.protocol + '/' + v.transport + ' ' + v.host + (v.port !== undefined ? ':' + v.port : '') + formatParams(v.params)
}

/**
 * Stamps the top Via of a received request with where it really came from.
 * RFC 3261 §18.2.1: add `received` when the sent-by host differs from the source address.
 * RFC 3581 §4: when the Via has a bare `rport`, fill it with the source port and add `received` even if equal.
 * With `force` (the default: the node answers to the packet's source, "force rport"), `rport` is added
 * when absent too. `received` is an IPv4 or an IPv6 address without brackets.
 */
export function stampVia (req: SipRequest, received: string, rport: number, force = true): void {
  const via = req.vias[0]
  if (via === undefined) return
  const source = received.startsWith('[') ? received.slice(1, -1).toLowerCase() : received.toLowerCase()
  const host = via.host.startsWith('[') ? via.host.slice(1, -1) : via.host
  const p = via.params
  const wantsRport = 'rport' in p ? (p.rport === null || p.rport === '' || force) : force
  if (wantsRport) {
    p.rport = String(rport)
    p.received = source
  } else if (host !== source) {
    p.received = source
  }
  const h = req.headers.find(x => x.name === 'Via')
  if (h !== undefined) h.value = formatVia(via)
}
