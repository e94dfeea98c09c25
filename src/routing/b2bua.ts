import type { Logger, Metrics, MetricCounter } from '../core/index.js'
import { createRequest, createResponse, getHeader, getHeaders, newCallId, newTag, newBranch, parseUri, type NameAddr, type SipHeader, type SipRequest, type SipResponse } from '../sip/message/index.js'
import type { TransportName } from '../sip/message/index.js'
import type { ClientTransaction, ClientTransactionUser, ServerTransaction } from '../sip/transaction/index.js'
import type { Flow, SendTarget } from '../sip/transport/index.js'
import { Dialog, type LocalEnd } from '../sip/dialog/index.js'
import type { Binding } from '../registrar/index.js'
import type { CallRecord, CdrLeg } from './cdr.js'
import { CallLimitError } from './errors.js'
import { errorResponse } from './sip-errors.js'
import { tokenOf, withToken, withoutToken, type MediaPathReport } from './p2p-media.js'

type Side = 'a' | 'b'

/** What the B2BUA needs of the media relay (src/media): Kamailio rtpengine's three verbs. */
export interface MediaAnchor {
  offer: (callId: string, from: Side, sdp: string) => Promise<string>
  answer: (callId: string, from: Side, sdp: string) => Promise<string>
  delete: (callId: string) => { packets: { a2b: number, b2a: number }, bytes: { a2b: number, b2a: number } } | undefined
}

/** What the B2BUA needs of {@link P2pMediaLinks}: one token per cross-node call leg, carried in `a=m1-rtp`. */
export interface RemoteMedia {
  expect: (callId: string, side: Side, peer: string) => string
  connect: (callId: string, side: Side, peer: string, token: string) => void
  /** the call ended; returns the media path its remote leg used, if any */
  end: (callId: string) => MediaPathReport | undefined | void
}

export interface B2buaComponents {
  stack: {
    request: (req: SipRequest, target: SendTarget, user: ClientTransactionUser, opts?: { signal?: AbortSignal }) => ClientTransaction
    send: (target: SendTarget, msg: SipRequest | SipResponse) => Promise<void>
  }
  /** absent: SDP passes end to end untouched */
  media?: MediaAnchor
  /** media of legs to other m1 nodes over libp2p streams (`/m1/rtp/1.0.0`, routing/p2p-media); absent: UDP relay to relay */
  remoteMedia?: RemoteMedia
  records: { write: (rec: CallRecord) => Promise<void> }
  /** our advertised address and listening port for a transport (Via and Contact) */
  localEnd: (transport: TransportName) => LocalEnd
  logger?: Logger
  metrics?: Metrics
}

export interface B2buaInit {
  /** our SIP domain: callers' identities become login@domain */
  domain: string
  /** seconds a call may ring before the caller gets 480 @default 60 */
  ringTimeoutSeconds: number
  /** calls at once on the node; 0: no cap @default 0 */
  maxCalls: number
  /** calls at once per login (as caller or callee); 0: no cap @default 0 */
  maxCallsPerLogin: number
  /** anchor media at the node: always, only when a side is behind NAT, or never @default 'always' */
  anchorMedia: 'always' | 'nat' | 'never'
  /** RFC 3261 T1 and T2, ms: 2xx retransmission to the caller on UDP */
  t1: number
  t2: number
  /** Server / User-Agent value */
  userAgent: string
}

/** Who is calling, as the router established it. */
export interface Caller {
  /** the authenticated local login, when there is one */
  login?: string
  /** the identity presented to the callee (From) */
  identity: NameAddr
  /** the m1 node the call came from, verified against its libp2p peer id: `identity` is then asserted (P-Asserted-Identity) */
  node?: string
  /** further call caps this caller counts against (a PBX trunk's `max_calls`) */
  caps?: CallCap[]
}

/** A cap on calls at once, counted under `key` (e.g. `trunk:acme_office-pbx`). */
export interface CallCap { key: string, max: number }

/**
 * Who is called: a local login and its live bindings, or a login at another m1 node and one binding whose flow is
 * that node's peer (transport 'P2P', address the peer id, contact the Request-URI `sip:login@<node domain>`).
 */
export interface Callee {
  login: string
  bindings: Binding[]
  /** the callee's SIP domain (To, call record); default: ours */
  domain?: string
  /** the m1 node that serves the callee, when it is not this node */
  node?: string
  /** To user part when it is not `login` (an extension `acme.201`, a DID) */
  toUser?: string
  /** one binding at a time, in the given order, moving on after 5xx, 408 or no answer (PBX failover) */
  sequential?: boolean
  /** sequential forking: ms a contact may stay silent (not even 100 Trying) before the next is tried; 0: the transaction timeout */
  failoverAfterMs?: number
  /** further call caps this callee counts against (a PBX trunk's `max_calls`) */
  caps?: CallCap[]
}

interface Fork {
  binding: Binding
  req: SipRequest
  target: SendTarget
  tx?: ClientTransaction
  provisional: boolean
  final?: SipResponse
  cancelPending: boolean
  cancelled: boolean
  dialog?: Dialog
  ack?: SipRequest
  /** sequential forking: moves on when this contact sends nothing in time */
  silence?: ReturnType<typeof setTimeout>
  /** given up for silence: a late provisional still gets its CANCEL */
  abandoned?: boolean
}

