import { M1Error } from '../core/index.js'

/** Base of the media relay's errors. */
export class MediaError extends M1Error {
  static override readonly name: string = 'MediaError'
}

/** No free RTP/RTCP port pair is left in the relay's range: the call cannot be relayed (answer 503). */
export class NoPortsError extends MediaError {
  static override readonly name: string = 'NoPortsError'
  constructor (readonly portMin: number, readonly portMax: number, message = `no free RTP port pair in ${portMin}..${portMax}`) {
    super(message)
  }
}

/** An SDP body that cannot be read (no `v=` line, a malformed `m=` line, too many m-lines): answer 488. */
export class InvalidSdpError extends MediaError {
  static override readonly name: string = 'InvalidSdpError'
  constructor (readonly reason: string) {
    super(`invalid SDP: ${reason}`)
  }
}

/** The relay is not running (never started, or stopped): nothing is allocated. */
export class MediaRelayStoppedError extends MediaError {
  static override readonly name: string = 'MediaRelayStoppedError'
  constructor (message = 'media relay is not running') { super(message) }
}

/** The call was deleted while an offer or answer for it was still binding ports; the ports were freed. */
export class MediaCallDeletedError extends MediaError {
  static override readonly name: string = 'MediaCallDeletedError'
  constructor (readonly callId: string) { super(`call ${callId} was deleted`) }
}
