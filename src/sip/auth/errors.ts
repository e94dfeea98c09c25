import { M1Error } from '../../core/index.js'

/**
 * A value handed to the digest primitives by our own code is unusable: a realm with a line break, a secret of the
 * wrong size, a limit that is not a positive number. Input from the network never throws; parsers return null.
 */
export class AuthParameterError extends M1Error {
  static override readonly name = 'AuthParameterError'
  constructor (readonly field: string, readonly reason: string) {
    super(`${field}: ${reason}`)
  }
}
