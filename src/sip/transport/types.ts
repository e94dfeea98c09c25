import type { TransportName } from '../message/types.js'

/**
 * Where a message came from or goes to. For UDP a flow is the remote address/port pair on our socket;
 * for TCP/WS it is one connection, named by `id`, so that requests to a NATed phone reuse it (RFC 5626 spirit).
 */
export interface Flow {
  transport: TransportName
  /** 'udp:127.0.0.1:5062' for UDP; a unique connection id ('tcp:7', 'ws:3') for connection-oriented transports */
  id: string
  remoteAddress: string // IPv4 dotted or IPv6 without brackets
  remotePort: number
  localAddress: string
  localPort: number
}

/** Where to send: an existing flow (preferred), or an address to reach (connection opened or reused). */
export interface SendTarget {
  transport: TransportName
  address: string
  port: number
  /** reuse this connection when it is still open */
  flowId?: string
}

/** Called with each complete SIP message (stream transports frame by Content-Length first). Must not throw. */
export type MessageHandler = (data: Buffer, flow: Flow) => void

/** One listening transport. Constructed with `{ onMessage }` among its components. */
export interface Transport {
  readonly name: TransportName
  /** true for TCP/WS/TLS: RFC 3261 §17 timers A/E/G are not used and Timer K/I/D are zero */
  readonly reliable: boolean
  start(): Promise<void>
  stop(): Promise<void>
  /** Resolves once handed to the kernel; rejects with TransportError when the target cannot be reached. */
  send(target: SendTarget, data: Buffer): Promise<Flow>
  /** Bound address and port (port 0 in config resolves to the real port after start). */
  address(): { address: string, port: number }
}
