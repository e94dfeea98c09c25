import { formatNameAddr, formatVia } from '../message/index.js'
import type { SipHeader, SipRequest, SipResponse, Via } from '../message/types.js'

const EMPTY = Buffer.alloc(0)

/** The first header named `name` (canonical long name, or its compact form), raw value. */
function rawHeader (headers: SipHeader[], name: string, compact: string): string | undefined {
  for (const h of headers) {
    const n = h.name.toLowerCase()
    if (n === name || n === compact) return h.value
  }
  return undefined
}

/**
 * RFC 3261 §17.1.1.3: the ACK an INVITE client transaction sends for a non-2xx final response. Same Request-URI,
 * Call-ID, From and CSeq number as the INVITE, CSeq method ACK, a single Via equal to the INVITE's top Via (so the
 * same branch), the To of the response (with its tag), and the INVITE's Route header fields.
 */
export function ackForNon2xx (invite: SipRequest, response: SipResponse): SipRequest {
  const via = invite.vias[0] as Via
  const cseq = { seq: invite.cseq.seq, method: 'ACK' }
  const headers: SipHeader[] = [{ name: 'Via', value: formatVia(via) }]
  for (const h of invite.headers) {
    if (h.name.toLowerCase() === 'route') headers.push({ name: 'Route', value: h.value })
  }
  headers.push(
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: rawHeader(invite.headers, 'from', 'f') ?? formatNameAddr(invite.from) },
    { name: 'To', value: rawHeader(response.headers, 'to', 't') ?? formatNameAddr(response.to) },
    { name: 'Call-ID', value: invite.callId },
    { name: 'CSeq', value: `${cseq.seq} ACK` },
    { name: 'Content-Length', value: '0' }
  )
  return {
    kind: 'request',
    method: 'ACK',
    uri: invite.uri,
    rawUri: invite.rawUri,
    version: invite.version,
    headers,
    body: EMPTY,
    vias: [via],
    from: invite.from,
    to: response.to,
    callId: invite.callId,
    cseq,
    maxForwards: 70
  }
}
