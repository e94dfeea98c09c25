import type { Logger } from '../core/index.js'
import { createResponse, getHeaders, newTag, validateRequest, type NameAddr, type SanityOptions, type SipRequest, type SipResponse } from '../sip/message/index.js'
import type { ServerTransaction, TransactionUser } from '../sip/transaction/index.js'
import type { Flow } from '../sip/transport/index.js'
import type { Binding } from '../registrar/index.js'
import type { Caller, Callee } from './b2bua.js'
import { ALLOW, errorResponse } from './sip-errors.js'
import { isIP } from 'node:net'
import { tryNormalizeLogin } from '../users/index.js'
import { unbracket } from '../sip/transport/index.js'
import { RelayDeniedError, UnavailableError, UnknownTargetError } from './errors.js'
import { localLoginOf, type RemoteNode, type RemoteTargets } from './targets.js'
import { dialEscape, isNumber, type PbxRouting } from './pbx.js'

/** Option tags the node handles (RFC 3327 Path, RFC 5626 outbound, RFC 4028 timer); a Require naming another gets 420. */
const SANITY: SanityOptions = { supported: ['path', 'outbound', 'timer'] }

export interface RouterComponents {
  registrar: { register: (req: SipRequest, flow: Flow) => Promise<SipResponse> }
  /** proxy authentication (407) of a caller; returns the login or throws the auth layer's typed errors */
  authenticate: (req: SipRequest, source: string) => Promise<string>
  users: { get: (login: string) => Promise<{ login: string, displayName?: string } | undefined> }
  location: { lookup: (aor: string) => Binding[] }
  calls: {
    invite: (req: SipRequest, tx: ServerTransaction, caller: Caller, callee: Callee) => Promise<void>
    cancel: (inviteTx: ServerTransaction) => boolean
    inDialog: (req: SipRequest, tx: ServerTransaction) => boolean
    ack: (req: SipRequest, flow: Flow) => void
  }
  /** whether a host names this node */
  isLocalDomain: (host: string) => boolean
  /** finds the INVITE server transaction a CANCEL refers to */
  matchInviteForCancel: (cancel: SipRequest) => ServerTransaction | undefined
  /** store-and-forward messages (src/messaging); absent: MESSAGE gets 501 */
  messages?: { accept: (req: SipRequest, flow: Flow) => Promise<SipResponse> }
  /** other m1 nodes through the directory; absent when p2p is off (remote targets get 404) */
  remote?: Pick<RemoteTargets, 'byHost' | 'byLogin' | 'owns' | 'byDid'>
  /** trunks, extensions and DIDs (docs/pbx.md); absent: plain logins only */
  pbx?: Pick<PbxRouting, 'staticCaller' | 'authenticatedCaller' | 'isProvider' | 'resolve' | 'callee'>
  logger?: Logger
}

export interface RouterInit {
  /** value of the Server header in our answers */
  server: string
  /** our SIP domain */
  domain: string
  /** our m1 node name: the From host of calls we send to other nodes (it resolves to our node record) @default domain */
  nodeName?: string
  /** callers from other domains may call local users without an account (a public SIP domain) @default true */
  allowAnonymous: boolean
  /** authenticated local users may call plain SIP addresses (IP literal hosts) that are no m1 nodes @default false */
  sipEgress?: boolean
}

/**
 * request_route: sanity -> in-dialog -> auth -> dispatch by method (Kamailio order). Every request gets exactly
 * one final answer through its server transaction; nothing here throws into the SIP stack.
 */
export class Router implements TransactionUser {
  constructor (private readonly components: RouterComponents, private readonly init: RouterInit) {}

  onRequest (req: SipRequest, tx: ServerTransaction): void {
    this.route(req, tx).catch((err: unknown) => {
      this.respond(tx, errorResponse(req, err, newTag(), this.components.logger))
    })
  }

  onAck (req: SipRequest, flow: Flow): void {
    this.components.calls.ack(req, flow)
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

    if (req.to.params.tag != null) {
      // RFC 3261 §12.2.2: in-dialog requests belong to a call's leg, or to nothing
      if (this.components.calls.inDialog(req, tx)) return
      return this.respond(tx, createResponse(req, 481, 'Call/Transaction Does Not Exist'))
    }
    if (tx.flow.transport === 'P2P' && req.method !== 'INVITE' && req.method !== 'OPTIONS') {
      // other nodes only place calls here: they register nobody
      return this.respond(tx, createResponse(req, 403, 'Forbidden', { toTag: newTag() }))
    }
    switch (req.method) {
      case 'REGISTER':
        return this.respond(tx, await this.components.registrar.register(req, tx.flow))
      case 'OPTIONS':
        return this.respond(tx, this.options(req))
      case 'INVITE':
        return await this.invite(req, tx)
      case 'MESSAGE':
        // RFC 3428: stored, then 202; other nodes hand messages over /m1/msg/1.0.0, not here (403 above)
        if (this.components.messages != null) return this.respond(tx, await this.components.messages.accept(req, tx.flow))
        return this.respond(tx, createResponse(req, 501, 'Not Implemented', { toTag: newTag(), headers: [{ name: 'Allow', value: ALLOW }] }))
      default:
        return this.respond(tx, createResponse(req, 501, 'Not Implemented', { toTag: newTag(), headers: [{ name: 'Allow', value: ALLOW }] }))
    }
  }

