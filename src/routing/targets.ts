import type { Logger } from '../core/index.js'
import { tryNormalizeLogin } from '../users/index.js'
import type { SipUri } from '../sip/message/index.js'
import { UnknownTargetError } from './errors.js'

/**
 * The local login a Request-URI names: its user part (unescaped, any case) when the host is this node.
 * undefined: the host is not ours; null: ours, but the user part is no login.
 */
export function localLoginOf (uri: SipUri, isLocalDomain: (host: string) => boolean): string | null | undefined {
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips') return undefined
  if (!isLocalDomain(uri.host)) return undefined
  if (uri.user == null) return null
  let user: string
  try { user = decodeURIComponent(uri.user) } catch { return null }
  return tryNormalizeLogin(user) ?? null
}

/** Another m1 node a call goes to: its name, its peer id (the libp2p identity) and the SIP domain it serves. */
export interface RemoteNode {
  name: string
  peerId: string
  /** the first SIP domain of its node record (its name when it lists none): Request-URI and To host */
  domain: string
}

/** The node records the routing layer reads (src/directory `Directory`). */
export interface NodeDirectory {
  resolveNode: (name: string, options?: { signal?: AbortSignal }) => Promise<{ name: string, peerId: string, domains: string[] }>
  resolveLogin: (login: string, options?: { signal?: AbortSignal }) => Promise<{ node: string, peerId: string }>
  /** the node record of the node whose signed `/m1/domain/<domain>` record claims a SIP domain */
  resolveDomain?: (domain: string, options?: { signal?: AbortSignal }) => Promise<{ name: string, peerId: string, domains: string[] }>
}

export interface RemoteTargetsComponents {
  directory: NodeDirectory
  /** this node's peer id: records pointing at it are not remote */
  selfPeerId: () => string
  logger?: Logger
}

/** SIP domains learnt from node records, so that `alice@<a node's SIP domain>` finds the node once it is known. */
const MAX_KNOWN_DOMAINS = 4096

/**
 * Which m1 node serves a host or a login, through the directory's signed node and login records. Every failure to
 * find one (no record, a name that is no node name, a lookup that fails) is UnknownTargetError (404).
 */
export class RemoteTargets {
  private readonly domains = new Map<string, string>()

  constructor (private readonly components: RemoteTargetsComponents) {}

  /**
   * The node a Request-URI host names: a node name, a SIP domain listed in a node record seen before, or a SIP
   * domain claimed by a signed domain record (`/m1/domain/<host>`). A host that is a domain name is looked up as a
   * node name and as a domain at once; the node name wins.
   */
  async byHost (host: string, options: { signal?: AbortSignal } = {}): Promise<RemoteNode> {
    const h = host.toLowerCase()
    const name = tryNormalizeLogin(h) === h ? h : undefined
    const { directory } = this.components
    const asDomain = name != null && name.includes('.') && directory.resolveDomain != null
      ? directory.resolveDomain(name, options)
      : undefined
    // settled here so that a rejection is never left unhandled while the node lookup runs
    asDomain?.catch(() => {})
    if (name != null) {
      try {
        return this.remote(await directory.resolveNode(name, options))
      } catch (err) {
        if (err instanceof UnknownTargetError) throw err
        options.signal?.throwIfAborted()
      }
    }
    const known = this.domains.get(h)
    if (known != null && known !== name) {
      try {
        const record = await directory.resolveNode(known, options)
        // the record must still list that domain
        if (record.domains.some(d => d.toLowerCase() === h)) return this.remote(record)
      } catch (err) {
        if (err instanceof UnknownTargetError) throw err
        options.signal?.throwIfAborted()
      }
    }
    if (asDomain != null) {
      try {
        return this.remote(await asDomain)
      } catch (err) {
        if (err instanceof UnknownTargetError) throw err
        options.signal?.throwIfAborted()
      }
    }
    throw new UnknownTargetError(`no m1 node serves ${host}`)
  }

  /** The home node of a login published in the directory (not this node). */
  async byLogin (login: string, options: { signal?: AbortSignal } = {}): Promise<RemoteNode> {
    let home: { node: string, peerId: string }
    try {
      home = await this.components.directory.resolveLogin(login, options)
    } catch (err) {
      options.signal?.throwIfAborted()
      throw new UnknownTargetError(`no login ${login}`, { cause: err })
    }
    const node = await this.byHost(home.node, options)
    // the login record and the node record must be signed by the same node
    if (node.peerId !== home.peerId) throw new UnknownTargetError(`login ${login} and node ${home.node} disagree`)
    return node
  }

  /**
   * Whether `peer` (the authenticated libp2p peer of a request) owns `host` (the From domain): the node record found
   * for that host is signed by that peer.
   */
  async owns (peer: string, host: string, options: { signal?: AbortSignal } = {}): Promise<RemoteNode | undefined> {
    try {
      const node = await this.byHost(host, options)
      return node.peerId === peer ? node : undefined
    } catch (err) {
      if (err instanceof UnknownTargetError) return undefined
      throw err
    }
  }

  private remote (record: { name: string, peerId: string, domains: string[] }): RemoteNode {
    if (record.peerId === this.components.selfPeerId()) throw new UnknownTargetError(`${record.name} is this node`)
    for (const d of record.domains) {
      const key = d.toLowerCase()
      if (this.domains.size >= MAX_KNOWN_DOMAINS && !this.domains.has(key)) this.domains.delete(this.domains.keys().next().value!)
      this.domains.set(key, record.name)
    }
    return { name: record.name, peerId: record.peerId, domain: (record.domains[0] ?? record.name).toLowerCase() }
  }
}
