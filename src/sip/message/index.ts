// sip/message: the SIP message model, its parser and serializer, URI/name-addr/Via helpers, header access, response and request builders, sanity checks.
// May import: core (errors), sip/errors, node builtins. Nothing else of m1node; no other library.
// Public API: parseMessage, serialize, parse/format Uri/NameAddr/Via, header get/set, createRequest/createResponse, stampVia, ids, reasonPhrase, validateRequest, screenMessage.
export type { Params, SipUri, NameAddr, Via, CSeq, SipHeader, SipRequest, SipResponse, SipMessage, TransportName } from './types.js'
export { SipParseError, type SipParseErrorPartial } from '../errors.js'
export { parseMessage } from './parse.js'
export { serialize, setRequestUri } from './serialize.js'
export { parseUri, formatUri } from './uri.js'
export { parseNameAddr, parseNameAddrList, parseContactHeader, formatNameAddr } from './name-addr.js'
export { parseVia, formatVia, stampVia } from './via.js'
export {
  canonicalHeaderName, getHeader, getHeaders, setHeader, addHeader, removeHeader, splitList, LIST_HEADERS,
  parseCSeq, parseMaxForwards, parseContentLength, parseCallId, parseAuthParams, type AuthParams
} from './headers.js'
export {
  createResponse, createRequest, createParseErrorResponse, newBranch, newTag, newCallId,
  type CreateResponseOptions, type CreateRequestInit
} from './create.js'
export { reasonPhrase } from './status.js'
export { validateRequest, screenMessage, DEFAULT_METHODS, type SanityOptions, type SanityFailure, type Screening } from './sanity.js'
