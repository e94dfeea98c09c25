import { M1Error } from '../core/index.js'
import type { CSeq, NameAddr, SipHeader, Via } from './message/types.js'

/** What could still be read from a message that failed to parse, so that the caller may answer 400 (or 505). */
export interface SipParseErrorPartial {
  /** from the start line, when it could be classified */
  kind?: 'request' | 'response'
  method?: string
  vias?: Via[]
  callId?: string
  cseq?: CSeq
  from?: NameAddr
  to?: NameAddr
  /** every header line that could be split into name and value, in wire order, unfolded */
  headers?: SipHeader[]
}

/**
 * A SIP message, URI or header value that does not follow the grammar (RFC 3261 §25).
 * `status` is the answer a UAS would give a request failing this way: 400, or 505 for an unsupported SIP-Version.
 */
export class SipParseError extends M1Error {
  static override readonly name = 'SipParseError'
  readonly reason: string
  readonly status: 400 | 505
  readonly partial?: SipParseErrorPartial

  constructor (reason: string, options: { partial?: SipParseErrorPartial, status?: 400 | 505, cause?: unknown } = {}) {
    super(reason, options.cause !== undefined ? { cause: options.cause } : undefined)
    this.reason = reason
    this.status = options.status ?? 400
    if (options.partial !== undefined) this.partial = options.partial
  }
}