interface Pending {
  /** the request from `side` we forwarded, and its server transaction */
  tx: ServerTransaction
  side: Side
  /** our request on the other leg */
  out: SipRequest
  /** our 2xx to `side`, retransmitted on UDP until its ACK */
  ok?: SipResponse
  /** the ACK we owe the other leg once `side` ACKs (late offer) */
  awaitAck: boolean
}

class Call {
  readonly bCallId = newCallId()
  readonly bTag = newTag()
  readonly aTag = newTag()
  state: 'ringing' | 'answered' | 'ended' = 'ringing'
  aDialog?: Dialog
  bDialog?: Dialog
  forks: Fork[] = []
  winner?: Fork
  readonly startedAt = Date.now()
  answeredAt?: number
  anchored = false
  aOffered = false
  ringTimer?: ReturnType<typeof setTimeout>
  sessionTimer?: ReturnType<typeof setTimeout>
  retransmit?: { timer: ReturnType<typeof setTimeout>, interval: number, deadline: number, res: SipResponse, side: Side }
  /** the initial 2xx to A is waiting for A's ACK, possibly carrying the SDP answer for B (late offer) */
  awaitInitialAck = true
  bAck?: SipRequest
  pending?: Pending
  lastProvisional = 0
  /** the body sent to the callee's forks (sequential forking sends it again) */
  body: Buffer = Buffer.alloc(0)
  /** the `a=m1-rtp` token of the cross-node leg's media stream; `connect`: the far node minted it, we open the stream */
  mediaToken?: string
  mediaRole?: 'expect' | 'connect' | 'connected'

  constructor (readonly aReq: SipRequest, readonly aTx: ServerTransaction, readonly caller: Caller, readonly callee: Callee) {}

  get id (): string { return this.aReq.callId }
  get aFlow (): Flow { return this.aTx.flow }
}

const COPY_TO_CALLEE = new Set(['Content-Type', 'Allow', 'Supported', 'Session-Expires', 'Min-SE', 'Subject', 'Alert-Info', 'Call-Info', 'Accept', 'Accept-Language', 'Organization', 'Priority', 'Privacy', 'User-Agent', 'Event', 'Subscription-State', 'Refer-To', 'Referred-By', 'Info-Package', 'Recv-Info', 'Reason'])
const COPY_TO_CALLER = new Set(['Content-Type', 'Allow', 'Supported', 'Session-Expires', 'Min-SE', 'Accept', 'Warning', 'Retry-After', 'Unsupported', 'Reason', 'Server', 'Event', 'Subscription-State', 'Recv-Info'])

/**
 * The back-to-back user agent: a call is an A-leg (the caller's dialog with us) and a B-leg (our dialog with the
 * callee's device), each with its own Call-ID, tags and CSeq. INVITEs fork to every binding of the callee; the
 * first 2xx wins and the other forks get CANCEL (or ACK+BYE when they answered too). Provisional responses, early
 * media, re-INVITE/UPDATE (hold, codec change), INFO and other in-dialog requests pass through; BYE from either
 * side ends both legs. Media is anchored at the node's relay through offer/answer/delete.
 */
export class B2bua {
  private readonly calls = new Set<Call>()
  private readonly byInvite = new Map<string, Call>()
  private readonly dialogs = new Map<string, { call: Call, side: Side }>()
  private readonly perLogin = new Map<string, number>()
  private readonly callsTotal?: MetricCounter
  private readonly callsByPath?: MetricCounter

  constructor (private readonly components: B2buaComponents, private readonly init: B2buaInit) {
    const m = components.metrics
    this.callsTotal = m?.counter('m1node_calls_total', 'Call attempts by outcome', ['direction', 'result'])
    this.callsByPath = m?.counter('m1node_calls_by_media_path_total', 'Ended calls that had media, by the path that carried it at the end (udp, stream-direct, stream-relayed, datachannel)', ['path'])
    m?.gauge('m1node_calls_active', 'Calls ringing or answered', [], () => this.calls.size)
  }

  /** Calls in progress. */
  get size (): number { return this.calls.size }

  start (): void {}

  /** Ends every call (BYE / CANCEL both legs) as the node stops. */
  async stop (): Promise<void> {
    for (const call of [...this.calls]) this.hangup(call, 'shutdown', 503)
  }

