import { InvalidSdpError } from './errors.js'

// A small line-based SDP (RFC 8866, formerly RFC 4566) reader and rewriter: the relay only needs the connection
// data, the m= ports, a=rtcp (RFC 3605), a=rtcp-mux (RFC 5761) and the direction attributes; every other line is
// kept verbatim, so codecs, fmtp, crypto and unknown attributes pass through untouched.

/** Upper bound on m-lines read from one body: each relayed one costs two port pairs. */
export const MAX_MEDIA = 32
/** Upper bound on the size of a body we read (a SIP message over UDP is far smaller). */
export const MAX_SDP_LENGTH = 65536

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive'

/** `c=<nettype> <addrtype> <address>[/ttl[/count]]` */
export interface SdpConnection {
  netType: string
  /** `IP4` or `IP6` (as written, upper-cased) */
  addrType: string
  /** the address without the `/ttl` suffix */
  address: string
}

/** `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>` */
export interface SdpOrigin {
  username: string
  sessionId: string
  version: string
  netType: string
  addrType: string
  address: string
}

/** One media description: its m= line and every line up to the next m=. */
export interface SdpMedia {
  type: string
  port: number
  /** `/2` in `m=audio 49170/2 RTP/AVP 0`, else '' */
  portCount: string
  proto: string
  /** everything after the port on the m= line, verbatim (starts with a space) */
  rest: string
  /** media-level c= */
  connection?: SdpConnection
  /** RFC 3605 `a=rtcp:<port> [<nettype> <addrtype> <address>]` */
  rtcp?: { port: number, connection?: SdpConnection }
  /** RFC 5761 `a=rtcp-mux` */
  rtcpMux: boolean
  direction?: Direction
  /** the section's lines verbatim, m= first */
  lines: string[]
}

export interface Sdp {
  /** the session-level lines verbatim (everything before the first m=) */
  lines: string[]
  origin?: SdpOrigin
  connection?: SdpConnection
  direction?: Direction
  media: SdpMedia[]
}

const DIRECTIONS = new Set<string>(['sendrecv', 'sendonly', 'recvonly', 'inactive'])
// Transports the relay forwards opaquely. SDES-SRTP (RTP/SAVP with a=crypto) relays as well as plain RTP since
// the relay never looks inside a packet. DTLS (UDP/TLS/RTP/SAVPF, WebRTC) needs ICE end to end: not relayed.
const RELAYED_PROTOS = new Set(['RTP/AVP', 'RTP/AVPF', 'RTP/SAVP', 'RTP/SAVPF', 'UDPTL'])
const PORT = /^\d{1,5}$/
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const VERSION = /^\d{1,20}$/

/** The next o= session version (RFC 8866 §5.2: increased when the session data change); '1' if it is not a number. */
export function nextVersion (version: string): string {
  return VERSION.test(version) ? (BigInt(version) + 1n).toString() : '1'
}

/** True when `address` is a dotted-quad IPv4 literal. */
export function isIPv4 (address: string): boolean {
  return IPV4.test(address)
}

function parsePort (token: string | undefined, what: string): number {
  if (token == null || !PORT.test(token)) throw new InvalidSdpError(`${what}: bad port`)
  const port = Number(token)
  if (port > 65535) throw new InvalidSdpError(`${what}: bad port`)
  return port
}

function parseConnection (value: string): SdpConnection | undefined {
  const parts = value.trim().split(/\s+/)
  if (parts.length < 3) return undefined
  const raw = parts[2] as string
  const slash = raw.indexOf('/')
  return { netType: parts[0] as string, addrType: (parts[1] as string).toUpperCase(), address: slash === -1 ? raw : raw.slice(0, slash) }
}

function parseOrigin (value: string): SdpOrigin | undefined {
  const p = value.trim().split(/\s+/)
  if (p.length < 6) return undefined
  return { username: p[0] as string, sessionId: p[1] as string, version: p[2] as string, netType: p[3] as string, addrType: p[4] as string, address: p[5] as string }
}

function parseMediaLine (line: string): SdpMedia {
  // m=<media> <port>[/<number of ports>] <proto> <fmt> ...
  const m = /^m=(\S+) (\d+)(\/\d+)?( +(\S+).*)$/.exec(line)
  if (m == null) throw new InvalidSdpError(`malformed m= line: ${line.slice(0, 64)}`)
  return {
    type: m[1] as string,
    port: parsePort(m[2], 'm='),
    portCount: m[3] ?? '',
    proto: m[5] as string,
    rest: m[4] as string,
    rtcpMux: false,
    lines: [line]
  }
}

/**
 * Reads an SDP body (CRLF or LF line ends; blank lines ignored). Throws {@link InvalidSdpError} when there is no
 * `v=` line first, an m= line is malformed, or the body is too large.
 */
