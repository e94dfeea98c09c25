import { createSocket, type Socket } from 'node:dgram'
import { lookup as dnsLookup } from 'node:dns'
import { isIP } from 'node:net'
import type { Logger } from '../../core/index.js'
import type { TransportName } from '../message/types.js'
import { hostPort, ipFamily, normalizeAddress, unbracket } from './address.js'
import { TransportError } from './errors.js'
import type { Flow, MessageHandler, SendTarget, Transport } from './types.js'

export interface UdpTransportComponents {
  /** Each datagram that may be a SIP message. */
  onMessage: MessageHandler
  logger?: Logger
}

export interface UdpTransportInit {
  /**
   * Address to bind; an IPv6 address (e.g. '::') opens a udp6 socket, which on most systems also receives IPv4.
   * @default '0.0.0.0'
   */
  host?: string
  /** @default 5060 */
  port?: number
  /**
   * SO_RCVBUF: a registrar gets bursts when many phones re-register at once. The kernel may cap it
   * (net.core.rmem_max); a refusal is ignored.
   * @default 4194304
   */
  recvBufferSize?: number
  /**
   * SO_SNDBUF.
   * @default 4194304
   */
  sendBufferSize?: number
}

const CR = 0x0d
const LF = 0x0a

/** SIP over UDP (RFC 3261 §18): one message per datagram, flows named `udp:<ip>:<port>`. */
export class UdpTransport implements Transport {
  readonly name: TransportName = 'UDP'
  readonly reliable = false

  private readonly components: UdpTransportComponents
  private readonly host: string
  private readonly port: number
  private readonly recvBufferSize: number
  private readonly sendBufferSize: number
  private socket: Socket | undefined
  private ipv6 = false
  private localAddress = ''
  private localPort = 0

  constructor (components: UdpTransportComponents, init: UdpTransportInit = {}) {
    this.components = components
    this.host = unbracket(init.host ?? '0.0.0.0')
    this.port = init.port ?? 5060
    this.recvBufferSize = init.recvBufferSize ?? 4 * 1024 * 1024
    this.sendBufferSize = init.sendBufferSize ?? 4 * 1024 * 1024
  }

  async start (): Promise<void> {
    if (this.socket != null) return
    this.ipv6 = ipFamily(this.host) === 6
    const family = this.ipv6 ? 6 : 4
    // destinations are IP literals checked in send(): skip dgram's asynchronous dns.lookup on every datagram
    const socket = createSocket({
      type: this.ipv6 ? 'udp6' : 'udp4',
      lookup: (address, opts, cb) => { if (isIP(address) !== 0) cb(null, address, family); else dnsLookup(address, opts, cb) }
    })
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close()
        reject(new TransportError(`UDP bind ${hostPort(this.host, this.port)} failed: ${err.message}`, { cause: err }))
      }
      socket.once('error', onError)
      socket.bind({ address: this.host, port: this.port, exclusive: true }, () => {
        socket.off('error', onError)
        resolve()
      })
    })
    this.socket = socket
    try { socket.setRecvBufferSize(this.recvBufferSize) } catch {}
    try { socket.setSendBufferSize(this.sendBufferSize) } catch {}
    const bound = socket.address()
    this.localAddress = normalizeAddress(bound.address)
    this.localPort = bound.port
    socket.on('message', (data, rinfo) => { this.receive(data, rinfo.address, rinfo.port) })
    // ICMP errors (ECONNREFUSED) and the like surface here; they never stop the socket
    socket.on('error', (err) => { this.components.logger?.debug({ err }, 'UDP socket error') })
    this.components.logger?.info({ address: this.localAddress, port: this.localPort }, 'UDP listening')
  }

  async stop (): Promise<void> {
    const socket = this.socket
    if (socket == null) return
    this.socket = undefined
    await new Promise<void>((resolve) => {
      try { socket.close(() => { resolve() }) } catch { resolve() }
    })
  }

  address (): { address: string, port: number } {
    return { address: this.localAddress, port: this.localPort }
  }

  async send (target: SendTarget, data: Buffer): Promise<Flow> {
    const socket = this.socket
    if (socket == null) throw new TransportError('UDP transport is not started')
    const address = normalizeAddress(target.address)
    const family = ipFamily(address)
    if (family === 0) throw new TransportError(`UDP destination must be an IP address: ${target.address}`)
    if (!(target.port > 0 && target.port < 65536)) throw new TransportError(`bad UDP port ${target.port}`)
    let wire = address
    if (this.ipv6) {
      if (family === 4) wire = `::ffff:${address}`
    } else if (family === 6) {
      throw new TransportError(`IPv6 destination ${address} on an IPv4 UDP socket`)
    }
    await new Promise<void>((resolve, reject) => {
      try {
        socket.send(data, target.port, wire, (err) => {
          if (err != null) reject(new TransportError(`UDP send to ${hostPort(address, target.port)} failed: ${err.message}`, { cause: err }))
          else resolve()
        })
      } catch (err) {
        reject(new TransportError(`UDP send to ${hostPort(address, target.port)} failed`, { cause: err }))
      }
    })
    return this.flow(address, target.port)
  }

  private flow (address: string, port: number): Flow {
    return {
      transport: 'UDP',
      id: `udp:${hostPort(address, port)}`,
      remoteAddress: address,
      remotePort: port,
      localAddress: this.localAddress,
      localPort: this.localPort
    }
  }

  private receive (data: Buffer, rawAddress: string, port: number): void {
    // RFC 3261 §7.5: CRLFs before the start line are ignored; a datagram of only CRLFs is a keep-alive
    let i = 0
    while (i < data.length && (data[i] === CR || data[i] === LF)) i++
    if (i === data.length) return
    // not the first byte of a SIP start line: STUN (RFC 5389 starts with 0b00) and other noise
    const first = data[i] as number
    if (first < 0x21 || first > 0x7e) return
    const message = i === 0 ? data : data.subarray(i)
    try {
      this.components.onMessage(message, this.flow(normalizeAddress(rawAddress), port))
    } catch (err) {
      this.components.logger?.error({ err }, 'message handler threw')
    }
  }
}
