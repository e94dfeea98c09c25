import { M1Error } from '../core/index.js'

/** A call cap (node-wide or per login) is reached: 503 with Retry-After. */
export class CallLimitError extends M1Error {
  static override readonly name: string = 'CallLimitError'
  constructor (readonly scope: string) { super(`call limit reached for ${scope}`) }
}

/** The request names no user here: 404. */
export class UnknownTargetError extends M1Error {
  static override readonly name: string = 'UnknownTargetError'
}

/** The user exists but no device is registered: 480. */
export class UnavailableError extends M1Error {
  static override readonly name: string = 'UnavailableError'
}

/** Unauthenticated request for a destination that is not a local user, or a policy refusal: 403. */
export class RelayDeniedError extends M1Error {
  static override readonly name: string = 'RelayDeniedError'
}
