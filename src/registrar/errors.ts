import { M1Error } from '../core/index.js'

/** RFC 3261 §10.3 step 7: a contact's expiry is below the minimum: answer 423 with Min-Expires. */
export class IntervalTooBriefError extends M1Error {
  static override readonly name: string = 'IntervalTooBriefError'
  constructor (readonly minExpires: number) { super(`expires below ${minExpires}`) }
}

/** The REGISTER is malformed for a registrar (e.g. `*` with other contacts or a non-zero Expires): 400. */
export class InvalidRegisterError extends M1Error {
  static override readonly name: string = 'InvalidRegisterError'
}

/** The REGISTER's To is not the authenticated login, or its domain is not served here: 403. */
export class RegisterForbiddenError extends M1Error {
  static override readonly name: string = 'RegisterForbiddenError'
}

/** RFC 3261 §10.3 step 7: same Call-ID with a CSeq not above the stored one: the update is refused. */
export class OutOfOrderRegisterError extends M1Error {
  static override readonly name: string = 'OutOfOrderRegisterError'
  constructor () { super('CSeq not above the stored binding\'s') }
}

/** More contacts than `registrar.max_contacts` for one AOR. */
export class TooManyContactsError extends M1Error {
  static override readonly name: string = 'TooManyContactsError'
  constructor (readonly max: number) { super(`more than ${max} contacts`) }
}
