import { M1Error } from '../core/index.js'

/** Something in the libp2p layer failed (start, listen, datastore). */
export class P2pError extends M1Error {
  static override readonly name: string = 'P2pError'
}

/** A peer could not be reached or a stream to it could not be opened. */
export class PeerUnreachableError extends M1Error {
  static override readonly name: string = 'PeerUnreachableError'
  constructor (readonly peer: string, options?: { cause?: unknown }) {
    super(`peer ${peer} is unreachable`, options)
  }
}

/** A peer sent something that is not a valid frame of the protocol (too large, not JSON, cut short). */
export class FrameError extends M1Error {
  static override readonly name: string = 'FrameError'
}

/** The remote answered a request with an error frame `{ type: 'error', code, message }`. */
export class RemoteError extends M1Error {
  static override readonly name: string = 'RemoteError'
  constructor (readonly code: string, message: string) { super(message) }
}