  /**
   * A new call. Who may call whom: a request claiming one of our users as caller (From in our domain) must
   * authenticate (407); callers from elsewhere reach local users only when the node allows anonymous calls;
   * nobody unauthenticated reaches anything but a local user (no open relay).
   */
  private async invite (req: SipRequest, tx: ServerTransaction): Promise<void> {
    if (tx.flow.transport === 'P2P') return await this.inviteFromNode(req, tx)
    const { isLocalDomain, pbx } = this.components
    let targetLogin = localLoginOf(req.uri, isLocalDomain)
    const fromLocal = isLocalDomain(req.from.uri.host)
    const uriUser = req.uri.user != null && targetLogin !== undefined ? safeDecode(req.uri.user) : undefined
    // PBX dial plan (docs/pbx.md): `bob*othernode` dials bob at another node
    const escape = uriUser != null && pbx != null ? dialEscape(uriUser) : undefined
    // a DID, `acme.201` or `sales.acme` that is no login of its own
    const notLogin = uriUser != null && pbx != null && escape == null && (targetLogin == null || await this.components.users.get(targetLogin) == null)
    let pbxTarget = notLogin ? await pbx!.resolve(uriUser!) : undefined
    if (notLogin && pbxTarget == null && pbx!.isProvider(tx.flow.remoteAddress) && req.to.uri.user != null) {
      // providers that send to the registered Contact user put the number in To
      const toUser = safeDecode(req.to.uri.user)
      if (toUser != null) pbxTarget = await pbx!.resolve(toUser)
    }
    let caller: Caller | undefined = pbx?.staticCaller(req, tx.flow)
    if (caller != null) {
      // a static trunk: authenticated by its source address
    } else if ((pbxTarget?.did != null || (pbxTarget == null && uriUser != null && isNumber(uriUser))) && pbx!.isProvider(tx.flow.remoteAddress) &&
      getHeaders(req, 'Proxy-Authorization').length === 0) {
      // a DID provider: no account, accepted by address (or as the server of our upstream registration)
      caller = { identity: { ...req.from, params: {} } }
    } else if (fromLocal || !this.init.allowAnonymous || targetLogin === undefined || escape != null ||
      getHeaders(req, 'Proxy-Authorization').length > 0) {
      const principal = await this.components.authenticate(req, tx.flow.remoteAddress)
      const identity = async (login: string): Promise<NameAddr> => identityOf(login, (await this.components.users.get(login))?.displayName, this.init.domain)
      caller = pbx != null ? await pbx.authenticatedCaller(req, principal, identity) : { login: principal, identity: await identity(principal) }
    } else if (pbxTarget?.did != null) {
      // RFC 3261 §26.3.2.2 spirit: a number reaches us only from its providers, not from anyone on the Internet
      throw new RelayDeniedError(`calls to ${pbxTarget.did} are accepted from its providers only`)
    } else {
      caller = { identity: { ...req.from, params: {} } }
    }
    if (escape != null) {
      if (caller.login == null) throw new RelayDeniedError('relaying denied')
      const remote = this.components.remote
      if (isLocalDomain(escape.node)) {
        targetLogin = escape.login
      } else {
        if (remote == null) throw new UnknownTargetError(`no route to ${escape.node}`)
        return await this.callRemote(req, tx, caller, escape.login, await remote.byHost(escape.node))
      }
    }
    if (pbxTarget != null) return await this.callPbx(req, tx, caller, pbxTarget)
    if (targetLogin === null && uriUser != null && isNumber(uriUser) && pbx != null) {
      // a number we do not hold: its owner node, through the signed DID records of the directory
      const did = uriUser.startsWith('+') ? uriUser : `+${uriUser}`
      const remote = this.components.remote
      if (caller.login == null || remote?.byDid == null) throw new UnknownTargetError(`no DID ${did}`)
      return await this.callRemote(req, tx, caller, did, await remote.byDid(did))
    }
    if (targetLogin === undefined) {
      // not ours: only an authenticated local caller reaches another node (no open relay)
      if (caller.login == null) throw new RelayDeniedError('relaying denied')
      if (this.init.sipEgress === true && isIP(unbracket(req.uri.host)) !== 0) return await this.callPlainSip(req, tx, caller)
      const remote = this.components.remote
      if (remote == null || (req.uri.scheme !== 'sip' && req.uri.scheme !== 'sips')) throw new UnknownTargetError(`no route to ${req.uri.host}`)
      const login = remoteLoginOf(req.uri.user)
      if (login == null) throw new UnknownTargetError('not a login')
      return await this.callRemote(req, tx, caller, login, await remote.byHost(req.uri.host))
    }
    if (targetLogin === null) throw new UnknownTargetError('not a login')
    const user = await this.components.users.get(targetLogin)
    if (user == null) {
      // a login of ours that is no local user may be published by another node (bare login)
      if (caller.login != null && this.components.remote != null) {
        return await this.callRemote(req, tx, caller, targetLogin, await this.components.remote.byLogin(targetLogin))
      }
      throw new UnknownTargetError(`no user ${targetLogin}`)
    }
    const bindings = this.components.location.lookup(user.login)
    const callee = pbx != null ? await pbx.callee(user.login, bindings) : { login: user.login, bindings }
    if (callee.bindings.length === 0) throw new UnavailableError(`${user.login} has no registered device`)
    await this.components.calls.invite(req, tx, caller, callee)
  }