  /** Starts a call from the A-leg INVITE to a local login's bindings. Throws CallLimitError (503). */
  async invite (req: SipRequest, tx: ServerTransaction, caller: Caller, callee: Callee): Promise<void> {
    if (this.init.maxCalls > 0 && this.calls.size >= this.init.maxCalls) throw new CallLimitError('node')
    for (const login of [caller.login, callee.login]) {
      if (login != null && this.init.maxCallsPerLogin > 0 && (this.perLogin.get(login) ?? 0) >= this.init.maxCallsPerLogin) throw new CallLimitError(login)
    }
    for (const cap of [...caller.caps ?? [], ...callee.caps ?? []]) {
      if (cap.max > 0 && (this.perLogin.get(cap.key) ?? 0) >= cap.max) throw new CallLimitError(cap.key)
    }
    const call = new Call(req, tx, caller, callee)
    this.calls.add(call)
    this.byInvite.set(tx.id, call)
    for (const key of countedKeys(call)) this.perLogin.set(key, (this.perLogin.get(key) ?? 0) + 1)
    const log = this.components.logger
    log?.info({ callId: call.id, from: caller.login ?? caller.identity.rawUri, to: callee.login, forks: callee.bindings.length }, 'call')

    const media = this.components.media
    // a call to or from another node is always anchored: a phone's address means nothing to the other node
    call.anchored = media != null && (this.init.anchorMedia === 'always' || callee.node != null || caller.node != null ||
      (this.init.anchorMedia === 'nat' && (callee.bindings.some(b => b.nat) || isNatted(req, tx.flow))))
    let body = req.body
    if (isSdp(req)) {
      call.aOffered = true
      if (call.anchored) {
        try {
          body = Buffer.from(await this.relaySdp(call, 'a', req.body.toString('utf8'), 'offer'))
        } catch (err) {
          // unusable SDP (488) or no relay ports (503): the call ends before it rings
          const res = errorResponse(req, err, call.aTag, this.components.logger)
          try { tx.respond(res) } catch {}
          this.end(call, 'rejected', res.status)
          return
        }
      }
    }
    if (call.state === 'ended') return
    call.body = body
    if (callee.sequential === true) this.fork(call, callee.bindings[0]!, body)
    else for (const binding of callee.bindings) this.fork(call, binding, body)
    if (call.forks.every(f => f.final != null)) this.maybeAllFailed(call)
    call.ringTimer = setTimeout(() => { this.ringTimeout(call) }, this.init.ringTimeoutSeconds * 1000)
    call.ringTimer.unref()
  }

  /** The caller CANCELled the INVITE transaction `inviteTx`; returns false when no call holds it. */
  cancel (inviteTx: ServerTransaction): boolean {
    const call = this.byInvite.get(inviteTx.id)
    if (call == null) return false
    if (call.state === 'ringing') this.finishUnanswered(call, createResponse(call.aReq, 487, 'Request Terminated'), 'cancelled')
    return true
  }

  /** An in-dialog request (To tag present). Returns false when it belongs to no dialog of ours (481). */
  inDialog (req: SipRequest, tx: ServerTransaction): boolean {
    const found = this.dialogs.get(Dialog.key(req.callId, String(req.to.params.tag ?? '')))
    if (found == null) return false
    const { call, side } = found
    const dialog = side === 'a' ? call.aDialog : call.bDialog
    if (dialog == null) return false
    if (!dialog.acceptRemoteSeq(req)) {
      tx.respond(this.reply(req, 500, 'Out of Order CSeq'))
      return true
    }
    dialog.flow = tx.flow
    void this.forwardInDialog(call, side, req, tx).catch((err: unknown) => {
      try { tx.respond(errorResponse(req, err, dialog.localTag, this.components.logger)) } catch {}
    })
    return true
  }

  /** An ACK to a 2xx (end to end, outside transactions). */
  ack (req: SipRequest, flow: Flow): void {
    const found = this.dialogs.get(Dialog.key(req.callId, String(req.to.params.tag ?? '')))
    if (found == null) return
    const { call, side } = found
    const dialog = side === 'a' ? call.aDialog : call.bDialog
    if (dialog != null) dialog.flow = flow
    if (call.retransmit?.side === side) this.stopRetransmit(call)
    if (side === 'a' && call.awaitInitialAck && req.cseq.seq === call.aReq.cseq.seq) {
      call.awaitInitialAck = false
      void this.ackCallee(call, req).catch((err: unknown) => this.components.logger?.error({ err, callId: call.id }, 'cannot ACK callee'))
      return
    }
    const p = call.pending
    if (p != null && p.side === side && p.ok != null) {
      call.pending = undefined
      if (p.awaitAck) void this.forwardAck(call, side, p, req)
    }
  }

  /** The stream that carried an answered call's media to another node is gone and no other path took over. */
  mediaLost (callId: string): void {
    for (const call of this.calls) if (call.id === callId && call.state === 'answered') this.hangup(call, 'media-lost')
  }

  /** The media relay saw no packets for too long. */
  mediaTimeout (callId: string): void {
    for (const call of this.calls) if (call.id === callId && call.state === 'answered') this.hangup(call, 'media-timeout')
  }

  // ---- initial INVITE ----

