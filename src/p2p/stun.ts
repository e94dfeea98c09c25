import { createSocket, type Socket } from 'node:dgram'
import { isIPv4, isIPv6 } from 'node:net'
import type { Logger, Metrics, MetricCounter } from '../core/index.js'
import { P2pError } from './errors.js'

/** RFC 5389 §6: the magic cookie of every STUN message. */
export const STUN_MAGIC_COOKIE = 0x2112a442
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_XOR_MAPPED_ADDRESS = 0x0020
const ATTR_FINGERPRINT = 0x8028
const HEADER_BYTES = 20
/** Largest request parsed; a binding request carries a few small attributes at most. */
const MAX_REQUEST_BYTES = 548

/** A parsed Binding Request: its 96-bit transaction id. */
export interface BindingRequest { transactionId: Uint8Array }

/**
 * Parses a datagram as an RFC 5389 Binding Request. Returns undefined for anything else (other methods or classes,
 * RFC 3489 requests without the magic cookie, bad lengths, truncated or misaligned attributes, a wrong FINGERPRINT):
 * the responder drops those silently.
 */
export function parseBindingRequest (buf: Uint8Array): BindingRequest | undefined {
  if (buf.length < HEADER_BYTES || buf.length > MAX_REQUEST_BYTES) return undefined
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const type = view.getUint16(0)
  // RFC 5389 §6: the two most significant bits of every STUN message are zero
  if ((type & 0xc000) !== 0 || type !== BINDING_REQUEST) return undefined
  const length = view.getUint16(2)
  if (length % 4 !== 0 || HEADER_BYTES + length !== buf.length) return undefined
  if (view.getUint32(4) !== STUN_MAGIC_COOKIE) return undefined
  let i = HEADER_BYTES
  while (i < buf.length) {
    if (i + 4 > buf.length) return undefined
    const attr = view.getUint16(i)
    const len = view.getUint16(i + 2)
    const padded = len + ((4 - (len % 4)) % 4)
    if (i + 4 + padded > buf.length) return undefined
    if (attr === ATTR_FINGERPRINT) {
      // RFC 5389 §15.5: FINGERPRINT is last and is the CRC-32 of the message before it, XOR 0x5354554e
      if (len !== 4 || i + 8 !== buf.length) return undefined
      if (view.getUint32(i + 4) !== ((crc32(buf.subarray(0, i)) ^ 0x5354554e) >>> 0)) return undefined
    }
    i += 4 + padded
  }
  return { transactionId: buf.slice(8, 20) }
}

/** Encodes a Binding Success Response carrying XOR-MAPPED-ADDRESS (RFC 5389 §15.2) of the request's source. */
export function encodeBindingSuccess (transactionId: Uint8Array, address: string, port: number): Uint8Array {
  if (transactionId.length !== 12) throw new P2pError('a STUN transaction id is 12 bytes')
  const v6 = isIPv6(address) && !isIPv4(address)
  const addrBytes = v6 ? ipv6Bytes(address) : ipv4Bytes(address)
  const attrLen = 4 + addrBytes.length
  const out = new Uint8Array(HEADER_BYTES + 4 + attrLen)
  const view = new DataView(out.buffer)
  view.setUint16(0, BINDING_SUCCESS)
  view.setUint16(2, 4 + attrLen)
  view.setUint32(4, STUN_MAGIC_COOKIE)
  out.set(transactionId, 8)
  view.setUint16(20, ATTR_XOR_MAPPED_ADDRESS)
  view.setUint16(22, attrLen)
  out[24] = 0
  out[25] = v6 ? 0x02 : 0x01
  // RFC 5389 §15.2: X-Port is the port XOR the cookie's high 16 bits; X-Address is the address XOR the cookie
  // (IPv4) or the cookie followed by the transaction id (IPv6)
  view.setUint16(26, (port ^ (STUN_MAGIC_COOKIE >>> 16)) & 0xffff)
  const mask = out.subarray(4, 20)
  for (let k = 0; k < addrBytes.length; k++) out[28 + k] = addrBytes[k]! ^ mask[k]!
  return out
}

