import { M1Error } from '../core/index.js'

/** Why a record was refused; each reason is a label of `m1node_directory_records_rejected_total`. */
export type RejectReason =
  | 'malformed' | 'oversized' | 'non-canonical' | 'bad-key' | 'bad-name' | 'bad-field' | 'bad-public-key'
  | 'key-mismatch' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'too-long-lived' | 'owned' | 'replay'

/** A directory record that fails validation: malformed, oversized, forged, expired, replayed, or for an owned name. */
export class RecordRejectedError extends M1Error {
  static override readonly name: string = 'RecordRejectedError'
  constructor (readonly reason: RejectReason, detail: string) { super(`record refused (${reason}): ${detail}`) }
}

/** No valid record exists for a name (or the query timed out before one was found). */
export class NameNotFoundError extends M1Error {
  static override readonly name: string = 'NameNotFoundError'
  constructor (readonly kind: string, readonly nameValue: string) { super(`no ${kind} record for ${nameValue}`) }
}

/** The key that owns a name changed while the pinned owner's record was still live: refused, not switched silently. */
export class NameKeyChangedError extends M1Error {
  static override readonly name: string = 'NameKeyChangedError'
  constructor (readonly kind: string, readonly nameValue: string, readonly pinnedPeerId: string, readonly offeredPeerId: string) {
    super(`${kind} ${nameValue} is pinned to ${pinnedPeerId} but the network now offers ${offeredPeerId}: refused`)
  }
}

/** This node cannot publish a name another key owns. */
export class NameTakenError extends M1Error {
  static override readonly name: string = 'NameTakenError'
  constructor (readonly kind: string, readonly nameValue: string, readonly ownerPeerId: string) {
    super(`${kind} name ${nameValue} is owned by ${ownerPeerId}`)
  }
}

/** A search query that cannot be run (too short, too long). */
export class BadQueryError extends M1Error {
  static override readonly name: string = 'BadQueryError'
}
