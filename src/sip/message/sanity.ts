import { SipParseError } from '../errors.js'
import { createParseErrorResponse, createResponse, newTag } from './create.js'
import { getHeaders } from './headers.js'
import { parseContactHeader } from './name-addr.js'
import { parseMessage } from './parse.js'
import { reasonPhrase } from './status.js'
import { serialize } from './serialize.js'
import type { SipHeader, SipMessage, SipRequest } from './types.js'

/** Methods answered by default; others get 501 (RFC 3261 §8.2.1). */
export const DEFAULT_METHODS: readonly string[] = [
  'INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'MESSAGE', 'INFO', 'UPDATE', 'PRACK', 'NOTIFY', 'REFER', 'SUBSCRIBE'
]

/** What {@link validateRequest} accepts. */
export interface SanityOptions {
  /**
   * Methods this element implements; others get 501 with Allow.
   * @default DEFAULT_METHODS
   */
  methods?: readonly string[]
  /**
   * Option tags this element supports: a Require naming another gets 420 with Unsupported (RFC 3261 §8.2.2.3).
   * @default []
   */
  supported?: readonly string[]
  /**
   * Request-URI schemes handled; others get 416 (RFC 3261 §8.2.2.1).
   * @default ['sip', 'sips', 'tel']
   */
  uriSchemes?: readonly string[]
  /**
   * Body types understood in the requests that carry a session description; others get 415 with Accept
   * (RFC 3261 §8.2.3). Methods not listed take any body.
   * @default { INVITE: ['application/sdp'], UPDATE: ['application/sdp'], PRACK: ['application/sdp'] }
   */
  bodyTypes?: Readonly<Record<string, readonly string[]>>
}

/** Why a request is refused: the status, its reason phrase and headers the response must carry (Allow, Unsupported, Accept). */
export interface SanityFailure {
  status: number
  reason: string
  headers?: SipHeader[]
}

const DEFAULT_SCHEMES: readonly string[] = ['sip', 'sips', 'tel']
const DEFAULT_BODY_TYPES: Readonly<Record<string, readonly string[]>> = {
  INVITE: ['application/sdp'],
  UPDATE: ['application/sdp'],
  PRACK: ['application/sdp']
}
const NO_TAGS: readonly string[] = []

function bad (detail: string): SanityFailure {
  return { status: 400, reason: `Bad Request (${detail})` }
}

/**
 * The checks a UAS or registrar makes on a request that parsed, before routing it (Kamailio's `sanity` module
 * plus RFC 3261 §8.2): Max-Forwards 0-255, CSeq number below 2^31, Expires numeric, Content-Type present with a
 * body, Contact syntax (and `*` rules for REGISTER), no headers in the Request-URI, a SIP/SIPS To in REGISTER
 * (400); method implemented (501); Request-URI scheme (416); Require (420); body type (415); INVITE Accept (406).
 * Returns null when the request may proceed. Pure: reads `req` only.
 */
