import { M1Error } from '../../core/index.js'

/** A request handed to {@link TransactionLayer.request} that cannot start a client transaction (ACK, no branch). */
export class InvalidTransactionRequestError extends M1Error {
  static override readonly name = 'InvalidTransactionRequestError'
  constructor (message = 'request cannot start a client transaction') { super(message) }
}

/** A client transaction with the same branch and method is still alive (RFC 3261 §17.1.3 would confuse the two). */
export class DuplicateTransactionError extends M1Error {
  static override readonly name = 'DuplicateTransactionError'
  constructor (readonly transactionId: string) { super(`transaction ${transactionId} already exists`) }
}

/** The transaction layer was stopped: no new client transaction starts. */
export class TransactionLayerStoppedError extends M1Error {
  static override readonly name = 'TransactionLayerStoppedError'
  constructor (message = 'transaction layer stopped') { super(message) }
}