  private fork (call: Call, binding: Binding, body: Buffer): void {
    const flow = binding.flow
    const transport = flow.transport as TransportName
    const local = this.components.localEnd(transport)
    const calleeDomain = call.callee.domain ?? this.init.domain
    const toUser = call.callee.toUser ?? call.callee.login
    const headers: SipHeader[] = binding.path.map(value => ({ name: 'Route', value }))
    headers.push({ name: 'Contact', value: contactOf(local) })
    if (call.caller.node != null) headers.push({ name: 'P-Asserted-Identity', value: `<${call.caller.identity.rawUri}>` })
    else if (call.caller.login != null && call.callee.node == null) headers.push({ name: 'P-Asserted-Identity', value: `<sip:${call.caller.login}@${this.init.domain}>` })
    headers.push(...copyHeaders(call.aReq, COPY_TO_CALLEE))
    const req = createRequest({
      method: 'INVITE',
      uri: binding.contact,
      from: { ...call.caller.identity, params: { tag: call.bTag } },
      to: { uri: parseUri(`sip:${toUser}@${calleeDomain}`), rawUri: `sip:${toUser}@${calleeDomain}`, params: {} },
      callId: call.bCallId,
      cseq: 1,
      via: { protocol: 'SIP/2.0', transport, host: local.host, port: local.port, params: { branch: newBranch(), rport: null } },
      maxForwards: Math.max(0, (call.aReq.maxForwards ?? 70) - 1),
      headers,
      body
    })
    const target: SendTarget = { transport, address: flow.remoteAddress, port: flow.remotePort, flowId: flow.id }
    const fork: Fork = { binding, req, target, provisional: false, cancelPending: false, cancelled: false }
    call.forks.push(fork)
    try {
      fork.tx = this.components.stack.request(req, target, {
        onResponse: (res, f) => { void this.forkResponse(call, fork, res, f).catch((err: unknown) => this.components.logger?.error({ err, callId: call.id }, 'fork response failed')) },
        onTimeout: () => { this.forkFailed(call, fork, 408, 'Request Timeout') },
        onTransportError: () => { this.forkFailed(call, fork, 480, 'Temporarily Unavailable') }
      })
    } catch (err) {
      this.components.logger?.warn({ err, callId: call.id, contact: binding.contact }, 'cannot fork')
      fork.final = createResponse(req, 480, 'Temporarily Unavailable')
      return
    }
    const after = call.callee.failoverAfterMs ?? 0
    if (call.callee.sequential === true && after > 0 && call.forks.length < call.callee.bindings.length) {
      // a PBX that is down answers nothing: do not make the caller wait for timer B before the next contact
      fork.silence = setTimeout(() => {
        if (fork.final != null || call.state !== 'ringing') return
        this.components.logger?.info({ callId: call.id, contact: binding.contact, afterMs: after }, 'contact silent: failover')
        fork.cancelPending = true
        fork.abandoned = true
        this.forkFailed(call, fork, 408, 'Request Timeout')
      }, after)
      fork.silence.unref()
    }
  }

  private async forkResponse (call: Call, fork: Fork, res: SipResponse, flow: Flow): Promise<void> {
    const status = res.status
    if (fork.silence != null) { clearTimeout(fork.silence); fork.silence = undefined }
    if (status < 200) {
      if (status === 100) return
      fork.provisional = true
      if (fork.cancelPending) { this.sendCancel(fork); return }
      if (call.state !== 'ringing') return
      let body: Buffer | undefined
      if (isSdp(res) && res.to.params.tag != null) body = await this.sdpFromB(call, res)
      if (call.state !== 'ringing') return
      // relay each distinct provisional; 180 without SDP after early media would only confuse phones
      if (body == null && call.lastProvisional === status) return
      call.lastProvisional = status
      call.aTx.respond(this.toCaller(call, res, status, body))
      return
    }
    if (status < 300) return await this.forkAnswered(call, fork, res, flow)
    fork.final = res
    if (call.state === 'ringing') this.maybeAllFailed(call)
  }

  private async forkAnswered (call: Call, fork: Fork, res: SipResponse, flow: Flow): Promise<void> {
    if (fork.dialog == null) {
      fork.dialog = Dialog.asUac(fork.req, res, { ...flow, id: flow.id }, this.components.localEnd(fork.target.transport))
      fork.final = res
    }
    if (call.winner === fork) {
      // a 2xx retransmission: our ACK was lost
      if (call.bAck != null) void this.components.stack.send(fork.dialog.target(), call.bAck).catch(() => {})
      return
    }
    if (call.state !== 'ringing') {
      // another fork answered first (or the call ended): ACK and hang up this one (RFC 3261 §13.2.2.4)
      this.ackAndBye(fork)
      return
    }
    call.winner = fork
    call.state = 'answered'
    call.answeredAt = Date.now()
    if (call.ringTimer != null) clearTimeout(call.ringTimer)
    for (const other of call.forks) if (other !== fork) this.cancelFork(other)
    call.bDialog = fork.dialog
    this.dialogs.set(call.bDialog.key, { call, side: 'b' })

    let body: Buffer | undefined
    if (isSdp(res)) body = await this.sdpFromB(call, res)
    call.aDialog = Dialog.asUas(call.aReq, call.aTag, call.aFlow, this.components.localEnd(call.aFlow.transport as TransportName))
    this.dialogs.set(call.aDialog.key, { call, side: 'a' })
    const ok = this.toCaller(call, res, 200, body)
    call.aTx.respond(ok)
    this.byInvite.delete(call.aTx.id)
    this.startRetransmit(call, 'a', ok)
    // with an offer from A the ACK to B carries nothing and goes now; otherwise it waits for A's answer
    if (call.aOffered) {
      call.bAck = call.bDialog.request('ACK', { cseq: fork.req.cseq.seq })
      void this.components.stack.send(call.bDialog.target(), call.bAck).catch(() => {})
    }
    this.armSessionTimer(call, res)
    this.callsTotal?.inc({ direction: directionOf(call), result: 'answered' })
    this.components.logger?.info({ callId: call.id, contact: fork.binding.contact }, 'call answered')
  }

  private forkFailed (call: Call, fork: Fork, status: number, reason: string): void {
    if (fork.final != null) return
    fork.final = createResponse(fork.req, status, reason)
    if (call.state === 'ringing') this.maybeAllFailed(call)
  }

