import type { Logger } from '../core/index.js'
import { TransportError, type Flow, type SendTarget, type Transport, type TransportHooks } from '../sip/transport/index.js'

/** SIP between m1 nodes over libp2p streams (docs/protocols.md). */
export const SIP_PROTOCOL = '/m1/sip/1.0.0'

/** Largest SIP message on `/m1/sip/1.0.0`, in bytes. */
export const MAX_SIP_FRAME_BYTES = 64 * 1024

type Chunk = Uint8Array | { subarray: () => Uint8Array }

/** The part of a libp2p stream this transport uses. */
export interface SipStream extends AsyncIterable<Chunk> {
  send: (data: Uint8Array) => boolean
  onDrain: (options?: { signal?: AbortSignal }) => Promise<void>
  close: (options?: { signal?: AbortSignal }) => Promise<void>
  abort: (err: Error) => void
}

export interface P2pSipTransportComponents {
  /** the libp2p node (src/p2p `P2p`): our peer id, stream handler registration and dialing */
  p2p: {
    readonly peerId: string
    handleStreams: (protocol: string, handler: (stream: SipStream, peer: string) => void, options?: { maxInboundStreams?: number }) => Promise<void>
    dialStream: (peer: string, protocol: string, options?: { signal?: AbortSignal }) => Promise<SipStream>
    unhandle: (protocol: string) => Promise<void>
  }
  /** the hooks of the SIP transport manager (`Transports.add`) */
  hooks: TransportHooks
  logger?: Logger
}

export interface P2pSipTransportInit {
  /** Milliseconds to open a stream to a peer before the send fails (the caller gets 480). @default 5000 */
  dialTimeoutMs?: number
  /** Largest SIP message accepted or sent. @default 65536 */
  maxMessageBytes?: number
}

interface Link {
  peer: string
  stream: SipStream
  flow: Flow
  open: boolean
}

/**
 * The SIP transport `P2P`: each SIP message is a frame (4-byte big-endian length, then the message bytes) on a
 * long-lived `/m1/sip/1.0.0` stream between two nodes. A flow is a peer: id `p2p:<peer id>`, `remoteAddress` the
 * peer id taken from the secured libp2p connection. Sends reuse the newest open stream with that peer, or dial one;
 * every stream is read, whichever side opened it. Reliable: no SIP retransmission timers.
 */
export class P2pSipTransport implements Transport {
  readonly name = 'P2P' as const
  readonly reliable = true
  private readonly links = new Map<string, Link>()
  private readonly all = new Set<Link>()
  private readonly dialing = new Map<string, Promise<Link>>()
  private readonly maxBytes: number
  private running = false

