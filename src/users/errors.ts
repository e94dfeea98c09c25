import { InvalidInputError, M1Error, QuietError } from '../core/index.js'

export class InvalidLoginError extends InvalidInputError {
  static override readonly name: string = 'InvalidLoginError'
  constructor (login: string, reason: string) { super('login', `"${login}" ${reason}`) }
}

export class UserExistsError extends M1Error {
  static override readonly name: string = 'UserExistsError'
  constructor (readonly login: string) { super(`user ${login} already exists`) }
}

export class UnknownUserError extends M1Error {
  static override readonly name: string = 'UnknownUserError'
  constructor (readonly login: string) { super(`no user ${login}`) }
}

/** One or more rows of a bulk import are unusable; nothing was written. */
export class ImportError extends InvalidInputError {
  static override readonly name: string = 'ImportError'
  constructor (readonly rows: Array<{ line: number, reason: string }>) {
    super(`line ${rows[0]?.line ?? 0}`, `${rows[0]?.reason ?? 'invalid'}${rows.length > 1 ? ` (and ${rows.length - 1} more bad lines)` : ''}`)
  }
}

/** No or wrong credentials: answer 401 (or 407 when `proxy`) carrying these WWW-/Proxy-Authenticate values. */
export class AuthRequiredError extends QuietError {
  static override readonly name: string = 'AuthRequiredError'
  constructor (readonly challenges: string[], readonly proxy: boolean) { super('authentication required') }
}

/** Too many failures from this address or for this login: answer 403 until the block ends. */
export class AuthBlockedError extends QuietError {
  static override readonly name: string = 'AuthBlockedError'
  constructor () { super('too many authentication failures') }
}

export class TrunkExistsError extends M1Error {
  static override readonly name: string = 'TrunkExistsError'
  constructor (readonly username: string) { super(`trunk ${username} already exists`) }
}

export class UnknownTrunkError extends M1Error {
  static override readonly name: string = 'UnknownTrunkError'
  constructor (readonly username: string) { super(`no trunk ${username}`) }
}

export class DidExistsError extends M1Error {
  static override readonly name: string = 'DidExistsError'
  constructor (readonly did: string) { super(`DID ${did} is already routed`) }
}

export class UnknownDidError extends M1Error {
  static override readonly name: string = 'UnknownDidError'
  constructor (readonly did: string) { super(`no DID ${did}`) }
}
