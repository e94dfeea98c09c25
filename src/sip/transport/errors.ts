import { M1Error } from '../../core/index.js'

/** A message could not be handed to the network: no route, connection refused or closed, socket error, bad target. */
export class TransportError extends M1Error {
  static override readonly name: string = 'TransportError'
  constructor (message = 'transport error', options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** The egress policy refuses this destination; nothing was sent. */
export class EgressDeniedError extends TransportError {
  static override readonly name: string = 'EgressDeniedError'
  constructor (readonly address: string, message = `egress to ${address} is not allowed`) {
    super(message)
  }
}

/** A CIDR (or plain address) in an allow list cannot be parsed. */
export class InvalidCidrError extends M1Error {
  static override readonly name: string = 'InvalidCidrError'
  constructor (readonly cidr: string, readonly reason = 'not an IPv4 or IPv6 CIDR') {
    super(`${cidr}: ${reason}`)
  }
}
