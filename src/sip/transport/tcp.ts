import { connect as netConnect, createServer, type Server, type Socket } from 'node:net'
import type { Logger } from '../../core/index.js'
import type { TransportName } from '../message/types.js'
import { hostPort, ipFamily, normalizeAddress, unbracket } from './address.js'
import { TransportError } from './errors.js'
import { StreamFramer } from './framer.js'
import type { Flow, MessageHandler, SendTarget, Transport } from './types.js'

export interface TcpTransportComponents {
  /** Each complete message, framed by Content-Length. */
  onMessage: MessageHandler
  /** A connection was accepted or opened. */
  onFlowOpened?: (flow: Flow) => void
  /** A connection is gone: bindings and transactions that rely on it can be dropped (RFC 5626 §5.3 spirit). */
  onFlowClosed?: (flowId: string, flow: Flow) => void
  logger?: Logger
}

export interface TcpTransportInit {
  /** @default '0.0.0.0' */
  host?: string
  /** @default 5060 */
  port?: number
  /**
   * A connection with no traffic either way for this long is closed. Ten minutes: longer than the usual
   * re-registration and keep-alive intervals (RFC 5626 suggests CRLF pings every 95–120 s), short enough to
   * shed connections of phones that vanished without a FIN.
   * @default 600000
   */
  idleTimeoutMs?: number
  /** @default 5000 */
  connectTimeoutMs?: number
  /**
   * Accepted plus opened connections; beyond it new ones are refused.
   * @default 10000
   */
  maxConnections?: number
  /** @default 65536 */
  maxHeaderBytes?: number
  /** @default 1048576 */
  maxBodyBytes?: number
  /**
   * Bytes queued for a peer that does not read; past it the connection is closed rather than grow without bound.
   * @default 4194304
   */
  maxWriteBufferBytes?: number
}

/** Options of a send that may have to open a connection. */
export interface SendOptions {
  signal?: AbortSignal
}

const PONG = Buffer.from('\r\n')

interface Connection {
  readonly flow: Flow
  readonly socket: Socket
  readonly framer: StreamFramer
  readonly key: string
}

/**
 * SIP over TCP (RFC 3261 §18): one framer per connection, flows named `tcp:<n>`. Sends reuse the flow named by
 * the target, else any open connection to the same address and port (RFC 5923 spirit), else open one.
 */
export class TcpTransport implements Transport {
  readonly name: TransportName = 'TCP'
  readonly reliable = true

  private readonly components: TcpTransportComponents
  private readonly host: string
  private readonly port: number
  private readonly idleTimeoutMs: number
  private readonly connectTimeoutMs: number
  private readonly maxConnections: number
  private readonly maxHeaderBytes: number
  private readonly maxBodyBytes: number
  private readonly maxWriteBufferBytes: number

  private server: Server | undefined
  private readonly connections = new Map<string, Connection>()
  private readonly byRemote = new Map<string, Connection>()
  private readonly connecting = new Map<string, Promise<Connection>>()
  private readonly dialing = new Set<Socket>()
  private seq = 0
  private localAddress = ''
  private localPort = 0
  private running = false

  constructor (components: TcpTransportComponents, init: TcpTransportInit = {}) {
    this.components = components
    this.host = unbracket(init.host ?? '0.0.0.0')
    this.port = init.port ?? 5060
    this.idleTimeoutMs = init.idleTimeoutMs ?? 600_000
    this.connectTimeoutMs = init.connectTimeoutMs ?? 5000
    this.maxConnections = init.maxConnections ?? 10_000
    this.maxHeaderBytes = init.maxHeaderBytes ?? 65536
    this.maxBodyBytes = init.maxBodyBytes ?? 1048576
    this.maxWriteBufferBytes = init.maxWriteBufferBytes ?? 4 * 1024 * 1024
  }

  /** Open connections, accepted and opened. */
  get connectionCount (): number { return this.connections.size }