  private maybeAllFailed (call: Call): void {
    if (call.forks.some(f => f.final == null)) return
    if (call.callee.sequential === true && call.forks.length < call.callee.bindings.length) {
      // failover: a server error, a timeout or an unreachable contact moves on to the next contact
      const last = call.forks[call.forks.length - 1]!.final!.status
      if (last >= 500 && last < 600 || last === 408 || last === 480) {
        this.components.logger?.info({ callId: call.id, status: last, next: call.callee.bindings[call.forks.length]!.contact }, 'failover to the next contact')
        this.fork(call, call.callee.bindings[call.forks.length]!, call.body)
        if (call.forks[call.forks.length - 1]!.final != null) this.maybeAllFailed(call)
        return
      }
    }
    const best = bestResponse(call.forks.map(f => f.final!))
    const res = this.toCaller(call, best, best.status, undefined)
    this.finishUnanswered(call, res, best.status === 486 || best.status === 600 ? 'busy' : 'rejected')
  }

  private ringTimeout (call: Call): void {
    if (call.state !== 'ringing') return
    this.finishUnanswered(call, createResponse(call.aReq, 480, 'No Answer', { toTag: call.aTag }), 'no-answer')
  }

  private finishUnanswered (call: Call, res: SipResponse, reason: string): void {
    if (call.state !== 'ringing') return
    for (const f of call.forks) this.cancelFork(f)
    if (res.to.params.tag == null) res = createResponse(call.aReq, res.status, res.reason, { toTag: call.aTag, headers: res.headers.filter(h => !['Via', 'From', 'To', 'Call-ID', 'CSeq'].includes(h.name)), body: res.body })
    res.headers.push({ name: 'Server', value: this.init.userAgent })
    try { call.aTx.respond(res) } catch {}
    this.callsTotal?.inc({ direction: directionOf(call), result: reason })
    this.end(call, reason, res.status)
  }

  private cancelFork (fork: Fork): void {
    if (fork.final != null || fork.cancelled) return
    if (fork.provisional) this.sendCancel(fork)
    else fork.cancelPending = true
  }

  /** RFC 3261 §9.1: CANCEL has the INVITE's Request-URI, Call-ID, From, To, CSeq number, Route and top Via. */
  private sendCancel (fork: Fork): void {
    if (fork.cancelled || (fork.final != null && fork.abandoned !== true)) return
    fork.cancelled = true
    fork.cancelPending = false
    const inv = fork.req
    const cancel = createRequest({
      method: 'CANCEL',
      uri: inv.rawUri,
      from: inv.from,
      to: inv.to,
      callId: inv.callId,
      cseq: inv.cseq.seq,
      via: inv.vias[0]!,
      headers: getHeaders(inv, 'Route').map(value => ({ name: 'Route', value }))
    })
    try {
      this.components.stack.request(cancel, fork.target, { onResponse: () => {}, onTimeout: () => {}, onTransportError: () => {} })
    } catch (err) {
      this.components.logger?.debug({ err }, 'cannot CANCEL fork')
    }
  }

  private ackAndBye (fork: Fork): void {
    const d = fork.dialog
    if (d == null) return
    void this.components.stack.send(d.target(), d.request('ACK', { cseq: fork.req.cseq.seq })).catch(() => {})
    this.sendBye(d)
  }

  private async ackCallee (call: Call, ack: SipRequest): Promise<void> {
    const b = call.bDialog
    if (b == null || call.winner == null || call.bAck != null) return
    let body: Buffer | undefined
    if (isSdp(ack)) {
      const sdp = ack.body.toString('utf8')
      body = Buffer.from(call.anchored ? await this.relaySdp(call, 'a', sdp, 'answer') : sdp)
    }
    call.bAck = b.request('ACK', { cseq: call.winner.req.cseq.seq, ...(body != null ? { body, headers: [{ name: 'Content-Type', value: 'application/sdp' }] } : {}) })
    await this.components.stack.send(b.target(), call.bAck)
  }

  /** SDP in a response from B: its answer to A's offer, or (late offer) B's offer. */
  private async sdpFromB (call: Call, res: SipResponse): Promise<Buffer> {
    const sdp = res.body.toString('utf8')
    if (!call.anchored) return res.body
    return Buffer.from(await this.relaySdp(call, 'b', sdp, call.aOffered ? 'answer' : 'offer'))
  }

  /**
   * SDP from side `from` through the relay to the other side. A leg to another node carries `a=m1-rtp:<token>`:
   * the first SDP sent to that node mints the token (the node opens the stream); a token the node sent first is
   * ours to open. Phones never see the attribute.
   */
  private async relaySdp (call: Call, from: Side, sdp: string, verb: 'offer' | 'answer'): Promise<string> {
    const media = this.components.media!
    const remote = this.components.remoteMedia
    const fromPeer = remote != null ? this.nodePeer(call, from) : undefined
    if (fromPeer != null) {
      const token = tokenOf(sdp)
      if (token != null && call.mediaToken == null) {
        call.mediaToken = token
        call.mediaRole = 'connect'
      }
      sdp = withoutToken(sdp)
    } else if (sdp.includes('a=m1-rtp:')) {
      // only a node sets it, never a phone
      sdp = withoutToken(sdp)
    }
    let out = await media[verb](call.id, from, sdp)
    if (fromPeer != null && call.mediaRole === 'connect' && call.state !== 'ended') {
      // the relay knows the call's m-lines now: the stream can bind
      call.mediaRole = 'connected'
      remote!.connect(call.id, from, fromPeer, call.mediaToken!)
    }
    const to: Side = from === 'a' ? 'b' : 'a'
    const toPeer = remote != null ? this.nodePeer(call, to) : undefined
    if (toPeer != null) {
      if (call.mediaToken == null) {
        call.mediaToken = remote!.expect(call.id, to, toPeer)
        call.mediaRole = 'expect'
      }
      out = withToken(out, call.mediaToken)
    }
    return out
  }

