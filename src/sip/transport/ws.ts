import { isUtf8 } from 'node:buffer'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import type { Logger } from '../../core/index.js'
import type { TransportName } from '../message/types.js'
import { hostPort, normalizeAddress, unbracket } from './address.js'
import { TransportError } from './errors.js'
import type { Flow, MessageHandler, SendTarget, Transport } from './types.js'

export interface WsTransportComponents {
  /** Each WebSocket message that may be a SIP message. */
  onMessage: MessageHandler
  onFlowOpened?: (flow: Flow) => void
  /** A WebSocket closed: bindings that rely on it can be dropped (RFC 7118 §5, RFC 5626). */
  onFlowClosed?: (flowId: string, flow: Flow) => void
  logger?: Logger
}

export interface WsTransportInit {
  /** @default '0.0.0.0' */
  host?: string
  /** @default 5066 */
  port?: number
  /**
   * Serve WebSocket upgrades on this existing HTTP server instead of listening on host/port. The server is not
   * closed by stop().
   */
  server?: Server
  /**
   * Only upgrade requests for this path; any path when unset.
   * @default undefined
   */
  path?: string
  /**
   * A WebSocket ping goes out this often; a connection that did not answer the previous one is closed.
   * @default 30000
   */
  pingIntervalMs?: number
  /**
   * Largest WebSocket message (one SIP message).
   * @default 1114112
   */
  maxMessageSize?: number
  /** @default 10000 */
  maxConnections?: number
  /**
   * Bytes queued for a peer that does not read; past it the connection is closed.
   * @default 4194304
   */
  maxWriteBufferBytes?: number
}

interface Connection {
  readonly flow: Flow
  readonly ws: WebSocket
  readonly key: string
  alive: boolean
}

const CR = 0x0d
const LF = 0x0a
const PONG = Buffer.from('\r\n')

/**
 * SIP over WebSocket (RFC 7118): the `sip` subprotocol is required, each WebSocket message carries one SIP
 * message, flows are named `ws:<n>`. A server never dials a WebSocket client, so sends go over open flows only.
 */
export class WsTransport implements Transport {
  readonly name: TransportName = 'WS'
  readonly reliable = true

  private readonly components: WsTransportComponents
  private readonly host: string
  private readonly port: number
  private readonly external: Server | undefined
  private readonly path: string | undefined
  private readonly pingIntervalMs: number
  private readonly maxMessageSize: number
  private readonly maxConnections: number
  private readonly maxWriteBufferBytes: number

