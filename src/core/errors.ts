/** Base of every named error in m1node: a stable `name`, a default message and an optional cause. */
export class M1Error extends Error {
  static override readonly name: string = 'M1Error'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = (this.constructor as typeof M1Error).name
  }
}

/**
 * An expected outcome that travels as an error on a hot path (every first REGISTER is challenged): built without
 * a stack trace, whose capture costs more than the rest of the request.
 */
export class QuietError extends M1Error {
  static override readonly name: string = 'QuietError'
  constructor (message: string) {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      super(message)
    } finally {
      Error.stackTraceLimit = limit
    }
  }
}

/** A config value (file, environment or CLI flag) that cannot be used; `path` names the key, e.g. `sip.udp.port`. */
export class ConfigError extends M1Error {
  static override readonly name: string = 'ConfigError'
  constructor (readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`)
  }
}

/** Bad user input outside config: CLI arguments, CSV rows, control API bodies. */
export class InvalidInputError extends M1Error {
  static override readonly name: string = 'InvalidInputError'
  constructor (readonly field: string, readonly reason: string) {
    super(`${field}: ${reason}`)
  }
}

export class NotFoundError extends M1Error {
  static override readonly name: string = 'NotFoundError'
}

export class AlreadyExistsError extends M1Error {
  static override readonly name: string = 'AlreadyExistsError'
}

export class TimeoutError extends M1Error {
  static override readonly name: string = 'TimeoutError'
  constructor (message = 'timed out') { super(message) }
}

export class AbortError extends M1Error {
  static override readonly name: string = 'AbortError'
  constructor (message = 'aborted') { super(message) }
}
