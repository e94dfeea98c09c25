// sip/transport: the SIP listeners (UDP, TCP, WebSocket), stream framing, flows and the egress policy.
// May import: node built-ins, ws, core/, sip/message/types.ts. Nothing above the transport layer.
// Public API: Transports (manager, `add` for transports built above this layer), UdpTransport, TcpTransport, WsTransport, StreamFramer, EgressPolicy, errors, types.
import type { Logger } from '../../core/index.js'
import type { MetricCounter, MetricGauge, Metrics } from '../../core/index.js'
import type { TransportName } from '../message/types.js'
import { ipFamily, normalizeAddress } from './address.js'
import { ALLOW_ANY, EgressPolicy } from './egress.js'
import { EgressDeniedError, TransportError } from './errors.js'
import { TcpTransport, type SendOptions, type TcpTransportInit } from './tcp.js'
import type { Flow, MessageHandler, SendTarget, Transport } from './types.js'
import { UdpTransport, type UdpTransportInit } from './udp.js'
import { WsTransport, type WsTransportInit } from './ws.js'

export * from './types.js'
export * from './errors.js'
export { StreamFramer, readContentLength, type StreamFramerComponents, type StreamFramerInit } from './framer.js'
export { EgressPolicy, ALLOW_ANY, parseCidr, parseIp, cidrContains, type Cidr } from './egress.js'
export { UdpTransport, type UdpTransportComponents, type UdpTransportInit } from './udp.js'
export { TcpTransport, type TcpTransportComponents, type TcpTransportInit, type SendOptions } from './tcp.js'
export { WsTransport, type WsTransportComponents, type WsTransportInit } from './ws.js'
export { normalizeAddress, unbracket, hostPort } from './address.js'

export interface TransportsComponents {
  /** Every received message, whatever the transport. Must not throw. */
  onMessage: MessageHandler
  /** A TCP or WebSocket flow closed (also dispatched as the `flow:closed` event). */
  onFlowClosed?: (flowId: string, flow: Flow) => void
  logger?: Logger
  metrics?: Metrics
}

export interface TransportsInit {
  /**
   * UDP listener, or false for none.
   * @default { host: '0.0.0.0', port: 5060 }
   */
  udp?: UdpTransportInit | false
  /**
   * TCP listener, or false for none.
   * @default { host: '0.0.0.0', port: 5060 }
   */
  tcp?: TcpTransportInit | false
  /**
   * WebSocket listener (RFC 7118), or false for none.
   * @default false
   */
  ws?: WsTransportInit | false
  /**
   * Destinations this node may send to, as CIDRs (IPv4 and IPv6). Refused sends fail with EgressDeniedError.
   * @default ['0.0.0.0/0', '::/0']
   */
  egressAllow?: readonly string[]
  /**
   * Largest SIP body on stream transports and largest WebSocket message; per-transport settings win.
   * @default 1048576
   */
  maxMessageSize?: number
}

/** What {@link Transports.add} hands a transport it registers: the manager's receive and flow hooks. */
export interface TransportHooks {
  /** every complete message received (counted by the manager); must not throw */
  onMessage: MessageHandler
  /** a connection-oriented flow opened */
  onFlowOpened: (flow: Flow) => void
  /** a connection-oriented flow closed (dispatched as `flow:closed`) */
  onFlowClosed: (flowId: string, flow: Flow) => void
}

/**
 * Transports whose flows name a peer, not an IP address: the egress policy (CIDRs) does not apply to them; the
 * layer that registers them decides whom they may reach.
 */
const NON_IP: ReadonlySet<TransportName> = new Set(['P2P'])

type Listener = Parameters<EventTarget['addEventListener']>[1]
type AddOptions = Parameters<EventTarget['addEventListener']>[2]
type RemoveOptions = Parameters<EventTarget['removeEventListener']>[2]

/** Events of {@link Transports}. */
export interface TransportsEvents {
  /** A connection-oriented flow closed; `detail` is the flow. */
  'flow:closed': CustomEvent<Flow>
}