  private server: Server | undefined
  private wss: WebSocketServer | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly connections = new Map<string, Connection>()
  private readonly byRemote = new Map<string, Connection>()
  private seq = 0
  private localAddress = ''
  private localPort = 0
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      this.upgrade(req, socket, head)
    } catch (err) {
      this.components.logger?.error({ err }, 'WebSocket upgrade failed')
      socket.destroy()
    }
  }

  constructor (components: WsTransportComponents, init: WsTransportInit = {}) {
    this.components = components
    this.host = unbracket(init.host ?? '0.0.0.0')
    this.port = init.port ?? 5066
    this.external = init.server
    this.path = init.path
    this.pingIntervalMs = init.pingIntervalMs ?? 30_000
    this.maxMessageSize = init.maxMessageSize ?? 1048576 + 65536
    this.maxConnections = init.maxConnections ?? 10_000
    this.maxWriteBufferBytes = init.maxWriteBufferBytes ?? 4 * 1024 * 1024
  }

  /** Open WebSocket connections. */
  get connectionCount (): number { return this.connections.size }

  async start (): Promise<void> {
    if (this.wss != null) return
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.maxMessageSize,
      // RFC 7118 §4.1: the server answers with the 'sip' subprotocol (clients without it are refused in upgrade())
      handleProtocols: (protocols) => protocols.has('sip') ? 'sip' : false
    })
    let server = this.external
    if (server == null) {
      server = createServer((_req, res) => {
        res.writeHead(426, { Connection: 'close', Upgrade: 'websocket', 'Content-Length': '0' })
        res.end()
      })
      const s = server
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          reject(new TransportError(`WS listen ${hostPort(this.host, this.port)} failed: ${err.message}`, { cause: err }))
        }
        s.once('error', onError)
        s.listen({ host: this.host, port: this.port, exclusive: true }, () => {
          s.off('error', onError)
          resolve()
        })
      })
      s.on('error', (err) => { this.components.logger?.error({ err }, 'WS server error') })
      s.on('clientError', (_err, socket) => { socket.destroy() })
    }
    server.on('upgrade', this.onUpgrade)
    this.server = server
    this.wss = wss
    const bound = server.address()
    if (bound != null && typeof bound === 'object') {
      this.localAddress = normalizeAddress(bound.address)
      this.localPort = bound.port
    }
    this.timer = setInterval(() => { this.heartbeat() }, this.pingIntervalMs)
    this.timer.unref()
    this.components.logger?.info({ address: this.localAddress, port: this.localPort }, 'WS listening')
  }

  async stop (): Promise<void> {
    const server = this.server
    const wss = this.wss
    if (server == null || wss == null) return
    this.server = undefined
    this.wss = undefined
    clearInterval(this.timer)
    this.timer = undefined
    server.off('upgrade', this.onUpgrade)
    for (const conn of [...this.connections.values()]) conn.ws.terminate()
    wss.close()
    if (server !== this.external) {
      await new Promise<void>((resolve) => {
        server.close(() => { resolve() })
        server.closeAllConnections()
      })
    }
  }

  address (): { address: string, port: number } {
    return { address: this.localAddress, port: this.localPort }
  }

  /** The open flow with this id, if any. */
  flow (flowId: string): Flow | undefined {
    return this.connections.get(flowId)?.flow
  }

  /** Closes one connection. */
  close (flowId: string): void {
    this.connections.get(flowId)?.ws.terminate()
  }

  async send (target: SendTarget, data: Buffer): Promise<Flow> {
    if (this.wss == null) throw new TransportError('WS transport is not started')
    // RFC 7118 §5: the server cannot open connections to clients, so only existing flows are usable
    const conn = (target.flowId != null ? this.connections.get(target.flowId) : undefined) ??
      this.byRemote.get(hostPort(normalizeAddress(target.address), target.port))
    if (conn == null || conn.ws.readyState !== WebSocket.OPEN) {
      throw new TransportError(`no open WebSocket flow to ${target.flowId ?? hostPort(target.address, target.port)}`)
    }
    if (conn.ws.bufferedAmount > this.maxWriteBufferBytes) {
      this.components.logger?.warn({ flow: conn.flow.id }, 'WebSocket peer does not read; closing')
      conn.ws.terminate()
      throw new TransportError(`connection ${conn.flow.id} is congested`)
    }
    return await new Promise<Flow>((resolve, reject) => {
      // RFC 7118 §5.2: UTF-8 messages go in text frames, anything else in binary frames
      conn.ws.send(data, { binary: !isUtf8(data) }, (err) => {
        if (err != null) reject(new TransportError(`send on ${conn.flow.id} failed: ${err.message}`, { cause: err }))
        else resolve(conn.flow)
      })
    })
  }

  private upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {})
    const wss = this.wss
    if (wss == null) { socket.destroy(); return }
    if (this.path != null && (req.url ?? '/').split('?')[0] !== this.path) {
      refuse(socket, 404, 'Not Found')
      return
    }
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map(p => p.trim().toLowerCase())
    if (!offered.includes('sip')) {
      // RFC 7118 §4.1: the 'sip' subprotocol is mandatory
      this.components.logger?.debug({ peer: req.socket.remoteAddress }, 'WebSocket without the sip subprotocol refused')
      refuse(socket, 400, 'Bad Request')
      return
    }
    if (this.connections.size >= this.maxConnections) {
      this.components.logger?.warn({ peer: req.socket.remoteAddress }, 'too many WebSocket connections; refusing')
      refuse(socket, 503, 'Service Unavailable')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => { this.adopt(ws, req) })
  }

  private adopt (ws: WebSocket, req: IncomingMessage): void {
    const remoteAddress = normalizeAddress(req.socket.remoteAddress)
    const remotePort = req.socket.remotePort ?? 0
    const flow: Flow = {
      transport: 'WS',
      id: `ws:${++this.seq}`,
      remoteAddress,
      remotePort,
      localAddress: normalizeAddress(req.socket.localAddress) || this.localAddress,
      localPort: req.socket.localPort ?? this.localPort
    }
    const key = hostPort(remoteAddress, remotePort)
    const conn: Connection = { flow, ws, key, alive: true }
    const logger = this.components.logger
    this.connections.set(flow.id, conn)
    this.byRemote.set(key, conn)
    ws.on('message', (data: RawData) => {
      conn.alive = true
      try {
        this.receive(conn, toBuffer(data))
      } catch (err) {
        logger?.error({ err }, 'WebSocket message handling failed')
      }
    })
    ws.on('pong', () => { conn.alive = true })
    ws.on('error', (err) => { logger?.debug({ err, flow: flow.id }, 'WebSocket error') })
    ws.on('close', () => { this.closed(conn) })
    logger?.debug({ peer: key, flow: flow.id }, 'WebSocket open')
    try { this.components.onFlowOpened?.(flow) } catch (err) { logger?.error({ err }, 'onFlowOpened threw') }
  }

  private receive (conn: Connection, data: Buffer): void {
    let i = 0
    let lfs = 0
    while (i < data.length && (data[i] === CR || data[i] === LF)) {
      if (data[i] === LF) lfs++
      i++
    }
    if (i === data.length) {
      // RFC 5626 §4.4.1 CRLF keep-alive as some WebSocket clients send it: CRLFCRLF ping, CRLF pong
      if (lfs >= 2 && conn.ws.readyState === WebSocket.OPEN) conn.ws.send(PONG, { binary: false })
      return
    }
    const message = i === 0 ? data : data.subarray(i)
    try {
      this.components.onMessage(message, conn.flow)
    } catch (err) {
      this.components.logger?.error({ err }, 'message handler threw')
    }
  }

  private heartbeat (): void {
    for (const conn of this.connections.values()) {
      if (!conn.alive) {
        this.components.logger?.debug({ flow: conn.flow.id }, 'WebSocket did not answer ping; closing')
        conn.ws.terminate()
        continue
      }
      conn.alive = false
      try { conn.ws.ping() } catch {}
    }
  }

  private closed (conn: Connection): void {
    if (this.connections.get(conn.flow.id) !== conn) return
    this.connections.delete(conn.flow.id)
    if (this.byRemote.get(conn.key) === conn) this.byRemote.delete(conn.key)
    this.components.logger?.debug({ flow: conn.flow.id }, 'WebSocket closed')
    try {
      this.components.onFlowClosed?.(conn.flow.id, conn.flow)
    } catch (err) {
      this.components.logger?.error({ err }, 'onFlowClosed threw')
    }
  }
}

function toBuffer (data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

function refuse (socket: Duplex, status: number, reason: string): void {
  socket.once('finish', () => { socket.destroy() })
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}