/** Decodes the XOR-MAPPED-ADDRESS of a Binding Success Response (tests and clients). */
export function decodeBindingSuccess (buf: Uint8Array): { transactionId: Uint8Array, address: string, port: number } | undefined {
  if (buf.length < HEADER_BYTES) return undefined
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  if (view.getUint16(0) !== BINDING_SUCCESS || view.getUint32(4) !== STUN_MAGIC_COOKIE) return undefined
  if (HEADER_BYTES + view.getUint16(2) !== buf.length) return undefined
  let i = HEADER_BYTES
  while (i + 4 <= buf.length) {
    const attr = view.getUint16(i)
    const len = view.getUint16(i + 2)
    if (i + 4 + len > buf.length) return undefined
    if (attr === ATTR_XOR_MAPPED_ADDRESS && (len === 8 || len === 20)) {
      const port = view.getUint16(i + 6) ^ (STUN_MAGIC_COOKIE >>> 16)
      const mask = buf.subarray(4, 20)
      const raw = Array.from(buf.subarray(i + 8, i + 4 + len), (b, k) => b ^ mask[k]!)
      const address = len === 8 ? raw.join('.') : formatIpv6(raw)
      return { transactionId: buf.slice(8, 20), address, port }
    }
    i += 4 + len + ((4 - (len % 4)) % 4)
  }
  return undefined
}

function ipv4Bytes (a: string): Uint8Array {
  return Uint8Array.from(a.split('.').map(Number))
}

function ipv6Bytes (a: string): Uint8Array {
  const [head = '', tail] = a.split('::')
  const parts = (s: string): string[] => s === '' ? [] : s.split(':')
  const words = parts(head)
  const rest = tail != null ? parts(tail) : []
  const expand = (ws: string[]): number[] => ws.flatMap(w => w.includes('.') ? Array.from(ipv4Bytes(w)).reduce<number[]>((acc, b, k) => { if (k % 2 === 0) acc.push(b << 8); else acc[acc.length - 1]! |= b; return acc }, []) : [parseInt(w, 16)])
  const h = expand(words)
  const t = expand(rest)
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t]
  const out = new Uint8Array(16)
  all.forEach((w, k) => { out[2 * k] = (w >> 8) & 0xff; out[2 * k + 1] = w & 0xff })
  return out
}

function formatIpv6 (b: number[]): string {
  const words: string[] = []
  for (let k = 0; k < 16; k += 2) words.push(((b[k]! << 8) | b[k + 1]!).toString(16))
  return words.join(':')
}

let crcTable: Uint32Array | undefined
function crc32 (buf: Uint8Array): number {
  if (crcTable == null) {
    crcTable = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      crcTable[n] = c >>> 0
    }
  }
  let c = 0xffffffff
  for (const byte of buf) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

export interface StunServerComponents {
  logger: Logger
  metrics?: Metrics
}

export interface StunServerInit {
  /** Address to bind. @default '0.0.0.0' */
  host?: string
  /** UDP port (0: any free port). @default 3478 */
  port?: number
}

/**
 * A STUN binding responder (RFC 5389 §7.3, §10: no authentication, UDP only): each Binding Request is answered with
 * the request's source address and port as seen here, so a node behind NAT learns its public mapping. Everything
 * else is dropped without an answer.
 */
export class StunServer {
  private socket?: Socket
  private readonly log: Logger
  private readonly answered?: MetricCounter
  private readonly dropped?: MetricCounter

  constructor (components: StunServerComponents, private readonly init: StunServerInit = {}) {
    this.log = components.logger
    this.answered = components.metrics?.counter('m1node_stun_requests_total', 'STUN binding requests answered')
    this.dropped = components.metrics?.counter('m1node_stun_dropped_total', 'Datagrams on the STUN port that were no binding request')
  }

  /** The bound address, once started. */
  address (): { address: string, port: number } | undefined {
    const a = this.socket?.address()
    return a == null ? undefined : { address: a.address, port: a.port }
  }

  async start (): Promise<void> {
    const host = this.init.host ?? '0.0.0.0'
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' })
    socket.on('message', (msg, rinfo) => {
      try {
        const req = parseBindingRequest(msg)
        if (req == null) { this.dropped?.inc(); return }
        socket.send(encodeBindingSuccess(req.transactionId, rinfo.address, rinfo.port), rinfo.port, rinfo.address, () => {})
        this.answered?.inc()
      } catch (err) {
        this.log.debug({ err }, 'stun datagram dropped')
      }
    })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(this.init.port ?? 3478, host, () => { socket.off('error', reject); resolve() })
    }).catch((err: Error) => { socket.close(); throw new P2pError(`cannot bind STUN ${host}:${this.init.port ?? 3478}: ${err.message}`, { cause: err }) })
    socket.on('error', (err) => { this.log.warn({ err }, 'stun socket error') })
    this.socket = socket
    this.log.info({ stun: this.address() }, 'stun responder listening')
  }

  async stop (): Promise<void> {
    const s = this.socket
    this.socket = undefined
    if (s != null) await new Promise<void>(resolve => { s.close(() => { resolve() }) })
  }
}
