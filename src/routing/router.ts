import type { Logger } from '../core/index.js'
import { createResponse, newTag, validateRequest, type SanityOptions, type SipRequest, type SipResponse } from '../sip/message/index.js'
import type { ServerTransaction, TransactionUser } from '../sip/transaction/index.js'
import type { Flow } from '../sip/transport/index.js'
import { ALLOW, errorResponse } from './sip-errors.js'

/** Option tags the node handles (RFC 3327 Path, RFC 5626 outbound); a Require naming another gets 420. */
const SANITY: SanityOptions = { supported: ['path', 'outbound'] }

export interface RouterComponents {
  registrar: { register: (req: SipRequest, flow: Flow) => Promise<SipResponse> }
  /** whether a host names this node */
  isLocalDomain: (host: string) => boolean
  /** finds the INVITE server transaction a CANCEL refers to */
  matchInviteForCancel: (cancel: SipRequest) => ServerTransaction | undefined
  logger?: Logger
}

export interface RouterInit {
  /** value of the Server header in our answers */
  server: string
}

/**
 * request_route: sanity -> in-dialog -> dispatch by method (Kamailio order). Every request gets exactly one
 * final answer through its server transaction; nothing here throws into the SIP stack.
 */
export class Router implements TransactionUser {
  constructor (private readonly components: RouterComponents, private readonly init: RouterInit) {}

  onRequest (req: SipRequest, tx: ServerTransaction): void {
    this.route(req, tx).catch((err: unknown) => {
      this.respond(tx, errorResponse(req, err, newTag(), this.components.logger))
    })
  }

  onAck (): void {
    // ACKs to our own 2xx need nothing until the node holds dialogs (calls)
  }

  onStrayResponse (res: SipResponse, flow: Flow): void {
    this.components.logger?.debug({ callId: res.callId, status: res.status, flow: flow.id }, 'stray response dropped')
  }

  private async route (req: SipRequest, tx: ServerTransaction): Promise<void> {
    const log = this.components.logger
    log?.debug({ method: req.method, callId: req.callId, flow: tx.flow.id }, 'request')
    const insane = validateRequest(req, SANITY)
    if (insane != null) {
      return this.respond(tx, createResponse(req, insane.status, insane.reason, { toTag: newTag(), ...(insane.headers != null ? { headers: insane.headers } : {}) }))
    }
    if (req.method === 'CANCEL') return this.cancel(req, tx)

    // in-dialog requests: the node keeps no dialogs yet, so none can match (RFC 3261 §12.2.2)
    if (req.to.params.tag != null) {
      return this.respond(tx, createResponse(req, 481, 'Call/Transaction Does Not Exist'))
    }
    switch (req.method) {
      case 'REGISTER':
        return this.respond(tx, await this.components.registrar.register(req, tx.flow))
      case 'OPTIONS':
        return this.respond(tx, this.options(req))
      default:
        return this.respond(tx, createResponse(req, 501, 'Not Implemented', { toTag: newTag(), headers: [{ name: 'Allow', value: ALLOW }] }))
    }
  }

  /** RFC 3261 §11.2: OPTIONS to the node answers what it supports. */
  private options (req: SipRequest): SipResponse {
    if (!this.components.isLocalDomain(req.uri.host)) {
      // no open relay: the node forwards nothing for unauthenticated senders
      return createResponse(req, 403, 'Forbidden', { toTag: newTag() })
    }
    return createResponse(req, 200, 'OK', {
      toTag: newTag(),
      headers: [
        { name: 'Allow', value: ALLOW },
        { name: 'Accept', value: 'application/sdp, text/plain' },
        { name: 'Accept-Encoding', value: 'identity' },
        { name: 'Accept-Language', value: 'en' },
        { name: 'Supported', value: 'path, outbound' }
      ]
    })
  }

  /** RFC 3261 §9.2: CANCEL matching no INVITE gets 481; a matching one gets 200 and the INVITE 487. */
  private cancel (req: SipRequest, tx: ServerTransaction): void {
    const invite = this.components.matchInviteForCancel(req)
    if (invite == null) return this.respond(tx, createResponse(req, 481, 'Call/Transaction Does Not Exist'))
    this.respond(tx, createResponse(req, 200, 'OK'))
    if (invite.state === 'proceeding' || invite.state === 'trying') {
      this.respond(invite, createResponse(invite.request, 487, 'Request Terminated', { toTag: newTag() }))
    }
  }

  private respond (tx: ServerTransaction, res: SipResponse): void {
    res.headers.push({ name: 'Server', value: this.init.server })
    try {
      tx.respond(res)
    } catch (err) {
      this.components.logger?.error({ err, callId: res.callId }, 'cannot respond')
    }
  }
}