export function parseSdp (text: string): Sdp {
  if (text.length > MAX_SDP_LENGTH) throw new InvalidSdpError('body too large')
  const sdp: Sdp = { lines: [], media: [] }
  let current: SdpMedia | undefined
  let first = true
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (line.trim() === '') continue
    if (first) {
      if (!line.startsWith('v=')) throw new InvalidSdpError('no v= line')
      first = false
    }
    if (line.startsWith('m=')) {
      if (sdp.media.length >= MAX_MEDIA) throw new InvalidSdpError('too many m-lines')
      current = parseMediaLine(line)
      sdp.media.push(current)
      continue
    }
    if (current != null) current.lines.push(line)
    else sdp.lines.push(line)
    const value = line.slice(2)
    switch (line.charCodeAt(0)) {
      case 0x6f: // o=
        if (current == null) sdp.origin = parseOrigin(value)
        break
      case 0x63: { // c=
        const c = parseConnection(value)
        if (current != null) current.connection ??= c
        else sdp.connection ??= c
        break
      }
      case 0x61: { // a=
        const colon = value.indexOf(':')
        const name = colon === -1 ? value.trim() : value.slice(0, colon)
        if (DIRECTIONS.has(name)) {
          if (current != null) current.direction = name as Direction
          else sdp.direction = name as Direction
        } else if (current != null && name === 'rtcp-mux') {
          current.rtcpMux = true
        } else if (current != null && name === 'rtcp' && colon !== -1) {
          const parts = value.slice(colon + 1).trim().split(/\s+/)
          const port = parsePort(parts[0], 'a=rtcp')
          const connection = parts.length >= 4 ? parseConnection(parts.slice(1).join(' ')) : undefined
          current.rtcp = connection != null ? { port, connection } : { port }
        }
        break
      }
    }
  }
  if (first) throw new InvalidSdpError('empty body')
  return sdp
}

/** Writes an SDP with CRLF line ends (RFC 8866 §5), a trailing CRLF included. */
export function serializeSdp (sdp: Sdp): string {
  let out = sdp.lines.join('\r\n') + '\r\n'
  for (const m of sdp.media) out += m.lines.join('\r\n') + '\r\n'
  return out
}

/** What the relay needs to know about one m-line. */
export interface MediaEndpoint {
  /** m-line index */
  index: number
  /** false: the m-line is passed through unchanged and not relayed (see `reason`) */
  relayed: boolean
  reason?: 'port-0' | 'proto' | 'ipv6'
  proto: string
  /** RTP port (0 when disabled) */
  port: number
  /** the IPv4 address to send RTP to; undefined when on hold (0.0.0.0), missing or not an IPv4 literal */
  address?: string
  /** RFC 3264 §8.4 hold: connection address 0.0.0.0 */
  hold: boolean
  /** where RTCP goes: a=rtcp when present, else RTP + 1 (RFC 3550 §11); the RTP port when rtcp-mux */
  rtcpPort: number
  rtcpAddress?: string
  rtcpMux: boolean
  /** media-level direction, else session-level, else sendrecv */
  direction: Direction
}

function isHold (c: SdpConnection | undefined): boolean {
  return c != null && c.addrType === 'IP4' && c.address === '0.0.0.0'
}

function usableIPv4 (c: SdpConnection | undefined): string | undefined {
  if (c == null || c.addrType !== 'IP4' || c.address === '0.0.0.0' || !isIPv4(c.address)) return undefined
  return c.address
}

/** The media endpoints an SDP announces, one per m-line, and whether the relay takes each. */
export function mediaEndpoints (sdp: Sdp): MediaEndpoint[] {
  return sdp.media.map((m, index) => {
    const c = m.connection ?? sdp.connection
    const rtcpConnection = m.rtcp?.connection ?? c
    const rtcpPort = m.rtcpMux ? m.port : (m.rtcp?.port ?? (m.port > 0 ? m.port + 1 : 0))
    const endpoint: MediaEndpoint = {
      index,
      relayed: true,
      proto: m.proto,
      port: m.port,
      hold: isHold(c),
      rtcpPort: rtcpPort > 65535 ? 0 : rtcpPort,
      rtcpMux: m.rtcpMux,
      direction: m.direction ?? sdp.direction ?? 'sendrecv'
    }
    const address = usableIPv4(c)
    if (address != null) endpoint.address = address
    const rtcpAddress = m.rtcpMux ? address : usableIPv4(rtcpConnection)
    if (rtcpAddress != null) endpoint.rtcpAddress = rtcpAddress
    if (m.port === 0) {
      endpoint.relayed = false
      endpoint.reason = 'port-0'
    } else if (!RELAYED_PROTOS.has(m.proto.toUpperCase())) {
      endpoint.relayed = false
      endpoint.reason = 'proto'
    } else if (c != null && c.addrType !== 'IP4') {
      endpoint.relayed = false
      endpoint.reason = 'ipv6'
    }
    return endpoint
  })
}