  constructor (private readonly components: P2pSipTransportComponents, private readonly init: P2pSipTransportInit = {}) {
    this.maxBytes = init.maxMessageBytes ?? MAX_SIP_FRAME_BYTES
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      await this.components.p2p.handleStreams(SIP_PROTOCOL, (stream, peer) => { this.attach(stream, peer) }, { maxInboundStreams: 4 })
    } catch (err) {
      this.running = false
      throw err
    }
  }

  async stop (): Promise<void> {
    this.running = false
    await this.components.p2p.unhandle(SIP_PROTOCOL).catch(() => {})
    const links = [...this.all]
    this.all.clear()
    this.links.clear()
    await Promise.all(links.map(async l => {
      l.open = false
      await l.stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { l.stream.abort(new Error('transport stopped')) })
    }))
  }

  address (): { address: string, port: number } {
    return { address: this.components.p2p.peerId, port: 0 }
  }

  async send (target: SendTarget, data: Buffer): Promise<Flow> {
    if (!this.running) throw new TransportError('P2P transport is not running')
    if (data.length > this.maxBytes) throw new TransportError(`SIP message of ${data.length} bytes exceeds ${this.maxBytes}`)
    const link = await this.link(target.address)
    const frame = Buffer.allocUnsafe(4 + data.length)
    frame.writeUInt32BE(data.length, 0)
    data.copy(frame, 4)
    try {
      if (!link.stream.send(frame)) await link.stream.onDrain({ signal: AbortSignal.timeout(this.init.dialTimeoutMs ?? 5000) })
    } catch (err) {
      this.drop(link, err)
      throw new TransportError(`cannot send to ${link.peer}`, { cause: err })
    }
    return link.flow
  }

  /** The open stream to `peer`, or a new one (one dial at a time per peer). */
  private async link (peer: string): Promise<Link> {
    const open = this.links.get(peer)
    if (open?.open === true) return open
    let p = this.dialing.get(peer)
    if (p == null) {
      p = (async () => {
        let stream: SipStream
        try {
          stream = await this.components.p2p.dialStream(peer, SIP_PROTOCOL, { signal: AbortSignal.timeout(this.init.dialTimeoutMs ?? 5000) })
        } catch (err) {
          this.components.logger?.debug({ err, peer }, 'cannot open SIP stream')
          throw new TransportError(`peer ${peer} is unreachable`, { cause: err })
        }
        if (!this.running) {
          stream.abort(new Error('transport stopped'))
          throw new TransportError('P2P transport is not running')
        }
        return this.attach(stream, peer)
      })().finally(() => this.dialing.delete(peer))
      this.dialing.set(peer, p)
    }
    return await p
  }

  /** Adopts a stream (inbound or dialled): it becomes the one sends use, and is read until it ends. */
  private attach (stream: SipStream, peer: string): Link {
    const flow: Flow = { transport: 'P2P', id: `p2p:${peer}`, remoteAddress: peer, remotePort: 0, localAddress: this.components.p2p.peerId, localPort: 0 }
    const link: Link = { peer, stream, flow, open: true }
    if (!this.running) {
      // an inbound stream racing stop()
      stream.abort(new Error('transport stopped'))
      link.open = false
      return link
    }
    this.all.add(link)
    this.links.set(peer, link)
    this.callHook(() => { this.components.hooks.onFlowOpened(flow) })
    void this.read(link)
    return link
  }

  /** Reads frames until the stream ends; a frame over the cap or a cut frame aborts the stream. Never throws. */
  private async read (link: Link): Promise<void> {
    let buffer: Buffer = Buffer.alloc(0)
    try {
      for await (const chunk of link.stream) {
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
        buffer = buffer.length === 0 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.concat([buffer, bytes])
        while (buffer.length >= 4) {
          const length = buffer.readUInt32BE(0)
          if (length > this.maxBytes) throw new TransportError(`frame of ${length} bytes exceeds ${this.maxBytes}`)
          if (buffer.length < 4 + length) break
          // copy: the parser keeps slices of the message, and the stream may reuse its buffers
          const message = Buffer.from(buffer.subarray(4, 4 + length))
          buffer = buffer.subarray(4 + length)
          if (length === 0) continue
          this.callHook(() => { this.components.hooks.onMessage(message, link.flow) })
        }
      }
      if (buffer.length > 0) throw new TransportError('stream ended inside a frame')
      this.drop(link)
    } catch (err) {
      if (link.open) this.components.logger?.warn({ err, peer: link.peer }, 'SIP stream from peer refused')
      this.drop(link, err)
    }
  }

  private drop (link: Link, err?: unknown): void {
    if (!link.open) return
    link.open = false
    this.all.delete(link)
    if (this.links.get(link.peer) === link) {
      this.links.delete(link.peer)
      // another stream with the same peer keeps serving sends
      for (const other of this.all) if (other.peer === link.peer) this.links.set(other.peer, other)
    }
    if (err != null) link.stream.abort(err instanceof Error ? err : new Error(String(err)))
    else void link.stream.close().catch(() => {})
    this.callHook(() => { this.components.hooks.onFlowClosed(link.flow.id, link.flow) })
  }

  private callHook (fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.components.logger?.error({ err }, 'transport hook threw')
    }
  }
}