  /** A call to a DID, an extension (`acme.201`) or an alias of a local login: to its PBX trunk (docs/pbx.md). */
  private async callPbx (req: SipRequest, tx: ServerTransaction, caller: Caller, target: { login: string, ext?: string, did?: string }): Promise<void> {
    const user = await this.components.users.get(target.login)
    if (user == null) throw new UnknownTargetError(`no user ${target.login}`)
    const bindings = this.components.location.lookup(user.login)
    const toUser = target.did ?? (target.ext != null ? `${user.login}.${target.ext}` : undefined)
    const callee = await this.components.pbx!.callee(user.login, bindings, { ...(target.ext != null ? { ext: target.ext } : {}), ...(toUser != null ? { toUser } : {}) })
    if (callee.bindings.length === 0) throw new UnavailableError(`${user.login} has no registered device`)
    this.components.logger?.info({ callId: req.callId, login: user.login, ext: target.ext, did: target.did }, 'call to a PBX')
    await this.components.calls.invite(req, tx, caller, callee)
  }

  /**
   * An authenticated local caller calls `login` at another node: one B-leg over the P2P transport to that node's
   * peer, Request-URI and To `login@<its domain>`, From `caller@<our node name>` (what the far node can verify).
   */
  private async callRemote (req: SipRequest, tx: ServerTransaction, caller: Caller, login: string, node: RemoteNode): Promise<void> {
    const host = this.init.nodeName ?? this.init.domain
    const identity: NameAddr = { ...caller.identity, uri: { ...caller.identity.uri, host }, rawUri: `sip:${caller.login!}@${host}` }
    const now = Date.now()
    const binding: Binding = {
      key: `p2p:${node.peerId}`,
      contact: `sip:${login}@${node.domain}`,
      contactParams: {},
      q: 1000,
      expiresAt: now + 3600_000,
      callId: '',
      cseq: 0,
      flow: { transport: 'P2P', id: `p2p:${node.peerId}`, remoteAddress: node.peerId, remotePort: 0, localAddress: '', localPort: 0 },
      path: [],
      nat: false,
      updatedAt: now
    }
    this.components.logger?.info({ callId: req.callId, from: caller.login, to: `${login}@${node.domain}`, node: node.name, peer: node.peerId }, 'call to another node')
    await this.components.calls.invite(req, tx, { ...caller, identity }, { login, bindings: [binding], domain: node.domain, node: node.name })
  }