/** How to rewrite an SDP so that media goes through the relay. */
export interface RewritePlan {
  /** the relay's IPv4 address */
  address: string
  /** relay ports per m-line index; an undefined entry leaves that m-line unchanged (not relayed) */
  ports: ReadonlyArray<{ rtp: number, rtcp: number } | undefined>
  /** the o= line to write instead of the body's own (a stable origin per receiving side) */
  origin?: SdpOrigin
}

// ICE (RFC 8839) names addresses past the relay: dropped from the m-lines the relay rewrites.
function isIceLine (line: string): boolean {
  return line.startsWith('a=candidate:') || line.startsWith('a=ice-') || line === 'a=end-of-candidates' ||
    line.startsWith('a=remote-candidates') || line.startsWith('a=ice-lite')
}

function formatOrigin (o: SdpOrigin): string {
  return `o=${o.username} ${o.sessionId} ${o.version} ${o.netType} ${o.addrType} ${o.address}`
}

/** Where a c= line goes in a media section: after m= and any i= (RFC 8866 §5 order m, i, c, b, k, a). */
function connectionInsertAt (lines: readonly string[]): number {
  let i = 1
  while (i < lines.length && (lines[i] as string).startsWith('i=')) i++
  return i
}

/**
 * Returns the SDP rewritten so that every m-line with ports in `plan` points at the relay (c=, m= port, a=rtcp),
 * ICE lines removed from those m-lines. Hold (c=0.0.0.0), port 0 and directions keep their meaning; m-lines without
 * ports are left as they were (given back their own c= when the session-level one is rewritten).
 */
export function rewriteSdp (sdp: Sdp, plan: RewritePlan): string {
  const relayConnection = `c=IN IP4 ${plan.address}`
  const relayedAny = plan.ports.some((p, i) => p != null && sdp.media[i] != null)
  const sessionConnection = sdp.connection
  const rewriteSession = relayedAny && sessionConnection != null && sessionConnection.addrType === 'IP4' && !isHold(sessionConnection)
  // session-level ICE attributes go only when no m-line keeps its ICE
  const keepsIce = sdp.media.some((m, i) => m.port !== 0 && plan.ports[i] == null)

  const out: string[] = []
  let seenSessionConnection = false
  for (const line of sdp.lines) {
    if (line.startsWith('o=') && plan.origin != null) {
      out.push(formatOrigin(plan.origin))
    } else if (line.startsWith('c=') && rewriteSession && !seenSessionConnection) {
      seenSessionConnection = true
      out.push(relayConnection)
    } else if (!keepsIce && relayedAny && (line.startsWith('a=ice-') || line === 'a=ice-lite')) {
      continue
    } else {
      out.push(line)
    }
  }

  for (let i = 0; i < sdp.media.length; i++) {
    const m = sdp.media[i] as SdpMedia
    const ports = plan.ports[i]
    if (ports == null || m.port === 0) {
      out.push(...m.lines)
      // the session c= now names the relay: an m-line we do not relay keeps its own address
      if (rewriteSession && sessionConnection != null && m.connection == null && m.port !== 0) {
        out.splice(out.length - m.lines.length + connectionInsertAt(m.lines), 0, `c=${sessionConnection.netType} ${sessionConnection.addrType} ${sessionConnection.address}`)
      }
      continue
    }
    const section: string[] = [`m=${m.type} ${ports.rtp}${m.rest}`]
    let seenConnection = false
    for (let j = 1; j < m.lines.length; j++) {
      const line = m.lines[j] as string
      if (line.startsWith('c=')) {
        if (seenConnection) continue
        seenConnection = true
        section.push(isHold(m.connection) ? line : relayConnection)
      } else if (line.startsWith('a=rtcp:')) {
        const port = m.rtcpMux ? ports.rtp : ports.rtcp
        section.push(m.rtcp?.connection != null ? `a=rtcp:${port} IN IP4 ${plan.address}` : `a=rtcp:${port}`)
      } else if (!isIceLine(line)) {
        section.push(line)
      }
    }
    // no usable c= anywhere (or an IPv6 session c= with nothing of our own): name the relay at media level
    if (!seenConnection && (sessionConnection == null || (!rewriteSession && !isHold(sessionConnection)))) {
      section.splice(connectionInsertAt(section), 0, relayConnection)
    }
    out.push(...section)
  }
  return out.join('\r\n') + '\r\n'
}