  async start (): Promise<void> {
    if (this.server != null) return
    const server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 })
    server.on('connection', (socket) => { this.accept(socket) })
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new TransportError(`TCP listen ${hostPort(this.host, this.port)} failed: ${err.message}`, { cause: err }))
      }
      server.once('error', onError)
      server.listen({ host: this.host, port: this.port, exclusive: true }, () => {
        server.off('error', onError)
        resolve()
      })
    })
    server.on('error', (err) => { this.components.logger?.error({ err }, 'TCP server error') })
    this.server = server
    this.running = true
    const bound = server.address()
    if (bound != null && typeof bound === 'object') {
      this.localAddress = normalizeAddress(bound.address)
      this.localPort = bound.port
    }
    this.components.logger?.info({ address: this.localAddress, port: this.localPort }, 'TCP listening')
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) return
    this.server = undefined
    this.running = false
    const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    for (const socket of this.dialing) socket.destroy()
    for (const conn of [...this.connections.values()]) conn.socket.destroy()
    await closed
  }

  address (): { address: string, port: number } {
    return { address: this.localAddress, port: this.localPort }
  }

  /** The open flow with this id, if any. */
  flow (flowId: string): Flow | undefined {
    return this.connections.get(flowId)?.flow
  }

  /** Closes one connection (e.g. a peer that keeps sending garbage). */
  close (flowId: string): void {
    this.connections.get(flowId)?.socket.destroy()
  }

  async send (target: SendTarget, data: Buffer, options: SendOptions = {}): Promise<Flow> {
    if (!this.running) throw new TransportError('TCP transport is not started')
    let conn = target.flowId != null ? this.connections.get(target.flowId) : undefined
    if (conn == null) {
      const address = normalizeAddress(target.address)
      conn = this.byRemote.get(hostPort(address, target.port)) ?? await this.dial(address, target.port, options.signal)
    }
    return await this.write(conn, data)
  }

  private async write (conn: Connection, data: Buffer): Promise<Flow> {
    const socket = conn.socket
    if (socket.destroyed || !socket.writable) throw new TransportError(`connection ${conn.flow.id} is closed`)
    if (socket.writableLength > this.maxWriteBufferBytes) {
      this.components.logger?.warn({ peer: hostPort(conn.flow.remoteAddress, conn.flow.remotePort) }, 'peer does not read; closing')
      socket.destroy()
      throw new TransportError(`connection ${conn.flow.id} is congested`)
    }
    return await new Promise<Flow>((resolve, reject) => {
      socket.write(data, (err) => {
        if (err != null) reject(new TransportError(`write on ${conn.flow.id} failed: ${err.message}`, { cause: err }))
        else resolve(conn.flow)
      })
    })
  }

  private async dial (address: string, port: number, signal?: AbortSignal): Promise<Connection> {
    if (ipFamily(address) === 0) throw new TransportError(`TCP destination must be an IP address: ${address}`)
    if (!(port > 0 && port < 65536)) throw new TransportError(`bad TCP port ${port}`)
    signal?.throwIfAborted()
    const key = hostPort(address, port)
    let pending = this.connecting.get(key)
    if (pending == null) {
      if (this.connections.size + this.dialing.size >= this.maxConnections) {
        throw new TransportError('too many TCP connections')
      }
      pending = this.open(address, port)
      this.connecting.set(key, pending)
      const forget = (): void => { this.connecting.delete(key) }
      pending.then(forget, forget)
    }
    if (signal == null) return await pending
    // the connection attempt is shared, so an abort only stops this caller's wait
    return await new Promise<Connection>((resolve, reject) => {
      const onAbort = (): void => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
      ;(pending as Promise<Connection>).then(
        (c) => { signal.removeEventListener('abort', onAbort); resolve(c) },
        (err) => { signal.removeEventListener('abort', onAbort); reject(err) }
      )
    })
  }

  private async open (address: string, port: number): Promise<Connection> {
    return await new Promise<Connection>((resolve, reject) => {
      const socket = netConnect({ host: address, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 })
      this.dialing.add(socket)
      const fail = (err: Error): void => {
        clearTimeout(timer)
        this.dialing.delete(socket)
        socket.destroy()
        reject(err instanceof TransportError ? err : new TransportError(`TCP connect to ${hostPort(address, port)} failed: ${err.message}`, { cause: err }))
      }
      const timer = setTimeout(() => { fail(new TransportError(`TCP connect to ${hostPort(address, port)} timed out`)) }, this.connectTimeoutMs)
      socket.on('error', fail)
      socket.once('close', () => { fail(new TransportError(`TCP connect to ${hostPort(address, port)} aborted`)) })
      socket.once('connect', () => {
        clearTimeout(timer)
        this.dialing.delete(socket)
        socket.off('error', fail)
        socket.removeAllListeners('close')
        if (!this.running) {
          socket.destroy()
          reject(new TransportError('TCP transport stopped'))
          return
        }
        const conn = this.adopt(socket)
        if (conn == null) reject(new TransportError(`TCP connect to ${hostPort(address, port)} failed`))
        else resolve(conn)
      })
    })
  }

  private accept (socket: Socket): void {
    if (this.connections.size + this.dialing.size >= this.maxConnections) {
      this.components.logger?.warn({ peer: hostPort(normalizeAddress(socket.remoteAddress), socket.remotePort ?? 0) }, 'too many TCP connections; refusing')
      socket.on('error', () => {})
      socket.destroy()
      return
    }
    this.adopt(socket)
  }

  private adopt (socket: Socket): Connection | undefined {
    const remoteAddress = normalizeAddress(socket.remoteAddress)
    const remotePort = socket.remotePort
    if (remoteAddress === '' || remotePort == null) {
      // already gone before we looked at it
      socket.on('error', () => {})
      socket.destroy()
      return undefined
    }
    const flow: Flow = {
      transport: 'TCP',
      id: `tcp:${++this.seq}`,
      remoteAddress,
      remotePort,
      localAddress: normalizeAddress(socket.localAddress),
      localPort: socket.localPort ?? this.localPort
    }
    const logger = this.components.logger
    const peer = hostPort(remoteAddress, remotePort)
    const framer = new StreamFramer({
      onMessage: (message) => {
        try {
          this.components.onMessage(message, flow)
        } catch (err) {
          logger?.error({ err }, 'message handler threw')
        }
      },
      // RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong
      onPing: () => { if (socket.writable) socket.write(PONG) },
      onError: (reason) => {
        logger?.warn({ peer, flow: flow.id, reason }, 'unframeable SIP stream; closing')
        socket.destroy()
      }
    }, { maxHeaderBytes: this.maxHeaderBytes, maxBodyBytes: this.maxBodyBytes })
    const conn: Connection = { flow, socket, framer, key: peer }
    this.connections.set(flow.id, conn)
    this.byRemote.set(peer, conn)

    socket.setNoDelay(true)
    // reset by traffic in either direction
    socket.setTimeout(this.idleTimeoutMs)
    socket.on('timeout', () => {
      logger?.debug({ peer, flow: flow.id }, 'idle TCP connection closed')
      socket.destroy()
    })
    socket.on('data', (chunk: Buffer) => {
      try {
        framer.push(chunk)
      } catch (err) {
        logger?.error({ err, peer }, 'framing failed')
        socket.destroy()
      }
    })
    socket.on('error', (err) => { logger?.debug({ err, peer, flow: flow.id }, 'TCP socket error') })
    socket.on('close', () => { this.closed(conn) })
    logger?.debug({ peer, flow: flow.id }, 'TCP connection open')
    try { this.components.onFlowOpened?.(flow) } catch (err) { logger?.error({ err }, 'onFlowOpened threw') }
    return conn
  }

  private closed (conn: Connection): void {
    conn.framer.destroy()
    if (this.connections.get(conn.flow.id) !== conn) return
    this.connections.delete(conn.flow.id)
    if (this.byRemote.get(conn.key) === conn) this.byRemote.delete(conn.key)
    this.components.logger?.debug({ flow: conn.flow.id }, 'TCP connection closed')
    try {
      this.components.onFlowClosed?.(conn.flow.id, conn.flow)
    } catch (err) {
      this.components.logger?.error({ err }, 'onFlowClosed threw')
    }
  }
}
