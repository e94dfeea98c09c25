import { M1Error, QuietError } from '../core/index.js'

/** The MESSAGE body is larger than `messaging.max_body_bytes`: 413 (RFC 3428 §7). */
export class MessageTooLargeError extends QuietError {
  static override readonly name: string = 'MessageTooLargeError'
}

/** The sender is over its rate (burst + rate per second): 429 with Retry-After. */
export class MessageRateLimitError extends QuietError {
  static override readonly name: string = 'MessageRateLimitError'
  constructor (readonly retryAfterSeconds: number) { super(`sending too fast, retry in ${retryAfterSeconds} s`) }
}

/** The receiver's inbox (or the outbox toward its node) holds its cap of pending messages: 486. */
export class InboxFullError extends QuietError {
  static override readonly name: string = 'InboxFullError'
}

/** The Request-URI names no user here and no m1 node or published login: 404. */
export class UnknownRecipientError extends M1Error {
  static override readonly name: string = 'UnknownRecipientError'
}

/** A sender that may not send this message (no relaying for unauthenticated senders): 403. */
export class MessageDeniedError extends M1Error {
  static override readonly name: string = 'MessageDeniedError'
}