  /**
   * An authenticated local caller calls a plain SIP address that is no m1 node (`routing.sip_egress`): one B-leg
   * by ordinary SIP to the host and port of the Request-URI, an IP literal (names would need RFC 3263 lookups,
   * which the node does not make). The egress policy still decides whether the packet may leave.
   */
  private async callPlainSip (req: SipRequest, tx: ServerTransaction, caller: Caller): Promise<void> {
    const uri = req.uri
    const transport = (uri.params.transport ?? 'udp').toUpperCase()
    if (transport !== 'UDP' && transport !== 'TCP') throw new UnknownTargetError(`transport ${transport} is not used for SIP egress`)
    const address = unbracket(uri.host)
    const port = uri.port ?? 5060
    const now = Date.now()
    const hostPort = `${uri.host}${uri.port != null ? `:${uri.port}` : ''}`
    const binding: Binding = {
      key: `sip:${hostPort}`,
      contact: req.rawUri,
      contactParams: {},
      q: 1000,
      expiresAt: now + 3600_000,
      callId: '',
      cseq: 0,
      flow: { transport, id: `${transport.toLowerCase()}:${hostPort}`, remoteAddress: address, remotePort: port, localAddress: '', localPort: 0 },
      path: [],
      nat: false,
      updatedAt: now
    }
    this.components.logger?.info({ callId: req.callId, from: caller.login, to: req.rawUri }, 'call to a plain SIP address')
    await this.components.calls.invite(req, tx, caller, { login: uri.user ?? '', bindings: [binding], domain: hostPort })
  }

  /**
   * An INVITE from another m1 node. The peer id comes from the secured libp2p connection; the From domain must be
   * one that peer's signed node record owns (else 403 and a warning). Such callers reach local users only, as
   * anonymous callers do, and their identity is asserted to the callee.
   */
  private async inviteFromNode (req: SipRequest, tx: ServerTransaction): Promise<void> {
    const log = this.components.logger
    const peer = tx.flow.remoteAddress
    const fromHost = req.from.uri.host.toLowerCase()
    const fromUser = req.from.uri.user != null ? safeDecode(req.from.uri.user) : undefined
    const node = fromUser != null && fromUser !== '' && !this.components.isLocalDomain(fromHost)
      ? await this.components.remote?.owns(peer, fromHost)
      : undefined
    if (node == null) {
      log?.warn({ peer, from: req.from.rawUri, callId: req.callId }, 'call from a node that does not own its From domain')
      throw new RelayDeniedError(`peer ${peer} does not own ${fromHost}`)
    }
    const targetLogin = localLoginOf(req.uri, this.components.isLocalDomain)
    // RFC 3261 §16: no proxying onwards: another node reaches only our own users through us
    if (targetLogin === undefined) throw new RelayDeniedError(`${req.uri.host} is not served here`)
    const user = targetLogin != null ? await this.components.users.get(targetLogin) : undefined
    // a DID or extension of ours that the other node found in the directory
    const uriUser = user == null && req.uri.user != null ? safeDecode(req.uri.user) : undefined
    const pbxTarget = uriUser != null ? await this.components.pbx?.resolve(uriUser) : undefined
    if (user == null && pbxTarget == null) throw new UnknownTargetError(targetLogin === null ? 'not a login' : `no user ${targetLogin ?? ''}`)
    const rawUri = `sip:${req.from.uri.user!}@${fromHost}`
    const identity: NameAddr = {
      ...(req.from.displayName != null ? { displayName: req.from.displayName } : {}),
      uri: { scheme: 'sip', user: req.from.uri.user, host: fromHost, params: {}, headers: {} },
      rawUri,
      params: {}
    }
    if (pbxTarget != null) return await this.callPbx(req, tx, { identity, node: node.name }, pbxTarget)
    const bindings = this.components.location.lookup(user!.login)
    const callee = this.components.pbx != null ? await this.components.pbx.callee(user!.login, bindings) : { login: user!.login, bindings }
    if (callee.bindings.length === 0) throw new UnavailableError(`${user!.login} has no registered device`)
    await this.components.calls.invite(req, tx, { identity, node: node.name }, callee)
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
        { name: 'Supported', value: 'path, outbound, timer' }
      ]
    })
  }

  /** RFC 3261 §9.2: CANCEL matching no INVITE gets 481; a matching one gets 200 and the INVITE 487. */
  private cancel (req: SipRequest, tx: ServerTransaction): void {
    const invite = this.components.matchInviteForCancel(req)
    if (invite == null) return this.respond(tx, createResponse(req, 481, 'Call/Transaction Does Not Exist'))
    this.respond(tx, createResponse(req, 200, 'OK'))
    if (this.components.calls.cancel(invite)) return
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

/** The login a remote Request-URI user part names, or undefined. */
function remoteLoginOf (user: string | undefined): string | undefined {
  if (user == null) return undefined
  const decoded = safeDecode(user)
  return decoded != null ? tryNormalizeLogin(decoded) : undefined
}

function safeDecode (s: string): string | undefined {
  try { return decodeURIComponent(s) } catch { return undefined }
}

function identityOf (login: string, displayName: string | undefined, domain: string): NameAddr {
  const rawUri = `sip:${login}@${domain}`
  return {
    ...(displayName != null ? { displayName } : {}),
    uri: { scheme: 'sip', user: login, host: domain, params: {}, headers: {} },
    rawUri,
    params: {}
  }
}