  /** The peer id of side `side` when that side is another m1 node (its SIP leg runs over `/m1/sip/1.0.0`). */
  private nodePeer (call: Call, side: Side): string | undefined {
    if (side === 'a') return call.caller.node != null && call.aFlow.transport === 'P2P' ? call.aFlow.remoteAddress : undefined
    if (call.callee.node == null) return undefined
    const flow = call.callee.bindings[0]?.flow
    return flow?.transport === 'P2P' ? flow.remoteAddress : undefined
  }

  /** A response to the caller mirroring one from the callee: our tag, our Contact, end-to-end headers copied. */
  private toCaller (call: Call, res: SipResponse, status: number, body: Buffer | undefined): SipResponse {
    const headers = copyHeaders(res, COPY_TO_CALLER).filter(h => body != null || h.name !== 'Content-Type')
    if (status >= 101 && status < 300) headers.push({ name: 'Contact', value: contactOf(this.components.localEnd(call.aFlow.transport as TransportName)) })
    return createResponse(call.aReq, status, res.reason, { toTag: call.aTag, headers, ...(body != null ? { body } : {}) })
  }

  // ---- established dialogs ----

  private async forwardInDialog (call: Call, side: Side, req: SipRequest, tx: ServerTransaction): Promise<void> {
    const otherSide: Side = side === 'a' ? 'b' : 'a'
    const other = otherSide === 'a' ? call.aDialog : call.bDialog
    if (req.method === 'BYE') {
      tx.respond(this.reply(req, 200))
      this.hangup(call, side === 'a' ? 'caller-bye' : 'callee-bye', undefined, side)
      return
    }
    if (other == null || call.state !== 'answered') {
      tx.respond(this.reply(req, 481))
      return
    }
    const isInvite = req.method === 'INVITE'
    if (isInvite || req.method === 'UPDATE') {
      // RFC 3261 §14.1: one offer/answer at a time per dialog
      if (call.pending != null) { tx.respond(this.reply(req, 491, 'Request Pending')); return }
    }
    let body: Buffer | undefined = req.body.length > 0 ? req.body : undefined
    const offered = (isInvite || req.method === 'UPDATE') && isSdp(req)
    if (offered && call.anchored) body = Buffer.from(await this.relaySdp(call, side, req.body.toString('utf8'), 'offer'))
    const out = other.request(req.method, { headers: copyHeaders(req, COPY_TO_CALLEE).filter(h => body != null || h.name !== 'Content-Type'), ...(body != null ? { body } : {}) })
    const pending: Pending | undefined = isInvite ? { tx, side, out, awaitAck: !offered } : undefined
    if (isInvite || req.method === 'UPDATE') call.pending = pending ?? { tx, side, out, awaitAck: false }
    const localEnd = this.components.localEnd(tx.flow.transport as TransportName)
    this.components.stack.request(out, other.target(), {
      onResponse: (res) => {
        void (async () => {
          if (res.status < 200) return
          let rbody: Buffer | undefined = res.body.length > 0 ? res.body : undefined
          if (res.status < 300 && isSdp(res) && call.anchored && (isInvite || req.method === 'UPDATE')) {
            const sdp = res.body.toString('utf8')
            rbody = Buffer.from(await this.relaySdp(call, otherSide, sdp, offered ? 'answer' : 'offer'))
          }
          if (res.status < 300 && (isInvite || req.method === 'UPDATE')) {
            other.refreshTarget(res)
            this.armSessionTimer(call, res)
          }
          const headers = copyHeaders(res, COPY_TO_CALLER).filter(h => rbody != null || h.name !== 'Content-Type')
          if (res.status < 300 && (isInvite || req.method === 'UPDATE')) headers.push({ name: 'Contact', value: contactOf(localEnd) })
          const answer = createResponse(req, res.status, res.reason, { headers, ...(rbody != null ? { body: rbody } : {}) })
          if (isInvite && res.status < 300) {
            // ACK the other leg now when it got an offer from us; with a late offer the ACK waits for `side`
            if (offered) void this.components.stack.send(other.target(), other.request('ACK', { cseq: out.cseq.seq })).catch(() => {})
            pending!.ok = answer
            this.startRetransmit(call, side, answer)
          } else if (call.pending?.tx === tx) {
            call.pending = undefined
          }
          if (!isInvite && req.method === 'UPDATE' && call.pending?.tx === tx) call.pending = undefined
          tx.respond(answer)
          if (isInvite && res.status >= 300 && call.pending?.tx === tx) call.pending = undefined
        })().catch((err: unknown) => this.components.logger?.error({ err, callId: call.id }, 'in-dialog response failed'))
      },
      onTimeout: () => {
        if (call.pending?.tx === tx) call.pending = undefined
        try { tx.respond(this.reply(req, 408)) } catch {}
      },
      onTransportError: () => {
        if (call.pending?.tx === tx) call.pending = undefined
        try { tx.respond(this.reply(req, 503)) } catch {}
      }
    })
    // target refresh from the side that sent it (RFC 3261 §12.2.2)
    if (isInvite || req.method === 'UPDATE') (side === 'a' ? call.aDialog : call.bDialog)?.refreshTarget(req)
  }