/**
 * The node's SIP transports as one component: starts and stops the listeners, checks the egress policy and
 * routes each send to the transport named by its target.
 */
export class Transports extends EventTarget {
  private readonly components: TransportsComponents
  private readonly egress: EgressPolicy
  private readonly transports = new Map<TransportName, Transport>()
  private readonly started: Transport[] = []
  private readonly messages: MetricCounter | undefined
  private readonly connections: MetricGauge | undefined
  private readonly denied: MetricCounter | undefined
  private readonly hooks: TransportHooks

  /** Throws InvalidCidrError for a bad egressAllow entry. */
  constructor (components: TransportsComponents, init: TransportsInit = {}) {
    super()
    this.components = components
    this.egress = new EgressPolicy(init.egressAllow ?? ALLOW_ANY)
    const metrics = components.metrics
    this.messages = metrics?.counter('m1node_sip_transport_messages_total', 'SIP messages received and sent', ['transport', 'direction'])
    this.connections = metrics?.gauge('m1node_sip_transport_connections', 'Open TCP and WebSocket connections', ['transport'])
    this.denied = metrics?.counter('m1node_sip_transport_egress_denied_total', 'Sends refused by the egress policy', ['transport'])

    const logger = components.logger
    const counter = this.messages
    const onMessage: MessageHandler = counter == null
      ? components.onMessage
      : (data, flow) => {
          counter.inc({ transport: flow.transport, direction: 'in' })
          components.onMessage(data, flow)
        }
    const onFlowOpened = (flow: Flow): void => { this.connections?.inc({ transport: flow.transport }) }
    const onFlowClosed = (flowId: string, flow: Flow): void => { this.flowClosed(flowId, flow) }
    this.hooks = { onMessage, onFlowOpened, onFlowClosed }
    const maxBody = init.maxMessageSize

    if (init.udp !== false) {
      this.transports.set('UDP', new UdpTransport(
        { onMessage, ...(logger != null ? { logger: logger.child({ transport: 'UDP' }) } : {}) },
        init.udp ?? {}))
    }
    if (init.tcp !== false) {
      this.transports.set('TCP', new TcpTransport(
        { onMessage, onFlowOpened, onFlowClosed, ...(logger != null ? { logger: logger.child({ transport: 'TCP' }) } : {}) },
        { ...(maxBody != null ? { maxBodyBytes: maxBody } : {}), ...(init.tcp ?? {}) }))
    }
    if (init.ws != null && init.ws !== false) {
      this.transports.set('WS', new WsTransport(
        { onMessage, onFlowOpened, onFlowClosed, ...(logger != null ? { logger: logger.child({ transport: 'WS' }) } : {}) },
        { ...(maxBody != null ? { maxMessageSize: maxBody + 65536 } : {}), ...init.ws }))
    }
  }

  /**
   * Registers a transport built outside this layer (SIP over libp2p is built in routing/): `create` gets the
   * manager's hooks and returns the transport, which starts and stops with the others (at once when the manager
   * already runs: call `start()` again). Throws TransportError when a transport of that name exists.
   */
  add (create: (hooks: TransportHooks) => Transport): Transport {
    const transport = create(this.hooks)
    if (this.transports.has(transport.name)) throw new TransportError(`transport ${transport.name} is already registered`)
    this.transports.set(transport.name, transport)
    return transport
  }

  /** Starts every configured listener; if one fails, those already started are stopped and the error thrown. */
  async start (): Promise<void> {
    for (const t of this.transports.values()) {
      if (this.started.includes(t)) continue
      try {
        await t.start()
      } catch (err) {
        await this.stop()
        throw err
      }
      this.started.push(t)
    }
  }

  /** Stops every listener, closing sockets and connections. */
  async stop (): Promise<void> {
    const started = this.started.splice(0).reverse()
    for (const t of started) {
      try {
        await t.stop()
      } catch (err) {
        this.components.logger?.error({ err, transport: t.name }, 'transport stop failed')
      }
    }
  }

