/** Parameters of a URI, Via or name-addr: `;name=value` or a bare `;name` (value null). Names are lowercased. */
export type Params = Record<string, string | null>

/** RFC 3261 §19.1 SIP/SIPS URI (also carries tel: and other schemes opaquely in `host`-less form). */
export interface SipUri {
  scheme: string // 'sip' | 'sips' | 'tel' | other, lowercased
  user?: string // still %-escaped as on the wire
  password?: string
  host: string // lowercased; IPv6 keeps its brackets: '[::1]'
  port?: number
  params: Params
  headers: Record<string, string> // ?name=value, raw
}

/** A From/To/Contact/Route value: optional display name, URI, header parameters (tag, expires, q, ...). */
export interface NameAddr {
  displayName?: string // unquoted, unescaped
  uri: SipUri
  /** the URI exactly as it appeared (inside <> when bracketed) */
  rawUri: string
  params: Params
}

/** One Via value. */
export interface Via {
  protocol: string // 'SIP/2.0'
  transport: string // uppercased: 'UDP' | 'TCP' | 'TLS' | 'WS' | 'WSS' | 'SCTP' | other
  host: string // lowercased; IPv6 keeps its brackets
  port?: number
  params: Params // branch, received, rport (null when bare), maddr, ttl, ...
}

export interface CSeq { seq: number, method: string }

/** A header as it appeared: canonical long name (e.g. 'Via', 'Call-ID', 'WWW-Authenticate') and raw value (unfolded, trimmed). */
export interface SipHeader { name: string, value: string }

interface SipMessageBase {
  version: string // 'SIP/2.0'
  /** every header in wire order; comma-separated lists are kept as one entry per line as received */
  headers: SipHeader[]
  body: Buffer
  // Parsed at parse time because every layer needs them; a message lacking any of them is rejected by parse().
  vias: Via[]
  from: NameAddr
  to: NameAddr
  callId: string
  cseq: CSeq
}

export interface SipRequest extends SipMessageBase {
  kind: 'request'
  method: string // case-sensitive as on the wire (RFC 3261 methods are uppercase)
  uri: SipUri
  rawUri: string
  maxForwards?: number
}

export interface SipResponse extends SipMessageBase {
  kind: 'response'
  status: number
  reason: string
}

export type SipMessage = SipRequest | SipResponse

/**
 * Transport name as used in Via and in flows. 'P2P' is SIP between m1 nodes over libp2p streams (`/m1/sip/1.0.0`,
 * registered at runtime with `Transports.add`); its flows name a peer id, not an IP address.
 */
export type TransportName = 'UDP' | 'TCP' | 'WS' | 'WSS' | 'TLS' | 'P2P'