  private async forwardAck (call: Call, side: Side, p: Pending, ack: SipRequest): Promise<void> {
    const otherSide: Side = side === 'a' ? 'b' : 'a'
    const other = otherSide === 'a' ? call.aDialog : call.bDialog
    if (other == null) return
    let body: Buffer | undefined
    if (isSdp(ack)) {
      const sdp = ack.body.toString('utf8')
      body = Buffer.from(call.anchored ? await this.relaySdp(call, side, sdp, 'answer') : sdp)
    }
    const out = other.request('ACK', { cseq: p.out.cseq.seq, ...(body != null ? { body, headers: [{ name: 'Content-Type', value: 'application/sdp' }] } : {}) })
    await this.components.stack.send(other.target(), out).catch(() => {})
  }

  // ---- ending ----

  /** Ends an established or ringing call from our side: BYE (or CANCEL) to every leg but `except`. */
  private hangup (call: Call, reason: string, status?: number, except?: Side): void {
    if (call.state === 'ended') return
    if (call.state === 'ringing') {
      this.finishUnanswered(call, createResponse(call.aReq, status ?? 480, reason === 'shutdown' ? 'Service Unavailable' : 'Temporarily Unavailable', { toTag: call.aTag }), reason)
      return
    }
    if (except !== 'a' && call.aDialog != null) this.sendBye(call.aDialog, reason)
    if (except !== 'b' && call.bDialog != null) this.sendBye(call.bDialog, reason)
    this.end(call, reason, 200)
  }

  private sendBye (dialog: Dialog, reason?: string): void {
    const headers: SipHeader[] = reason != null && reason !== 'caller-bye' && reason !== 'callee-bye' ? [{ name: 'Reason', value: `SIP;cause=200;text="${reason}"` }] : []
    try {
      this.components.stack.request(dialog.request('BYE', { headers }), dialog.target(), { onResponse: () => {}, onTimeout: () => {}, onTransportError: () => {} })
    } catch (err) {
      this.components.logger?.debug({ err }, 'cannot send BYE')
    }
  }

  private end (call: Call, reason: string, status: number): void {
    if (call.state === 'ended') return
    call.state = 'ended'
    if (call.ringTimer != null) clearTimeout(call.ringTimer)
    if (call.sessionTimer != null) clearTimeout(call.sessionTimer)
    for (const f of call.forks) if (f.silence != null) clearTimeout(f.silence)
    this.stopRetransmit(call)
    this.calls.delete(call)
    this.byInvite.delete(call.aTx.id)
    if (call.aDialog != null) this.dialogs.delete(call.aDialog.key)
    if (call.bDialog != null) this.dialogs.delete(call.bDialog.key)
    for (const key of countedKeys(call)) {
      const n = (this.perLogin.get(key) ?? 1) - 1
      if (n <= 0) this.perLogin.delete(key)
      else this.perLogin.set(key, n)
    }
    const path = this.components.remoteMedia?.end(call.id) ?? undefined
    const media = call.anchored ? this.components.media?.delete(call.id) : undefined
    const endedAt = Date.now()
    const legs: CdrLeg[] = [
      { side: 'a', party: call.caller.login ?? call.caller.identity.rawUri, transport: call.aFlow.transport, remote: remoteOf(call.aFlow), ...(call.caller.node != null ? { node: call.caller.node } : {}) },
      ...call.forks.map(f => ({ side: 'b' as const, party: f.binding.contact, transport: f.binding.flow.transport, remote: remoteOf(f.binding.flow), ...(call.callee.node != null ? { node: call.callee.node } : {}) }))
    ]
    const rec: CallRecord = {
      callId: call.id,
      caller: call.caller.login != null ? `${call.caller.login}@${this.init.domain}` : call.caller.identity.rawUri,
      callee: `${call.callee.login}@${call.callee.domain ?? this.init.domain}`,
      startedAt: call.startedAt,
      ...(call.answeredAt != null ? { answeredAt: call.answeredAt } : {}),
      endedAt,
      durationMs: call.answeredAt != null ? endedAt - call.answeredAt : 0,
      status,
      reason,
      legs,
      ...(media != null ? { media: { packets: { ...media.packets }, bytes: { ...media.bytes } } } : {}),
      // media between nodes names its carriers; a call between phones of this node (answered) went over UDP
      ...(path != null ? { mediaPath: path.path, mediaPaths: path.switches } : call.answeredAt != null ? { mediaPath: 'udp' as const } : {})
    }
    if (rec.mediaPath != null) this.callsByPath?.inc({ path: rec.mediaPath })
    this.components.logger?.info({ callId: call.id, reason, status, durationMs: rec.durationMs }, 'call ended')
    void this.components.records.write(rec).catch((err: unknown) => this.components.logger?.error({ err, callId: call.id }, 'cannot write call record'))
  }