  /**
   * Sends `data` over the transport named by `target`: the egress policy is checked first, then the flow named by
   * `target.flowId` is reused when still open. `target.address` must be an IP literal (names are resolved above
   * this layer, RFC 3263). Rejects with EgressDeniedError (nothing sent) or TransportError.
   */
  async send (target: SendTarget, data: Buffer, options: SendOptions = {}): Promise<Flow> {
    if (NON_IP.has(target.transport)) return await this.sendNonIp(target, data)
    const address = normalizeAddress(target.address)
    if (ipFamily(address) === 0) throw new TransportError(`destination must be an IP address: ${target.address}`)
    if (!this.egress.allows(address)) {
      this.denied?.inc({ transport: target.transport })
      this.components.logger?.warn({ peer: address, transport: target.transport }, 'egress denied')
      throw new EgressDeniedError(address)
    }
    const transport = this.transports.get(target.transport)
    if (transport == null || !this.started.includes(transport)) {
      throw new TransportError(`transport ${target.transport} is not enabled`)
    }
    const t = address === target.address ? target : { ...target, address }
    const flow = transport instanceof TcpTransport
      ? await transport.send(t, data, options)
      : await transport.send(t, data)
    this.messages?.inc({ transport: flow.transport, direction: 'out' })
    return flow
  }

  /** A transport addressed by peer id: no IP checks, the address is passed as it is (peer ids are case-sensitive). */
  private async sendNonIp (target: SendTarget, data: Buffer): Promise<Flow> {
    const transport = this.transports.get(target.transport)
    if (transport == null || !this.started.includes(transport)) {
      throw new TransportError(`transport ${target.transport} is not enabled`)
    }
    const flow = await transport.send(target, data)
    this.messages?.inc({ transport: flow.transport, direction: 'out' })
    return flow
  }

  /** True for transports where RFC 3261 §17 retransmission timers are not used (everything but UDP). */
  isReliable (name: TransportName): boolean {
    return this.transports.get(name)?.reliable ?? name !== 'UDP'
  }

  /** True when a listener of this transport is configured. */
  has (name: TransportName): boolean {
    return this.transports.has(name)
  }

  /** The listener of one transport, if configured. */
  get (name: TransportName): Transport | undefined {
    return this.transports.get(name)
  }

  /** Bound addresses of the started listeners (real ports when configured with port 0). */
  addresses (): Array<{ transport: TransportName, address: string, port: number }> {
    return this.started.map(t => ({ transport: t.name, ...t.address() }))
  }

  /** Whether the egress policy lets this node send to `address`. */
  allows (address: string): boolean {
    return this.egress.allows(normalizeAddress(address))
  }

  override addEventListener<K extends keyof TransportsEvents> (type: K, listener: ((evt: TransportsEvents[K]) => void) | null, options?: AddOptions): void
  override addEventListener (type: string, listener: Listener, options?: AddOptions): void
  override addEventListener (type: string, listener: unknown, options?: AddOptions): void {
    super.addEventListener(type, listener as Listener, options)
  }

  override removeEventListener<K extends keyof TransportsEvents> (type: K, listener: ((evt: TransportsEvents[K]) => void) | null, options?: RemoveOptions): void
  override removeEventListener (type: string, listener: Listener, options?: RemoveOptions): void
  override removeEventListener (type: string, listener: unknown, options?: RemoveOptions): void {
    super.removeEventListener(type, listener as Listener, options)
  }

  private flowClosed (flowId: string, flow: Flow): void {
    this.connections?.dec({ transport: flow.transport })
    try {
      this.components.onFlowClosed?.(flowId, flow)
    } catch (err) {
      this.components.logger?.error({ err }, 'onFlowClosed threw')
    }
    try {
      this.dispatchEvent(new CustomEvent<Flow>('flow:closed', { detail: flow }))
    } catch (err) {
      this.components.logger?.error({ err }, 'flow:closed listener threw')
    }
  }
}