export function validateRequest (req: SipRequest, opts: SanityOptions = {}): SanityFailure | null {
  // RFC 3261 §20.22: Max-Forwards is an integer in the range 0-255
  if (req.maxForwards !== undefined && req.maxForwards > 255) return bad('Max-Forwards out of range')
  // RFC 3261 §8.1.1.5: "MUST be less than 2**31"
  if (req.cseq.seq > 0x7fffffff) return bad('CSeq number out of range')
  // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11: 400 acceptable)
  for (const _ in req.uri.headers) return bad('Request-URI with headers')
  const hs = req.headers
  let expires: string | undefined
  let contentType: string | undefined
  let contacts = 0
  let star = false
  for (let k = 0; k < hs.length; k++) {
    const h = hs[k]!
    switch (h.name) {
      case 'Expires':
        // RFC 3261 §20.19: delta-seconds
        if (!/^\d+$/.test(h.value)) return bad('Expires not numeric')
        expires = h.value
        break
      case 'Content-Type':
        contentType = h.value
        break
      case 'Contact': {
        let c
        try {
          c = parseContactHeader(h.value)
        } catch (err) {
          return bad((err as SipParseError).reason)
        }
        if (c === '*') star = true
        else contacts += c.length
        break
      }
    }
  }
  // RFC 3261 §20.15: Content-Type MUST be present if the body is not empty
  if (req.body.length > 0 && contentType === undefined) return bad('body without Content-Type')
  if (star) {
    // RFC 3261 §10.3 step 6: "*" only in REGISTER, alone, with Expires: 0
    if (req.method !== 'REGISTER' || contacts > 0 || expires === undefined || Number(expires) !== 0) return bad('bad Contact: *')
  }

  const methods = opts.methods ?? DEFAULT_METHODS
  if (!methods.includes(req.method)) {
    return { status: 501, reason: reasonPhrase(501), headers: [{ name: 'Allow', value: methods.join(', ') }] }
  }
  const schemes = opts.uriSchemes ?? DEFAULT_SCHEMES
  if (!schemes.includes(req.uri.scheme)) return { status: 416, reason: reasonPhrase(416) }
  // RFC 3261 §10.3 step 5: the address-of-record must be a SIP or SIPS URI
  if (req.method === 'REGISTER' && req.to.uri.scheme !== 'sip' && req.to.uri.scheme !== 'sips') return bad('To is not a SIP URI')

  // RFC 3261 §8.2.2.3: Require is not checked for CANCEL and ACK
  if (req.method !== 'ACK' && req.method !== 'CANCEL') {
    const supported = opts.supported ?? NO_TAGS
    const unsupported = getHeaders(req, 'Require').filter(tag => !supported.includes(tag.toLowerCase()))
    if (unsupported.length > 0) {
      return { status: 420, reason: reasonPhrase(420), headers: [{ name: 'Unsupported', value: unsupported.join(', ') }] }
    }
  }

  const types = (opts.bodyTypes ?? DEFAULT_BODY_TYPES)[req.method]
  if (types !== undefined) {
    if (req.body.length > 0 && contentType !== undefined && !types.includes(mediaType(contentType))) {
      return { status: 415, reason: reasonPhrase(415), headers: [{ name: 'Accept', value: types.join(', ') }] }
    }
    // RFC 3261 §21.4.7: the answer's body (a session description) would not be acceptable
    if (req.method === 'INVITE') {
      const accept = getHeaders(req, 'Accept')
      if (accept.length > 0 && !accept.some(a => acceptsAny(mediaType(a), types))) {
        return { status: 406, reason: reasonPhrase(406), headers: [{ name: 'Accept', value: types.join(', ') }] }
      }
    }
  }
  return null
}

function mediaType (value: string): string {
  const semi = value.indexOf(';')
  return (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase()
}

function acceptsAny (range: string, types: readonly string[]): boolean {
  if (range === '*/*') return true
  if (range.endsWith('/*')) {
    const prefix = range.slice(0, -1)
    return types.some(t => t.startsWith(prefix))
  }
  return types.includes(range)
}

/**
 * What to do with one received message: the whole decision of the SIP front door, as a pure function.
 * - `process`: hand the message on (requests passed {@link validateRequest}; responses go to the transaction layer).
 * - `reject`: send `response` back to the packet's source (never to the Via: RFC 3581 "force rport"): a request
 *   that failed to parse (400, or 505 for another SIP version) or failed the sanity checks.
 * - `drop`: send nothing: data that is no request (responses are never answered), or an ACK.
 */
export type Screening =
  | { action: 'process', message: SipMessage }
  | { action: 'reject', status: number, reason: string, response: Buffer, error?: SipParseError }
  | { action: 'drop', reason: string, error?: SipParseError }

/** Parses and checks one message; see {@link Screening}. Never throws. */
export function screenMessage (data: Buffer, opts: SanityOptions = {}): Screening {
  let msg: SipMessage
  try {
    msg = parseMessage(data)
  } catch (err) {
    const e = err instanceof SipParseError ? err : new SipParseError('internal parser error', { cause: err })
    const response = createParseErrorResponse(e)
    if (response === null) return { action: 'drop', reason: e.reason, error: e }
    return { action: 'reject', status: e.status, reason: e.reason, response, error: e }
  }
  if (msg.kind === 'response') return { action: 'process', message: msg }
  const failure = validateRequest(msg, opts)
  if (failure === null) return { action: 'process', message: msg }
  // RFC 3261 §17.1.1.3: an ACK is never answered
  if (msg.method === 'ACK') return { action: 'drop', reason: failure.reason }
  const res = createResponse(msg, failure.status, failure.reason, {
    toTag: newTag(),
    ...(failure.headers !== undefined ? { headers: failure.headers } : {})
  })
  return { action: 'reject', status: failure.status, reason: failure.reason, response: serialize(res) }
}