  // ---- timers ----

  /** RFC 3261 §13.3.1.4: on unreliable transports the UAS core retransmits its 2xx until the ACK. */
  private startRetransmit (call: Call, side: Side, res: SipResponse): void {
    this.stopRetransmit(call)
    const dialog = side === 'a' ? call.aDialog : call.bDialog
    if (dialog == null || dialog.flow.transport !== 'UDP') return
    const state = { timer: undefined as unknown as ReturnType<typeof setTimeout>, interval: this.init.t1, deadline: Date.now() + 64 * this.init.t1, res, side }
    const tick = (): void => {
      if (Date.now() >= state.deadline) {
        call.retransmit = undefined
        this.components.logger?.info({ callId: call.id, side }, 'no ACK for 2xx: ending call')
        this.hangup(call, 'no-ack')
        return
      }
      void this.components.stack.send(dialog.target(), res).catch(() => {})
      state.interval = Math.min(state.interval * 2, this.init.t2)
      state.timer = setTimeout(tick, state.interval)
      state.timer.unref()
    }
    state.timer = setTimeout(tick, state.interval)
    state.timer.unref()
    call.retransmit = state
  }

  private stopRetransmit (call: Call): void {
    if (call.retransmit != null) clearTimeout(call.retransmit.timer)
    call.retransmit = undefined
  }

  /** RFC 4028: when a session interval was agreed and no refresh arrives in time, the node ends the call. */
  private armSessionTimer (call: Call, res: SipResponse): void {
    const se = getHeader(res, 'Session-Expires')
    if (se == null) return
    const seconds = Number(/^\s*(\d+)/.exec(se)?.[1])
    if (!Number.isFinite(seconds) || seconds < 90) return
    if (call.sessionTimer != null) clearTimeout(call.sessionTimer)
    call.sessionTimer = setTimeout(() => { this.hangup(call, 'session-expired') }, seconds * 1000)
    call.sessionTimer.unref()
  }

  private reply (req: SipRequest, status: number, reason?: string): SipResponse {
    return createResponse(req, status, reason, { headers: [{ name: 'Server', value: this.init.userAgent }] })
  }
}

/** The keys a call counts under: its logins and its caps (a login calling itself through its PBX counts twice). */
function countedKeys (call: Call): string[] {
  const keys: string[] = []
  for (const login of [call.caller.login, call.callee.login]) if (login != null) keys.push(login)
  for (const cap of [...call.caller.caps ?? [], ...call.callee.caps ?? []]) keys.push(cap.key)
  return keys
}

/** A call's direction for metrics: to another m1 node, from one, or within this node. */
function directionOf (call: Call): string {
  return call.callee.node != null ? 'outbound' : call.caller.node != null ? 'inbound' : 'local'
}

/** Where a leg's flow leads, for the call record: ip:port, or the peer id for P2P flows. */
function remoteOf (flow: { transport: string, remoteAddress: string, remotePort: number }): string {
  return flow.transport === 'P2P' ? flow.remoteAddress : `${flow.remoteAddress}:${flow.remotePort}`
}

function isSdp (msg: SipRequest | SipResponse): boolean {
  if (msg.body.length === 0) return false
  const ct = getHeader(msg, 'Content-Type')
  return ct != null && /^\s*application\/sdp\b/i.test(ct)
}

/** The Contact host:port differs from the packet's source: a NAT sits between (Kamailio nat_uac_test 2). */
function isNatted (req: SipRequest, flow: Flow): boolean {
  const v = getHeaders(req, 'Contact')[0]
  if (v == null) return false
  const m = /sip:(?:[^@>]*@)?\[?([^\]>;:]+)\]?(?::(\d+))?/i.exec(v)
  if (m == null) return true
  return m[1] !== flow.remoteAddress || Number(m[2] ?? 5060) !== flow.remotePort
}

function contactOf (local: LocalEnd): string {
  const host = local.host.includes(':') ? `[${local.host}]` : local.host
  return `<sip:${host}:${local.port};transport=${local.transport.toLowerCase()}>`
}

function copyHeaders (msg: SipRequest | SipResponse, names: Set<string>): SipHeader[] {
  const out: SipHeader[] = []
  for (const h of msg.headers) {
    if (names.has(h.name) || /^X-/i.test(h.name)) {
      if (h.name === 'Supported') {
        // reliable provisionals are not relayed: do not let the far side promise them
        const v = h.value.split(',').map(s => s.trim()).filter(t => t !== '' && t.toLowerCase() !== '100rel').join(', ')
        if (v !== '') out.push({ name: h.name, value: v })
        continue
      }
      out.push({ name: h.name, value: h.value })
    }
  }
  return out
}

/** RFC 3261 §16.7 step 6: a 6xx wins; otherwise the lowest class, preferring busy (486) within 4xx. */
function bestResponse (list: SipResponse[]): SipResponse {
  const six = list.find(r => r.status >= 600)
  if (six != null) return six
  const sorted = [...list].sort((x, y) => Math.floor(x.status / 100) - Math.floor(y.status / 100) || rank(x.status) - rank(y.status))
  return sorted[0]!
}

function rank (status: number): number {
  if (status === 486) return 0
  if (status === 408 || status === 480) return 2
  return 1
}
