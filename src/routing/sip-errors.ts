import type { Logger } from '../core/index.js'
import { createResponse, type SipHeader, type SipRequest, type SipResponse } from '../sip/message/index.js'
import { AuthBlockedError, AuthRequiredError } from '../users/index.js'
import { InvalidSdpError, NoPortsError } from '../media/index.js'
import { CallLimitError, RelayDeniedError, UnavailableError, UnknownTargetError } from './errors.js'
import { InboxFullError, MessageDeniedError, MessageRateLimitError, MessageTooLargeError, UnknownRecipientError } from '../messaging/index.js'
import { IntervalTooBriefError, InvalidRegisterError, OutOfOrderRegisterError, RegisterForbiddenError, TooManyContactsError } from '../registrar/index.js'

/** Methods the node answers itself today; sent in Allow. */
export const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, NOTIFY, REFER, MESSAGE'

/**
 * The one table from errors to SIP answers (Kamailio codes[]). Expected conditions are typed errors; anything else
 * is a bug, logged at error and answered 500.
 */
export function errorResponse (req: SipRequest, err: unknown, toTag: string, logger?: Logger): SipResponse {
  const reply = (status: number, reason: string, headers: SipHeader[] = []): SipResponse =>
    createResponse(req, status, reason, { toTag, headers })
  if (err instanceof AuthRequiredError) {
    const name = err.proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate'
    return reply(err.proxy ? 407 : 401, err.proxy ? 'Proxy Authentication Required' : 'Unauthorized', err.challenges.map(value => ({ name, value })))
  }
  if (err instanceof AuthBlockedError) return reply(403, 'Forbidden')
  if (err instanceof IntervalTooBriefError) return reply(423, 'Interval Too Brief', [{ name: 'Min-Expires', value: String(err.minExpires) }])
  if (err instanceof InvalidRegisterError) return reply(400, `Bad Request (${err.message})`)
  if (err instanceof RegisterForbiddenError) return reply(403, 'Forbidden')
  if (err instanceof OutOfOrderRegisterError) return reply(500, 'Out of Order CSeq', [{ name: 'Retry-After', value: '1' }])
  if (err instanceof TooManyContactsError) return reply(403, 'Too Many Contacts')
  if (err instanceof CallLimitError) return reply(503, 'Service Unavailable', [{ name: 'Retry-After', value: '30' }])
  if (err instanceof UnknownTargetError) return reply(404, 'Not Found')
  if (err instanceof UnavailableError) return reply(480, 'Temporarily Unavailable')
  if (err instanceof RelayDeniedError) return reply(403, 'Forbidden')
  if (err instanceof NoPortsError) return reply(503, 'Service Unavailable', [{ name: 'Retry-After', value: '5' }])
  if (err instanceof InvalidSdpError) return reply(488, 'Not Acceptable Here')
  if (err instanceof MessageTooLargeError) return reply(413, 'Request Entity Too Large')
  if (err instanceof MessageRateLimitError) return reply(429, 'Too Many Requests', [{ name: 'Retry-After', value: String(err.retryAfterSeconds) }])
  if (err instanceof InboxFullError) return reply(486, 'Busy Here')
  if (err instanceof UnknownRecipientError) return reply(404, 'Not Found')
  if (err instanceof MessageDeniedError) return reply(403, 'Forbidden')
  logger?.error({ err, callId: req.callId, method: req.method }, 'unexpected error')
  return reply(500, 'Server Internal Error')
}
