import { createRequest, getHeaders, newBranch, parseNameAddr, type NameAddr, type SipHeader, type SipRequest, type SipResponse } from '../message/index.js'
import type { TransportName } from '../message/types.js'
import type { Flow, SendTarget } from '../transport/types.js'

/** Where this end of a dialog says it is: used for Via and Contact of the requests it sends. */
export interface LocalEnd {
  transport: TransportName
  /** advertised address and listening port of that transport */
  host: string
  port: number
}

/**
 * One SIP dialog seen from this end (RFC 3261 §12): identifiers, CSeq counters, remote target and route set,
 * plus the flow that reaches the peer (NAT: requests go back over the flow, not to the Contact's address).
 */
export class Dialog {
  localSeq: number
  remoteSeq: number
  remoteTarget: string
  readonly routeSet: string[]

  private constructor (
    readonly callId: string,
    readonly localTag: string,
    readonly remoteTag: string,
    readonly local: NameAddr,
    readonly remote: NameAddr,
    public flow: Flow,
    readonly localEnd: LocalEnd,
    init: { localSeq: number, remoteSeq: number, remoteTarget: string, routeSet: string[] }
  ) {
    this.localSeq = init.localSeq
    this.remoteSeq = init.remoteSeq
    this.remoteTarget = init.remoteTarget
    this.routeSet = init.routeSet
  }

  /** The key under which in-dialog requests from the peer are found: Call-ID and our tag (their To tag). */
  get key (): string { return Dialog.key(this.callId, this.localTag) }

  static key (callId: string, localTag: string): string { return `${callId};${localTag}` }

  /** RFC 3261 §12.1.1: the UAS side, from the request and our 2xx/1xx with a To tag. */
  static asUas (req: SipRequest, localTag: string, flow: Flow, localEnd: LocalEnd): Dialog {
    const contact = firstContactUri(req) ?? req.rawUri
    return new Dialog(req.callId, localTag, String(req.from.params.tag ?? ''),
      { ...req.to, params: { ...req.to.params, tag: localTag } }, req.from, flow, localEnd, {
        localSeq: 0,
        remoteSeq: req.cseq.seq,
        remoteTarget: contact,
        routeSet: getHeaders(req, 'Record-Route')
      })
  }

  /** RFC 3261 §12.1.2: the UAC side, from our request and the response that made the dialog. */
  static asUac (req: SipRequest, res: SipResponse, flow: Flow, localEnd: LocalEnd): Dialog {
    const contact = firstContactUri(res) ?? req.rawUri
    return new Dialog(req.callId, String(req.from.params.tag ?? ''), String(res.to.params.tag ?? ''),
      req.from, res.to, flow, localEnd, {
        localSeq: req.cseq.seq,
        remoteSeq: 0,
        remoteTarget: contact,
        routeSet: getHeaders(res, 'Record-Route').reverse()
      })
  }

  /** Updates the remote target from a target-refresh request or its 2xx (RFC 3261 §12.2). */
  refreshTarget (msg: SipRequest | SipResponse): void {
    const contact = firstContactUri(msg)
    if (contact != null) this.remoteTarget = contact
  }

  /** The transport target of requests to the peer: the dialog's flow. */
  target (): SendTarget {
    return { transport: this.flow.transport, address: this.flow.remoteAddress, port: this.flow.remotePort, flowId: this.flow.id }
  }

  /** Our Contact header value. */
  contact (): string {
    const host = this.localEnd.host.includes(':') ? `[${this.localEnd.host}]` : this.localEnd.host
    return `<sip:${host}:${this.localEnd.port};transport=${this.localEnd.transport.toLowerCase()}>`
  }

  /**
   * A new in-dialog request (RFC 3261 §12.2.1.1). ACK and CANCEL reuse a CSeq number: pass `cseq`; any other
   * method takes the next local CSeq.
   */
  request (method: string, opts: { headers?: SipHeader[], body?: Buffer, cseq?: number, branch?: string } = {}): SipRequest {
    const cseq = opts.cseq ?? ++this.localSeq
    const headers: SipHeader[] = this.routeSet.map(value => ({ name: 'Route', value }))
    if (method !== 'ACK' && method !== 'CANCEL' && method !== 'BYE') headers.push({ name: 'Contact', value: this.contact() })
    if (opts.headers != null) headers.push(...opts.headers)
    return createRequest({
      method,
      uri: this.remoteTarget,
      from: this.local,
      to: this.remote,
      callId: this.callId,
      cseq,
      via: { protocol: 'SIP/2.0', transport: this.localEnd.transport, host: this.localEnd.host, port: this.localEnd.port, params: { branch: opts.branch ?? newBranch(), rport: null } },
      headers,
      ...(opts.body != null ? { body: opts.body } : {})
    })
  }

  /**
   * Checks an in-dialog request's CSeq (RFC 3261 §12.2.2): lower than the last one is out of order (500);
   * ACK and CANCEL carry the CSeq of what they refer to.
   */
  acceptRemoteSeq (req: SipRequest): boolean {
    if (req.method === 'ACK' || req.method === 'CANCEL') return true
    if (req.cseq.seq <= this.remoteSeq) return false
    this.remoteSeq = req.cseq.seq
    return true
  }
}

function firstContactUri (msg: SipRequest | SipResponse): string | undefined {
  const v = getHeaders(msg, 'Contact')[0]
  if (v == null) return undefined
  try {
    return parseNameAddr(v).rawUri
  } catch {
    return undefined
  }
}
